// Processes of the Redis chaos tests (tests/node/redis-chaos.test.mjs,
// tests/browser/redis-chaos.test.mjs): redis-server, switchboard-relay
// --redis and nginx, each the test's own on loopback ports under a temporary
// directory, and a seeded PRNG for the moments of the kills.
import { spawn, spawnSync } from 'node:child_process';
import { createServer as netServer, connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RELAY_CLI = fileURLToPath(new URL('../../js/server/relay-cli.mjs', import.meta.url));
const have = (cmd, arg) => spawnSync(cmd, [arg]).status === 0;
export const NGINX = ['/usr/sbin/nginx', 'nginx'].find((n) => have(n, '-v'));
/** Why a chaos test cannot run here, or false. */
export const skipChaos = !have('redis-server', '--version') ? 'redis-server is not installed (.ci/setup installs it)'
  : !NGINX ? 'nginx is not installed (.ci/setup installs nginx-light)' : false;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export async function until(fn, what, ms = 30000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

/** A seeded PRNG (mulberry32): the run's random moments, reproducible from its seed. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const procs = new Set();
/** A child process, resolved once its output matches ready. */
export function start(cmd, args, ready, what) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', up = false;
    child.tail = ''; // its last output, for a failure to show
    const on = (d) => {
      child.tail = (child.tail + d).slice(-8000);
      if (up) return; // its later output (a log) is kept only as the tail
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
export async function stop(child, signal) {
  if (!child || child.exitCode !== null || child.signalCode) return;
  const gone = new Promise((ok) => child.once('exit', ok));
  child.kill(signal);
  await gone;
}

/** nginx in the foreground (daemon off), resolved once it accepts on port: it prints nothing when all is well. */
export async function startNginx(dir, port) {
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

/** The start of a test's nginx.conf: in the foreground, every path (pid, logs, temp files) under dir; `http {` left open. */
export function nginxHead(dir) {
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
`;
}

export function nginxConf(dir, listen, upstreams) {
  return `${nginxHead(dir)}  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
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


/** Redis (append-only, fsync per write) and two relays on it, behind nginx round robin; extra: more relay arguments. */
export async function startCluster(dir, extra = []) {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(join(dir, 'redis'), { recursive: true });
  const [redisPort, lbPort, p1, p2] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const redisArgs = ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', join(dir, 'redis'), '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];
  const c = {
    url: `ws://127.0.0.1:${lbPort}/`,
    redisUrl: `redis://127.0.0.1:${redisPort}`,
    ports: [p1, p2],
    startRedis: () => start('redis-server', redisArgs, /Ready to accept connections/, 'redis-server'),
    startRelay: (i) => start(process.execPath, [RELAY_CLI, '--port', String(c.ports[i]), '--redis', c.redisUrl, '--presence-ttl-ms', '3000',
      '--rate-messages', '0', '--rate-bytes', '0', ...extra], /"port"/, `relay :${c.ports[i]}`),
  };
  c.redis = await c.startRedis();
  c.relays = [await c.startRelay(0), await c.startRelay(1)];
  writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, lbPort, [p1, p2]));
  c.nginx = await startNginx(dir, lbPort);
  c.stop = async () => {
    await stop(c.nginx, 'SIGTERM');
    for (const r of c.relays) await stop(r, 'SIGKILL');
    await stop(c.redis, 'SIGTERM');
  };
  return c;
}
