// MessageQueue { tabs } in headless Chromium: four pages of one context post
// 1,000 tasks; each task records itself with a POST to a counter server of
// this test (the side effect that is counted), while the leading tab is
// closed and then the next one crashes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { browser, server, routeWasm, useBrowserAndServer, watchErrors } from './harness.mjs';

useBrowserAndServer();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const records = []; // {id, k, from, rerun, by}
let counter;
let counterUrl;

before(async () => {
  counter = createServer((req, res) => {
    const cors = { 'access-control-allow-origin': '*' };
    if (req.method !== 'POST' || req.url !== '/record') { res.writeHead(404, cors).end(); return; }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; if (body.length > 4096) req.destroy(); });
    req.on('end', () => {
      try { records.push(JSON.parse(body)); } catch { res.writeHead(400, cors).end(); return; }
      res.writeHead(204, cors).end();
    });
  });
  await new Promise((ok) => counter.listen(0, '127.0.0.1', ok));
  counterUrl = `http://127.0.0.1:${counter.address().port}/record`;
});
after(() => new Promise((ok) => counter.close(ok)));

async function until(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await sleep(25);
  }
}

// Each tab: the same handler; `post(n)` pushes n tasks and keeps their outcomes.
const START = async ({ name, counterUrl, me }) => {
  const sb = await import('/js/index.js');
  window.outcomes = [];
  window.q = new sb.MessageQueue(async (item, info) => {
    await fetch(counterUrl, { method: 'POST', body: JSON.stringify({ id: info.id, k: item.k, from: item.from, rerun: info.rerun, by: me }) });
    if (item.k % 97 === 13) throw new Error(`task ${item.k} fails on purpose`);
    return { k: item.k, from: item.from, by: me };
  }, { tabs: name, maxRetries: 0 });
  window.post = (n) => {
    for (let i = 0; i < n; i++) {
      const item = { k: i, from: me };
      window.q.run(item).then((v) => window.outcomes.push({ item, ok: true, v }), (e) => window.outcomes.push({ item, ok: false, msg: e.message }));
    }
  };
};

test('four tabs, 1,000 tasks: each runs once on the leader; results reach their posters; a close and a crash of the leader lose none', async () => {
  const context = await browser.newContext();
  await routeWasm(context);
  const name = `qt-${process.pid}-${Date.now()}`;
  const pages = [];
  for (let i = 0; i < 4; i++) {
    const p = await context.newPage();
    p.errorsSeen = watchErrors(p);
    await p.goto(`${server.url}/tests/browser/fixtures/blank.html`);
    await p.evaluate(START, { name, counterUrl, me: `t${i}` });
    pages.push(p);
  }
  const leaderOf = async () => {
    const s = await Promise.all(pages.map((p) => p.evaluate(() => window.q.stats().tabs)));
    const i = s.findIndex((x) => x.leader);
    return i >= 0 && s.filter((x) => x.leader).length === 1 ? i + 1 : 0;
  };
  await until('a leader', leaderOf);
  for (const p of pages) await p.evaluate(() => window.post(250));

  const deaths = [];
  for (const [kind, at] of [['close', 300], ['crash', 600]]) {
    await until(`${at} tasks recorded`, () => records.length >= at);
    const i = (await until('one leader', leaderOf)) - 1;
    const p = pages[i];
    deaths.push({ kind });
    if (kind === 'close') await p.close();
    else {
      const cdp = await context.newCDPSession(p);
      cdp.send('Page.crash').catch(() => {});
      await p.waitForEvent('crash');
      await p.close().catch(() => {});
    }
    pages.splice(i, 1);
  }
  await until('the survivors have all their outcomes', async () => (await Promise.all(pages.map((p) => p.evaluate(() => window.outcomes.length)))).every((n) => n === 250), 60000);
  await until('the queues are idle', async () => (await Promise.all(pages.map((p) => p.evaluate(() => window.q.stats().tabs.open)))).every((n) => n === 0));

  // Every task of every tab (the dead ones' too) ran; twice only as a flagged rerun.
  const byTask = new Map();
  for (const r of records) byTask.set(`${r.from}:${r.k}`, [...(byTask.get(`${r.from}:${r.k}`) || []), r]);
  assert.equal(byTask.size, 1000, `${byTask.size} distinct tasks ran`);
  const twice = [...byTask.values()].filter((rs) => rs.length > 1);
  for (const rs of twice) {
    assert.equal(rs.length, 2, JSON.stringify(rs));
    // (in the order the counter got the POSTs: the dead leader's may come after the rerun's)
    assert.equal(rs.filter((r) => r.rerun).length, 1, `ran twice without being flagged a rerun once: ${JSON.stringify(rs)}`);
    assert.notEqual(rs[0].by, rs[1].by, 'a rerun is another leader\'s');
    assert.equal(new Set(rs.map((r) => r.id)).size, 1, 'a rerun keeps its id');
  }
  assert.ok(twice.length <= deaths.length, `${twice.length} tasks ran twice`);
  const reruns = records.filter((r) => r.rerun);
  assert.ok(reruns.length <= deaths.length);
  // The two survivors' results are theirs and right, errors included.
  for (const p of pages) {
    const out = await p.evaluate(() => window.outcomes);
    const me = out[0].item.from;
    assert.deepEqual(out.map((o) => o.item.k).sort((a, b) => a - b), Array.from({ length: 250 }, (_, i) => i));
    for (const o of out) {
      if (o.item.k % 97 === 13) assert.deepEqual([o.ok, o.msg], [false, `task ${o.item.k} fails on purpose`]);
      else {
        assert.equal(o.ok, true);
        assert.deepEqual([o.v.k, o.v.from], [o.item.k, me]);
      }
    }
  }
  // Three tabs led in turn.
  assert.ok(new Set(records.map((r) => r.by)).size >= 3, [...new Set(records.map((r) => r.by))].join());
  console.log(`# ${twice.length} task(s) ran twice (reruns flagged: ${reruns.length}) over ${deaths.map((d) => d.kind).join(' + ')}`);
  for (const p of pages) assert.deepEqual(p.errorsSeen.filter((e) => !/net::|Failed to load/.test(e)), []);
  await context.close();
});
