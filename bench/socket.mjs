// bench/socket: Socket against the reference relay vs a raw WebSocket against
// a plain echo server, side by side in one Chromium run, interleaved rounds,
// medians, printed as ratios.
//
//   SWITCHBOARD_WASM=build/x-dist/switchboard.wasm node bench/socket.mjs [--rounds 5] [--n 10000] [--rtt 400]
//
// 1. throughput: N chat messages (~230 B JSON each) sent as fast as the API
//    allows, until all of them are back (raw: echo of each send; Socket: the
//    relay's fan-out with hello.echo = true). Delivered messages/s.
// 2. bytes on the wire for that run, both directions: WebSocket payload bytes
//    plus the RFC 6455 frame header of every message (client frames masked).
// 3. request(): sequential round trips (raw: send + wait for the echo), in
//    alternating blocks; mean per block (Chromium coarsens performance.now()),
//    median over blocks of the per-block ratio.
import { launchBrowser, startDevServer } from '../tests/browser/harness.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 5);
const N = arg('n', 10000);
const RTT_N = arg('rtt', 400); // round trips per side, split into blocks

const server = await startDevServer();
const browser = await launchBrowser();
const context = await browser.newContext();
if (process.env.SWITCHBOARD_WASM) {
  await context.route('**/dist/switchboard.wasm', (r) => r.fulfill({ path: process.env.SWITCHBOARD_WASM, contentType: 'application/wasm' }));
}
const page = await context.newPage();
page.on('pageerror', (e) => console.error('page error:', e));
await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
const base = server.url.replace('http', 'ws');

await page.evaluate(async ({ base, N }) => {
  const sb = await import('/js/index.js');
  await sb.init();
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
  const hdr = (len, masked) => (len < 126 ? 2 : len < 65536 ? 4 : 10) + (masked ? 4 : 0);
  const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
  window.B = { sb, msgs, avg: total / N, hdr, median };

  B.raw = async () => {
    const ws = new WebSocket(`${base}/echo`);
    await new Promise((r) => { ws.onopen = r; });
    let got = 0, bytes = 0;
    const t0 = performance.now();
    const done = new Promise((r) => { ws.onmessage = (e) => { bytes += e.data.length + hdr(e.data.length, false); if (++got === N) r(); }; });
    for (const m of msgs) { ws.send(m); bytes += m.length + hdr(m.length, true); }
    await done;
    const t = performance.now() - t0;
    ws.close();
    return { rate: N / (t / 1000), bytes };
  };

  B.sock = async (round) => {
    const s = new sb.Socket(`${base}/relay`, { hello: { room: `bench-${round}-${Math.random()}`, user: 'bench', echo: true }, heartbeat: false });
    await new Promise((r) => s.addEventListener('open', r, { once: true }));
    let got = 0;
    const t0 = performance.now();
    const done = new Promise((r) => { s.onmessage = (e) => { if (e.channel === 0 && ++got === N) r(); }; });
    for (const m of msgs) s.send(m);
    await done;
    const t = performance.now() - t0;
    const st = s.stats();
    s.close();
    // ~one header per batch: at most 512 frames a message each way.
    const headers = Math.ceil(N / 512) * (hdr(70000, true) + hdr(70000, false));
    return { rate: N / (t / 1000), bytes: st.bytesOut + st.bytesIn + headers, payload: st.payloadBytesOut };
  };

  // Round trips, measured in alternating blocks on two long-lived
  // connections so load from elsewhere on the machine hits both alike.
  B.rtt = async (blocks, per) => {
    const ws = new WebSocket(`${base}/echo`);
    await new Promise((r) => { ws.onopen = r; });
    const s = new sb.Socket(`${base}/relay`, { hello: { room: `rtt-${Math.random()}` }, heartbeat: false });
    await new Promise((r) => s.addEventListener('open', r, { once: true }));
    const raw = async (n) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await new Promise((r) => { ws.onmessage = r; ws.send(msgs[i]); });
      return (performance.now() - t0) / n;
    };
    const req = async (n) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await s.request(msgs[i]);
      return (performance.now() - t0) / n;
    };
    await raw(per); await req(per);
    const r = [], q = [];
    for (let b = 0; b < blocks; b++) {
      if (b % 2) { q.push(await req(per)); r.push(await raw(per)); } else { r.push(await raw(per)); q.push(await req(per)); }
    }
    ws.close();
    s.close();
    return { raw: median(r), sock: median(q), ratio: median(r.map((x, i) => q[i] / x)) };
  };
}, { base, N });

const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const r = { rawRate: [], sockRate: [], rawBytes: [], sockBytes: [] };
// warm-up (JIT, wasm, connections)
await page.evaluate(async () => { await B.raw(); await B.sock(-1); });
for (let i = 0; i < ROUNDS; i++) {
  const order = i % 2 ? ['sock', 'raw'] : ['raw', 'sock'];
  for (const who of order) {
    const x = await page.evaluate((a) => (a.who === 'raw' ? B.raw() : B.sock(a.i)), { who, i });
    r[`${who}Rate`].push(x.rate);
    r[`${who}Bytes`].push(x.bytes);
  }
}
const rtt = await page.evaluate((a) => B.rtt(a.blocks, a.per), { blocks: 2 * ROUNDS * 4, per: Math.max(20, Math.round(RTT_N / 4)) });
const avg = await page.evaluate(() => B.avg);
const f = (x, d = 0) => x.toFixed(d);
console.log(`socket bench: Chromium, ${N} chat messages of ~${f(avg)} B, ${ROUNDS} interleaved rounds, medians`);
console.log(`  throughput  raw WebSocket (one message per send, echo): ${f(med(r.rawRate))} msgs/s`);
console.log(`              Socket -> relay (batched, compressed, acked):  ${f(med(r.sockRate))} msgs/s   ratio ${f(med(r.sockRate) / med(r.rawRate), 2)}x (target >= 6x)`);
console.log(`  wire bytes  raw JSON both ways: ${f(med(r.rawBytes))} B; Socket both ways: ${f(med(r.sockBytes))} B   raw/Socket ${f(med(r.rawBytes) / med(r.sockBytes), 2)} (target >= 3.5)`);
console.log(`  request()   raw echo RTT ${f(rtt.raw * 1000)} us; Socket.request RTT ${f(rtt.sock * 1000)} us   ratio ${f(rtt.ratio, 2)} (median of per-block ratios; target <= 1.1)`);
await browser.close();
await server.close();
