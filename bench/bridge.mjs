// bench/bridge: the iframe bridge against penpal, Comlink and a raw
// MessageChannel echo, side by side in one Chromium run, interleaved rounds,
// medians. Two placements of the child: same-site cross-origin (127.0.0.1:p2,
// same renderer process) and cross-site (localhost:p2, its own process).
//
//   SWITCHBOARD_WASM=build/x-dist/switchboard.wasm node bench/bridge.mjs [--rounds 15]
//
// Comlink is given a MessagePort (its fastest setup); penpal uses its
// WindowMessenger; switchboard uses connectFrame. Ratios are against raw.
import { launchBrowser, startDevServer } from '../tests/browser/harness.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 15);
const CALLS = arg('calls', 300);
const BIG_CALLS = arg('big', 60);
const EVENTS = arg('events', 5000);
const CONNECTS = arg('connects', 9);

const server = await startDevServer();
const browser = await launchBrowser(['--site-per-process']);
const context = await browser.newContext();
if (process.env.SWITCHBOARD_WASM) {
  await context.route('**/dist/switchboard.wasm', (r) => r.fulfill({ path: process.env.SWITCHBOARD_WASM, contentType: 'application/wasm' }));
}
const page = await context.newPage();
page.on('pageerror', (e) => console.error('page error:', e));
await page.goto(`${server.url}/tests/browser/fixtures/bridge-host.html`);
await page.waitForFunction(() => window.hostReady === true);

// In-page harness: set up one peer in a fresh iframe, measure handshake→first call.
await page.evaluate(() => {
  const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
  window.B = { median };
  B.setup = async (peer, childOrigin) => {
    const childPeer = peer === 'sb-batch' ? 'sb' : peer;
    const f = document.createElement('iframe');
    f.src = `${childOrigin}/tests/browser/fixtures/bridge-bench-child.html?peer=${childPeer}&parent=${encodeURIComponent(location.origin)}`;
    const ready = new Promise((res) => {
      addEventListener('message', function h(e) {
        if (e.source === f.contentWindow && e.data && e.data.benchChildReady === childPeer) {
          removeEventListener('message', h);
          res();
        }
      });
    });
    document.body.append(f);
    await ready;
    const t0 = performance.now();
    let call, stream;
    if (peer === 'raw') {
      const mc = new MessageChannel();
      f.contentWindow.postMessage('port', childOrigin, [mc.port2]);
      const port = mc.port1;
      let next = null;
      port.onmessage = (e) => next(e.data);
      call = (x) => new Promise((r) => { next = r; port.postMessage(x); });
      stream = (n) => new Promise((r) => { next = r; for (let i = 0; i < n; i++) port.postMessage({ ev: i, total: n }); });
    } else if (peer === 'sb' || peer === 'sb-batch') {
      const r = await window.bridge.connectFrame(f, { origin: childOrigin, batch: peer === 'sb-batch', heartbeatInterval: 0 });
      call = (x) => r.call('echo', x);
      stream = (n) => new Promise((res) => {
        const off = r.on('done', () => { off(); res(); });
        for (let i = 0; i < n; i++) r.emit('ev', { ev: i, total: n });
      });
    } else if (peer === 'penpal') {
      const { WindowMessenger, connect } = await import('/node_modules/penpal/dist/penpal.mjs');
      const conn = connect({ messenger: new WindowMessenger({ remoteWindow: f.contentWindow, allowedOrigins: [childOrigin] }), methods: {} });
      const remote = await conn.promise;
      call = (x) => remote.echo(x);
    } else if (peer === 'comlink') {
      const Comlink = await import('/node_modules/comlink/dist/esm/comlink.mjs');
      const mc = new MessageChannel();
      f.contentWindow.postMessage('port', childOrigin, [mc.port2]);
      const w = Comlink.wrap(mc.port1);
      call = (x) => w.echo(x);
    }
    await call(1);
    const connectMs = performance.now() - t0;
    return { call, stream, connectMs, frame: f };
  };
  B.time = async (fn, n) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn(i);
    return ((performance.now() - t0) * 1000) / n; // µs per op
  };
});

const PEERS = ['raw', 'sb', 'penpal', 'comlink'];
const results = {};

for (const [placement, childOrigin] of [['same-process', server.url2], ['out-of-process', server.crossSiteUrl]]) {
  const r = await page.evaluate(async ({ PEERS, childOrigin, ROUNDS, CALLS, BIG_CALLS, EVENTS, CONNECTS }) => {
    const peers = {};
    for (const p of [...PEERS, 'sb-batch']) peers[p] = await B.setup(p, childOrigin);
    const small = { a: 1, b: 'x' };
    const big = new Uint8Array(64 * 1024).fill(3);
    const rtt = {}, bigRtt = {}, events = {};
    for (const p of PEERS) { rtt[p] = []; bigRtt[p] = []; }
    for (const p of ['raw', 'sb', 'sb-batch']) events[p] = [];
    for (const p of PEERS) await B.time(() => peers[p].call(small), 100); // warm up
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 ? [...PEERS].reverse() : PEERS;
      for (const p of order) rtt[p].push(await B.time(() => peers[p].call(small), CALLS));
      for (const p of order) bigRtt[p].push(await B.time(() => peers[p].call(big), BIG_CALLS));
      for (const p of ['raw', 'sb', 'sb-batch']) {
        const t0 = performance.now();
        await peers[p].stream(EVENTS);
        events[p].push(EVENTS / ((performance.now() - t0) / 1000));
      }
    }
    for (const p of Object.keys(peers)) peers[p].frame.remove();
    const connect = {};
    for (const p of PEERS) connect[p] = [];
    for (let round = 0; round < CONNECTS; round++) {
      for (const p of PEERS) {
        const s = await B.setup(p, childOrigin);
        connect[p].push(s.connectMs);
        s.frame.remove();
      }
    }
    const m = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, B.median(v)]));
    return { rtt: m(rtt), bigRtt: m(bigRtt), events: m(events), connect: m(connect) };
  }, { PEERS, childOrigin, ROUNDS, CALLS, BIG_CALLS, EVENTS, CONNECTS });
  results[placement] = r;
}

const f1 = (x) => x.toFixed(1);
for (const [placement, r] of Object.entries(results)) {
  console.log(`\n== ${placement} iframe (median of ${ROUNDS} interleaved rounds) ==`);
  console.log('call round trip, small object (µs; ratio to raw port echo):');
  for (const p of PEERS) console.log(`  ${p.padEnd(9)} ${f1(r.rtt[p]).padStart(8)}  ${(r.rtt[p] / r.rtt.raw).toFixed(2)}×`);
  console.log('call round trip, 64 KiB Uint8Array (µs; ratio to raw):');
  for (const p of PEERS) console.log(`  ${p.padEnd(9)} ${f1(r.bigRtt[p]).padStart(8)}  ${(r.bigRtt[p] / r.bigRtt.raw).toFixed(2)}×`);
  console.log(`pipelined fire-and-forget events, ${EVENTS} per burst (msgs/s; ratio to raw):`);
  for (const p of ['raw', 'sb', 'sb-batch']) console.log(`  ${p.padEnd(9)} ${Math.round(r.events[p]).toString().padStart(8)}  ${(r.events[p] / r.events.raw).toFixed(2)}×`);
  console.log('connect: handshake to first call result, child already loaded (ms):');
  for (const p of PEERS) console.log(`  ${p.padEnd(9)} ${r.connect[p].toFixed(2).padStart(8)}`);
}

await browser.close();
await server.close();
