// The Redis engine (docs/relay.md, "Engines"): relay processes that share
// one Redis. Each test starts its own redis-server on a free loopback port
// (append-only, in a temporary directory) and stops it. Across processes: a
// message published on A reaches B's subscribers, presence on B shows A's
// users and drops them when A dies, a session resumes on B after A is killed
// with -9; Redis stopped for a few seconds: the Socket holds its sends,
// nothing is lost or twice, everything flows once it is back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { Relay } from '../../js/server/index.mjs';
import { SessionClient } from './session-client.mjs';
import { SS_QUEUED, CLOSE_REPLACED, CLOSE_FORBIDDEN } from '../../js/constants.js';
import { kill9, once, serve, sleep, until } from './net.mjs';
import { freePort } from './redis-procs.mjs';

const RELAY_CLI = fileURLToPath(new URL('../../js/server/relay-cli.mjs', import.meta.url));
const HAVE_REDIS = spawnSync('redis-server', ['--version']).status === 0;
const skip = HAVE_REDIS ? false : 'redis-server is not installed (.ci/setup installs it)';



/** A redis-server of the test's own: loopback, a free port (or the one given), AOF in dir. */
async function startRedis(dir, port) {
  port ??= await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (/Ready to accept connections/.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
  });
  child.removeAllListeners('exit');
  const r = {
    child, port, url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode) return;
      const gone = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      await gone;
    },
  };
  running.add(r);
  return r;
}

/** switchboard-relay --redis URL as a child process; resolves once it listens. */
function startRelay(redisUrl, extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RELAY_CLI, '--port', '0', '--redis', redisUrl, '--presence-ttl-ms', '900', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.once('data', (d) => {
      const r = { child, port: JSON.parse(String(d).split('\n')[0]).port, log: () => err };
      r.url = `ws://127.0.0.1:${r.port}/`;
      running.add(r);
      resolve(r);
    });
    child.once('exit', (code) => reject(new Error(`relay exited ${code}: ${err}`)));
  });
}



const running = new Set();
const clients = new Set();
const dirs = [];
function tmp() {
  const d = mkdtempSync(join(tmpdir(), 'sb-redis-'));
  dirs.push(d);
  return d;
}
function client(url, o) {
  const c = new SessionClient(url, o);
  clients.add(c);
  return c;
}

before(() => init());
after(async () => {
  for (const c of clients) c.close();
  for (const r of running) {
    if (r.stop) await r.stop();
    else await kill9(r);
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const presenceOf = (c, type) => c.presence().filter((p) => p.type === type).map((p) => p.user);
const lastUsers = (c) => {
  const withList = c.presence().filter((p) => p.users);
  return withList.length ? withList[withList.length - 1].users.join() : '';
};

test('two relays on one Redis (in this process): fan-out both ways, in order, once; presence across them', { skip }, async () => {
  const redis = await startRedis(tmp());
  const logs = [];
  const log = (m) => logs.push(m);
  const A = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 }, log });
  const B = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 }, log });
  const sa = await serve(A), sb = await serve(B);
  try {
    const a = client(sa.url, { hello: { room: 'r', user: 'ann' } });
    const b = client(sb.url, { hello: { room: 'r', user: 'bob' } });
    await Promise.all([a.until(() => a.open), b.until(() => b.open)]);
    await until(() => lastUsers(a) === 'ann,bob' && lastUsers(b) === 'ann,bob', 'presence across the relays');
    const N = 300;
    for (let i = 0; i < N; i++) { a.send(`a${i}`); b.send(`b${i}`); }
    await until(() => a.texts().length >= N && b.texts().length >= N, 'both ways');
    await sleep(100);
    assert.deepEqual(b.texts(), Array.from({ length: N }, (_, i) => `a${i}`));
    assert.deepEqual(a.texts(), Array.from({ length: N }, (_, i) => `b${i}`));
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
    b.close();
    await until(() => presenceOf(a, 'leave').includes('bob'), 'bob leaves, seen on the other relay');
  } finally {
    A.close(); B.close(); sa.close(); sb.close();
  }
  await redis.stop();
});

test('switchboard-relay --redis, two processes: A\'s messages reach B\'s subscribers and back; presence on B shows A\'s users and drops them when A is killed -9; A\'s session resumes on B, nothing lost, nothing twice', { skip }, async () => {
  const redis = await startRedis(tmp());
  const A = await startRelay(redis.url);
  const B = await startRelay(redis.url);
  let annUrl = A.url;
  const ann = client(() => annUrl, { hello: { room: 'r', user: 'ann' } });
  const carl = client(A.url, { hello: { room: 'r', user: 'carl' } });
  const bob = client(B.url, { hello: { room: 'r', user: 'bob' } });
  const N = 1500;
  let sent = 0;
  let pump;
  try {
    await Promise.all([ann, carl, bob].map((c) => c.until(() => c.open, 10000, 'open')));
    const id = ann.id;
    await until(() => lastUsers(bob) === 'ann,bob,carl', `B shows A's users (${lastUsers(bob)})`);
    pump = setInterval(() => {
      for (let k = 0; k < 10 && sent < N; k++, sent++) { ann.send(`a${sent}`); bob.send(`b${sent}`); }
    }, 3);
    await until(() => bob.texts().length >= 400, 'traffic from A to B');
    const opens = ann.opens;
    await kill9(A);
    annUrl = B.url; // the load balancer sends her to B now
    carl.close(); // carl does not come back: his presence on A expires
    await ann.until(() => ann.opens > opens && ann.open, 15000, 'ann back, on B');
    assert.equal(ann.id, id, 'B resumed the session A had');
    await until(() => presenceOf(bob, 'leave').includes('carl'), 'a dead process\'s users leave');
    await until(() => sent === N && bob.texts().length >= N && ann.texts().length >= N, 'everything delivered', 30000);
    clearInterval(pump);
    await sleep(200);
    assert.deepEqual(bob.texts(), Array.from({ length: N }, (_, i) => `a${i}`));
    assert.deepEqual(ann.texts(), Array.from({ length: N }, (_, i) => `b${i}`));
    assert.deepEqual(ann.errors, [], 'no gap reported');
    assert.deepEqual(bob.errors, []);
    await until(() => lastUsers(bob) === 'ann,bob', `presence settles (${lastUsers(bob)})`);
  } finally {
    clearInterval(pump);
    ann.close(); carl.close(); bob.close();
    await kill9(A);
    await kill9(B);
    await redis.stop();
  }
});

test('Redis stopped for a few seconds: the Socket holds its sends (nothing acked, nothing delivered), everything flows once Redis is back, once and in order', { skip }, async () => {
  const dir = tmp();
  let redis = await startRedis(dir);
  const logs = [];
  const relay = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 }, log: (m) => logs.push(m) });
  const s = await serve(relay);
  const FAST = { WebSocket, reconnect: { minDelay: 20, maxDelay: 200, connectTimeout: 2000 }, heartbeat: false };
  const from = new Socket(s.url, { ...FAST, hello: { room: 'o', user: 'from' } });
  const to = new Socket(s.url, { ...FAST, hello: { room: 'o', user: 'to' } });
  from.onerror = to.onerror = () => {};
  const got = [];
  to.addEventListener('message', (e) => { if (e.channel === 0) got.push(e.data); });
  try {
    await until(() => from.readyState === 1 && to.readyState === 1, 'open');
    await until(() => relay.rooms.users('o').join() === 'from,to', 'both in the room');
    for (let i = 0; i < 200; i++) from.send(`m${i}`);
    await until(() => got.length === 200 && from.bufferedAmount === 0, 'before the outage');
    await redis.stop();
    for (let i = 200; i < 400; i++) from.send(`m${i}`);
    await until(() => logs.some((l) => l.includes('store commit failed')), 'the relay refuses the commit');
    await sleep(1500); // Redis stays away a while; the Socket retries meanwhile
    assert.equal(got.length, 200, 'nothing delivered that was not stored');
    assert.ok(from.bufferedAmount > 0, 'the sends are held by the Socket, unconfirmed');
    redis = await startRedis(dir, redis.port); // the same data (append-only file)
    await until(() => got.length >= 400 && from.bufferedAmount === 0, 'everything once Redis is back', 30000);
    await sleep(200);
    assert.deepEqual(got, Array.from({ length: 400 }, (_, i) => `m${i}`));
  } finally {
    from.close(); to.close();
    await relay.close();
    s.close();
    await redis.stop();
  }
});

test('a session taken over on another process: the first one\'s transport is closed with 4000 and it stores that session no more; another user\'s session is refused (4403) before any claim', { skip }, async () => {
  const redis = await startRedis(tmp());
  const authenticate = ({ request }) => new URL(request.url, 'http://x').searchParams.get('token') || null;
  const A = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 }, authenticate });
  const B = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 }, authenticate });
  const sa = await serve(A), sb = await serve(B);
  try {
    const ann = client(`${sa.url}?token=ann`, { hello: { room: 't' } });
    const bob = client(`${sb.url}?token=bob`, { hello: { room: 't' } });
    await Promise.all([ann.until(() => ann.open), bob.until(() => bob.open)]);
    for (let i = 0; i < 50; i++) bob.send(`b${i}`);
    await ann.until(() => ann.texts().length === 50, 8000, 'ann has bob\'s first 50');
    await until(() => ann.s.stat(SS_QUEUED) === 0 && bob.s.stat(SS_QUEUED) === 0, 'all acked');
    // Eve names Ann's session on B: refused, and A keeps it.
    const eve = client(`${sb.url}?token=eve`, { hello: { room: 't' }, blob: ann.serialize() });
    await eve.until(() => eve.closes.some((c) => c.code === CLOSE_FORBIDDEN), 8000, 'eve refused');
    eve.close();
    assert.ok(ann.open && A.sessions.get(ann.id)?.conn, 'ann undisturbed on A');
    // A copy of Ann's state on B takes her session over from A.
    const copy = client(`${sb.url}?token=ann`, { hello: { room: 't' }, blob: ann.serialize() });
    await copy.until(() => copy.open, 8000, 'copy open on B');
    await ann.until(() => ann.closes.some((c) => c.code === CLOSE_REPLACED), 8000, 'A closes its transport (4000)');
    assert.equal(copy.id, ann.id);
    await until(() => !A.sessions.has(ann.id), 'A forgot it');
    assert.ok(B.sessions.has(ann.id));
    // What A would still store of it, with the generation it had, is fenced out.
    const fenced = await A.store.commit([{ id: ann.id, gen: 1, room: 't', user: 'ann', owner: 'ann', echo: false, subs: [], blob: new Uint8Array([1]) }], [], []);
    assert.deepEqual(fenced, [ann.id]);
    for (let i = 50; i < 100; i++) bob.send(`b${i}`);
    await copy.until(() => copy.texts().length === 50, 8000, 'the copy gets what follows, once');
    assert.deepEqual(copy.texts(), Array.from({ length: 50 }, (_, i) => `b${i + 50}`));
    ann.close();
  } finally {
    A.close(); B.close(); sa.close(); sb.close();
  }
  await redis.stop();
});

test('rooms by subscription across processes: a Channel on A and one on B share the room\'s log and presence; a new session on B resumes from a position A handed out', { skip }, async () => {
  const redis = await startRedis(tmp());
  const A = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 } });
  const B = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 } });
  const sa = await serve(A), sb = await serve(B);
  const FAST = { WebSocket, reconnect: { minDelay: 20, maxDelay: 100, connectTimeout: 2000 }, heartbeat: false };
  const ann = new Socket(sa.url, { ...FAST, hello: { room: 'home-a', user: 'ann' } });
  const bob = new Socket(sb.url, { ...FAST, hello: { room: 'home-b', user: 'bob' } });
  ann.onerror = bob.onerror = () => {};
  const watch = (ch) => {
    ch.got = [];
    ch.joins = [];
    ch.addEventListener('message', (e) => ch.got.push({ data: e.data, from: e.from, offset: e.offset }));
    ch.addEventListener('presence', (e) => { if (e.change === 'join') ch.joins.push(e.user); });
    return ch;
  };
  try {
    const annX = watch(ann.subscribe('x')), bobX = watch(bob.subscribe('x'));
    await Promise.all([annX.ready, bobX.ready]);
    annX.initial = annX.users;
    bobX.initial = bobX.users;
    // Each learns of the other from its subscribe answer (the other was there
    // first) or from a join notice (it came after): presence across processes.
    const knows = (ch, user) => ch.initial.includes(user) || ch.joins.includes(user);
    await until(() => knows(annX, 'bob') && knows(bobX, 'ann'), `presence in x (${annX.initial}/${annX.joins}; ${bobX.initial}/${bobX.joins})`);
    for (let i = 0; i < 100; i++) { annX.send(`a${i}`); bobX.send(`b${i}`); }
    await until(() => annX.got.length === 100 && bobX.got.length === 100, 'room x both ways');
    assert.deepEqual(bobX.got.map((m) => m.data), Array.from({ length: 100 }, (_, i) => `a${i}`));
    assert.ok(bobX.got.every((m) => m.from === 'ann'), 'stamped on A, delivered on B');
    const offsets = [...annX.got, ...bobX.got].map((m) => m.offset).sort((x, y) => x - y);
    assert.deepEqual(offsets, Array.from({ length: 200 }, (_, i) => i + 1), 'one log across both processes: every offset once');
    // A position handed out on A, used by a new session on B: what followed, from the log.
    const at = bobX.got[49].offset;
    const epoch = bobX.position.epoch;
    const carl = new Socket(sb.url, { ...FAST, hello: { room: 'home-c', user: 'carl' } });
    carl.onerror = () => {};
    try {
      const carlX = watch(carl.subscribe('x', { since: { epoch, offset: at } }));
      await carlX.ready;
      await until(() => carlX.got.length === 200 - at, `carl catches up from ${at}`);
      assert.deepEqual(carlX.got.map((m) => m.offset), Array.from({ length: 200 - at }, (_, i) => at + 1 + i));
    } finally {
      carl.close();
    }
  } finally {
    ann.close(); bob.close();
    A.close(); B.close(); sa.close(); sb.close();
  }
  await redis.stop();
});

test('a process killed between two commits: what Redis holds of a session never counts a message that Redis does not hold, so its client resends it', { skip }, async () => {
  const redis = await startRedis(tmp());
  const A = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 } });
  const B = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 } });
  const sa = await serve(A), sb = await serve(B);
  // A's commits: the first holds its reply until `release`; the second goes
  // through; from the third on none reaches Redis (the process is dying).
  const commit = A.store.commit.bind(A.store);
  let armed = false, calls = 0, release, second;
  const hung = [];
  A.store.commit = (...x) => {
    if (!armed) return commit(...x);
    calls++;
    if (calls === 1) return commit(...x).then((v) => new Promise((ok) => { release = () => ok(v); }));
    if (calls === 2) return (second = commit(...x));
    return new Promise((_, no) => hung.push(no));
  };
  const ann = new Socket(sa.url, { WebSocket, heartbeat: false, reconnect: { minDelay: 10, maxDelay: 50 }, hello: { room: 'k', user: 'ann' } });
  ann.onerror = () => {};
  const bob = client(sb.url, { hello: { room: 'k', user: 'bob' } });
  let sb2;
  try {
    await Promise.all([once(ann, 'open'), bob.until(() => bob.open)]);
    await sleep(300); // quiet: the opening's commits are done
    armed = true;
    const slot = A.sessions.get(ann.session);
    ann.send('one'); // commit 1: stored, its reply held
    await until(() => release, `the first commit in flight (${calls})`);
    ann.send('two'); // waits in the batch behind it
    await sleep(50);
    // 'three' is read, and in the same pass, before its turn has settled, the first commit returns.
    slot.conn.ws.on('message', (d) => { if (Buffer.from(d).includes('three')) release(); });
    ann.send('three');
    await until(() => second, 'the second commit');
    await second;
    await sleep(20);
    await sa.kill(); // A is gone: what it had not stored is lost with it
    sb2 = await serve(B, sa.port); // and its address reaches B
    await until(() => bob.texts().length >= 3, `everything reaches bob through B (${bob.texts()})`, 8000);
    await sleep(100);
    assert.deepEqual(bob.texts(), ['one', 'two', 'three']);
  } finally {
    for (const no of hung) no(new Error('gone'));
    ann.close();
    A.close(); B.close(); sa.close(); sb.close(); sb2?.close();
  }
  await redis.stop();
});

test('a message whose publish this process missed, with nothing after it to show the gap, is read from the stream within two heartbeats', { skip }, async () => {
  const { default: Redis } = await import('ioredis');
  const redis = await startRedis(tmp());
  // Members in two rooms: the heartbeat's pipeline holds their refreshes before the mirrors' checks.
  const A = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 } });
  const sa = await serve(A);
  const r = new Redis(redis.url);
  try {
    const a = client(sa.url, { hello: { room: 'g', user: 'ann' } });
    const b = client(sa.url, { hello: { room: 'g', user: 'bob' } });
    const c = client(sa.url, { hello: { room: 'h', user: 'cat' } });
    await Promise.all([a, b, c].map((x) => x.until(() => x.open)));
    a.send('first');
    await b.until(() => b.texts().length === 1);
    // The same message stored once more, as a commit would, but never published.
    const [[, fields]] = await r.xrangeBuffer('sb:l:g', '-', '+');
    const off = (await r.hincrby('sb:r:g', 'next', 1)) - 1;
    await r.xadd('sb:l:g', `${off}-0`, 'd', fields[1], 't', Date.now(), 'n', 5);
    await until(() => b.texts().length === 2, 'the unpublished message, from the stream', 5000);
    assert.deepEqual(b.texts(), ['first', 'first']);
  } finally {
    r.disconnect(); A.close(); sa.close();
  }
  await redis.stop();
});

test('each room\'s stream in Redis is trimmed to the room limits: count, payload bytes and age, with its byte count kept exact', { skip }, async () => {
  const { default: Redis } = await import('ioredis');
  const redis = await startRedis(tmp());
  const A = await Relay.create({ redis: { url: redis.url, presenceTtlMs: 900 }, roomHistory: 50, roomHistoryBytes: 4000, roomHistoryMs: 600 });
  const sa = await serve(A);
  const r = new Redis(redis.url);
  const stream = async () => {
    const list = await r.xrange('sb:l:t', '-', '+');
    return { offsets: list.map(([id]) => Number(id.split('-')[0])), bytes: Number(await r.hget('sb:r:t', 'bytes')), sizes: list.map(([, f]) => Number(f[5])) };
  };
  try {
    const a = client(sa.url, { hello: { room: 't', user: 'ann' } });
    await a.until(() => a.open);
    const body = (i) => `${i}`.padStart(100, '.');
    for (let i = 0; i < 30; i++) a.send(body(i));
    await until(() => a.s.stat(SS_QUEUED) === 0, 'the first 30 acked (acks follow the commit)');
    let s = await stream();
    assert.equal(s.offsets.length, 30, 'under every limit: all kept');
    assert.equal(s.bytes, 3000);
    for (let i = 30; i < 100; i++) a.send(body(i));
    await until(() => a.s.stat(SS_QUEUED) === 0, 'all 100 acked');
    s = await stream();
    // 4000 payload bytes of 100 each: the newest 40, under the count of 50
    assert.deepEqual(s.offsets, Array.from({ length: 40 }, (_, i) => 61 + i), 'trimmed by bytes from the oldest');
    assert.equal(s.bytes, s.sizes.reduce((x, y) => x + y, 0), 'the byte count is the sum of what is kept');
    assert.ok(s.bytes <= 4000);
    await sleep(700);
    a.send(body(100));
    await until(() => a.s.stat(SS_QUEUED) === 0, 'the late one acked');
    s = await stream();
    assert.deepEqual(s.offsets, [101], 'older than roomHistoryMs: gone at the next append');
    assert.equal(s.bytes, 100);
  } finally {
    r.disconnect(); A.close(); sa.close();
  }
  await redis.stop();
});
