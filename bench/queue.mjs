// Frames and queues benchmark (issue 3 targets), peers side by side in one
// process, interleaved, median of REPS rounds, printed as ratios.
//
//   1. encode+decode of a 200 B message JS -> wasm -> JS (target <= 2 µs),
//      next to a JSON envelope (JSON.stringify + JSON.parse).
//   2. 100 chat messages framed and compressed with a shared window
//      (target >= 2.4x smaller than the raw JSON), next to pako on the
//      same JSON (per batch and per message).
//   3. 64 messages in flight over a simulated 1 ms RTT link (target >= 30x
//      the throughput of socket.io-style stop-and-wait, i.e. one message per
//      round trip), Outbox+Inbox through the wasm core vs a plain JS
//      stop-and-wait sender.
//
//   node bench/queue.mjs [--reps 5] [--quick]
import pako from 'pako';
import { init } from '../js/core.js';
import { encodeFrame, decodeFrame, BatchReader } from '../js/frame.js';
import { Batcher, Outbox, Inbox } from '../js/queue.js';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const REPS = Number(args[args.indexOf('--reps') + 1]) || (QUICK ? 3 : 5);
await init();

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const fmt = (x, d = 2) => x.toFixed(d);

// ---- corpus (deterministic) -------------------------------------------------
let seed = 4242;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
const words = 'hello anyone seen the deploy logs today looks fine to me ship it please review thanks'.split(' ');
function chat(i) {
  const text = Array.from({ length: 17 + Math.floor(rnd() * 8) }, () => pick(words)).join(' ');
  return JSON.stringify({ type: 'chat', room: 'general', id: 100000 + i, user: pick(users), ts: 1767225600000 + i * 731, text, meta: { client: 'web', v: 3 } });
}
const chats = Array.from({ length: 1000 }, (_, i) => chat(i));
const avgLen = chats.reduce((n, m) => n + m.length, 0) / chats.length;

// ---- 1. encode + decode -----------------------------------------------------
const msg200 = JSON.stringify({ type: 'chat', room: 'general', user: 'alice', text: 'x'.repeat(120) }).padEnd(200, ' ');
// CPU time of this process (user + system), not wall time: the figure stays
// meaningful on a machine shared with other work.
function timePer(fn, minMs = QUICK ? 40 : 120) {
  let n = 0;
  const c0 = process.cpuUsage();
  let t;
  do {
    for (let i = 0; i < 1000; i++) fn(i);
    n += 1000;
    const c = process.cpuUsage(c0);
    t = (c.user + c.system) / 1000;
  } while (t < minMs);
  return (t * 1000) / n; // µs
}
const codecs = {
  'switchboard frame (wasm)': (i) => {
    const b = encodeFrame({ kind: 'message', channel: 3, id: i + 1, seq: i + 1, payload: msg200 });
    const f = decodeFrame(b, { text: true });
    if (f.payload.length !== 200) throw new Error('bad');
  },
  'switchboard frame, payload as bytes': (i) => {
    const b = encodeFrame({ kind: 'message', channel: 3, id: i + 1, seq: i + 1, payload: msg200 });
    const f = decodeFrame(b);
    if (f.payload.length !== 200) throw new Error('bad');
  },
  'JSON envelope (stringify+parse)': (i) => {
    const s = JSON.stringify({ kind: 'message', channel: 3, id: i + 1, seq: i + 1, payload: msg200 });
    const f = JSON.parse(s);
    if (f.payload.length !== 200) throw new Error('bad');
  },
};
const codecRes = Object.fromEntries(Object.keys(codecs).map((k) => [k, []]));
for (let r = 0; r < REPS; r++) for (const [k, fn] of Object.entries(codecs)) codecRes[k].push(timePer(fn));
console.log('\n1. encode+decode of a 200 B message (CPU µs per message, median of %d; target <= 2 µs)', REPS);
const jsonUs = median(codecRes['JSON envelope (stringify+parse)']);
for (const [k, v] of Object.entries(codecRes)) console.log(`   ${k.padEnd(38)} ${fmt(median(v), 3)} µs   (${fmt(jsonUs / median(v))}x JSON speed)`);

// ---- 2. batch compression ---------------------------------------------------
{
  const reader = new BatchReader();
  let wire = 0;
  let frames = 0;
  const b = new Batcher({ maxMessages: 100, maxBytes: 1 << 20, maxDelay: 1e6, compressAbove: 512, compression: 'shared' }, (bytes) => {
    wire += bytes.length;
    frames += reader.read(bytes).length; // and it decodes
  });
  const raw = chats.reduce((n, m) => n + m.length, 0);
  chats.forEach((m, i) => b.add({ kind: 'message', channel: 1, id: i + 1, seq: i + 1, payload: m }));
  b.close();
  reader.close();
  if (frames !== chats.length) throw new Error('batch round trip lost frames');
  let pakoBatch = 0;
  let pakoEach = 0;
  for (let i = 0; i < chats.length; i += 100) pakoBatch += pako.deflateRaw(`[${chats.slice(i, i + 100).join(',')}]`).length;
  for (const m of chats) pakoEach += pako.deflateRaw(m).length;
  let plain = 0;
  const p = new Batcher({ maxMessages: 100, maxBytes: 1 << 20, maxDelay: 1e6, compression: 'none' }, (bytes) => { plain += bytes.length; });
  chats.forEach((m, i) => p.add({ kind: 'message', channel: 1, id: i + 1, seq: i + 1, payload: m }));
  p.close();
  console.log(`\n2. 1000 chat messages (avg ${fmt(avgLen, 0)} B JSON) in batches of 100 (raw JSON ${raw} B; target >= 2.4x)`);
  console.log(`   switchboard frames, batched, shared window   ${String(wire).padStart(7)} B   ${fmt(raw / wire)}x smaller`);
  console.log(`   switchboard frames, batched, uncompressed    ${String(plain).padStart(7)} B   ${fmt(raw / plain)}x`);
  console.log(`   pako deflate-raw per batch (JSON array)      ${String(pakoBatch).padStart(7)} B   ${fmt(raw / pakoBatch)}x`);
  console.log(`   pako deflate-raw per message                 ${String(pakoEach).padStart(7)} B   ${fmt(raw / pakoEach)}x`);
}

// ---- 3. window vs stop-and-wait over a 1 ms RTT link -----------------------
// One-way delay RTT/2, delivered in order by a poller (setImmediate), so the
// delay is not rounded up to Node's 1 ms timer granularity.
class SimLink {
  constructor(rttMs) {
    this.half = rttMs / 2;
    this.q = [];
    this.running = false;
  }
  send(fn) {
    this.q.push({ at: performance.now() + this.half, fn });
    if (!this.running) { this.running = true; setImmediate(() => this.tick()); }
  }
  tick() {
    const t = performance.now();
    let i = 0;
    while (i < this.q.length && this.q[i].at <= t) i++;
    const due = this.q.splice(0, i);
    for (const d of due) d.fn();
    if (this.q.length) setImmediate(() => this.tick());
    else this.running = false;
  }
}

async function windowed(n, window) {
  const link = new SimLink(1);
  let ib = null;
  const ob = new Outbox({ transmit: (bytes) => link.send(() => ib.receive(bytes)), window, ackTimeout: 1000, retryMinDelay: 50, maxMessages: n + 10, seed: 1 });
  let got = 0;
  ib = new Inbox({ sendAck: (bytes) => link.send(() => ob.receiveAck(bytes)), onMessage: () => { got++; } });
  const t0 = performance.now();
  const sends = [];
  for (let i = 0; i < n; i++) sends.push(ob.send(chats[i % chats.length], { channel: 1 }));
  await Promise.all(sends);
  const ms = performance.now() - t0;
  if (got !== n) throw new Error(`delivered ${got} of ${n}`);
  ob.close();
  ib.close();
  return n / (ms / 1000);
}

// socket.io-style: emit with an ack callback, next message only after the ack.
async function stopAndWait(n) {
  const link = new SimLink(1);
  let got = 0;
  const server = (text, ack) => { JSON.parse(text); got++; link.send(ack); };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const text = JSON.stringify({ id: i, data: chats[i % chats.length] });
    await new Promise((resolve) => link.send(() => server(text, resolve)));
  }
  const ms = performance.now() - t0;
  if (got !== n) throw new Error('lost');
  return n / (ms / 1000);
}

const N_WIN = QUICK ? 3000 : 10000;
const N_SAW = QUICK ? 200 : 500;
const thr = { win64: [], outboxWin1: [], saw: [] };
for (let r = 0; r < REPS; r++) {
  thr.win64.push(await windowed(N_WIN, 64));
  thr.saw.push(await stopAndWait(N_SAW));
  thr.outboxWin1.push(await windowed(N_SAW, 1));
}
const w = median(thr.win64);
const s = median(thr.saw);
const w1 = median(thr.outboxWin1);
console.log(`\n3. throughput over a simulated 1 ms RTT link (messages/s, median of ${REPS}; target >= 30x stop-and-wait)`);
console.log(`   Outbox+Inbox, window 64 (wasm core)       ${fmt(w, 0).padStart(8)} msg/s   ${fmt(w / s, 1)}x stop-and-wait`);
console.log(`   Outbox+Inbox, window 1                    ${fmt(w1, 0).padStart(8)} msg/s   ${fmt(w1 / s, 1)}x`);
console.log(`   socket.io-style stop-and-wait (JS, JSON)  ${fmt(s, 0).padStart(8)} msg/s   1.0x`);
