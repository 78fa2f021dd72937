// Helpers the Node tests share: a loopback server routing upgrades, polling
// for a condition, waiting for an event, killing a child process hard.
import { createServer } from 'node:http';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * An http server on a free (or given) loopback port routing upgrades to
 * `target.handleUpgrade` and requests to `target.handleRequest` (the
 * relay's HTTP transport; 404 if it has none or declines). kill() (alias close()) drops every connection
 * without a close handshake, like a crash, and stops listening.
 */
export async function serve(target, port = 0) {
  const srv = createServer((req, res) => {
    if (target.handleRequest?.(req, res)) return;
    res.writeHead(404);
    res.end();
  });
  const conns = new Set();
  srv.on('connection', (c) => { conns.add(c); c.on('close', () => conns.delete(c)); });
  srv.on('upgrade', (req, socket, head) => target.handleUpgrade(req, socket, head));
  await new Promise((ok, fail) => { srv.once('error', fail); srv.listen(port, '127.0.0.1', ok); });
  const p = srv.address().port;
  const kill = async () => {
    for (const c of conns) c.destroy();
    await new Promise((ok) => srv.close(() => ok()));
  };
  return { port: p, url: `ws://127.0.0.1:${p}/`, server: srv, kill, close: kill };
}

/**
 * Polls fn every few ms until it is true; throws naming `what` after `ms`.
 * The two optional arguments may come in either order: until(fn, 'what', 8000)
 * or until(fn, 8000, 'what').
 */
export async function until(fn, a, b) {
  const ms = typeof a === 'number' ? a : typeof b === 'number' ? b : 5000;
  const what = typeof a === 'string' ? a : typeof b === 'string' ? b : 'condition';
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what}: not met within ${ms} ms`);
    await sleep(5);
  }
}

/** The first `type` event on an EventTarget for which pred holds, or a rejection after ms. */
export function once(target, type, pred = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { target.removeEventListener(type, h); reject(new Error(`no ${type} within ${ms} ms`)); }, ms);
    const h = (e) => { if (pred(e)) { clearTimeout(t); target.removeEventListener(type, h); resolve(e); } };
    target.addEventListener(type, h);
  });
}

/** SIGKILL a spawned `{ child }` and wait for its exit (no-op if it is gone). */
export async function kill9(r) {
  if (r.child.exitCode !== null || r.child.signalCode) return;
  const gone = new Promise((ok) => r.child.once('exit', ok));
  r.child.kill('SIGKILL');
  await gone;
}
