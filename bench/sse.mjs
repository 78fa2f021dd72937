// SSE benchmarks, peers side by side in one run, interleaved, medians,
// printed as ratios.
//
//   node bench/sse.mjs [--node] [--browser] [--resumes 5]     (both by default)
//   SWITCHBOARD_WASM=path/to/switchboard.wasm picks a core build outside dist/.
//
// 1. Node: parser throughput on a 1 MB stream of ~200 B events, fed as bytes
//    in network-sized chunks. eventsource-parser takes strings, so its side
//    includes the streaming TextDecoder a fetch body needs; ours decodes
//    inside (one TextDecoder call per chunk on the already-repaired text).
// 2. Chromium, against the dev server's /sse endpoint, every client with its
//    library's defaults, one table of ratios to the native EventSource:
//      native EventSource; EventStream transport 'fetch' and 'auto';
//      @microsoft/fetch-event-source 2 (fetchEventSource, onmessage);
//      eventsource 5 (the WHATWG EventSource on fetch); and, latency only,
//      a bare fetch reader loop with and without SseParser (the floors).
//    a. server write -> handler: the server stamps each event with its
//       clock (an event every 10 ms); the page converts with an offset from
//       the lowest-RTT of 30 /sse/clock samples. Many short phases (23
//       events, the first 3 dropped) in rotating order; median of all.
//    b. resume after a drop: a client gets one event, then the page POSTs
//       /sse/drop (the server destroys the connection before it answers) and
//       at once /sse/emit: that event is published while the client is away,
//       so it can only arrive on a new connection (resumed from
//       Last-Event-ID, or replayed). Time from just before the drop to that
//       event's handler; median of --resumes drops per client, kinds in
//       rotating order. Twice: a server that sends no `retry:` (each
//       library's own default delay), and one that sends `retry: 200`.
import { performance } from 'node:perf_hooks';
import { readFile } from 'node:fs/promises';
import { createParser } from 'eventsource-parser';
import { init, SseParser } from '../js/index.js';

const args = process.argv.slice(2);
const runNode = !args.includes('--browser') || args.includes('--node');
const runBrowser = !args.includes('--node') || args.includes('--browser');
const RESUMES = Number(args[args.indexOf('--resumes') + 1]) || 5;
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
  const { routePeers, peerVersion } = await import('./lib/peers.mjs');
  const server = await startDevServer();
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext();
    await routePeers(context, ['fetch-event-source', 'eventsource']);
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e));
    if (process.env.SWITCHBOARD_WASM) {
      const wasm = await readFile(process.env.SWITCHBOARD_WASM);
      await page.route('**/dist/switchboard.wasm', (r) => r.fulfill({ body: wasm, contentType: 'application/wasm' }));
    }
    await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
    const res = await page.evaluate(async (RESUMES) => {
      const sb = await import('/js/index.js');
      await sb.init();
      const { fetchEventSource } = await import('/__peer/fetch-event-source.js');
      const { EventSource: EventSource5 } = await import('/__peer/eventsource.js');
      const pageClock = () => performance.timeOrigin + performance.now();
      // server clock offset from the lowest-RTT sample
      let best = { rtt: Infinity, off: 0 };
      for (let i = 0; i < 30; i++) {
        const t0 = pageClock();
        const { t } = await (await fetch('/sse/clock', { cache: 'no-store' })).json();
        const t1 = pageClock();
        if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, off: t - (t0 + t1) / 2 };
      }
      // A client of one kind on url; on(data) for every 'time' event. Returns { close() }.
      const client = (kind, url, on) => {
        if (kind === 'parser-fetch') {
          // the same reader loop feeding SseParser: what the parser itself costs
          const ac = new AbortController();
          const parser = new sb.SseParser();
          let closed = false;
          fetch(url, { signal: ac.signal }).then(async (res) => {
            const reader = res.body.getReader();
            for (;;) {
              const { value, done } = await reader.read().catch(() => ({ done: true }));
              if (done || closed) return;
              parser.feed(value, (type, data) => { if (!closed) on(data); });
            }
          }).catch(() => {});
          return { close: () => { closed = true; ac.abort(); parser.close(); } };
        }
        if (kind === 'raw-fetch') {
          // floor of any fetch-based client: a reader loop, no parsing
          const ac = new AbortController();
          let closed = false;
          fetch(url, { signal: ac.signal }).then(async (res) => {
            const reader = res.body.getReader();
            const dec = new TextDecoder();
            for (;;) {
              const { value, done } = await reader.read().catch(() => ({ done: true }));
              if (done || closed) return;
              for (const m of dec.decode(value).matchAll(/^data: (.*)$/gm)) if (!closed) on(m[1]);
            }
          }).catch(() => {});
          return { close: () => { closed = true; ac.abort(); } };
        }
        if (kind === 'fes') {
          const ac = new AbortController();
          fetchEventSource(url, { signal: ac.signal, onmessage: (ev) => { if (ev.event === 'time') on(ev.data); } }).catch(() => {});
          return { close: () => ac.abort() };
        }
        const es = kind === 'native' ? new EventSource(url)
          : kind === 'es5' ? new EventSource5(url)
            : new sb.EventStream(url, kind === 'auto' ? { transport: 'auto', resumeParam: 'lastEventId' } : { transport: 'fetch' });
        es.addEventListener('time', (e) => on(e.data));
        return es;
      };
      const phase = (kind, s, count) => new Promise((ok) => {
        const lat = [];
        const c = client(kind, `/sse/stream?s=${s}&interval=10&types=time`, (data) => {
          if (lat.length >= count) return;
          const now = pageClock();
          lat.push(now - (JSON.parse(data).t - best.off));
          if (lat.length === count) { c.close(); ok(lat.slice(3)); }
        });
      });
      const post = (path) => fetch(path, { method: 'POST', body: JSON.stringify({ t: 0 }) });
      const resume = async (kind, s, retry) => {
        let next;
        const got = () => new Promise((r) => { next = r; });
        let first = got();
        // every request carries the stream's parameters: the first to arrive creates it
        const q = `s=${s}&interval=0${retry ? `&retry=${retry}` : ''}`;
        const c = client(kind, `/sse/stream?${q}`, () => next?.(pageClock()));
        await post(`/sse/emit?${q}&type=time`);
        await first;
        first = got();
        const t0 = pageClock();
        await post(`/sse/drop?${q}`);
        await post(`/sse/emit?${q}&type=time`);
        const at = await Promise.race([first, new Promise((r) => setTimeout(() => r(null), 20000))]);
        c.close();
        return at === null ? Infinity : at - t0;
      };
      const kinds = ['native', 'ours', 'auto', 'fes', 'es5', 'parser-fetch', 'raw-fetch'];
      const all = Object.fromEntries(kinds.map((k) => [k, []]));
      // many short phases in rotating order, so load drift on a shared
      // machine hits every client alike
      for (let round = 0; round < 24; round++) {
        const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]);
        for (const kind of round & 1 ? order.reverse() : order) {
          all[kind].push(...(await phase(kind, `bench-${kind}-${round}`, 23)));
        }
      }
      const rkinds = ['native', 'ours', 'auto', 'fes', 'es5'];
      const resumes = { none: {}, r200: {} };
      for (const [mode, retry] of [['none', 0], ['r200', 200]]) {
        for (const k of rkinds) resumes[mode][k] = [];
        for (let round = 0; round < RESUMES; round++) {
          const order = rkinds.map((_, i) => rkinds[(i + round) % rkinds.length]);
          for (const kind of order) resumes[mode][kind].push(await resume(kind, `resume-${mode}-${kind}-${round}`, retry));
        }
      }
      return { all, resumes, rtt: best.rtt };
    }, RESUMES);
    const m = Object.fromEntries(Object.entries(res.all).map(([k, v]) => [k, median(v) * 1000]));
    const rm = Object.fromEntries(Object.entries(res.resumes).map(([mode, o]) => [mode, Object.fromEntries(Object.entries(o).map(([k, v]) => [k, median(v)]))]));
    const ms = (v, base) => (Number.isFinite(v) ? `${v.toFixed(0)} ms (${(v / base).toFixed(2)}×)` : 'never (20 s)');
    const label = {
      native: 'native EventSource',
      ours: "switchboard EventStream, transport 'fetch' (fetch + wasm parser)",
      auto: "switchboard EventStream, transport 'auto' (plain GET: native EventSource, our reconnect policy)",
      fes: `@microsoft/fetch-event-source ${await peerVersion('fetch-event-source')}`,
      es5: `eventsource ${await peerVersion('eventsource')}`,
      'parser-fetch': 'bare fetch reader loop + SseParser, no EventStream',
      'raw-fetch': 'bare fetch reader loop, no parser (floor of any fetch client)',
    };
    console.log(`\nChromium ${browser.version()}, dev server /sse (clock sync RTT ${(res.rtt * 1000).toFixed(0)} µs); latency: median of ${res.all.native.length} events per client; resume: median of ${RESUMES} drops per client`);
    console.log('');
    console.log('| client | server write -> handler | resume after a drop, no `retry:` | resume, server sends `retry: 200` |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const k of Object.keys(label)) {
      const r = (mode) => (k in rm[mode] ? ms(rm[mode][k], rm[mode].native) : '—');
      console.log(`| ${label[k]} | ${m[k].toFixed(0)} µs (${(m[k] / m.native).toFixed(2)}×) | ${r('none')} | ${r('r200')} |`);
    }
    console.log('\nratios to native EventSource (lower is better).');
  } finally {
    await browser.close();
    await server.close();
  }
}

console.log(`command: node bench/sse.mjs ${args.join(' ')}`.trimEnd());
if (runNode) await nodeBench();
if (runBrowser) await browserBench();
