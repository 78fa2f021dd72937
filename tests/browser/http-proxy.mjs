// The proxy of the HTTP transport's browser tests (tests/browser/socket-http*.test.mjs):
// Debian's nginx in front of one relay process, with its defaults
// (proxy_http_version 1.0, so no upgrade; response buffering on;
// proxy_read_timeout 60 s) or reloaded with the usual WebSocket lines, the
// test's own on free loopback ports under a temporary directory; and a page
// whose Socket records what the tests look at.
import { before, after } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init } from '../../js/core.js';
import { browser, server, routeWasm, watchErrors } from './harness.mjs';
import { NGINX, RELAY_CLI, freePort, start, stop, startNginx, nginxHead, sleep, procs } from '../node/redis-procs.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const skip = NGINX ? false : 'nginx is not installed (.ci/setup installs nginx-light)';

/**
 * A test file's proxies: a temporary directory under build/ (kept with
 * SB_KEEP_TMP), every process stopped after. Returns setup(name).
 */
export function useProxies(prefix) {
  let dir;
  before(async () => {
    await init();
    mkdirSync(join(ROOT, 'build'), { recursive: true });
    dir = mkdtempSync(join(ROOT, 'build', prefix));
  });
  after(async () => {
    for (const c of [...procs]) await stop(c, 'SIGKILL');
    if (dir && !process.env.SB_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  });
  return (name) => setup(dir, name);
}

export async function until(fn, what, ms = 30000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

/** nginx in front of one relay port: its defaults, or (upgrades) the usual WebSocket lines. */
function conf(d, listen, upstream, upgrades) {
  return `${nginxHead(d)}${upgrades ? '  map $http_upgrade $connection_upgrade { default upgrade; \'\' close; }\n' : ''}  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass http://127.0.0.1:${upstream};
${upgrades ? '      proxy_http_version 1.1;\n      proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection $connection_upgrade;\n' : ''}    }
  }
}
`;
}

/** A relay process on port with its sessions in SQLite, and nginx without upgrades in front of it. */
export async function setup(dir, name) {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  // nginx started as root runs its worker as nobody, which buffers big POST bodies to files under d.
  for (const x of [dir, d]) chmodSync(x, 0o755);
  const [port, lb] = await Promise.all([freePort(), freePort()]);
  const relay = async () => {
    const r = await start(process.execPath, [RELAY_CLI, '--port', String(port), '--db', join(d, 'relay.db'), '--allowed-origin', server.url,
      '--rate-messages', '0', '--rate-bytes', '0'], /"port"/, `relay :${port}`);
    if (process.env.SB_DEBUG) r.stderr.on('data', (x) => process.stdout.write(`# relay: ${x}`));
    return r;
  };
  writeFileSync(join(d, 'nginx.conf'), conf(d, lb, port, false));
  const s = { port, relay: await relay(), startRelay: relay, url: `ws://127.0.0.1:${lb}/`, direct: `ws://127.0.0.1:${port}/` };
  s.nginx = await startNginx(d, lb);
  s.allowUpgrades = () => { writeFileSync(join(d, 'nginx.conf'), conf(d, lb, port, true)); s.nginx.kill('SIGHUP'); };
  s.stop = async () => { await stop(s.nginx, 'SIGTERM'); await stop(s.relay, 'SIGKILL'); };
  return s;
}

export { unexpected } from './harness.mjs';

export const OPTS = { reconnect: { minDelay: 20, maxDelay: 300, connectTimeout: 3000 }, heartbeat: { interval: 1000, timeout: 1000 } };

/** A page with window.sock: a Socket in room `room` named user, collecting channel 0 and statechanges. */
export async function page(url, user, opts = {}) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await routeWasm(p);
  const errors = watchErrors(p);
  await p.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  await p.evaluate(async ({ url, user, opts }) => {
    const sb = await import('/js/index.js');
    await sb.init();
    window.got = [];
    window.moves = [];
    window.ids = new Set();
    window.t0 = 0;
    const s = new sb.Socket(url, { ...opts, hello: { room: 'chat', user } });
    s.onmessage = (e) => { if (e.channel === 0) window.got.push(e.data); };
    s.onerror = () => {};
    s.addEventListener('reconnecting', () => { if (!window.t0) window.t0 = performance.now(); }, { once: true });
    window.reasons = {};
    s.addEventListener('statechange', (e) => {
      if (e.transport) window.moves.push([e.reason, e.transport, s.stats().transport]);
      else window.reasons[`${e.state}:${e.reason}`] = (window.reasons[`${e.state}:${e.reason}`] || 0) + 1;
    });
    s.addEventListener('open', () => { window.ids.add(s.session); if (!window.opened) window.opened = [performance.now(), s.stats().transport]; });
    window.sock = s;
  }, { url, user, opts });
  return { page: p, ctx, errors };
}

/** Both sides send N messages, k every 5 ms: the page `p0`…, sock `${prefix}0`…; sock's count and end. */
export async function pump(p, sock, N, prefix, k = 10) {
  await p.evaluate(([N, k]) => {
    window.pump = (async () => {
      for (let i = 0; i < N;) {
        for (let j = 0; j < k && i < N; j++, i++) window.sock.send(`p${i}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
  }, [N, k]);
  const st = { sent: 0 };
  st.done = (async () => {
    while (st.sent < N) {
      for (let j = 0; j < k && st.sent < N; j++, st.sent++) sock.send(`${prefix}${st.sent}`);
      await sleep(5);
    }
  })();
  return st;
}
