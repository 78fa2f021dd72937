// The shared Socket (docs/socket.md, "Sharing") in headless Chromium: tabs
// are pages of one browser context, the relay is the real one in this
// process, connection counts are the relay's own.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { browser, server, routeWasm, useBrowserAndServer } from './harness.mjs';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { Relay } from '../../js/server/relay.mjs';
import { HttpStream } from '../../js/server/http.mjs';
import { serve, until, sleep } from '../node/net.mjs';

let relay, srv;
useBrowserAndServer([], async () => {
  await init();
  relay = await Relay.create({ allowedOrigins: [server.url], onRequest: ({ data }) => `re:${data}` });
  srv = await serve(relay);
});
after(async () => {
  await srv?.kill();
  await relay?.close?.();
});

const OPTS = { reconnect: { minDelay: 20, maxDelay: 200, connectTimeout: 3000 }, heartbeat: { interval: 2000, timeout: 2000 } };

const log = (...a) => { if (process.env.SB_DEBUG) console.error(new Date().toISOString().slice(11, 23), ...a); };
/** Poll an async condition. */
async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

/** A tab: a page whose Socket shares `key`, records what it gets and, once started, sends and requests. */
async function openTab(ctx, key, room, opts = OPTS) {
  const page = await ctx.newPage();
  await routeWasm(page);
  const errors = [];
  page.on('pageerror', (e) => { errors.push(String(e)); log('pageerror', String(e)); });
  page.on('console', (m) => log('console', m.text()));
  await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  await page.evaluate(async ({ url, key, room, opts }) => {
    const sb = await import('/js/index.js');
    await sb.init();
    const s = new sb.Socket(url, { ...opts, share: key, hello: { room, user: 'tabs' } });
    window.sock = s;
    window.got = [];
    window.answers = [];
    window.sent = [];
    window.tag = Math.random().toString(36).slice(2, 8);
    s.onmessage = (e) => { if (e.channel === 0) window.got.push(e.data); };
    window.errs = [];
    s.onerror = (e) => window.errs.push(e.error?.message);
    window.start = () => {
      let i = 0;
      window.pump = setInterval(() => {
        const m = `${window.tag}-${i++}`;
        window.sent.push(m);
        s.send(m);
        if (i % 5 === 0) s.request(m, { timeout: 20000 }).then((v) => window.answers.push([m, v]), (e) => window.answers.push([m, `error ${e.code}`]));
      }, 15);
    };
    window.stop = () => clearInterval(window.pump);
  }, { url: srv.url, key, room, opts });
  return { page, errors };
}

/** The server's side of a room: a Node Socket that records channel 0. */
async function nodePeer(room, extra = {}) {
  const node = new Socket(srv.url, { WebSocket, ...OPTS, hello: { room, user: 'node' }, ...extra });
  const atNode = [];
  node.onmessage = (e) => { if (e.channel === 0) atNode.push(e.data); };
  node.onerror = () => {};
  await until(() => node.readyState === 1, 5000, 'node open');
  return { node, atNode };
}

/** n tabs sharing `key`, each open. */
async function openTabs(ctx, key, room, n) {
  const tabs = [];
  for (let i = 0; i < n; i++) tabs.push(await openTab(ctx, key, room));
  for (const t of tabs) await waitFor(async () => (await t.page.evaluate(() => window.sock.readyState)) === 1, 10000, 'tab open');
  return tabs;
}

/** Every request the tab made has settled (its answer may come after the last server message: a write waits for a confirmation). */
const settled = (t) => waitFor(() => t.page.evaluate(() => window.answers.length >= window.sent.filter((_, k) => (k + 1) % 5 === 0).length), 25000, 'every request of the tab settled');
const role = (t) => Promise.race([t.page.evaluate(() => window.sock.stats().share?.role), sleep(3000).then(() => 'hung')]);
const roles = (tabs) => Promise.all(tabs.map(role));
const tabConns = () => relay.conns.size - 1; // minus the Node peer

async function leaderOf(tabs) {
  let found = null;
  for (let k = 0; k < 400 && !found; k++) {
    const r = await roles(tabs);
    const i = r.indexOf('leader');
    if (i >= 0) found = tabs[i];
    else await sleep(20);
  }
  assert.ok(found, 'a tab leads');
  return found;
}

test('five tabs share one connection; a tab opened later joins it; five handovers (close, crash, reload, close, crash) lose and double nothing', { timeout: 140000 }, async (tc) => {
  const room = 'share-chaos';
  let pump, ctx, node;
  tc.after(async () => { clearInterval(pump); node?.close(); await ctx?.close(); }); // a failure leaves no tab or connection to the next test
  let atNode;
  ({ node, atNode } = await nodePeer(room, { queue: { maxMessages: 100000 } }));

  ctx = await browser.newContext();
  const tabs = await openTabs(ctx, 'chaos', room, 5);
  for (const t of tabs) assert.equal(await t.page.evaluate(() => window.sock.readyState), 1, 'every tab open');
  assert.equal(tabConns(), 1, 'the relay sees one connection for five tabs');
  const r0 = await roles(tabs);
  assert.equal(r0.filter((r) => r === 'leader').length, 1);
  tabs.push(await openTab(ctx, 'chaos', room));
  await waitFor(async () => (await tabs[5].page.evaluate(() => window.sock.readyState)) === 1, 10000, 'late tab open');
  assert.equal(tabConns(), 1, 'a tab opened later joins without a new connection');
  assert.equal((await tabs[5].page.evaluate(() => window.sock.stats().share)).tabs, 6);

  // Everyone sends and receives all along.
  let n = 0;
  pump = setInterval(() => { for (let k = 0; k < 3; k++) node.send(`n${n++}`); }, 10);
  for (const t of tabs) await t.page.evaluate(() => window.start());
  await sleep(600);

  const live = new Set(tabs);
  const gone = []; // tabs whose page ended: their own unsent messages went with them
  const steps = ['close', 'crash', 'reload', 'close', 'crash'];
  for (const step of steps) {
    const lead = await leaderOf([...live]);
    log('step', step, 'conns', tabConns(), 'atNode', atNode.length);
    const lp = lead.page;
    if (step === 'close') { live.delete(lead); gone.push(lead); log('closing'); await lp.close(); log('closed'); }
    else if (step === 'crash') {
      live.delete(lead); gone.push(lead);
      const cdp = await ctx.newCDPSession(lp);
      cdp.send('Page.crash').catch(() => {}); // never answers: the renderer is gone
      await new Promise((r) => lp.once('crash', r));
    } else {
      live.delete(lead); gone.push(lead);
      await lp.reload();
      const again = { page: lp, errors: lead.errors };
      await lp.evaluate(async ({ url, key, room, opts }) => {
        const sb = await import('/js/index.js');
        await sb.init();
        window.sock = new sb.Socket(url, { ...opts, share: key, hello: { room, user: 'tabs' } });
      }, { url: srv.url, key: 'chaos', room, opts: OPTS });
      gone.push(again); // it came back as a new tab; not checked below
    }
    await sleep(900);
    await leaderOf([...live]);
    log('after', step, 'roles', await roles([...live]));
    assert.ok(tabConns() <= 2, `at most the old and the new connection during a handover (${tabConns()})`);
  }
  clearInterval(pump);
  log('stopping');
  for (const t of live) await t.page.evaluate(() => window.stop());
  log('stopped', n);
  const total = n;
  const survivors = [...live];
  await waitFor(async () => {
    const last = await Promise.all(survivors.map((t) => t.page.evaluate(() => window.got.filter((d) => d[0] === 'n').at(-1))));
    return last.every((m) => m === `n${total - 1}`);
  }, 30000, 'the last server message in every surviving tab');
  log('all arrived');
  await sleep(300); // anything doubled would come now
  await until(() => tabConns() === 1, 10000, 'one connection after the handovers').catch(() => {});
  assert.equal(tabConns(), 1, 'one connection after five handovers');
  for (const t of survivors) await settled(t);

  const views = await Promise.all(survivors.map((t) => t.page.evaluate(() => ({ got: window.got, sent: window.sent, answers: window.answers, errs: window.errs, stats: window.sock.stats() }))));
  // What each tab missed or got twice of the server's messages, from the first it saw (for a failure to show).
  const account = ({ got, stats }) => {
    const fromNode = got.filter((d) => d[0] === 'n'), first = Number(fromNode[0].slice(1)), seen = new Set(fromNode);
    const missing = Array.from({ length: total - first }, (_, i) => `n${first + i}`).filter((m) => !seen.has(m));
    const twice = fromNode.filter((m, i) => fromNode.indexOf(m) !== i);
    return { fromNode, first, text: `${stats.share?.role} (gaps ${stats.gaps}, dropped ${stats.dropped}, dups ${stats.duplicates}): missing ${missing.slice(0, 20)}, twice ${twice.slice(0, 20)}` };
  };
  const accounts = views.map(account);
  const everyTab = `${accounts.map((a) => a.text).join(' | ')}; relay ${JSON.stringify(relay.stats)}`;
  const reported = views.flatMap((v) => v.errs).filter((m) => /may arrive twice/.test(m));
  for (const [k, t] of survivors.entries()) {
    const { sent, answers, stats } = views[k];
    const { fromNode, first } = accounts[k];
    // Every message of the server, once and in order, from the first this tab saw.
    assert.deepEqual(fromNode, Array.from({ length: total - first }, (_, i) => `n${first + i}`), `every server message once, in order (every tab: ${everyTab})`);
    assert.ok(first < 200, 'from (about) the start');
    // Every message it sent reached the server once, in its order.
    const mine = atNode.filter((d) => d.startsWith(`${sent[0].split('-')[0]}-`));
    assert.deepEqual(mine, sent, `every message of the tab reached the server once, in order (${mine.length - new Set(mine).size} twice; reported ${reported.length})`);
    // Every request resolved once, with its own answer.
    const asked = sent.filter((_, i) => (i + 1) % 5 === 0);
    assert.equal(answers.length, asked.length, 'every request settled once');
    for (const [m, v] of answers) assert.equal(v, `re:${m}`);
    assert.ok(stats.share && stats.share.tabs >= 1);
    assert.deepEqual(t.errors, []);
  }
  // Nothing any tab sent arrived twice, the dead tabs' included: a leader's write waits until a
  // tab has the snapshot that counts it (docs/socket.md, "Sharing").
  const tabMsgs = atNode.filter((d) => d[0] !== 'n');
  const twice = tabMsgs.length - new Set(tabMsgs).size;
  log('twice', twice, 'reported', reported.length);
  assert.equal(twice, 0, `${twice} message(s) twice at the server (reported "may arrive twice": ${reported.length})`);
  assert.equal(reported.length, 0, 'no session resumed from a state older than what the server holds');
});

test('a frozen leader is replaced once its lease runs out; thawed, it follows the new one; nothing lost or doubled', { timeout: 90000 }, async (tc) => {
  const room = 'share-frozen';
  let pump, ctx, node;
  tc.after(async () => { clearInterval(pump); node?.close(); await ctx?.close(); });
  let atNode;
  ({ node, atNode } = await nodePeer(room));
  ctx = await browser.newContext();
  const tabs = await openTabs(ctx, 'frozen', room, 3);
  let n = 0;
  pump = setInterval(() => node.send(`n${n++}`), 10);
  for (const t of tabs) await t.page.evaluate(() => window.start());
  await sleep(500);

  const lead = await leaderOf(tabs);
  const others = tabs.filter((t) => t !== lead);
  const cdp = await ctx.newCDPSession(lead.page);
  // Frozen: it holds its Web Lock and runs nothing (a paused renderer; CDP's
  // Page.setWebLifecycleState does not stop a visible headless page's timers).
  await cdp.send('Debugger.enable');
  await cdp.send('Debugger.pause');
  const frozenAt = Date.now();
  const next = await leaderOf(others);
  log('new leader after', Date.now() - frozenAt, 'ms');
  assert.ok(next);
  const before = await next.page.evaluate(() => window.got.length);
  await waitFor(async () => (await next.page.evaluate(() => window.got.length)) > before + 50, 10000, 'messages through the new leader');
  await cdp.send('Debugger.resume');
  await waitFor(async () => { const r = await role(lead); log('thawed', r); return r === 'follower'; }, 10000, 'the thawed tab follows');
  await sleep(500);
  clearInterval(pump);
  for (const t of tabs) await t.page.evaluate(() => window.stop());
  const total = n;
  await waitFor(async () => {
    const last = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.got.filter((d) => d[0] === 'n').at(-1))));
    return last.every((m) => m === `n${total - 1}`);
  }, 30000, 'the last server message in every tab');
  await sleep(300);
  await until(() => tabConns() === 1, 10000, 'one connection').catch(() => {});
  assert.equal(tabConns(), 1, 'one connection for the three tabs');
  for (const t of tabs) {
    await settled(t);
    const { got, sent, answers, open } = await t.page.evaluate(() => ({ got: window.got, sent: window.sent, answers: window.answers, open: window.sock.readyState }));
    const fromNode = got.filter((d) => d[0] === 'n').map((d) => Number(d.slice(1)));
    const first = fromNode[0];
    if (t === lead) {
      // Frozen, it missed what was posted meanwhile: what it has is once and in order.
      assert.ok(fromNode.every((v, i) => i === 0 || v > fromNode[i - 1]), 'the thawed tab: once and in order');
    } else {
      assert.deepEqual(fromNode, Array.from({ length: total - first }, (_, i) => first + i), 'every server message once, in order');
    }
    const mine = atNode.filter((d) => d.startsWith(`${sent[0].split('-')[0]}-`));
    assert.deepEqual(mine, sent, 'every message of the tab reached the server once, in order');
    assert.equal(answers.length, sent.filter((_, i) => (i + 1) % 5 === 0).length, 'every request settled once');
    for (const [m, v] of answers) assert.equal(v, `re:${m}`, `${t === lead ? "the thawed tab" : "a tab"}: each request its own answer`);
    assert.equal(open, 1, 'its Socket is open');
    assert.deepEqual(t.errors, []);
  }
});

test('where sharing cannot work (a cross-site iframe) the Socket keeps its own connection, works, and says why', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await routeWasm(page);
  await page.goto(`${server.crossSiteUrl || server.url2}/tests/browser/fixtures/blank.html`);
  const before = relay.conns.size;
  const frameUrl = `${server.url}/tests/browser/fixtures/blank.html`;
  await page.evaluate((src) => new Promise((r) => { const f = document.createElement('iframe'); f.src = src; f.onload = r; document.body.append(f); }), frameUrl);
  const frame = page.frames().find((f) => f !== page.mainFrame());
  const out = await frame.evaluate(async ({ url, opts }) => {
    const sb = await import('/js/index.js');
    await sb.init();
    const s = new sb.Socket(url, { ...opts, share: 'framed', hello: { room: 'iframe', user: 'f', echo: true } });
    await new Promise((r) => s.addEventListener('open', r, { once: true }));
    const echo = new Promise((r) => { s.onmessage = (e) => { if (e.channel === 0) r(e.data); }; });
    s.send('hello from the frame');
    const answer = await s.request('q');
    return { share: s.stats().share, echo: await echo, answer };
  }, { url: srv.url, opts: OPTS });
  assert.deepEqual(out.share, { role: 'own', key: 'framed', reason: 'partitioned', tabs: 1 });
  assert.equal(out.echo, 'hello from the frame');
  assert.equal(out.answer, 're:q');
  assert.equal(relay.conns.size, before + 1);
  await ctx.close();
});

test('the leading tab holds whichever transport: three tabs on HTTP share one stream, and after the leader closes the next one holds it over HTTP', { timeout: 60000 }, async () => {
  const room = 'share-http';
  const httpOpts = { ...OPTS, transports: ['http'] };
  const node = new Socket(srv.url, { WebSocket, ...OPTS, hello: { room, user: 'node' } });
  const atNode = [];
  node.onmessage = (e) => { if (e.channel === 0) atNode.push(e.data); };
  node.onerror = () => {};
  await until(() => node.readyState === 1, 5000, 'node open');
  const streams = () => [...relay.conns].filter((c) => c.ws instanceof HttpStream).length;
  const ctx = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < 3; i++) tabs.push(await openTab(ctx, 'over-http', room, httpOpts));
  for (const t of tabs) await waitFor(async () => (await t.page.evaluate(() => window.sock.readyState)) === 1, 15000, 'tab open');
  await waitFor(async () => streams() === 1, 10000, 'one HTTP stream');
  assert.equal(tabConns(), 1, 'one connection for three tabs, and it is the HTTP stream');
  const lead = await leaderOf(tabs);
  assert.equal(await lead.page.evaluate(() => window.sock.stats().transport), 'http');
  let n = 0;
  const pump = setInterval(() => node.send(`n${n++}`), 10);
  for (const t of tabs) await t.page.evaluate(() => window.start());
  await sleep(500);
  const live = tabs.filter((t) => t !== lead);
  await lead.page.close();
  await sleep(900);
  const next = await leaderOf(live);
  await sleep(500);
  clearInterval(pump);
  for (const t of live) await t.page.evaluate(() => window.stop());
  const total = n;
  await waitFor(async () => {
    const last = await Promise.all(live.map((t) => t.page.evaluate(() => window.got.at(-1))));
    return last.every((m) => m === `n${total - 1}`);
  }, 20000, 'the last server message in both surviving tabs');
  assert.equal(await next.page.evaluate(() => window.sock.stats().transport), 'http', 'the new leader holds the session over HTTP');
  await until(() => tabConns() === 1 && streams() === 1, 10000, 'one HTTP stream after the handover');
  for (const t of live) {
    await settled(t);
    const { got, sent, answers } = await t.page.evaluate(() => ({ got: window.got, sent: window.sent, answers: window.answers }));
    const first = Number(got[0].slice(1));
    assert.deepEqual(got, Array.from({ length: total - first }, (_, i) => `n${first + i}`), 'every server message once, in order');
    assert.ok(sent.length > 0);
    const tag = `${sent[0].split('-')[0]}-`;
    await until(() => atNode.filter((d) => d.startsWith(tag)).length >= sent.length, 10000, 'the tab\'s messages at the server');
    assert.deepEqual(atNode.filter((d) => d.startsWith(tag)), sent, 'every message of the tab reached the server once, in order');
    assert.equal(answers.length, sent.filter((_, k) => (k + 1) % 5 === 0).length, 'every request settled once');
    for (const [m, v] of answers) assert.equal(v, `re:${m}`);
    assert.deepEqual(t.errors, []);
  }
  node.close();
  await ctx.close();
});

/** The relay's subscriptions to a room: one a connection (the shared Socket's is one, whatever its tabs). */
const subsOf = (room) => relay.rooms.map.get(room)?.slots.size || 0;
/** In a tab: subscribe to room, record its messages (and any that reach the Socket instead). */
const roomTab = async (t, room) => t.page.evaluate(async (room) => {
  window.other ||= [];
  if (!window.watching) { window.watching = true; window.sock.addEventListener('message', (e) => { if (e.channel >= 2 || /^p\d/.test(e.data)) window.other.push(e.data); }); }
  const c = window.sock.subscribe(room);
  window.rch = c;
  window.rgot = [];
  window.rerr = [];
  c.onmessage = (e) => window.rgot.push(e.data);
  c.onerror = (e) => window.rerr.push(e.error.code);
  await c.ready;
  return c.state;
}, room);
const rgot = (t) => t.page.evaluate(() => window.rgot || null);
/** Every message of a run p0..p(total-1), once and in order, from the first this tab got. */
function contiguous(got, total, what) {
  assert.ok(got.length > 0, `${what}: got messages of the room`);
  const first = Number(got[0].slice(1));
  assert.deepEqual(got, Array.from({ length: total - first }, (_, i) => `p${first + i}`), `${what}: every message of the room once, in order`);
}

test('rooms on a shared Socket: only the tabs subscribed get the room, once and in order; a follower publishes once; the room survives the subscribed leader closing and crashing; the last tab to let go unsubscribes on the relay', { timeout: 90000 }, async () => {
  const room = 'share-rooms-lobby', R = 'share-room-r';
  const node = new Socket(srv.url, { WebSocket, ...OPTS, hello: { room, user: 'node' } });
  node.onerror = () => {};
  await until(() => node.readyState === 1, 5000, 'node open');
  const nch = node.subscribe(R);
  await nch.ready;
  const atNode = [];
  nch.onmessage = (e) => atNode.push(e.data);

  const ctx = await browser.newContext();
  const opened = [];
  for (let i = 0; i < 3; i++) opened.push(await openTab(ctx, 'rooms', room));
  for (const t of opened) await waitFor(async () => (await t.page.evaluate(() => window.sock.readyState)) === 1, 10000, 'tab open');
  assert.equal(tabConns(), 1, 'one connection for three tabs');
  const A = await leaderOf(opened);
  const [B, C] = opened.filter((t) => t !== A);
  assert.equal(await roomTab(A, R), 'subscribed', 'the leader subscribes');
  assert.equal(await roomTab(B, R), 'subscribed', 'a follower subscribes');
  assert.equal(subsOf(R), 2, 'the relay holds one subscription for the tabs (and the Node peer\'s)');

  let n = 0;
  const pub = setInterval(() => { for (let k = 0; k < 2; k++) nch.send(`p${n++}`); }, 10);
  await sleep(500);
  // A follower's channel send reaches the room once.
  await B.page.evaluate(() => { for (let i = 0; i < 20; i++) window.rch.send(`b${i}`); });
  await until(() => atNode.includes('b19'), 10000, 'the follower\'s messages in the room');
  const total1 = n;
  await waitFor(async () => (await rgot(A)).includes(`p${total1 - 1}`) && (await rgot(B)).includes(`p${total1 - 1}`), 10000, 'both subscribed tabs caught up');
  const before = { A: await rgot(A), B: await rgot(B) };
  contiguous(before.A.filter((d) => Number(d.slice(1)) < total1), total1, 'the leader');
  contiguous(before.B.filter((d) => Number(d.slice(1)) < total1), total1, 'the subscribed follower');
  assert.equal(await rgot(C), null);
  assert.deepEqual(await C.page.evaluate(() => window.other || []), [], 'the tab that did not subscribe gets none of the room');

  // The subscribed leader closes.
  await A.page.close();
  await sleep(900);
  const L = await leaderOf([B, C]);
  assert.equal(tabConns(), 1, 'one connection after the close');
  // A tab opened now subscribes too; the leader must hold the room when it crashes.
  const D = await openTab(ctx, 'rooms', room);
  await waitFor(async () => (await D.page.evaluate(() => window.sock.readyState)) === 1, 10000, 'late tab open');
  assert.equal(await roomTab(D, R), 'subscribed');
  if (L === C) assert.equal(await roomTab(C, R), 'subscribed');
  await B.page.evaluate(() => { for (let i = 20; i < 40; i++) window.rch.send(`b${i}`); });
  await sleep(300);
  const cdp = await ctx.newCDPSession(L.page);
  cdp.send('Page.crash').catch(() => {});
  await new Promise((r) => L.page.once('crash', r));
  const live = [B, C, D].filter((t) => t !== L);
  await sleep(900);
  await leaderOf(live);
  await sleep(400);
  clearInterval(pub);
  const total = n;
  const held = [];
  for (const t of live) if (await rgot(t)) held.push(t);
  assert.ok(held.length >= 1, 'a subscribed tab is left');
  await waitFor(async () => (await Promise.all(held.map(rgot))).every((g) => g.at(-1) === `p${total - 1}`), 20000, 'the last message of the room in every subscribed tab');
  await sleep(300); // anything doubled would come now
  for (const t of held) contiguous(await rgot(t), total, 'a tab that held the room through the close and the crash');
  for (const t of live) assert.deepEqual(await t.page.evaluate(() => window.other || []), [], 'no room message reaches a Socket\'s own events');
  await until(() => atNode.includes('b39'), 10000, 'the follower\'s messages after the handover');
  assert.deepEqual(atNode.filter((d) => d[0] === 'b'), Array.from({ length: 40 }, (_, i) => `b${i}`), 'the follower\'s sends reached the room once, in order');
  assert.equal(tabConns(), 1, 'one connection after the crash');
  assert.equal(subsOf(R), 2, 'still one subscription for the tabs');
  for (const t of live) assert.deepEqual(await t.page.evaluate(() => window.rerr || []), []);

  // Let go tab by tab: the relay unsubscribes when the last one has (two tabs hold it by then).
  if (held.length < 2) {
    const other = live.find((t) => !held.includes(t));
    assert.equal(await roomTab(other, R), 'subscribed');
    held.push(other);
  }
  assert.equal(subsOf(R), 2);
  for (const [i, t] of held.entries()) {
    await t.page.evaluate(() => window.rch.unsubscribe());
    if (i < held.length - 1) assert.equal(subsOf(R), 2, 'other tabs still hold the room');
  }
  await until(() => subsOf(R) === 1, 5000, 'unsubscribed on the relay after the last tab let go');
  for (const t of live) assert.deepEqual(t.errors, []);
  node.close();
  await ctx.close();
});
