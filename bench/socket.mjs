// bench/socket: four WebSocket clients side by side in one Chromium run,
// interleaved rounds, medians, printed as one table of ratios to the raw
// WebSocket:
//
//   raw          WebSocket          -> plain `ws` echo (/echo)
//   switchboard  Socket             -> the reference relay (/relay, hello.echo)
//   socket.io    socket.io-client 4 -> socket.io 4 server (/socket.io), 'msg' echoed
//   partysocket  partysocket's reconnecting WebSocket -> the same `ws` echo
//
//   node bench/socket.mjs [--rounds 5] [--n 10000] [--rtt 400] [--clients 100] [--restarts 5]
//   SWITCHBOARD_WASM=build/x-dist/switchboard.wasm picks a core build outside dist/.
//
// The servers run in a child process (bench/lib/socket-server.mjs) on loopback;
// the dev server in this process only serves the page and the glue. Every
// client uses its library's defaults except: socket.io-client gets
// transports ['websocket'] (a WebSocket compared with WebSockets, no
// long-polling start) and forceNew (one connection per client); Socket gets
// heartbeat false (as the echo has none to answer; socket.io's own ping is
// every 25 s, outside every measure here).
//
// Same messages for all: N chat messages (~230 B JSON each, deterministic).
// raw, Socket and partysocket send the JSON text; socket.io emits the same
// message as an object (its idiom: parsed before the clock starts, encoded by
// socket.io), so each is ~10 B of `42["msg",…]` bigger on the wire.
//
// 1. throughput: all N sent as fast as the API allows, until all N are back
//    (echo of each, or the relay's fan-out to the sender). Delivered msgs/s.
// 2. wire bytes: TCP bytes read + written by the server process's sockets for
//    that run, both directions, connect to close (HTTP upgrade, frame headers,
//    masks, protocol framing, acks), counted by the child process.
// 3. round trip: sequential request/answer (raw and partysocket: send + wait
//    for the echo; Socket: request(); socket.io: emit with an ack callback),
//    on long-lived connections in rotating blocks; mean per block (Chromium
//    coarsens performance.now()), median over blocks of the per-block ratio
//    to the raw block next to it.
// 4. restart: one client of each kind connected to a server process started
//    with --db (the relay keeps its sessions in SQLite; the others keep
//    nothing). The process is killed (SIGKILL) and a new one started on the
//    same port at once. Each client sends one message once it has seen the
//    connection go (raw: when it opens again; it reconnects at once on every
//    close, the floor any client can reach; the others queue it: outbox,
//    send buffer, message queue); measured in the page: wall clock at that
//    message's echo minus the wall clock at which the new process listened.
//    Median over --restarts kills, each after 1 s connected (--settle ms);
//    each client has its library's default backoff (Socket: first attempt
//    after 125-250 ms; socket.io: 0.5-1.5 s; partysocket: 3 s, whatever the
//    uptime).
// 5. memory per client: in a fresh page with the library loaded and one
//    client opened and closed, after a forced GC (CDP HeapProfiler), the
//    renderer's V8 heap used + Blink heap used + ArrayBuffer backing stores
//    (Runtime.getHeapUsage) + the wasm core's linear memory; then --clients
//    clients opened (each its own connection and, for Socket, its own relay
//    room) and all of them open, forced GC, measured again: the difference
//    divided by --clients. Browser-process and server-side memory are not in
//    it.
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { launchBrowser, startDevServer } from '../tests/browser/harness.mjs';
import { routePeers, peerVersion } from './lib/peers.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 5);
const N = arg('n', 10000);
const RTT_N = arg('rtt', 400); // round trips per client, split into blocks
const CLIENTS = arg('clients', 100);
const RESTARTS = arg('restarts', 5);
const SETTLE_MS = arg('settle', 1000); // connected this long before each kill
const KINDS = ['raw', 'sb', 'sio', 'party'];
const LABEL = { raw: 'raw WebSocket -> ws echo', sb: 'switchboard Socket -> relay', sio: 'socket.io-client -> socket.io', party: 'partysocket -> ws echo' };

const SERVER = fileURLToPath(new URL('./lib/socket-server.mjs', import.meta.url));
/** Start bench/lib/socket-server.mjs; resolves once it listens. */
function startChild(args = [], port = 0) {
  const proc = fork(SERVER, ['--port', String(port), '--allowed-origin', new URL(server.url).origin, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((ok, fail) => {
    proc.once('exit', (code) => fail(new Error(`socket-server exited with ${code}`)));
    proc.on('message', function m(msg) {
      if (msg?.ready) { proc.off('message', m); proc.removeAllListeners('exit'); ok({ proc, port: msg.port, at: msg.at }); }
    });
  });
}
const bytesOf = (child) => new Promise((ok) => {
  child.proc.once('message', (m) => ok(m.bytes));
  child.proc.send({ stats: true });
});
const killChild = (child) => new Promise((ok) => {
  if (child.proc.exitCode !== null || child.proc.signalCode) return ok();
  child.proc.once('exit', () => ok());
  child.proc.kill('SIGKILL');
});

const dir = await mkdtemp(join(tmpdir(), 'sb-bench-socket-'));
const server = await startDevServer();
const main = await startChild();
const browser = await launchBrowser();
const context = await browser.newContext();
if (process.env.SWITCHBOARD_WASM) {
  await context.route('**/dist/switchboard.wasm', (r) => r.fulfill({ path: process.env.SWITCHBOARD_WASM, contentType: 'application/wasm' }));
}
await routePeers(context, ['socket.io-client', 'partysocket']);

// In-page set-up: the corpus and one adapter per client kind.
async function preparePage(page) {
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  await page.evaluate(async ({ N }) => {
    const sb = await import('/js/index.js');
    await sb.init();
    const { core } = await import('/js/core.js');
    const { io } = await import('/__peer/socket.io-client.js');
    const { WebSocket: PartySocket } = await import('/__peer/partysocket.js');
    // Deterministic chat corpus: ~230 B of JSON per message.
    // 400 distinct words (real and made-up), 50 users, random hex ids.
    let seed = 7;
    // mulberry32: a small PRNG whose low bits are as good as its high ones.
    const rnd = (n) => { seed = (seed + 0x6d2b79f5) >>> 0; let t = seed; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return (((t ^ (t >>> 14)) >>> 0) % n); };
    const common = 'the a we you they it is was be have do say get make go know take see come think look want give use find tell ask work seem feel try leave call meeting lunch deploy build release review merge branch test fix bug ticket today tomorrow later soon maybe yes no thanks please check great good fine ok sure coffee room link doc slides demo server client cache error log metrics dashboard budget customer contract design sprint standup retro roadmap invoice office train weekend holiday project'.split(' ');
    const syll = ['ka', 'lo', 'mi', 'ne', 'tra', 'ver', 'sol', 'ten', 'ix', 'ur', 'pla', 'dor', 'fen', 'qui', 'zo', 'rak'];
    const words = [...common];
    while (words.length < 400) words.push(syll[rnd(16)] + syll[rnd(16)] + (rnd(3) ? '' : syll[rnd(16)]));
    const users = Array.from({ length: 50 }, (_, i) => `${syll[rnd(16)]}${syll[rnd(16)]}${i}`);
    const hex = () => rnd(0x1000000).toString(16).padStart(6, '0');
    const msgs = [];
    let total = 0, ts = 1767225600000;
    for (let i = 0; i < N; i++) {
      let text = '';
      while (text.length < 110) text += (text ? ' ' : '') + (rnd(12) ? words[rnd(words.length)] : String(rnd(10000)));
      ts += rnd(5000);
      const m = JSON.stringify({ type: 'message', room: 'general', user: users[rnd(users.length)], id: `${hex()}${hex()}`, ts, text, reply: rnd(4) ? null : `${hex()}${hex()}` });
      msgs.push(m);
      total += m.length;
    }
    const objs = msgs.map((m) => JSON.parse(m));
    const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
    const clock = () => performance.timeOrigin + performance.now();

    // A client of one kind: ready (connected), send(i) message i of the
    // corpus, onmsg(fn) for every message back, request(i) one round trip,
    // onDown(fn) once it has seen its connection go, close().
    let rooms = 0;
    const open = (kind, base, { reconnectAtOnce = false } = {}) => {
      const c = { kind };
      if (kind === 'raw') {
        let ws, fn = () => {}, down = () => {}, closed = false;
        const connect = () => {
          ws = new WebSocket(`${base}/echo`);
          ws.onmessage = (e) => fn(e.data);
          ws.onopen = () => c._opened?.();
          ws.onclose = () => { if (closed) return; down(); if (reconnectAtOnce) connect(); };
        };
        connect();
        c.ready = new Promise((r) => { c._opened = () => { c._opened = null; r(); }; });
        c.send = (i) => ws.send(msgs[i]);
        c.sendWhenOpen = (i) => { if (ws.readyState === 1) ws.send(msgs[i]); else c._opened = () => { c._opened = null; ws.send(msgs[i]); }; };
        c.onmsg = (f) => { fn = f; };
        c.request = (i) => new Promise((r) => { fn = r; ws.send(msgs[i]); });
        c.onDown = (f) => { down = f; };
        c.close = () => { closed = true; ws.close(); };
      } else if (kind === 'party') {
        const ws = new PartySocket(`${base}/echo`);
        let fn = () => {}, down = () => {};
        ws.addEventListener('message', (e) => fn(e.data));
        ws.addEventListener('close', () => down());
        c.ready = new Promise((r) => ws.addEventListener('open', r, { once: true }));
        c.send = (i) => ws.send(msgs[i]);
        c.sendWhenOpen = c.send; // queued while closed
        c.onmsg = (f) => { fn = f; };
        c.request = (i) => new Promise((r) => { fn = r; ws.send(msgs[i]); });
        c.onDown = (f) => { down = f; };
        c.close = () => ws.close();
      } else if (kind === 'sio') {
        const s = io(base, { transports: ['websocket'], forceNew: true });
        let fn = () => {}, down = () => {};
        s.on('msg', (m) => fn(m));
        s.on('disconnect', () => down());
        c.ready = new Promise((r) => s.once('connect', r));
        c.send = (i) => s.emit('msg', objs[i]);
        c.sendWhenOpen = c.send; // send buffer while disconnected
        c.onmsg = (f) => { fn = f; };
        c.request = (i) => new Promise((r) => s.emit('req', objs[i], r));
        c.onDown = (f) => { down = f; };
        c.close = () => s.close();
      } else {
        const s = new sb.Socket(`${base}/relay`, { hello: { room: `bench-${++rooms}-${Math.random()}`, user: 'bench', echo: true }, heartbeat: false });
        let fn = () => {}, down = () => {}, wasOpen = false;
        s.onmessage = (e) => { if (e.channel === 0) fn(e.data); };
        s.addEventListener('statechange', (e) => { if (e.state === 'open') wasOpen = true; else if (wasOpen && e.state === 'reconnecting') { wasOpen = false; down(); } });
        c.ready = new Promise((r) => s.addEventListener('open', r, { once: true }));
        c.send = (i) => s.send(msgs[i]);
        c.sendWhenOpen = c.send; // outbox
        c.onmsg = (f) => { fn = f; };
        c.request = (i) => s.request(msgs[i]);
        c.onDown = (f) => { down = f; };
        c.close = () => s.close();
      }
      return c;
    };
    window.B = { sb, core, msgs, avg: total / N, median, clock, open };

    B.throughput = async (kind, base) => {
      const c = open(kind, base);
      await c.ready;
      let got = 0;
      const t0 = performance.now();
      const done = new Promise((r) => c.onmsg(() => { if (++got === N) r(); }));
      for (let i = 0; i < N; i++) c.send(i);
      await done;
      const t = performance.now() - t0;
      c.close();
      await new Promise((r) => setTimeout(r, 50)); // let the close handshake go
      return N / (t / 1000);
    };

    // Round trips in rotating blocks on long-lived connections, so load from
    // elsewhere on the machine hits every client alike.
    B.rtt = async (kinds, base, blocks, per) => {
      const cs = Object.fromEntries(kinds.map((k) => [k, open(k, base)]));
      await Promise.all(Object.values(cs).map((c) => c.ready));
      const block = async (c, n) => {
        const t0 = performance.now();
        for (let i = 0; i < n; i++) await c.request(i);
        return (performance.now() - t0) / n;
      };
      for (const k of kinds) await block(cs[k], per); // warm-up
      const r = Object.fromEntries(kinds.map((k) => [k, []]));
      for (let b = 0; b < blocks; b++) {
        const order = kinds.map((_, i) => kinds[(i + b) % kinds.length]);
        for (const k of b % 2 ? order.reverse() : order) r[k].push(await block(cs[k], per));
      }
      for (const c of Object.values(cs)) c.close();
      return Object.fromEntries(kinds.map((k) => [k, { ms: median(r[k]), ratio: median(r[k].map((x, i) => x / r.raw[i])) }]));
    };

    // Restart: one client of each kind; each notes when its message is back.
    B.restartArm = async (kinds, base) => {
      B.live = kinds.map((k) => open(k, base, { reconnectAtOnce: true }));
      await Promise.all(B.live.map((c) => c.ready));
      B.back = {};
      B.seen = {};
      for (const c of B.live) {
        c.onDown(() => {
          if (B.seen[c.kind]) return;
          B.seen[c.kind] = clock();
          c.onmsg(() => { B.back[c.kind] ??= clock(); });
          c.sendWhenOpen(0);
        });
      }
    };
    B.restartDone = () => {
      for (const c of B.live) c.close();
      B.live = [];
    };

    // Memory: what CLIENTS connected clients of one kind hold (see header).
    B.openMany = async (kind, base, n) => {
      B.many = [];
      for (let i = 0; i < n; i++) B.many.push(open(kind, base));
      await Promise.all(B.many.map((c) => c.ready));
    };
    B.closeMany = () => { for (const c of B.many) c.close(); B.many = []; };
    B.wasmBytes = () => core().memory.buffer.byteLength;
  }, { N });
}

const page = await context.newPage();
await preparePage(page);
const base = `ws://127.0.0.1:${main.port}`;
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };

// ---- 1, 2. throughput and wire bytes ---------------------------------------
const rate = Object.fromEntries(KINDS.map((k) => [k, []]));
const wire = Object.fromEntries(KINDS.map((k) => [k, []]));
for (const k of KINDS) await page.evaluate((a) => B.throughput(a.k, a.base), { k, base }); // warm-up
for (let i = 0; i < ROUNDS; i++) {
  const order = KINDS.map((_, j) => KINDS[(j + i) % KINDS.length]);
  for (const k of i % 2 ? order.reverse() : order) {
    const b0 = await bytesOf(main);
    rate[k].push(await page.evaluate((a) => B.throughput(a.k, a.base), { k, base }));
    wire[k].push((await bytesOf(main)) - b0);
  }
}

// ---- 3. round trips -----------------------------------------------------------
const rtt = await page.evaluate((a) => B.rtt(a.kinds, a.base, a.blocks, a.per), { kinds: KINDS, base, blocks: 2 * ROUNDS * 4, per: Math.max(20, Math.round(RTT_N / 4)) });

// ---- 5. memory per client -----------------------------------------------------
const memory = {};
for (const k of KINDS) {
  const p = await context.newPage();
  await preparePage(p);
  const cdp = await context.newCDPSession(p);
  await cdp.send('HeapProfiler.enable');
  const used = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    await new Promise((r) => setTimeout(r, 100));
    await cdp.send('HeapProfiler.collectGarbage');
    const h = await cdp.send('Runtime.getHeapUsage');
    return h.usedSize + (h.embedderHeapUsedSize || 0) + (h.backingStorageSize || 0) + (await p.evaluate(() => B.wasmBytes()));
  };
  await p.evaluate(async (a) => { await B.openMany(a.k, a.base, 1); B.closeMany(); await new Promise((r) => setTimeout(r, 100)); }, { k, base });
  const before = await used();
  await p.evaluate((a) => B.openMany(a.k, a.base, a.n), { k, base, n: CLIENTS });
  memory[k] = ((await used()) - before) / CLIENTS;
  await p.evaluate(() => B.closeMany());
  await cdp.detach();
  await p.close();
}

// ---- 4. restart ------------------------------------------------------------------
let restartSrv = await startChild(['--db', join(dir, 'relay.db')]);
const rport = restartSrv.port;
const rbase = `ws://127.0.0.1:${rport}`;
const restart = Object.fromEntries(KINDS.map((k) => [k, []]));
const outage = Object.fromEntries(KINDS.map((k) => [k, []]));
const lost = Object.fromEntries(KINDS.map((k) => [k, 0]));
for (let r = 0; r < RESTARTS; r++) {
  await page.evaluate((a) => B.restartArm(a.kinds, a.base), { kinds: KINDS, base: rbase });
  await new Promise((res) => setTimeout(res, SETTLE_MS)); // steady: every session stored
  const killedAt = performance.timeOrigin + performance.now();
  await killChild(restartSrv);
  restartSrv = await startChild(['--db', join(dir, 'relay.db')], rport);
  const deadline = Date.now() + 30000;
  let back;
  for (;;) {
    back = await page.evaluate(() => B.back);
    if (KINDS.every((k) => back[k]) || Date.now() > deadline) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  for (const k of KINDS) {
    if (back[k]) { restart[k].push(back[k] - restartSrv.at); outage[k].push(back[k] - killedAt); } else lost[k]++;
  }
  await page.evaluate(() => B.restartDone());
}

// ---- table ------------------------------------------------------------------------
const avg = await page.evaluate(() => B.avg);
const ver = { sio: await peerVersion('socket.io-client'), party: await peerVersion('partysocket') };
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const x = (v, raw, d = 2) => `${f(v / raw, d)}×`;
const R = { rate: Object.fromEntries(KINDS.map((k) => [k, med(rate[k])])), wire: Object.fromEntries(KINDS.map((k) => [k, med(wire[k])])), restart: Object.fromEntries(KINDS.map((k) => [k, restart[k].length ? med(restart[k]) : NaN])), outage: Object.fromEntries(KINDS.map((k) => [k, outage[k].length ? med(outage[k]) : NaN])) };
console.log(`command: node bench/socket.mjs ${process.argv.slice(2).join(' ')}`.trimEnd());
console.log(`socket bench: Chromium ${browser.version()}, ${N} chat messages of ~${f(avg)} B, ${ROUNDS} interleaved rounds, medians; socket.io-client ${ver.sio}, partysocket ${ver.party}`);
console.log('');
console.log('| client -> server | throughput, msgs/s | wire bytes, both ways | round trip | server restart -> first message back (kill -> back) | memory per client |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const k of KINDS) {
  const rt = k === 'raw' ? `${f(rtt.raw.ms * 1000)} µs (1.00×)` : `${f(rtt[k].ms * 1000)} µs (${f(rtt[k].ratio, 2)}×)`;
  const rs = `${f(R.restart[k])} ms (${x(R.restart[k], R.restart.raw)}) (${f(R.outage[k])} ms)${lost[k] ? `, ${lost[k]} of ${RESTARTS} never back in 30 s` : ''}`;
  console.log(`| ${LABEL[k]} | ${f(R.rate[k])} (${x(R.rate[k], R.rate.raw)}) | ${f(R.wire[k])} B (${x(R.wire[k], R.wire.raw)}) | ${rt} | ${rs} | ${f(memory[k] / 1024, 1)} KiB (${x(memory[k], memory.raw)}) |`);
}
console.log('');
console.log(`ratios to raw WebSocket. round trip: median of per-block ratios. restart: median of ${RESTARTS} kills of the server process (relay with SQLite sessions); raw reconnects at once on every close. memory: ${CLIENTS} clients, renderer heap + wasm memory per client.`);
console.log(`Socket targets: throughput >= 6× raw, raw/Socket wire bytes >= 3.5, round trip <= 1.1× raw.`);

await browser.close();
await server.close();
await killChild(main);
await killChild(restartSrv);
await rm(dir, { recursive: true, force: true });
