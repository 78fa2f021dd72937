// The shared Socket (docs/socket.md, "Sharing") in headless Chromium, its
// peers in the same run, tabs = pages of one browser context:
//
//  1. server connections for N = 1, 5, 20 tabs: each tab opens a shared
//     Socket (one key), a socket.io-client io() and a plain WebSocket; the
//     servers (the relay, socket.io 4, a ws echo) count what they hold.
//  2. latency, 5 tabs: a Node Socket in the room sends a message every few
//     ms stamped with its wall clock (performance.timeOrigin + now, µs); the
//     leading tab and the followers stamp its arrival: server -> leader and
//     server -> follower. In the same loop a raw BroadcastChannel hop between
//     two of the tabs (post with a stamp, read the stamp on arrival).
//     request() round trips from the leader and from a follower, alternated.
//  3. handover: the Node Socket sends every 5 ms; the leading tab is closed
//     (page.close) or crashed (CDP Page.crash); time from just before that to
//     the first message a follower gets through the new leader.
//
//   node bench/socket-share.mjs [--samples 300] [--handovers 3]
import { createServer } from 'node:http';
import WebSocket from 'ws';
import { Server } from 'socket.io';
import { launchBrowser, startDevServer } from '../tests/browser/harness.mjs';
import { routePeers } from './lib/peers.mjs';
import { init } from '../js/core.js';
import { Socket } from '../js/socket.js';
import { Relay } from '../js/server/relay.mjs';
import { createEchoServer } from '../js/server/echo.mjs';
import { serve } from '../tests/node/net.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SAMPLES = arg('samples', 300);
const HANDOVERS = arg('handovers', 3);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const p90 = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length * 0.9)];
const ms = (x) => `${x.toFixed(2)} ms`;
const sleep = (t) => new Promise((r) => setTimeout(r, t));
const clock = () => performance.timeOrigin + performance.now();

await init();
const web = await startDevServer();
const relay = await Relay.create({ allowedOrigins: [web.url], onRequest: ({ data }) => data });
const relaySrv = await serve(relay);
const echo = createEchoServer();
const echoSrv = await serve(echo);
const sioHttp = createServer();
const io = new Server(sioHttp, { cors: { origin: web.url } });
await new Promise((r) => sioHttp.listen(0, '127.0.0.1', r));
const sioUrl = `http://127.0.0.1:${sioHttp.address().port}`;
const browser = await launchBrowser();
const OPTS = { reconnect: { minDelay: 20, maxDelay: 200 }, heartbeat: { interval: 2000, timeout: 2000 } };

async function tab(ctx, key, room, peers = false) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error:', String(e)));
  await page.goto(`${web.url}/tests/browser/fixtures/blank.html`);
  await page.evaluate(async ({ url, key, room, opts, peers, sioUrl, echoUrl }) => {
    const sb = await import('/js/index.js');
    await sb.init();
    const clock = () => performance.timeOrigin + performance.now();
    const s = new sb.Socket(url, { ...opts, share: key, hello: { room, user: 'tabs' } });
    window.sock = s;
    window.arrivals = [];
    s.onmessage = (e) => { if (e.channel === 0) window.arrivals.push([clock(), e.data, s.stats().share?.leader]); };
    s.onerror = () => {};
    window.bc = new BroadcastChannel('bench-raw');
    window.hops = [];
    window.bc.onmessage = (e) => window.hops.push(clock() - e.data);
    window.rtt = async (n) => { const out = []; for (let i = 0; i < n; i++) { const t = clock(); await s.request('r'); out.push(clock() - t); } return out; };
    if (peers) {
      const { io } = await import('/__peer/socket.io-client.js');
      window.sio = io(sioUrl, { transports: ['websocket'] });
      window.raw = new WebSocket(echoUrl);
    }
  }, { url: relaySrv.url, key, room, opts: OPTS, peers, sioUrl, echoUrl: echoSrv.url });
  return page;
}
const role = (p) => p.evaluate(() => window.sock.stats().share?.role);
async function waitAll(pages, fn, what) {
  for (let k = 0; k < 1000; k++) {
    const r = await Promise.all(pages.map((p) => p.evaluate(fn)));
    if (r.every(Boolean)) return;
    await sleep(20);
  }
  throw new Error(what);
}

// 1. connections
console.log('server connections held for N tabs (same run):');
console.log('| tabs | switchboard Socket share | socket.io-client | plain WebSocket |');
console.log('| --- | --- | --- | --- |');
for (const N of [1, 5, 20]) {
  const ctx = await browser.newContext();
  await routePeers(ctx, ['socket.io-client']);
  const pages = [];
  for (let i = 0; i < N; i++) pages.push(await tab(ctx, `conns-${N}`, `conns-${N}`, true));
  await waitAll(pages, () => window.sock.readyState === 1 && window.sio.connected && window.raw.readyState === 1, 'all open');
  await sleep(300);
  console.log(`| ${N} | ${relay.conns.size} | ${io.engine.clientsCount} | ${echo.wss.clients.size} |`);
  await ctx.close();
  await sleep(500);
}

// 2. latency
const ctx = await browser.newContext();
const pages = [];
for (let i = 0; i < 5; i++) pages.push(await tab(ctx, 'lat', 'lat'));
await waitAll(pages, () => window.sock.readyState === 1, 'open');
const node = new Socket(relaySrv.url, { WebSocket, ...OPTS, hello: { room: 'lat', user: 'node' } });
await new Promise((r) => node.addEventListener('open', r, { once: true }));
await sleep(300);
let roles = await Promise.all(pages.map(role));
let leader = pages[roles.indexOf('leader')];
let followers = pages.filter((p) => p !== leader);
for (let i = 0; i < SAMPLES; i++) {
  node.send(`${clock()}`);
  await followers[0].evaluate(() => window.bc.postMessage(performance.timeOrigin + performance.now()));
  await sleep(4);
}
await sleep(500);
const lat = async (p) => (await p.evaluate(() => window.arrivals.map(([t, d]) => t - Number(d)))).slice(20);
const toLeader = await lat(leader);
const toFollower = (await Promise.all(followers.map(lat))).flat();
const hop = (await Promise.all(pages.filter((p) => p !== followers[0]).map((p) => p.evaluate(() => window.hops)))).flat().slice(20);
const rl = [], rf = [];
for (let i = 0; i < SAMPLES / 10; i++) {
  rl.push(...await leader.evaluate(() => window.rtt(5)));
  rf.push(...await followers[1].evaluate(() => window.rtt(5)));
}
const hopM = median(hop);
console.log(`\nlatency, 5 tabs (${SAMPLES} messages, medians; p90 in brackets):`);
console.log(`  raw BroadcastChannel hop        ${ms(hopM)} (${ms(p90(hop))})`);
console.log(`  server -> leader tab            ${ms(median(toLeader))} (${ms(p90(toLeader))})`);
console.log(`  server -> follower tab          ${ms(median(toFollower))} (${ms(p90(toFollower))}); leader + ${((median(toFollower) - median(toLeader)) / hopM).toFixed(2)} hops (target <= 1.5)`);
console.log(`  request() round trip, leader    ${ms(median(rl))} (${ms(p90(rl))})`);
console.log(`  request() round trip, follower  ${ms(median(rf))} (${ms(p90(rf))}); leader + ${((median(rf) - median(rl)) / hopM).toFixed(2)} hops (target <= 1.5)`);

// 3. handover
const results = { close: [], crash: [] };
let live = pages;
let pump = setInterval(() => node.send(`${clock()}`), 5);
for (let h = 0; h < HANDOVERS * 2; h++) {
  const kind = h % 2 ? 'crash' : 'close';
  if (live.length < 3) live.push(await tab(ctx, 'lat', 'lat'));
  await waitAll(live, () => window.sock.readyState === 1, 'open');
  roles = await Promise.all(live.map(role));
  leader = live[roles.indexOf('leader')];
  if (!leader) { await sleep(200); h--; continue; }
  followers = live.filter((p) => p !== leader);
  const oldId = await leader.evaluate(() => window.sock.stats().share.leader);
  await sleep(200);
  const t0 = clock();
  if (kind === 'close') await leader.close();
  else {
    const cdp = await ctx.newCDPSession(leader);
    cdp.send('Page.crash').catch(() => {});
  }
  live = followers;
  let first = null;
  for (let k = 0; k < 500 && first === null; k++) {
    await sleep(20);
    first = await followers[0].evaluate(({ t0, oldId }) => { const a = window.arrivals.find(([t, , l]) => t > t0 && l && l !== oldId); return a ? a[0] : null; }, { t0, oldId });
  }
  if (first !== null) results[kind].push(first - t0);
  await sleep(300);
}
clearInterval(pump);
const fmt = (a) => (a.length ? `median ${ms(median(a))}, max ${ms(Math.max(...a))} (${a.length} runs)` : 'none measured');
console.log('\nhandover: leader gone -> first message through the new leader in a follower');
console.log(`  after a close  ${fmt(results.close)} (target <= 200 ms)`);
console.log(`  after a crash  ${fmt(results.crash)} (target <= lease time + 200 ms; Web Locks: released when the renderer dies)`);

node.close();
await ctx.close();
await browser.close();
await web.close();
await relaySrv.kill();
await echoSrv.kill();
io.close();
process.exit(0);
