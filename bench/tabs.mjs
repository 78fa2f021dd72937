// Tab messaging and leader election side by side in headless Chromium, one
// run, interleaved, medians, printed as one table of ratios to the raw
// platform API:
//
//   raw                BroadcastChannel; for failover, a bare Web Locks
//                      request (each tab asks for one exclusive lock and
//                      holds it: the floor of any lock-based election)
//   switchboard        SharedState.set; TabGroup in mode 'locks' and 'lease'
//   broadcast-channel  pubkey/broadcast-channel 7: BroadcastChannel
//                      (postMessage; the 'native' method Chromium gets) and
//                      createLeaderElection (Web Locks in Chromium)
//
//   node bench/tabs.mjs [--samples 300] [--seconds 2] [--failovers 5] [--only latency|throughput|failover]
//   SWITCHBOARD_WASM=path/to/switchboard.wasm picks a core build outside dist/.
//
// 4 tabs (pages) in one browser context.
//  1. one-way latency: tab A writes { n, text, at } and the 3 other tabs each
//     answer A over a raw BroadcastChannel as soon as they see it (raw: the
//     message; SharedState: a remote 'change' for that key; broadcast-channel:
//     its onmessage). A measures the round trip to all 3; the answer leg is
//     the same raw one everywhere, so one-way = round trip − raw round trip / 2
//     (raw one-way = raw round trip / 2). Kinds alternate sample by sample.
//  2. sustained rate: every tab writes as fast as it can for --seconds,
//     500 writes per task, then yields (kinds one after the other). writes/s
//     summed over the 4 tabs; received/s summed over the receivers, counted
//     500 ms after the last write. SharedState writes go to 4096 keys and
//     are batched and merged, so it reports when all 4 tabs hold the same map
//     instead of a received count.
//  3. leader failover: the leader tab is closed (page.close with
//     runBeforeUnload false) or crashed (CDP Page.crash: the renderer dies,
//     no unload); time from just before that, on the leader's wall clock, to
//     the first other tab's wall clock when it became leader (TabGroup:
//     whenLeader(); broadcast-channel: awaitLeadership(); raw: its lock
//     callback runs). Lease mode: heartbeat 250 ms, lease 1500 ms.
//     Median and max of --failovers runs, a fresh context each.
import { launchBrowser, startDevServer } from '../tests/browser/harness.mjs';
import { routePeers, peerVersion } from './lib/peers.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SAMPLES = arg('samples', 300);
const SECONDS = arg('seconds', 2);
const FAILOVERS = arg('failovers', 5);
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null; // latency | throughput | failover
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
// Chromium coarsens performance.now() to 100 µs (with jitter) on pages that
// are not cross-origin isolated, so the pages are served isolated (COOP and
// COEP headers added by a route: every script is same-origin), which gives
// 5 µs. Next to the median we give the mean of the middle 80 %.
const trimmed = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const cut = s.slice(Math.floor(s.length * 0.1), Math.ceil(s.length * 0.9));
  return cut.reduce((x, y) => x + y, 0) / cut.length;
};
const us = (ms) => `${(ms * 1000).toFixed(0)} µs`;

const server = await startDevServer();
const browser = await launchBrowser();
let room = 0;

async function newContext() {
  const context = await browser.newContext();
  await context.route('**/*', async (r) => {
    const res = await r.fetch();
    await r.fulfill({ response: res, headers: { ...res.headers(), 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } });
  });
  if (process.env.SWITCHBOARD_WASM) {
    await context.route('**/dist/switchboard.wasm', (r) => r.fulfill({ path: process.env.SWITCHBOARD_WASM, contentType: 'application/wasm' }));
  }
  await routePeers(context, ['broadcast-channel']);
  return context;
}

async function tab(context) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log(`   page error: ${e}`));
  page.on('console', (m) => { if (m.type() === 'error') console.log(`   console error: ${m.text()}`); });
  await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  await page.evaluate(async () => {
    window.sb = await import('/js/index.js');
    await window.sb.init();
    window.pbc = await import('/__peer/broadcast-channel.js');
    if (!crossOriginIsolated) throw new Error('the bench page is not cross-origin isolated (coarse timers)');
  });
  return page;
}

// ---- 1. latency --------------------------------------------------------------
async function latency() {
  const context = await newContext();
  const name = `lat${++room}`;
  const pages = [];
  for (let i = 0; i < 4; i++) pages.push(await tab(context));
  await Promise.all(pages.map((p, i) => p.evaluate(async ({ name, i }) => {
    window.state = await sb.SharedState.open(name, { joinTimeout: 50 });
    window.raw = new BroadcastChannel(`${name}:raw`);
    window.ack = new BroadcastChannel(`${name}:ack`);
    window.bc = new pbc.BroadcastChannel(`${name}:bc`);
    if (i > 0) {
      // Receivers answer A on the ack channel as soon as they see the value.
      raw.onmessage = (e) => ack.postMessage(e.data.n);
      state.addEventListener('change', (e) => { if (!e.local && e.keys.includes('ping')) ack.postMessage(state.get('ping').n); });
      bc.onmessage = (m) => ack.postMessage(m.n);
    }
    await new Promise((r) => setTimeout(r, 50)); // broadcast-channel drops messages older than the channel
  }, { name, i })));
  const res = await pages[0].evaluate(async (samples) => {
    const kinds = ['raw', 'state', 'bc'];
    const out = { raw: [], state: [], bc: [] };
    let n = 0;
    const once = (kind) => new Promise((resolve) => {
      const id = ++n;
      let got = 0;
      ack.onmessage = (e) => { if (e.data === id && ++got === 3) resolve(performance.now() - t0); };
      const t0 = performance.now();
      const v = { n: id, text: 'hello', at: Date.now() };
      if (kind === 'raw') raw.postMessage(v);
      else if (kind === 'state') state.set('ping', v);
      else bc.postMessage(v);
    });
    for (let i = 0; i < 20; i++) for (const k of kinds) await once(k); // warm-up
    for (let i = 0; i < samples; i++) {
      const order = kinds.map((_, j) => kinds[(j + i) % kinds.length]);
      for (const k of order) out[k].push(await once(k));
    }
    return out;
  }, SAMPLES);
  await context.close();
  const r = {};
  for (const [label, f] of [['median', median], ['trimmed', trimmed]]) {
    const rawOne = f(res.raw) / 2;
    r[label] = { raw: rawOne, state: f(res.state) - rawOne, bc: f(res.bc) - rawOne };
  }
  return r;
}

// ---- 2. throughput -----------------------------------------------------------
async function throughput() {
  const context = await newContext();
  const name = `thr${++room}`;
  const pages = [];
  for (let i = 0; i < 4; i++) pages.push(await tab(context));
  await Promise.all(pages.map((p) => p.evaluate(async (name) => {
    window.state = await sb.SharedState.open(name, { joinTimeout: 50, maxKeys: 8192 });
    state.addEventListener('error', (e) => console.error(String(e.error)));
    window.raw = new BroadcastChannel(`${name}:raw`);
    window.bc = new pbc.BroadcastChannel(`${name}:bc`);
    window.got = { raw: 0, bc: 0 };
    raw.onmessage = () => { got.raw++; };
    bc.onmessage = () => { got.bc++; };
    await new Promise((r) => setTimeout(r, 50));
  }, name)));
  // Every tab writes as fast as it can for SECONDS, yielding to the event
  // loop every chunk (so other tabs' batches get merged in between).
  const run = (kind) => Promise.all(pages.map((p, i) => p.evaluate(async ({ kind, ms, i }) => {
    const yieldTask = () => new Promise((r) => setTimeout(r, 0));
    let count = 0;
    const end = performance.now() + ms;
    while (performance.now() < end) {
      for (let j = 0; j < 500; j++, count++) {
        if (kind === 'state') state.set(`k${(count * 7 + i) % 4096}`, { from: i, n: count });
        else if (kind === 'raw') raw.postMessage({ k: `k${(count * 7 + i) % 4096}`, from: i, n: count });
        else bc.postMessage({ k: `k${(count * 7 + i) % 4096}`, from: i, n: count });
      }
      await yieldTask();
    }
    return count;
  }, { kind, ms: SECONDS * 1000, i })));
  const sum = (a) => a.reduce((x, y) => x + y, 0);
  const received = async (kind) => {
    await new Promise((r) => setTimeout(r, 500));
    return sum(await Promise.all(pages.map((p) => p.evaluate((k) => got[k], kind))));
  };
  const sent = {}, recv = {};
  sent.raw = sum(await run('raw'));
  recv.raw = await received('raw');
  sent.bc = sum(await run('bc'));
  recv.bc = await received('bc');
  sent.state = sum(await run('state'));
  // Convergence: every tab ends with the identical map.
  const t0 = Date.now();
  let same = false;
  while (!same && Date.now() - t0 < 20000) {
    const dumps = await Promise.all(pages.map((p) => p.evaluate(() => JSON.stringify([...state.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))))));
    same = dumps.every((d) => d === dumps[0]);
    if (!same) await new Promise((r) => setTimeout(r, 50));
  }
  const convergedMs = same ? Date.now() - t0 : null;
  if (!same) {
    // Say how they differ (a bug report, not a result).
    const m = await Promise.all(pages.map((p) => p.evaluate(() => ({ j: state.toJSON(), size: state.size, leader: state.group.isLeader }))));
    console.log(`   DIVERGED: sizes ${m.map((x) => x.size)}, leaders ${m.map((x) => x.leader)}`);
    let shown = 0;
    for (const key of new Set(m.flatMap((x) => Object.keys(x.j)))) {
      const vs = m.map((x) => JSON.stringify(x.j[key]));
      if (!vs.every((v) => v === vs[0]) && shown++ < 5) console.log(`   ${key}: ${vs.join(' | ')}`);
    }
  }
  await context.close();
  const perS = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v / SECONDS]));
  return { sent: perS(sent), recv: perS(recv), convergedMs };
}

// ---- 3. failover ---------------------------------------------------------------
// kind: 'raw' (bare Web Locks), 'locks' | 'lease' (TabGroup), 'bc' (broadcast-channel)
async function failover(kind, how) {
  const times = [];
  for (let r = 0; r < FAILOVERS; r++) {
    const context = await newContext();
    const name = `fo${++room}`;
    const pages = [];
    for (let i = 0; i < 4; i++) pages.push(await tab(context));
    // Each tab notes (wall clock) when it becomes leader.
    await Promise.all(pages.map((p) => p.evaluate(async ({ name, kind }) => {
      window.electedAt = null;
      const clock = () => performance.timeOrigin + performance.now();
      if (kind === 'raw') {
        window.lead = { isLeader: false };
        navigator.locks.request(`${name}:raw`, () => { lead.isLeader = true; window.electedAt = clock(); return new Promise(() => {}); });
        window.agreed = () => true;
      } else if (kind === 'bc') {
        const ch = new pbc.BroadcastChannel(`${name}:bc`);
        window.lead = pbc.createLeaderElection(ch);
        lead.awaitLeadership().then(() => { window.electedAt = clock(); });
        window.agreed = () => true;
      } else {
        const group = await sb.TabGroup.open(name, { mode: kind, heartbeatInterval: 250, heartbeatTimeout: 1500 });
        window.lead = group;
        group.whenLeader().then(() => { window.electedAt = clock(); }, () => {});
        window.agreed = () => group.leader; // every tab must name the same leader
      }
    }, { name, kind })));
    const info = () => Promise.all(pages.map((p) => p.evaluate(() => ({ isLeader: lead.isLeader, agreed: agreed() }))));
    let li;
    for (;;) {
      const s = await info();
      const leaders = s.filter((x) => x.isLeader);
      if (leaders.length === 1 && s.every((x) => x.agreed === s[0].agreed)) { li = s.indexOf(leaders[0]); break; }
      await new Promise((res) => setTimeout(res, 10));
    }
    const leader = pages[li];
    const others = pages.filter((p) => p !== leader);
    const t0 = await leader.evaluate(() => performance.timeOrigin + performance.now());
    if (how === 'close') await leader.close({ runBeforeUnload: false });
    else (await context.newCDPSession(leader)).send('Page.crash').catch(() => {});
    let at = null;
    const deadline = Date.now() + 20000;
    while (at === null && Date.now() < deadline) {
      const v = (await Promise.all(others.map((p) => p.evaluate(() => window.electedAt)))).filter((x) => x !== null);
      if (v.length) at = Math.min(...v);
      else await new Promise((res) => setTimeout(res, 5));
    }
    times.push(at === null ? Infinity : at - t0);
    await context.close();
  }
  return times;
}

const lat = !ONLY || ONLY === 'latency' ? await latency() : null;
const thr = !ONLY || ONLY === 'throughput' ? await throughput() : null;
const fo = {};
if (!ONLY || ONLY === 'failover') {
  for (const kind of ['raw', 'locks', 'lease', 'bc']) {
    for (const how of ['close', 'crash']) {
      const t = await failover(kind, how);
      fo[`${kind}:${how}`] = { median: median(t), max: Math.max(...t) };
    }
  }
}

const bcv = await peerVersion('broadcast-channel');
const fx = (v, base) => (base ? `${(v / base).toFixed(2)}×` : '');
const lcell = (k) => (lat ? `${us(lat.median[k])} (${fx(lat.median[k], lat.median.raw)}); ${us(lat.trimmed[k])} (${fx(lat.trimmed[k], lat.trimmed.raw)})` : '—');
const k1 = (x) => `${(x / 1000).toFixed(1)}k`;
const scell = (k) => (thr ? `${k1(thr.sent[k])} (${fx(thr.sent[k], thr.sent.raw)})` : '—');
const rcell = (k) => (!thr ? '—' : k === 'state'
  ? (thr.convergedMs === null ? 'all 4 tabs DIVERGED' : `all 4 tabs converged ${thr.convergedMs} ms after the last write`)
  : `${k1(thr.recv[k])} (${fx(thr.recv[k], thr.recv.raw)})`);
const fcell = (k, how) => {
  const v = fo[`${k}:${how}`];
  if (!v) return '—';
  const m = Number.isFinite(v.median) ? `${v.median.toFixed(0)} ms` : 'never (20 s)';
  return `${m} (${fx(v.median, fo[`raw:${how}`].median)}), max ${Number.isFinite(v.max) ? v.max.toFixed(0) : '∞'}`;
};
console.log(`command: node bench/tabs.mjs ${process.argv.slice(2).join(' ')}`.trimEnd());
console.log(`tabs bench: Chromium ${browser.version()}, 4 tabs in one context; ${SAMPLES} latency samples per kind (interleaved), ${SECONDS} s per rate run, ${FAILOVERS} failovers per cell; broadcast-channel ${bcv}`);
console.log('');
console.log('| client | one-way latency, median; trimmed mean | writes/s, 4 tabs | received/s, 3 receivers each | failover after close (median, max) | failover after crash |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
console.log(`| raw BroadcastChannel; bare Web Locks | ${lcell('raw')} | ${scell('raw')} | ${rcell('raw')} | ${fcell('raw', 'close')} | ${fcell('raw', 'crash')} |`);
console.log(`| switchboard SharedState.set; TabGroup 'locks' | ${lcell('state')} | ${scell('state')} | ${rcell('state')} | ${fcell('locks', 'close')} | ${fcell('locks', 'crash')} |`);
console.log(`| switchboard TabGroup 'lease' (heartbeat 250 ms, lease 1500 ms) | — | — | — | ${fcell('lease', 'close')} | ${fcell('lease', 'crash')} |`);
console.log(`| broadcast-channel postMessage; LeaderElection | ${lcell('bc')} | ${scell('bc')} | ${rcell('bc')} | ${fcell('bc', 'close')} | ${fcell('bc', 'crash')} |`);
console.log('');
console.log('ratios to raw (latency and failover: lower is better; rates: higher). switchboard targets: one-way <= 1.25× raw and ahead of broadcast-channel, >= 50k set/s, failover <= 1 s (locks), <= 3 s (lease).');
await browser.close();
await server.close();
