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
import { spawn, spawnSync } from 'node:child_process';
import { createServer as netServer, connect } from 'node:net';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';

const RELAY_CLI = fileURLToPath(new URL('../../js/server/relay-cli.mjs', import.meta.url));
const have = (cmd, arg) => spawnSync(cmd, [arg]).status === 0;
const NGINX = ['/usr/sbin/nginx', 'nginx'].find((n) => have(n, '-v'));
const skip = !have('redis-server', '--version') ? 'redis-server is not installed (.ci/setup installs it)'
  : !NGINX ? 'nginx is not installed (.ci/setup installs nginx-light)' : false;
const N = Number(process.env.SB_CHAOS_MESSAGES || 10000);
const KILLS = 10;
const say = process.env.SB_CHAOS_VERBOSE ? (m) => process.stderr.write(`chaos: ${m}\n`) : () => {};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, what, ms = 30000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

/** A seeded PRNG (mulberry32): the run's random moments, reproducible from its seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const procs = new Set();
/** A child process, resolved once its output matches ready. */
function start(cmd, args, ready, what) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', up = false;
    const on = (d) => {
      if (up) return; // its later output (a log) is read and dropped
      out += d;
      if (ready.test(out)) {
        up = true;
        child.removeAllListeners('exit');
        procs.add(child);
        child.once('exit', () => procs.delete(child));
        resolve(child);
      }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.once('exit', (code) => reject(new Error(`${what} exited ${code}: ${out.slice(-2000)}`)));
  });
}
async function stop(child, signal) {
  if (!child || child.exitCode !== null || child.signalCode) return;
  const gone = new Promise((ok) => child.once('exit', ok));
  child.kill(signal);
  await gone;
}
after(async () => {
  for (const c of [...procs]) await stop(c, 'SIGKILL');
});

/** nginx in the foreground (daemon off), resolved once it accepts on port: it prints nothing when all is well. */
async function startNginx(dir, port) {
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (d) => { out += d; });
  procs.add(child);
  child.once('exit', () => procs.delete(child));
  const end = Date.now() + 10000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${out}`);
    const up = await new Promise((ok) => {
      const c = connect(port, '127.0.0.1', () => { c.destroy(); ok(true); });
      c.once('error', () => ok(false));
    });
    if (up) return child;
    if (Date.now() > end) throw new Error(`nginx does not accept on ${port}: ${out}`);
    await sleep(20);
  }
}

function nginxConf(dir, listen, upstreams) {
  const t = (x) => join(dir, x);
  return `daemon off;
worker_processes 1;
pid ${t('nginx.pid')};
error_log ${t('error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream relays {
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=0;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass http://relays;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_connect_timeout 2s;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout;
    }
  }
}
`;
}

test(`nginx round robin over two relays on Redis: ${N} messages each way and requests while a relay is killed -9 ${KILLS} times and Redis restarts once; everything once, in order`, { skip, timeout: 300e3 }, async () => {
  await init();
  const seed = Number(process.env.SB_CHAOS_SEED || (Date.now() % 1e9));
  console.log(`# chaos seed ${seed} (SB_CHAOS_SEED=${seed} repeats this run's moments)`);
  const rand = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'sb-chaos-'));
  mkdirSync(join(dir, 'redis'));
  const [redisPort, lbPort, p1, p2] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const redisArgs = ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', join(dir, 'redis'), '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];
  const startRedis = () => start('redis-server', redisArgs, /Ready to accept connections/, 'redis-server');
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const startRelay = (port) => start(process.execPath, [RELAY_CLI, '--port', String(port), '--redis', redisUrl, '--presence-ttl-ms', '3000', '--rate-messages', '0', '--rate-bytes', '0'], /"port"/, `relay :${port}`);
  writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, lbPort, [p1, p2]));
  let redis = await startRedis();
  say('redis up');
  const relays = [await startRelay(p1), await startRelay(p2)];
  say('relays up');
  const nginx = await startNginx(dir, lbPort);
  say('nginx up');
  const url = `ws://127.0.0.1:${lbPort}/`;
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
      await stop(relays[i], 'SIGKILL');
      await sleep(Math.floor(rand() * 300));
      relays[i] = await startRelay(i ? p2 : p1);
      say(`relay ${i} restarted`);
      if (k === redisAt) {
        say('redis restarts');
        await stop(redis, 'SIGTERM');
        say('redis stopped');
        await sleep(300 + Math.floor(rand() * 1200));
        redis = await startRedis();
        say('redis back');
      }
    }
    allowed = N;
    await until(() => sent === N && asked === N / 5, 'everything sent', 120000);
    await until(() => ann.got.length >= N && bob.got.length >= N && answers.size === N / 5, `everything delivered (${ann.got.length}, ${bob.got.length}, ${answers.size})`, 120000);
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
    await stop(nginx, 'SIGTERM');
    for (const r of relays) await stop(r, 'SIGKILL');
    await stop(redis, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});
