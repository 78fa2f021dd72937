// bench/redis-engine: the two choices of the Redis engine (docs/decisions.md,
// "A Redis engine"), measured on a redis-server of its own (loopback, AOF on,
// appendfsync everysec):
//   1. a room's log: a stream (XADD with the offset as its id, MAXLEN ~,
//      XRANGE from an offset) vs a list + counter (RPUSH, LTRIM, LRANGE by
//      index), each appended by a Lua script like the engine's commit, one
//      commit in flight at a time, and a catch-up read of 100 messages at a
//      random offset of a full log;
//   2. fan-out: pub/sub (PUBLISH in the script) vs stream reads (XREAD BLOCK
//      on the room's stream), latency from the commit's send to the
//      subscriber, one message at a time.
//
//   node bench/redis-engine.mjs [--n 20000] [--size 200]
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('n', 20000);
const SIZE = arg('size', 200);
const KEEP = 10000;

const port = await new Promise((ok) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); }); });
const dir = mkdtempSync(join(tmpdir(), 'sb-bench-redis-'));
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes'], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((ok) => { let o = ''; server.stdout.on('data', (d) => { o += d; if (/Ready to accept/.test(o)) ok(); }); });

const cmd = new Redis(port, '127.0.0.1');
const sub = new Redis(port, '127.0.0.1');
cmd.defineCommand('streamAppend', { numberOfKeys: 2, lua: `
local off = redis.call('HINCRBY', KEYS[1], 'next', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], off .. '-0', 'd', ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return off` });
cmd.defineCommand('listAppend', { numberOfKeys: 2, lua: `
local off = redis.call('HINCRBY', KEYS[1], 'next', 1)
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
redis.call('PUBLISH', KEYS[2], ARGV[2])
return off` });

const payload = Buffer.alloc(SIZE, 120);
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const fmt = (ms) => `${(ms * 1000).toFixed(0)} µs`;

/** Interleaved rounds (the machine is shared): the median rate of each. */
async function appends(pairs, rounds = 10) {
  const rates = pairs.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [k, [, fn]] of pairs.entries()) {
      const t = process.hrtime.bigint();
      for (let i = 0; i < N / rounds; i++) await fn();
      rates[k].push((N / rounds) / (Number(process.hrtime.bigint() - t) / 1e9));
    }
  }
  return pairs.map(([name], k) => `${name}: ${pct(rates[k], 0.5).toFixed(0)} commits/s (median of ${rounds} rounds)`);
}

async function reads(name, fn) {
  const times = [];
  for (let i = 0; i < 300; i++) {
    const t = process.hrtime.bigint();
    await fn(N - KEEP + 1 + Math.floor(Math.random() * (KEEP - 200)));
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return `${name}: catch-up of 100 p50 ${fmt(pct(times, 0.5))}, p99 ${fmt(pct(times, 0.99))}`;
}

const out = [];
out.push(...await appends([['stream (XADD MAXLEN ~)', () => cmd.streamAppend('m:s', 'l:s', KEEP, payload)],
  ['list + counter (RPUSH, LTRIM)', () => cmd.listAppend('m:l', 'l:l', KEEP, payload)]]));
out.push(await reads('stream XRANGE from (offset, COUNT 100', (off) => cmd.xrangeBuffer('l:s', `(${off}-0`, '+', 'COUNT', 100)));
out.push(await reads('list LRANGE by index', async (off) => {
  const next = Number(await cmd.hget('m:l', 'next')); // the index of offset `off` is off - (next - len)
  const len = await cmd.llen('l:l');
  const i = off - (next + 1 - len);
  return cmd.lrangeBuffer('l:l', i, i + 99);
}));

// Fan-out latency, one message at a time.
const M = Math.min(N, 3000);
async function pubsubLatency() {
  await sub.subscribe('l:s');
  const times = [];
  let mark = 0n, got = null;
  sub.on('messageBuffer', () => { times.push(Number(process.hrtime.bigint() - mark) / 1e6); got(); });
  for (let i = 0; i < M; i++) {
    const arrived = new Promise((ok) => { got = ok; });
    mark = process.hrtime.bigint();
    cmd.streamAppend('m:s', 'l:s', KEEP, payload);
    await arrived;
  }
  await sub.unsubscribe('l:s');
  sub.removeAllListeners('messageBuffer');
  return `fan-out by pub/sub: p50 ${fmt(pct(times, 0.5))}, p99 ${fmt(pct(times, 0.99))}`;
}
async function xreadLatency() {
  const reader = new Redis(port, '127.0.0.1');
  const times = [];
  let last = (await cmd.xrevrange('l:s', '+', '-', 'COUNT', 1))[0][0];
  let mark = 0n;
  let stop = false;
  const waiting = [];
  const loop = (async () => {
    while (!stop) {
      const r = await reader.xreadBuffer('BLOCK', 1000, 'STREAMS', 'l:s', last);
      if (!r) continue;
      for (const [, entries] of r) {
        for (const [id] of entries) {
          last = String(id);
          times.push(Number(process.hrtime.bigint() - mark) / 1e6);
          waiting.shift()?.();
        }
      }
    }
  })();
  for (let i = 0; i < M; i++) {
    const arrived = new Promise((ok) => waiting.push(ok));
    mark = process.hrtime.bigint();
    cmd.streamAppend('m:s', 'l:s', KEEP, payload);
    await arrived;
  }
  stop = true;
  await loop;
  reader.disconnect();
  return `fan-out by XREAD BLOCK: p50 ${fmt(pct(times, 0.5))}, p99 ${fmt(pct(times, 0.99))}`;
}
out.push(await pubsubLatency());
out.push(await xreadLatency());

console.log(`redis-engine bench: ${N} commits of ${SIZE} B, logs of ${KEEP}, redis-server ${port}`);
for (const l of out) console.log(`  ${l}`);
cmd.disconnect();
sub.disconnect();
server.kill('SIGTERM');
await new Promise((ok) => server.once('exit', ok));
rmSync(dir, { recursive: true, force: true });
