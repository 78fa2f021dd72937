// The Redis engine behind nginx, with browsers (docs/relay.md, "Engines"):
// two Chromium pages in one room and a Node Socket in another, through nginx
// round robin over two switchboard-relay --redis processes. The pages send
// SB_CHAOS_MESSAGES (10,000) messages each way, the Node client makes
// requests, while one relay at a time is killed with -9 and restarted 10
// times at seeded random moments and Redis restarts once: every message of
// each page arrives at the other exactly once and in order, every request
// resolves exactly once with its own answer, no session is lost, nothing is
// reported unrecovered. tests/node/redis-chaos.test.mjs is the same with
// Node clients only.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { useBrowserAndServer, browser, server, routeWasm, watchErrors, unexpected } from './harness.mjs';
import { skipChaos as skip, sleep, prng, procs, stop, startCluster } from '../node/redis-procs.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const N = Number(process.env.SB_CHAOS_MESSAGES || 10000);
const KILLS = 10;

useBrowserAndServer();
after(async () => {
  for (const c of [...procs]) await stop(c, 'SIGKILL');
});

async function until(fn, what, ms = 60000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}


/** A page with a Socket in room `chat` named user; it sends `${prefix}${i}` up to window.allowed. */
async function chatPage(url, user, prefix) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await routeWasm(page);
  const errors = watchErrors(page);
  await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  await page.evaluate(async ({ url, user, prefix }) => {
    const sb = await import('/js/index.js');
    await sb.init();
    window.got = [];
    window.sent = 0;
    window.allowed = 0;
    window.ids = new Set();
    window.gaps = 0;
    const s = new sb.Socket(url, { reconnect: { minDelay: 20, maxDelay: 300, connectTimeout: 3000 }, heartbeat: false, hello: { room: 'chat', user } });
    s.onmessage = (e) => { if (e.channel === 0) window.got.push(e.data); };
    s.onerror = () => {};
    s.addEventListener('open', () => window.ids.add(s.session));
    s.addEventListener('unrecovered', () => { window.gaps++; });
    window.sock = s;
    await new Promise((r) => s.addEventListener('open', r, { once: true }));
    window.pump = setInterval(() => {
      for (let k = 0; k < 25 && window.sent < window.allowed; k++) {
        if (s.bufferedAmount > (1 << 20)) break;
        s.send(`${prefix}${window.sent++}`);
      }
    }, 5);
  }, { url, user, prefix });
  return { page, ctx, errors };
}

test(`browsers behind nginx over two relays on Redis: ${N} messages each way between two pages and requests from Node while a relay is killed -9 ${KILLS} times and Redis restarts once; everything once, in order`, { skip, timeout: 300e3 }, async () => {
  await init();
  const seed = Number(process.env.SB_CHAOS_SEED || (Date.now() % 1e9));
  console.log(`# chaos seed ${seed} (SB_CHAOS_SEED=${seed} repeats this run's moments)`);
  const rand = prng(seed);
  mkdirSync(join(ROOT, 'build'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, 'build', 'redis-chaos-'));
  const c = await startCluster(dir, ['--allowed-origin', server.url]);
  const a = await chatPage(c.url, 'ann', 'a');
  const b = await chatPage(c.url, 'bob', 'b');
  const req = new Socket(c.url, { WebSocket, reconnect: { minDelay: 20, maxDelay: 300, connectTimeout: 3000 }, heartbeat: false, hello: { room: 'solo', user: 'req' } });
  req.onerror = () => {};
  const reqIds = new Set();
  req.addEventListener('open', () => reqIds.add(req.session));
  const answers = new Map();
  const failures = [];
  let asked = 0, allowed = 0, pump;
  const allow = (n) => Promise.all([a, b].map((p) => p.page.evaluate((x) => { window.allowed = x; }, n)));
  const sentBy = (p) => p.page.evaluate(() => window.sent);
  try {
    await until(() => req.readyState === 1, 'the Node client open through nginx');
    pump = setInterval(() => {
      for (let k = 0; k < 3 && asked < allowed / 5; k++, asked++) {
        const i = asked;
        req.request(`q${i}`, { timeout: 120e3 }).then((v) => {
          answers.set(i, (answers.get(i) || 0) + 1);
          if (v !== `q${i}`) failures.push(`request ${i} answered ${v}`);
        }, (e) => failures.push(`request ${i}: ${e.code} ${e.message}`));
      }
    }, 5);
    const redisAt = 1 + Math.floor(rand() * (KILLS - 1));
    const seg = N / (KILLS + 1);
    for (let k = 0; k < KILLS; k++) {
      allowed = Math.round((k + 1) * seg);
      await allow(allowed);
      const mark = Math.round((k + rand()) * seg);
      await until(async () => (await sentBy(a)) >= mark, `traffic before kill ${k}`);
      const i = rand() < 0.5 ? 0 : 1;
      await stop(c.relays[i], 'SIGKILL');
      await sleep(Math.floor(rand() * 300));
      c.relays[i] = await c.startRelay(i);
      if (k === redisAt) {
        await stop(c.redis, 'SIGTERM');
        await sleep(300 + Math.floor(rand() * 1200));
        c.redis = await c.startRedis();
      }
    }
    allowed = N;
    await allow(N);
    const counts = () => Promise.all([a, b].map((p) => p.page.evaluate(() => window.got.length)));
    try {
      await until(async () => {
        const [na, nb] = await counts();
        return na >= N && nb >= N && answers.size === N / 5;
      }, `everything delivered (${N} each way, ${N / 5} answers)`, 120000);
    } catch (e) {
      // What a stall leaves behind: each client's view and each relay's last words.
      for (const p of [a, b]) {
        console.log(`# page: ${await p.page.evaluate(() => `got ${window.got.length}, last ${window.got.at(-1)}, sent ${window.sent}, state ${window.sock.readyState}, ${JSON.stringify(window.sock.stats())}`)}`);
      }
      console.log(`# req: state ${req.readyState}, answers ${answers.size}, ${JSON.stringify(req.stats())}`);
      for (const r of c.relays) console.log(`# relay log: ${r.tail.replace(/\n/g, '\n# ')}`);
      throw e;
    }
    clearInterval(pump);
    await sleep(300); // a duplicate would arrive now
    const [gotA, gotB] = await Promise.all([a, b].map((p) => p.page.evaluate(() => window.got)));
    assert.deepEqual(failures, []);
    assert.deepEqual(gotB, Array.from({ length: N }, (_, i) => `a${i}`), 'bob: every message of ann once, in order');
    assert.deepEqual(gotA, Array.from({ length: N }, (_, i) => `b${i}`), 'ann: every message of bob once, in order');
    assert.ok([...answers.values()].every((n) => n === 1), 'every request resolved once');
    let moved = 0;
    for (const p of [a, b]) {
      const st = await p.page.evaluate(() => ({ ids: window.ids.size, gaps: window.gaps, reconnects: window.sock.stats().reconnects }));
      assert.equal(st.ids, 1, 'one session all along');
      assert.equal(st.gaps, 0, 'nothing unrecovered');
      assert.deepEqual(unexpected(p.errors), []);
      moved += st.reconnects;
    }
    assert.ok(moved >= 3, `the kills moved the pages (${moved} reconnects)`);
    assert.equal(reqIds.size, 1);
  } finally {
    clearInterval(pump);
    req.close();
    for (const p of [a, b]) await p.ctx.close();
    await c.stop();
    if (!process.env.SB_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  }
});
