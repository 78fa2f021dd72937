// Compression benchmark: switchboard (wasm zlib) against node:zlib (the native
// ceiling here), pako, fflate and CompressionStream, in one process,
// implementations interleaved, median of REPS rounds. Speed is printed as a
// ratio to node:zlib (>1 = faster than node:zlib).
//
//   node bench/compress.mjs [--reps 15] [--quick]
import zlib from 'node:zlib';
import pako from 'pako';
import * as fflate from 'fflate';
import { init, gzip, gunzip, DeflateContext, InflateContext } from '../js/index.js';

const args = process.argv.slice(2);
const REPS = Number(args[args.indexOf('--reps') + 1]) || (args.includes('--quick') ? 5 : 15);
await init();

// ---- corpus (deterministic) ----------------------------------------------
let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
const words = 'the quick brown fox jumps over lazy dog hello world message chat room server client update status ok'.split(' ');
function chat(i) {
  const text = Array.from({ length: 6 + Math.floor(rnd() * 6) }, () => pick(words)).join(' ');
  return JSON.stringify({ type: 'chat', id: 100000 + i, room: 'general', user: pick(users), text, ts: 1700000000000 + i * 731, ack: true });
}
const messages = Array.from({ length: 1000 }, (_, i) => chat(i));
const msgBytes = messages.map((m) => Buffer.from(m));
function json(size) {
  const out = [];
  let n = 2;
  for (let i = 0; n < size; i++) {
    const s = JSON.stringify({ id: i, user: pick(users), tags: [pick(words), pick(words)], score: Math.floor(rnd() * 1e6), text: chat(i) });
    out.push(s);
    n += s.length + 1;
  }
  return Buffer.from(`[${out.join(',')}]`).subarray(0, size);
}
function mix(size) {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = i % 3 === 0 ? Math.floor(rnd() * 256) : 97 + Math.floor(rnd() * 26);
  return b;
}
const blobs = { '4 KB JSON': json(4096), '64 KB JSON': json(65536), '1 MB JSON': json(1 << 20), '1 MB mixed': mix(1 << 20) };

// ---- implementations -------------------------------------------------------
const streamAll = async (bytes, ts) => new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(ts)).arrayBuffer());
const impls = {
  'node:zlib': { c: (b) => zlib.gzipSync(b, { level: 6 }), d: (b) => zlib.gunzipSync(b) },
  switchboard: { c: (b) => gzip(b, { level: 6 }), d: (b) => gunzip(b) },
  pako: { c: (b) => pako.gzip(b, { level: 6 }), d: (b) => pako.ungzip(b) },
  fflate: { c: (b) => fflate.gzipSync(b, { level: 6 }), d: (b) => fflate.gunzipSync(b) },
  CompressionStream: { c: (b) => streamAll(b, new CompressionStream('gzip')), d: (b) => streamAll(b, new DecompressionStream('gzip')), async: true },
};
const names = Object.keys(impls);

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };

// Time fn over inputs; returns µs per input.
async function timeIt(fn, inputs, isAsync, minMs = 30) {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    for (const x of inputs) {
      if (isAsync) await fn(x); else fn(x);
    }
    n += inputs.length;
    t = performance.now();
  } while (t - t0 < minMs);
  return ((t - t0) * 1000) / n;
}

async function bench(label, inputs, op) {
  const ref = inputs.map((x) => zlib.gzipSync(x, { level: 6 }));
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < REPS; r++) {
    const order = names.slice(r % names.length).concat(names.slice(0, r % names.length));
    for (const name of order) {
      const impl = impls[name];
      const data = op === 'c' ? inputs : ref;
      const sub = impl.async && data.length > 50 ? data.slice(0, 50) : data;
      samples[name].push(await timeIt(impl[op], sub, impl.async));
    }
  }
  const base = median(samples['node:zlib']);
  const row = { case: `${label} ${op === 'c' ? 'compress' : 'decompress'}`, 'node:zlib µs': base.toFixed(base < 100 ? 2 : 0) };
  for (const n of names) if (n !== 'node:zlib') row[n] = (base / median(samples[n])).toFixed(2) + '×';
  return row;
}

const rows = [];
rows.push(await bench('230 B chat msg', msgBytes.slice(0, 200), 'c'));
rows.push(await bench('230 B chat msg', msgBytes.slice(0, 200), 'd'));
for (const [label, b] of Object.entries(blobs)) {
  rows.push(await bench(label, [b], 'c'));
  rows.push(await bench(label, [b], 'd'));
}
console.log(`\ncompression speed, ratio to node:zlib (>1 faster), median of ${REPS}, level 6, copies in/out of wasm included`);
console.table(rows);

// ---- sizes -----------------------------------------------------------------
const sizeRows = [];
for (const [label, b] of Object.entries(blobs)) {
  sizeRows.push({ input: label, bytes: b.length, 'node:zlib': zlib.gzipSync(b, { level: 6 }).length, switchboard: gzip(b, { level: 6 }).length, pako: pako.gzip(b, { level: 6 }).length, fflate: fflate.gzipSync(b, { level: 6 }).length });
}
console.log('\ncompressed size (bytes, level 6)');
console.table(sizeRows);

// ---- small messages: per-message gzip vs one shared window ------------------
const raw = msgBytes.reduce((s, b) => s + b.length, 0);
const perMsg = msgBytes.reduce((s, b) => s + gzip(b).length, 0);
const ctx = new DeflateContext();
const inf = new InflateContext();
let shared = 0;
for (const b of msgBytes) {
  const c = ctx.compress(b);
  shared += c.length;
  inf.decompress(c);
}
const ctxSamples = [];
for (let r = 0; r < REPS; r++) {
  const d = new DeflateContext();
  const i = new InflateContext();
  ctxSamples.push(await timeIt((b) => i.decompress(d.compress(b)), msgBytes, false));
  d.close();
  i.close();
}
console.log(`\n${msgBytes.length} chat messages, ${raw} B raw JSON (${(raw / msgBytes.length).toFixed(0)} B avg):`);
console.log(`  gzip per message:               ratio ${(raw / perMsg).toFixed(2)}`);
console.log(`  shared window (DeflateContext): ratio ${(raw / shared).toFixed(2)}, ${median(ctxSamples).toFixed(2)} µs per message compress+decompress`);
ctx.close();
inf.close();
