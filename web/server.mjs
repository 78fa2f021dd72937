// Dev server: serves the repository (pages in web/, glue in js/, builds in
// dist/) on two loopback ports, which browsers treat as two origins, and
// mounts every service in web/services/*.mjs (SSE endpoint, WebSocket relay…).
//
//   node web/server.mjs [--port 8080] [--port2 8081] [--host 127.0.0.1]
import { createServer } from 'node:http';
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
// tests/browser/fixtures holds pages that exist only for the browser tests.
const SERVED = ['web', 'js', 'dist', 'node_modules', 'tests/browser/fixtures'].map((d) => join(ROOT, d) + sep);

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ts': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

async function serveStatic(req, res) {
  let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path === '/') path = '/web/index.html';
  if (path === '/favicon.ico') {
    res.writeHead(204);
    res.end();
    return true;
  }
  const file = normalize(join(ROOT, path));
  if (!SERVED.some((d) => file.startsWith(d))) return false;
  let info;
  try {
    info = await stat(file);
  } catch {
    return false;
  }
  if (!info.isFile()) return false;
  const body = await readFile(file);
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] || 'application/octet-stream',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

/**
 * Start the dev server. Port 0 picks free ports.
 * @returns {Promise<{url: string, url2: string, crossSiteUrl: string, ports: number[], close(): Promise<void>}>}
 */
export async function startServer({ host = '127.0.0.1', port = 0, port2 = 0, quiet = false } = {}) {
  const routes = [];
  const upgrades = [];
  const log = quiet ? () => {} : (...a) => console.log('[dev]', ...a);

  const handler = async (req, res) => {
    try {
      const path = new URL(req.url, 'http://x').pathname;
      for (const [prefix, fn] of routes) {
        if (path.startsWith(prefix) && (await fn(req, res))) return;
      }
      if ((req.method === 'GET' || req.method === 'HEAD') && (await serveStatic(req, res))) return;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    } catch (e) {
      log('error', req.url, e);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error');
    }
  };
  const onUpgrade = (req, socket, head) => {
    const path = new URL(req.url, 'http://x').pathname;
    for (const [prefix, fn] of upgrades) {
      if (path.startsWith(prefix)) return fn(req, socket, head);
    }
    socket.destroy();
  };

  const servers = [createServer(handler), createServer(handler)];
  const ports = [];
  for (const [i, s] of servers.entries()) {
    s.on('upgrade', onUpgrade);
    await new Promise((ok, fail) => {
      s.once('error', fail);
      s.listen(i === 0 ? port : port2, host, ok);
    });
    ports.push(s.address().port);
  }

  const ctx = {
    route: (prefix, fn) => routes.push([prefix, fn]),
    upgrade: (prefix, fn) => upgrades.push([prefix, fn]),
    servers,
    ports,
    host,
    log,
  };
  const closers = [];
  const dir = join(ROOT, 'web', 'services');
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.mjs')).sort();
  for (const name of names) {
    const mod = await import(pathToFileURL(join(dir, name)).href);
    const handle = await mod.default(ctx);
    if (handle && typeof handle.close === 'function') closers.push(handle);
  }

  return {
    url: `http://${host}:${ports[0]}`,
    url2: `http://${host}:${ports[1]}`,
    crossSiteUrl: `http://localhost:${ports[1]}`,
    ports,
    async close() {
      for (const c of closers) await c.close();
      for (const s of servers) {
        s.closeAllConnections?.();
        await new Promise((ok) => s.close(() => ok()));
      }
    },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const srv = await startServer({
    host: arg('--host', '127.0.0.1'),
    port: Number(arg('--port', 8080)),
    port2: Number(arg('--port2', 8081)),
  });
  console.log(`switchboard demos: ${srv.url}/  (second origin for the iframe bridge: ${srv.url2})`);
  const stop = async () => {
    await srv.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
