// Shared EventStream across tabs (docs/sse.md, "Sharing across tabs"), in
// headless Chromium against the dev server's /sse endpoint, peers in the
// same run:
//
//   1. Connections the endpoint sees for N = 1, 5, 20 tabs of one profile:
//      EventStream { share: true } against the native EventSource, eventsource
//      5 and @microsoft/fetch-event-source 2, one per tab. Every page is
//      loaded first, then every tab opens its stream; the count is the
//      server's (requests received, connections open) and how many tabs get
//      events. HTTP/1.1 lets a profile hold 6 connections to a host: past
//      that the peers' tabs wait.
//   2. Latency, server write -> handler, in the holding tab and in a follower
//      (one BroadcastChannel hop more), and a raw BroadcastChannel hop
//      between two pages, all on the server clock (each page's offset from
//      the lowest-RTT /sse/clock sample). Medians.
//   3. Handover: the holder is closed (page.close) or crashed (CDP
//      Page.crash); the time from just before that to the first event a
//      follower gets through the new holder (the relay term, an internal of
//      js/sse-share.js, tells which holder relayed it). Web Locks election.
//
//   node bench/sse-share.mjs
import { readFile } from 'node:fs/promises';
import { launchBrowser, startDevServer } from '../tests/browser/harness.mjs';
import { routePeers, peerVersion } from './lib/peers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[s.length >> 1] : NaN; };
let streams = 0;
const sname = (t) => `bshare-${t}-${process.pid}-${++streams}`;

const server = await startDevServer();
const browser = await launchBrowser();
const stats = async (s) => (await fetch(`${server.url}/sse/stats?s=${s}`)).json();

async function newContext() {
  const context = await browser.newContext();
  await routePeers(context, ['fetch-event-source', 'eventsource']);
  if (process.env.SWITCHBOARD_WASM) {
    const wasm = await readFile(process.env.SWITCHBOARD_WASM);
    await context.route('**/dist/switchboard.wasm', (r) => r.fulfill({ body: wasm, contentType: 'application/wasm' }));
  }
  return context;
}

// Load a page with the clients ready (nothing connected yet).
async function load(context) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', String(e)));
  await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  await page.evaluate(async () => {
    window.sb = await import('/js/index.js');
    await window.sb.init();
    window.fes = (await import('/__peer/fetch-event-source.js')).fetchEventSource;
    window.ES5 = (await import('/__peer/eventsource.js')).EventSource;
    window.clock = () => performance.timeOrigin + performance.now();
    let best = { rtt: Infinity, off: 0 };
    for (let i = 0; i < 20; i++) {
      const t0 = window.clock();
      const { t } = await (await fetch('/sse/clock', { cache: 'no-store' })).json();
      const t1 = window.clock();
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, off: t - (t0 + t1) / 2 };
    }
    window.off = best.off;
    window.rtt = best.rtt;
    window.lat = [];
    window.got = 0;
    window.arrivals = []; // [Date.now(), relay term]
    window.at = {};
  });
  return page;
}

// Open one client of `kind` on url in the page; record latency and arrivals.
const OPEN = ({ kind, url }) => {
  const on = (data) => {
    const now = window.clock() + window.off;
    window.got++;
    const body = JSON.parse(data);
    window.lat.push(now - body.t);
    window.at[body.n] = window.clock(); // this page's own clock: pages are compared by n
    window.arrivals.push([Date.now(), window.es?._share?.term ?? 0]);
  };
  if (kind === 'fes') {
    window.fes(url, { openWhenHidden: true, onmessage: (ev) => { if (ev.event === 'time') on(ev.data); } }).catch(() => {});
    return;
  }
  window.es = kind === 'native' ? new EventSource(url) : kind === 'es5' ? new window.ES5(url) : new window.sb.EventStream(url, { share: true });
  window.es.addEventListener('time', (e) => on(e.data));
};

const KINDS = { shared: 'switchboard EventStream { share: true }', native: 'native EventSource', es5: '', fes: '' };

async function connections(n) {
  const row = {};
  for (const kind of Object.keys(KINDS)) {
    const context = await newContext();
    const pages = [];
    for (let i = 0; i < n; i++) pages.push(await load(context));
    const s = sname(`conn-${kind}-${n}`);
    const url = `/sse/stream?s=${s}&interval=20&types=time`;
    for (const p of pages) await p.evaluate(OPEN, { kind, url });
    await sleep(1500);
    const base = await Promise.all(pages.map((p) => p.evaluate(() => window.got)));
    await sleep(500);
    const live = (await Promise.all(pages.map((p) => p.evaluate(() => window.got)))).filter((g, i) => g > base[i]).length;
    const st = await stats(s);
    row[kind] = { requests: st.requests.length, open: st.connections, live };
    await context.close();
  }
  return row;
}

// Skew-free: page clocks of two processes need not agree, so each figure is
// a round trip on one page's clock. A follower echoes every event back over
// a BroadcastChannel: holder dispatch -> follower dispatch -> echo back at
// the holder = the follower's extra latency + one hop; a ping-pong between
// the same pages gives two hops.
async function latency() {
  const context = await newContext();
  const pages = [];
  for (let i = 0; i < 3; i++) pages.push(await load(context));
  const s = sname('lat');
  const url = `/sse/stream?s=${s}&interval=10&types=time`;
  for (const p of pages) await p.evaluate(OPEN, { kind: 'shared', url });
  await sleep(1000);
  const roles = await Promise.all(pages.map((p) => p.evaluate(() => window.es.stats().leader)));
  const holder = pages[roles.indexOf(true)];
  const followers = pages.filter((_, i) => !roles[i]);
  for (const p of followers) {
    await p.evaluate(() => {
      const bc = new BroadcastChannel('bench-echo');
      window.es.addEventListener('time', (e) => bc.postMessage({ n: JSON.parse(e.data).n }));
      const pong = new BroadcastChannel('bench-ping');
      pong.onmessage = (e) => { if (e.data.ping) pong.postMessage({ pong: e.data.ping }); };
    });
  }
  await holder.evaluate(() => {
    window.echo = [];
    window.rtt2 = [];
    window.lat = [];
    const bc = new BroadcastChannel('bench-echo');
    bc.onmessage = (e) => { const t = window.at[e.data.n]; if (t) window.echo.push(window.clock() - t); };
    const ping = new BroadcastChannel('bench-ping');
    const sent = new Map();
    let k = 0;
    ping.onmessage = (e) => { const t = sent.get(e.data.pong); if (t) window.rtt2.push(window.clock() - t); };
    window.pingTimer = setInterval(() => { sent.set(++k, window.clock()); ping.postMessage({ ping: k }); }, 10);
  });
  for (const p of followers) await p.evaluate(() => { window.lat = []; });
  await sleep(5000);
  const h = await holder.evaluate(() => { clearInterval(window.pingTimer); return { echo: window.echo, rtt2: window.rtt2, lat: window.lat, rtt: window.rtt }; });
  const f = (await Promise.all(followers.map((p) => p.evaluate(() => window.lat)))).flat();
  await context.close();
  const hop = median(h.rtt2) / 2;
  return { leader: median(h.lat), follower: median(f), hop, extra: median(h.echo) - hop, events: h.lat.length, rtt: h.rtt };
}

async function handover(kind, rounds) {
  const out = [];
  const context = await newContext();
  const pages = [];
  for (let i = 0; i < rounds + 2; i++) pages.push(await load(context));
  const s = sname(`ho-${kind}`);
  const url = `/sse/stream?s=${s}&interval=5&types=time&history=10000`;
  for (const p of pages) await p.evaluate(OPEN, { kind: 'shared', url });
  await sleep(800);
  for (let r = 0; r < rounds; r++) {
    const info = await Promise.all(pages.map((p) => p.evaluate(() => window.es.stats())));
    const h = info.findIndex((x) => x.leader);
    const victim = pages[h];
    pages.splice(h, 1);
    const terms = await Promise.all(pages.map((p) => p.evaluate(() => window.es._share.term)));
    const t0 = Date.now();
    if (kind === 'close') await victim.close();
    else {
      const cdp = await context.newCDPSession(victim);
      cdp.send('Page.crash').catch(() => {});
      await victim.waitForEvent('crash').catch(() => {});
      victim.close().catch(() => {});
    }
    await sleep(800);
    const firsts = await Promise.all(pages.map((p, i) => p.evaluate((term) => window.arrivals.find(([, t]) => t > term)?.[0] ?? null, terms[i])));
    for (const f of firsts) if (f !== null) out.push(f - t0);
  }
  await context.close();
  return out;
}

try {
  console.log(`Chromium ${browser.version()}, dev server /sse, one browser profile (context) per client kind and N`);
  KINDS.es5 = `eventsource ${await peerVersion('eventsource')}`;
  KINDS.fes = `@microsoft/fetch-event-source ${await peerVersion('fetch-event-source')}`;
  console.log('\n## Connections at the endpoint (requests received / open / tabs receiving)\n');
  console.log(`| client | ${[1, 5, 20].map((n) => `N = ${n}`).join(' | ')} |`);
  console.log('| --- | --- | --- | --- |');
  const rows = {};
  for (const n of [1, 5, 20]) rows[n] = await connections(n);
  for (const k of Object.keys(KINDS)) {
    console.log(`| ${KINDS[k]} | ${[1, 5, 20].map((n) => `${rows[n][k].requests} / ${rows[n][k].open} / ${rows[n][k].live} of ${n}`).join(' | ')} |`);
  }
  const l = await latency();
  console.log(`\n## Latency, server write -> handler (median of ${l.events} events per tab)\n`);
  console.log(`server -> holder ${(l.leader * 1000).toFixed(0)} µs, server -> follower ${(l.follower * 1000).toFixed(0)} µs`);
  console.log(`(on the server clock; each page's offset is good to ±${(l.rtt * 500).toFixed(0)} µs, half its best /sse/clock RTT)`);
  console.log(`holder dispatch -> follower dispatch: ${(l.extra * 1000).toFixed(0)} µs = ${(l.extra / l.hop).toFixed(2)}x a raw BroadcastChannel hop of ${(l.hop * 1000).toFixed(0)} µs (round trips on the holder's clock: echo - hop, ping-pong / 2; target <= 1.5x)`);
  const close = await handover('close', 3);
  const crash = await handover('crash', 3);
  console.log('\n## Handover: holder gone -> first event through the new holder, in each follower\n');
  console.log(`after a close: median ${median(close)} ms, max ${Math.max(...close)} ms (${close.length} follower observations; target <= 200 ms)`);
  console.log(`after a crash: median ${median(crash)} ms, max ${Math.max(...crash)} ms (${crash.length}; Web Locks: the lock goes with the renderer; target <= lease + 200 ms)`);
} finally {
  await browser.close();
  await server.close();
}
