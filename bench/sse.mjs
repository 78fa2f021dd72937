// SSE benchmarks, peers side by side in one run, interleaved, medians.
//
//   node bench/sse.mjs [--node] [--browser]      (both by default)
//   SWITCHBOARD_WASM=path/to/switchboard.wasm picks a core build outside dist/.
//
// 1. Node: parser throughput on a 1 MB stream of ~200 B events, fed as bytes
//    in network-sized chunks. eventsource-parser takes strings, so its side
//    includes the streaming TextDecoder a fetch body needs; ours decodes
//    inside (one TextDecoder call per chunk on the already-repaired text).
// 2. Chromium: server write -> handler latency, native EventSource vs
//    EventStream (fetch + wasm parser), same endpoint, alternating phases.
import { performance } from 'node:perf_hooks';
import { readFile } from 'node:fs/promises';
import { createParser } from 'eventsource-parser';
import { init, SseParser } from '../js/index.js';

const args = process.argv.slice(2);
const runNode = !args.includes('--browser') || args.includes('--node');
const runBrowser = !args.includes('--node') || args.includes('--browser');
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };

function makeStream(bytes) {
  let s = '';
  for (let i = 1; s.length < bytes; i++) {
    const body = JSON.stringify({ seq: i, user: `user-${i % 97}`, price: (i * 7.31) % 1000, text: 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore' });
    s += `id: ${i}\nevent: ${i % 5 ? 'tick' : 'quote'}\ndata: ${body}\n\n`;
  }
  return new TextEncoder().encode(s);
}

function chunksOf(bytes, size) {
  const out = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

function ours(chunks) {
  const p = new SseParser();
  let n = 0;
  let len = 0;
  const on = (type, data) => { n++; len += data.length; };
  for (const c of chunks) p.feed(c, on);
  p.close();
  return n + len * 0;
}

function theirs(chunks) {
  const dec = new TextDecoder();
  let n = 0;
  let len = 0;
  const p = createParser({ onEvent: (e) => { n++; len += e.data.length; } });
  for (const c of chunks) p.feed(dec.decode(c, { stream: true }));
  return n + len * 0;
}

async function nodeBench() {
  await init();
  const stream = makeStream(1 << 20);
  const events = ours([stream]);
  console.log(`parser throughput: ${(stream.length / 1048576).toFixed(2)} MB, ${events} events of ~${Math.round(stream.length / events)} B`);
  for (const size of [16384, 1400]) {
    const chunks = chunksOf(stream, size);
    if (ours(chunks) !== theirs(chunks)) throw new Error('peers disagree on the event count');
    const t = { ours: [], theirs: [] };
    for (let round = 0; round < 80; round++) {
      for (const [k, fn] of round & 1 ? [['theirs', theirs], ['ours', ours]] : [['ours', ours], ['theirs', theirs]]) {
        const t0 = performance.now();
        fn(chunks);
        t[k].push(performance.now() - t0);
      }
    }
    const mo = median(t.ours.slice(20)); // the first rounds warm both up
    const mt = median(t.theirs.slice(20));
    const mbs = (ms) => (stream.length / 1048576 / (ms / 1000)).toFixed(0);
    console.log(`  chunks of ${size} B: switchboard ${mo.toFixed(2)} ms (${mbs(mo)} MB/s), eventsource-parser ${mt.toFixed(2)} ms (${mbs(mt)} MB/s) -> ${(mt / mo).toFixed(2)}x`);
  }
}

async function browserBench() {
  const { launchBrowser, startDevServer } = await import('../tests/browser/harness.mjs');
  const server = await startDevServer();
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    if (process.env.SWITCHBOARD_WASM) {
      const wasm = await readFile(process.env.SWITCHBOARD_WASM);
      await page.route('**/dist/switchboard.wasm', (r) => r.fulfill({ body: wasm, contentType: 'application/wasm' }));
    }
    await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
    const res = await page.evaluate(async () => {
      const sb = await import('/js/index.js');
      await sb.init();
      const pageClock = () => performance.timeOrigin + performance.now();
      // server clock offset from the lowest-RTT sample
      let best = { rtt: Infinity, off: 0 };
      for (let i = 0; i < 30; i++) {
        const t0 = pageClock();
        const { t } = await (await fetch('/sse/clock', { cache: 'no-store' })).json();
        const t1 = pageClock();
        if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, off: t - (t0 + t1) / 2 };
      }
      const phase = (kind, s, count) => new Promise((ok) => {
        const lat = [];
        const url = `/sse/stream?s=${s}&interval=10&types=time`;
        const on = (data) => {
          const now = pageClock();
          lat.push(now - (JSON.parse(data).t - best.off));
          if (lat.length === count) { es.close(); ok(lat.slice(3)); }
        };
        if (kind === 'parser-fetch') {
          // the same reader loop feeding SseParser: what the parser itself costs
          const ac = new AbortController();
          const parser = new sb.SseParser();
          var es = { close: () => { ac.abort(); parser.close(); } };
          fetch(url, { signal: ac.signal }).then(async (res) => {
            const reader = res.body.getReader();
            for (;;) {
              const { value, done } = await reader.read().catch(() => ({ done: true }));
              if (done || lat.length >= count) return;
              parser.feed(value, (type, data) => { if (lat.length < count) on(data); });
            }
          });
          return;
        }
        if (kind === 'raw-fetch') {
          // floor of any fetch-based client: a reader loop, no parsing
          const ac = new AbortController();
          var es = { close: () => ac.abort() };
          fetch(url, { signal: ac.signal }).then(async (res) => {
            const reader = res.body.getReader();
            const dec = new TextDecoder();
            for (;;) {
              const { value, done } = await reader.read().catch(() => ({ done: true }));
              if (done) return;
              for (const m of dec.decode(value).matchAll(/^data: (.*)$/gm)) on(m[1]);
            }
          });
          return;
        }
        es = kind === 'native' ? new EventSource(url) : new sb.EventStream(url, kind === 'auto' ? { transport: 'auto', resumeParam: 'lastEventId' } : { transport: 'fetch' });
        es.addEventListener('time', (e) => on(e.data));
      });
      const kinds = ['native', 'ours', 'auto', 'parser-fetch', 'raw-fetch'];
      const all = Object.fromEntries(kinds.map((k) => [k, []]));
      // many short phases in rotating order, so load drift on a shared
      // machine hits every client alike
      for (let round = 0; round < 24; round++) {
        const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]);
        for (const kind of round & 1 ? order.reverse() : order) {
          all[kind].push(...(await phase(kind, `bench-${kind}-${round}`, 23)));
        }
      }
      return { all, rtt: best.rtt };
    });
    const m = Object.fromEntries(Object.entries(res.all).map(([k, v]) => [k, median(v) * 1000]));
    const x = (k) => `${m[k].toFixed(0)} us (${(m[k] / m.native).toFixed(2)}x native)`;
    console.log(`Chromium server write -> handler (median of ${res.all.native.length} events each, clock sync RTT ${(res.rtt * 1000).toFixed(0)} us):`);
    console.log(`  native EventSource ${m.native.toFixed(0)} us`);
    console.log(`  EventStream transport 'fetch' (fetch + wasm parser) ${x('ours')}`);
    console.log(`  EventStream transport 'auto' (plain GET -> native EventSource, our reconnect policy) ${x('auto')}`);
    console.log(`  bare fetch reader loop + SseParser, no EventStream ${x('parser-fetch')}`);
    console.log(`  bare fetch reader loop, no parser (floor of any fetch client) ${x('raw-fetch')}`);
  } finally {
    await browser.close();
    await server.close();
  }
}

if (runNode) await nodeBench();
if (runBrowser) await browserBench();
