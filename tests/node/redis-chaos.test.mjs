// The Redis engine behind a real load balancer (docs/relay.md, "Engines"):
// nginx balances WebSocket upgrades round robin over two switchboard-relay
// --redis processes, so every reconnect may move to the other process. Two
// Sockets in one room send SB_CHAOS_MESSAGES (10,000) messages each way and a
// third, in another room, makes requests, while one relay at a time is
// killed with -9 and restarted 10 times at random moments (seeded: the seed
// is printed) and Redis itself is restarted once. Every message of each side
// arrives exactly once and in order, every request resolves exactly once
// with its own answer, no session is lost and nothing is reported
// unrecovered. Each process (redis-server, nginx, the relays) is the test's
// own, on loopback ports, under a temporary directory; all are stopped.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { skipChaos as skip, sleep, until, prng, procs, stop, startCluster } from './redis-procs.mjs';

const N = Number(process.env.SB_CHAOS_MESSAGES || 10000);
const KILLS = 10;
const say = process.env.SB_CHAOS_VERBOSE ? (m) => process.stderr.write(`chaos: ${m}\n`) : () => {};

after(async () => {
  for (const c of [...procs]) await stop(c, 'SIGKILL');
});

test(`nginx round robin over two relays on Redis: ${N} messages each way and requests while a relay is killed -9 ${KILLS} times and Redis restarts once; everything once, in order`, { skip, timeout: 300e3 }, async () => {
  await init();
  const seed = Number(process.env.SB_CHAOS_SEED || (Date.now() % 1e9));
  console.log(`# chaos seed ${seed} (SB_CHAOS_SEED=${seed} repeats this run's moments)`);
  const rand = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'sb-chaos-'));
  const c = await startCluster(dir);
  say('redis, relays and nginx up');
  const url = c.url;
  const FAST = { WebSocket, reconnect: { minDelay: 20, maxDelay: 300, connectTimeout: 3000 }, heartbeat: false };
  const sockets = [];
  const mk = (hello) => {
    const s = new Socket(url, { ...FAST, hello });
    s.onerror = () => {};
    s.got = [];
    s.ids = new Set();
    s.gaps = 0;
    s.opens = 0;
    s.addEventListener('message', (e) => { if (e.channel === 0) s.got.push(e.data); });
    s.addEventListener('open', () => { s.opens++; s.ids.add(s.session); });
    s.addEventListener('unrecovered', () => { s.gaps++; });
    sockets.push(s);
    return s;
  };
  const ann = mk({ room: 'chat', user: 'ann' });
  const bob = mk({ room: 'chat', user: 'bob' });
  const req = mk({ room: 'solo', user: 'req' });
  const answers = new Map(); // i -> times it resolved
  const failures = [];
  let sent = 0, asked = 0, allowed = 0, pump;
  try {
    await until(() => sockets.every((s) => s.readyState === 1), 'all open through nginx');
    // Messages at a bounded pace (the Socket's queue holds what a restart keeps unconfirmed).
    pump = setInterval(() => {
      for (let k = 0; k < 25 && sent < allowed; k++, sent++) {
        if (ann.bufferedAmount > (1 << 20) || bob.bufferedAmount > (1 << 20)) break;
        ann.send(`a${sent}`);
        bob.send(`b${sent}`);
      }
      for (let k = 0; k < 3 && asked < allowed / 5; k++, asked++) {
        const i = asked;
        req.request(`q${i}`, { timeout: 120e3 }).then((v) => {
          answers.set(i, (answers.get(i) || 0) + 1);
          if (v !== `q${i}`) failures.push(`request ${i} answered ${v}`);
        }, (e) => failures.push(`request ${i}: ${e.code} ${e.message}`));
      }
    }, 5);
    const redisAt = 1 + Math.floor(rand() * (KILLS - 1)); // Redis restarts after this kill
    const seg = N / (KILLS + 1);
    for (let k = 0; k < KILLS; k++) {
      allowed = Math.round((k + 1) * seg); // the traffic of this stretch; the kill at a random point of it
      const mark = Math.round((k + rand()) * seg);
      await until(() => sent >= mark, `traffic before kill ${k}`, 60000);
      const i = rand() < 0.5 ? 0 : 1;
      say(`kill ${k}: relay ${i} at ${sent} sent, ${ann.got.length}/${bob.got.length} got, ${answers.size} answers`);
      await stop(c.relays[i], 'SIGKILL');
      await sleep(Math.floor(rand() * 300));
      c.relays[i] = await c.startRelay(i);
      say(`relay ${i} restarted`);
      if (k === redisAt) {
        say('redis restarts');
        await stop(c.redis, 'SIGTERM');
        say('redis stopped');
        await sleep(300 + Math.floor(rand() * 1200));
        c.redis = await c.startRedis();
        say('redis back');
      }
    }
    allowed = N;
    await until(() => sent === N && asked === N / 5, 'everything sent', 120000);
    try {
      await until(() => ann.got.length >= N && bob.got.length >= N && answers.size === N / 5, 'everything delivered', 120000);
    } catch (e) {
      // What a stall leaves behind: each client's view and each relay's last words.
      for (const [n, s] of [['ann', ann], ['bob', bob], ['req', req]]) {
        console.log(`# ${n}: got ${s.got.length}, last ${s.got.at(-1)}, state ${s.readyState}, ${JSON.stringify(s.stats())}`);
      }
      console.log(`# answers ${answers.size}`);
      const missing = (got, prefix) => { const have = new Set(got); return Array.from({ length: N }, (_, i) => `${prefix}${i}`).filter((m) => !have.has(m)); };
      const lost = [...missing(bob.got, 'a'), ...missing(ann.got, 'b')];
      console.log(`# missing: ${lost.join(' ')}`);
      const { default: Redis } = await import('ioredis');
      const r = new Redis(c.redisUrl);
      const list = await r.xrangeBuffer('sb:l:chat', '-', '+');
      const where = new Map();
      for (const [id, f] of list) {
        const d = f[1].toString('utf8');
        const m = d.slice(d.indexOf('\n') + 1);
        if (lost.includes(m)) where.set(m, String(id));
      }
      console.log(`# stream: ${list.length} entries, ${String(list[0]?.[0])}..${String(list.at(-1)?.[0])}, ${JSON.stringify(await r.hgetall('sb:r:chat'))}; missing ones in it: ${JSON.stringify([...where])}`);
      r.disconnect();
      for (const r of c.relays) console.log(`# relay log: ${r.tail.replace(/\n/g, '\n# ')}`);
      throw e;
    }
    clearInterval(pump);
    await sleep(300);
    assert.deepEqual(failures, []);
    assert.equal(bob.got.length, N, 'nothing twice');
    assert.deepEqual(bob.got, Array.from({ length: N }, (_, i) => `a${i}`));
    assert.deepEqual(ann.got, Array.from({ length: N }, (_, i) => `b${i}`));
    assert.ok([...answers.values()].every((n) => n === 1), 'every request resolved once');
    for (const s of sockets) {
      assert.equal(s.ids.size, 1, 'one session all along');
      assert.equal(s.gaps, 0, 'nothing unrecovered');
    }
    assert.ok(sockets.some((s) => s.opens > 3), `the kills moved the clients (${sockets.map((s) => s.opens)})`);
  } finally {
    clearInterval(pump);
    for (const s of sockets) s.close();
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
