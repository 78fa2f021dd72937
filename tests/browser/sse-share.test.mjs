// EventStream { share: true } in headless Chromium: several pages of one
// context against the dev server's SSE endpoint, whose request log and open
// connections are the server-side count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browser, server, routeWasm, useBrowserAndServer, watchErrors } from './harness.mjs';

useBrowserAndServer();

let n = 0;
const name = (t) => `share-${t}-${process.pid}-${++n}`;
const stats = async (s) => (await fetch(`${server.url}/sse/stats?s=${s}`)).json();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await sleep(20);
  }
}

// A page (or frame) with a shared EventStream that records the `n` of every event.
const START = async ({ url, share }) => {
  window.sb = await import('/js/index.js');
  await window.sb.init();
  window.seen = [];
  window.ids = [];
  window.es = new window.sb.EventStream(url, { share, reconnect: { minDelay: 20, maxDelay: 200 } });
  window.es.addEventListener('time', (e) => { window.seen.push(JSON.parse(e.data).n); window.ids.push(e.lastEventId); });
};

async function openTab(context, url, share = true, origin = server.url) {
  const page = await context.newPage();
  page.errorsSeen = watchErrors(page);
  await page.goto(`${origin}/tests/browser/fixtures/blank.html`);
  await page.evaluate(START, { url, share });
  return page;
}

const count = (p) => p.evaluate(() => window.seen.length);
const info = (p) => p.evaluate(() => window.es.stats());

// Every tab's events are consecutive: none missed, none twice, in order.
function assertConsecutive(seen, label) {
  assert.ok(seen.length > 0, `${label}: no events`);
  for (let i = 1; i < seen.length; i++) {
    if (seen[i] !== seen[i - 1] + 1) assert.fail(`${label}: ${seen[i - 1]} then ${seen[i]} at ${i} of ${seen.length}`);
  }
}

async function holderIndex(pages) {
  return (await until('one holder', async () => {
    const all = await Promise.all(pages.map(info));
    const h = all.filter((s) => s.leader);
    return h.length === 1 && all.every((s) => s.holder === all[all.indexOf(h[0])].tab) ? all.indexOf(h[0]) + 1 : 0;
  })) - 1;
}

async function allGrow(pages, by) {
  const base = await Promise.all(pages.map(count));
  await until(`every tab gets ${by} more events`, async () => (await Promise.all(pages.map(count))).every((c, i) => c >= base[i] + by));
}

test('five tabs share one request; a sixth joins without one; five handovers (close, crash, reload, close, crash) lose and repeat nothing', async () => {
  const context = await browser.newContext();
  await routeWasm(context);
  const s = name('five');
  const url = `/sse/stream?s=${s}&interval=8&types=time&history=5000`;
  const pages = [];
  for (let i = 0; i < 5; i++) pages.push(await openTab(context, url));
  await allGrow(pages, 5);
  let st = await stats(s);
  assert.equal(st.requests.length, 1, JSON.stringify(st.requests));
  assert.equal(st.connections, 1);
  for (const p of pages) assert.equal((await info(p)).shared, true);
  assert.equal((await info(pages[0])).tabs, 5);

  pages.push(await openTab(context, url));
  await allGrow(pages, 5);
  st = await stats(s);
  assert.equal(st.requests.length, 1, 'the late tab opened a request');

  const done = []; // sequences of tabs that are gone
  const actions = ['close', 'crash', 'reload', 'close', 'crash'];
  for (const action of actions) {
    const h = await holderIndex(pages);
    const p = pages[h];
    if (action === 'close') {
      done.push(await p.evaluate(() => window.seen));
      await p.close();
      pages.splice(h, 1);
    } else if (action === 'crash') {
      done.push(await p.evaluate(() => window.seen));
      const cdp = await context.newCDPSession(p);
      cdp.send('Page.crash').catch(() => {});
      await p.waitForEvent('crash');
      await p.close().catch(() => {});
      pages.splice(h, 1);
    } else {
      done.push(await p.evaluate(() => window.seen));
      await p.reload();
      await p.evaluate(START, { url, share: true });
    }
    await holderIndex(pages);
    await allGrow(pages, 10);
  }
  for (const seq of done) assertConsecutive(seq, 'a tab before it went');
  const last = [];
  for (const [i, p] of pages.entries()) {
    const { seen, ids } = await p.evaluate(() => ({ seen: window.seen, ids: window.ids }));
    assertConsecutive(seen, `tab ${i}`);
    assert.deepEqual(ids, seen.map(String));
    last.push(seen);
  }
  st = await stats(s);
  assert.equal(st.connections, 1);
  assert.equal(st.requests.length, 1 + actions.length, JSON.stringify(st.requests));
  assert.ok(st.requests.slice(1).every((q) => Number(q.lastEventId) > 0), 'a new holder resumed without Last-Event-ID');
  const all = await Promise.all(pages.map(info));
  assert.ok(all.reduce((a, x) => a + x.handovers, 0) >= 1);
  console.log(`# repeats dropped by the surviving tabs: ${all.reduce((a, x) => a + x.duplicates, 0)}`);
  for (const p of pages) assert.deepEqual(p.errorsSeen.filter((e) => !/net::|Failed to load/.test(e)), []);
  await context.close();
});

test('a storage-partitioned cross-site frame falls back to its own stream and works', async () => {
  const context = await browser.newContext();
  await routeWasm(context);
  const s = name('frame');
  const url = `/sse/stream?s=${s}&interval=10&types=time`;
  const top = await openTab(context, url);
  // The frame is on localhost, the top page on 127.0.0.1: two sites.
  const frameUrl = `${server.crossSiteUrl}/tests/browser/fixtures/blank.html`;
  await top.evaluate((src) => new Promise((ok) => { const f = document.createElement('iframe'); f.src = src; f.onload = ok; document.body.append(f); }), frameUrl);
  const frame = top.frames().find((f) => f.url() === frameUrl);
  await frame.evaluate(START, { url, share: true });
  await until('the frame gets events', async () => (await frame.evaluate(() => window.seen.length)) >= 5);
  const fs = await frame.evaluate(() => ({ shared: window.es.shared, ...window.es.stats() }));
  assert.equal(fs.shared, false);
  assert.equal(fs.fallback, 'partitioned');
  assertConsecutive(await frame.evaluate(() => window.seen), 'frame');
  assert.equal((await info(top)).shared, true);
  const st = await stats(s);
  assert.equal(st.requests.length, 2);
  await context.close();
});

test('share options: native transport and openWhenHidden: false are refused; a body must be a string to key by', async () => {
  const context = await browser.newContext();
  await routeWasm(context);
  const page = await context.newPage();
  await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  const r = await page.evaluate(async () => {
    const sb = await import('/js/index.js');
    await sb.init();
    const code = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
    return [
      code(() => new sb.EventStream('/x', { share: true, transport: 'native' })),
      code(() => new sb.EventStream('/x', { share: true, openWhenHidden: false })),
      code(() => new sb.EventStream('/x', { share: true, method: 'POST', body: new Blob(['a']) })),
      code(() => new sb.EventStream('/x', { share: '' })),
    ];
  });
  assert.deepEqual(r, ['INVALID', 'INVALID', 'INVALID', 'INVALID']);
  await context.close();
});
