// Property tests of the Socket glue against a hostile server (issue 18,
// item 6): over a real `ws` server, a server-role session handshakes
// correctly (tests/node/fake-server.mjs), then sends random bytes, text, and
// real frames and batches of its own mutated, then restarts. For every
// seeded run: nothing escapes as an uncaught exception; every error event
// carries a SwitchboardError with a code, and a connection the client gives up
// for a protocol error was reported first; the same Socket reconnects and
// receives the next well-formed message exactly once; and a request
// round-trips afterwards on a fresh Socket over the same core.
// A failure prints the seed: SB_PROP_SEED=<seed> replays it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { init, Socket, SwitchboardError } from '../../js/index.js';
import { Relay } from '../../js/server/index.mjs';
import { handshake, frames } from './fake-server.mjs';
import { property, watchUncaught, until } from './props.mjs';

await init();
const watch = watchUncaught();
after(() => watch.stop());

const PROTOCOL = 'switchboard.v1';
const FAST = { reconnect: { minDelay: 1, maxDelay: 20, connectTimeout: 2000 }, heartbeat: false };

async function serve(onConnection) {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => PROTOCOL });
  wss.on('connection', onConnection);
  const srv = createServer();
  srv.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  return {
    url: `ws://127.0.0.1:${srv.address().port}/`,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise((ok) => srv.close(() => ok()));
    },
  };
}

/** What a hostile server sends after the welcome: real frames of its session, mutated, and junk. */
function hostile(r, session) {
  const real = [];
  for (let i = 0; i < 6; i++) {
    const n = r.int(4);
    for (let k = 0; k < n; k++) {
      const big = r.bool(0.3);
      session.send(r.pick([0, 0, 1, 7]), r.bool(0.3), big ? 'x'.repeat(2000 + r.int(3000)) : r.string(30), Date.now());
    }
    real.push(...frames(session));
  }
  const out = [];
  const n = 1 + r.int(5);
  for (let i = 0; i < n; i++) {
    switch (r.int(7)) {
      case 0: case 6: if (real.length) out.push(r.pick(real)); break;
      case 1: case 2: case 3: if (real.length) out.push(Buffer.from(r.mutate(r.pick(real), real))); break;
      case 4: out.push(Buffer.from(r.bytes(r.int(64)))); break;
      default: out.push(r.pick(['text', '{"t":"welcome"}', '']));
    }
  }
  return out;
}

test('Socket: random and mutated server frames are delivered or reported, and the same Socket goes on after a restart', async () => {
  await property('socket server frames', 6, async (r) => {
    let conns = 0;
    const rounds = 1 + r.int(4);
    const srv = await serve((ws) => {
      const n = ++conns;
      handshake(ws, (session) => {
        if (n <= rounds) {
          for (const m of hostile(r, session)) ws.send(m, { binary: typeof m !== 'string' });
          ws.close(1012, 'restart'); // over: the client must come back
        } else {
          session.send(0, false, 'again', Date.now());
          for (const b of frames(session)) ws.send(b);
        }
      }, { compress: r.bool() });
    });
    const sock = new Socket(srv.url, { WebSocket, ...FAST });
    const log = [];
    const got = [];
    sock.addEventListener('error', (e) => log.push(['error', e.error]));
    sock.addEventListener('reconnecting', (e) => log.push(['reconnecting', e.reason]));
    sock.addEventListener('message', (e) => got.push(e.data));
    try {
      await until(() => got.includes('again') || sock.readyState === Socket.CLOSED, 'the message after the restart', 8000);
      for (const [t, e] of log) if (t === 'error') assert.ok(e instanceof SwitchboardError && typeof e.code === 'string' && e.code, `error event without a SwitchboardError: ${e?.stack || e}`);
      // Every connection given up for a protocol error was reported before it.
      log.forEach(([t, reason], i) => {
        if (t === 'reconnecting' && reason === 'protocol-error') {
          assert.ok(log.slice(0, i).some(([u, e]) => u === 'error' && e.code !== 'CONNECTION_LOST'), 'protocol error with no error event');
        }
      });
      assert.notEqual(sock.readyState, Socket.CLOSED, `the Socket closed: ${JSON.stringify(log.map(([t, e]) => [t, e?.code ?? e]))}`);
      assert.equal(got.filter((d) => d === 'again').length, 1, 'the message after the restart, exactly once');
      assert.equal(got.at(-1), 'again');
      watch.check('while the server sent hostile frames');
    } finally {
      sock.close();
      await srv.close();
    }
  });
  // The core is intact: a fresh Socket's request round-trips through a relay.
  const relay = await Relay.create();
  const httpSrv = createServer();
  httpSrv.on('upgrade', (q, so, h) => relay.handleUpgrade(q, so, h));
  await new Promise((ok) => httpSrv.listen(0, '127.0.0.1', ok));
  const sock = new Socket(`ws://127.0.0.1:${httpSrv.address().port}/`, { WebSocket, ...FAST });
  try {
    assert.equal(await sock.request('still fine'), 'still fine');
  } finally {
    sock.close();
    relay.close();
    await new Promise((ok) => httpSrv.close(() => ok()));
  }
  watch.check('after the hostile servers');
});
