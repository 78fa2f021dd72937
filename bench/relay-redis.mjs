// bench/relay-redis: fan-out of one room across relay processes on Redis,
// side by side with socket.io and its Redis adapter, same machine, same load:
//
//   switchboard  memory, 1 process     switchboard-relay (the default engine)
//   switchboard  Redis, 1 process      switchboard-relay --redis
//   switchboard  Redis, 2 processes    two of them, subscribers split between them
//   socket.io    1 process             socket.io 4, socket.to(room).emit
//   socket.io    Redis, 2 processes    the same with @socket.io/redis-adapter
//
//   node bench/relay-redis.mjs [--subs 40] [--n 2000] [--rate 400] [--rounds 3]
//
// --subs clients in one room (spread round robin over the processes) and one
// publisher on the first process, every client in this process (Node: Socket
// over `ws`, socket.io-client with transports ['websocket']). Each server
// runs in a child process of its own on loopback; Redis is a redis-server of
// the bench's own (AOF on, appendfsync everysec), flushed between rows.
//  1. throughput: --n messages (~100 B) sent at once; deliveries/s = subs × n
//     over the time from the first send to the last delivery; median of
//     --rounds.
//  2. latency: --n messages at --rate a second, each stamped with the
//     publisher's clock; per delivery, arrival minus stamp (same process, same
//     clock): p50 and p99 over every delivery of every subscriber. The added
//     latency of the Redis engine is row 2 minus row 1.
// The relays run without rate limits (--rate-messages 0): a publisher over
// 1000 messages a second is otherwise paused, by design.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import Redis from 'ioredis';
import { init } from '../js/core.js';
import { Socket } from '../js/socket.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SUBS = arg('subs', 40), N = arg('n', 2000), RATE = arg('rate', 400), ROUNDS = arg('rounds', 3);
const RELAY = fileURLToPath(new URL('../js/server/relay-cli.mjs', import.meta.url));
const SIO = fileURLToPath(new URL('./lib/sio-redis-server.mjs', import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => { const s = xs.slice().sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };
async function until(fn, what, ms = 60000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(2);
  }
}

await init();
const port = await new Promise((ok) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); }); });
const dir = mkdtempSync(join(tmpdir(), 'sb-bench-rr-'));
const redisProc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes'], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((ok) => { let o = ''; redisProc.stdout.on('data', (d) => { o += d; if (/Ready to accept/.test(o)) ok(); }); });
const redisUrl = `redis://127.0.0.1:${port}`;
const admin = new Redis(redisUrl);

function server(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', (d) => resolve({ child, port: JSON.parse(String(d).split('\n')[0]).port }));
    child.once('exit', (code) => reject(new Error(`${cmd} exited ${code}`)));
  });
}

/** A client of either kind: .send(text), .got(fn) for each message's text. */
function switchboardClient(p, user) {
  const s = new Socket(`ws://127.0.0.1:${p}/`, { WebSocket, hello: { room: 'bench', user }, heartbeat: false });
  s.onerror = () => {};
  return {
    ready: () => s.readyState === 1,
    send: (m) => s.send(m),
    on: (fn) => s.addEventListener('message', (e) => { if (e.channel === 0) fn(e.data); }),
    close: () => s.close(),
  };
}
function sioClient(p) {
  const s = io(`http://127.0.0.1:${p}`, { transports: ['websocket'], forceNew: true });
  let joined = false;
  s.on('connect', () => s.emit('join', 'bench', () => { joined = true; }));
  return {
    ready: () => joined,
    send: (m) => s.emit('msg', 'bench', m),
    on: (fn) => s.on('msg', fn),
    close: () => s.close(),
  };
}

async function row(name, servers, kind) {
  await admin.flushall();
  const procs = [];
  for (const a of servers) procs.push(await server(kind === 'sb' ? RELAY : SIO, kind === 'sb' ? ['--port', '0', '--rate-messages', '0', '--rate-bytes', '0', ...a] : ['--port', '0', ...a]));
  const mk = (i, user) => (kind === 'sb' ? switchboardClient(procs[i % procs.length].port, user) : sioClient(procs[i % procs.length].port));
  const subs = Array.from({ length: SUBS }, (_, i) => mk(i, `s${i}`));
  const pub = mk(0, 'pub');
  let count = 0, lat = null;
  for (const s of subs) {
    s.on((text) => {
      count++;
      if (lat) lat.push(performance.now() - Number(text.slice(0, text.indexOf(' '))));
    });
  }
  await until(() => pub.ready() && subs.every((s) => s.ready()), `${name}: connected`);
  // Warm up until every subscriber hears the publisher (subscriptions in place everywhere).
  for (let w = 0; count < SUBS * 5; w++) {
    pub.send(`0 warm-up ${w}`);
    await sleep(20);
  }
  await sleep(300);
  const body = 'x'.repeat(90);
  const rates = [];
  for (let r = 0; r < ROUNDS; r++) {
    count = 0;
    const t = performance.now();
    for (let i = 0; i < N; i++) pub.send(`0 ${body}`);
    await until(() => count >= SUBS * N, `${name}: throughput round ${r}`, 120000);
    rates.push((SUBS * N) / ((performance.now() - t) / 1000));
    await sleep(200);
  }
  count = 0;
  lat = [];
  const every = 1000 / RATE;
  const start = performance.now();
  for (let i = 0; i < N; i++) {
    const due = start + i * every;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    pub.send(`${performance.now()} ${body}`);
  }
  await until(() => count >= SUBS * N, `${name}: latency`, 120000);
  const result = { name, rate: pct(rates, 0.5), p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
  for (const c of [...subs, pub]) c.close();
  for (const p of procs) {
    const gone = new Promise((ok) => p.child.once('exit', ok));
    p.child.kill('SIGTERM');
    await gone;
  }
  return result;
}

const results = [];
results.push(await row('switchboard  memory, 1 process', [[]], 'sb'));
results.push(await row('switchboard  Redis, 1 process', [['--redis', redisUrl]], 'sb'));
results.push(await row('switchboard  Redis, 2 processes', [['--redis', redisUrl], ['--redis', redisUrl]], 'sb'));
results.push(await row('socket.io    1 process', [[]], 'sio'));
results.push(await row('socket.io    Redis, 2 processes', [['--redis', redisUrl], ['--redis', redisUrl]], 'sio'));

console.log(`relay-redis bench: ${SUBS} subscribers in one room, ${N} messages of ~100 B; throughput median of ${ROUNDS}; latency at ${RATE}/s`);
console.log('  engine                            deliveries/s   p50 ms   p99 ms');
for (const r of results) console.log(`  ${r.name.padEnd(34)}${r.rate.toFixed(0).padStart(12)}${r.p50.toFixed(2).padStart(9)}${r.p99.toFixed(2).padStart(9)}`);
console.log(`  Redis engine over memory, one process: p50 +${(results[1].p50 - results[0].p50).toFixed(2)} ms, p99 +${(results[1].p99 - results[0].p99).toFixed(2)} ms`);
admin.disconnect();
redisProc.kill('SIGTERM');
await new Promise((ok) => redisProc.once('exit', ok));
rmSync(dir, { recursive: true, force: true });
process.exit(0);
