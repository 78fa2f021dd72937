// The Socket behind a proxy that blocks the WebSocket upgrade (docs/socket.md,
// "When WebSocket is blocked"): Debian's nginx as a reverse proxy with its
// defaults (proxy_http_version 1.0, so no upgrade; response buffering on;
// proxy_read_timeout 60 s), the test's own on a free loopback port under a
// temporary directory (http-proxy.mjs). The page's Socket moves to HTTP and
// does everything it does over WebSocket; nginx reloaded (SIGHUP) with
// upgrades passed moves the Socket back to WebSocket; a server that answers
// nothing moves nothing. socket-http-chaos.test.mjs kills the relay under
// traffic behind the same nginx.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Socket } from '../../js/socket.js';
import { useBrowserAndServer, server } from './harness.mjs';
import { RELAY_CLI, freePort, start, stop, sleep } from '../node/redis-procs.mjs';
import { useProxies, skip, until, unexpected, OPTS, page, pump } from './http-proxy.mjs';

useBrowserAndServer();
const setup = useProxies('socket-http-');

test('behind nginx without upgrades: the Socket moves to HTTP and chats, requests, subscribes to rooms; statechange says why', { skip, timeout: 60e3 }, async () => {
  const s = await setup('basic');
  const { page: p, ctx, errors } = await page(s.url, 'ann', { ...OPTS, http: { probeInterval: 0 } });
  const bob = new Socket(s.direct, { WebSocket, ...OPTS, hello: { room: 'chat', user: 'bob' } });
  bob.onerror = () => {};
  const heard = [];
  bob.onmessage = (e) => { if (e.channel === 0) heard.push([e.from, e.data]); };
  try {
    await until(() => p.evaluate(() => window.sock.readyState === 1 && window.moves.length > 0), 'the page open over HTTP');
    await until(() => bob.readyState === 1, 'bob open');
    const st = await p.evaluate(() => ({ moves: window.moves, st: window.sock.stats() }));
    assert.deepEqual(st.moves, [['blocked', 'http', 'http']]);
    assert.equal(st.st.transport, 'http');
    assert.equal(bob.stats().transport, 'websocket');
    const r = await p.evaluate(async () => {
      const s = window.sock;
      const room = s.subscribe('side');
      window.side = [];
      room.onmessage = (e) => window.side.push(e.data);
      await room.ready;
      for (let i = 0; i < 200; i++) s.send(`a${i}`);
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => s.request(`q${i}`)));
      return { answers };
    });
    assert.deepEqual(r.answers, Array.from({ length: 20 }, (_, i) => `q${i}`));
    const side = bob.subscribe('side');
    await side.ready;
    for (let i = 0; i < 200; i++) bob.send(`b${i}`);
    side.send('in the side room');
    await until(() => heard.length >= 200, 'bob hears ann');
    await until(() => p.evaluate(() => window.got.length >= 200 && window.side.length >= 1), 'ann hears bob, in both rooms');
    assert.deepEqual(heard, Array.from({ length: 200 }, (_, i) => ['ann', `a${i}`]));
    const got = await p.evaluate(() => [window.got, window.side, window.opened, window.t0]);
    assert.deepEqual(got[0], Array.from({ length: 200 }, (_, i) => `b${i}`));
    assert.deepEqual(got[1], ['in the side room']);
    console.log(`# from the first failed upgrade to open over HTTP: ${Math.round(got[2][0] - got[3])} ms`);
    assert.deepEqual(unexpected(errors), []);
  } finally {
    bob.close();
    await ctx.close();
    await s.stop();
  }
});

test('nginx reloaded to pass upgrades mid-session: the Socket moves to WebSocket, nothing lost or doubled', { skip, timeout: 120e3 }, async () => {
  const N = 6000; // 4 every 5 ms each way: the move comes while they flow
  const s = await setup('upgrade');
  const { page: p, ctx, errors } = await page(s.url, 'page', { ...OPTS, http: { probeInterval: 300 } });
  const bob = new Socket(s.direct, { WebSocket, ...OPTS, hello: { room: 'chat', user: 'bob' } });
  bob.onerror = () => {};
  const got = [];
  bob.onmessage = (e) => { if (e.channel === 0) got.push(e.data); };
  try {
    await until(() => bob.readyState === 1, 'bob open');
    await until(() => p.evaluate(() => window.sock.readyState === 1 && window.sock.stats().transport === 'http'), 'the page open over HTTP');
    const out = await pump(p, bob, N, 'b', 4);
    await until(() => out.sent > N / 4, 'traffic first');
    s.allowUpgrades();
    await until(() => p.evaluate(() => window.sock.stats().transport === 'websocket'), 'the page on WebSocket', 30e3);
    assert.ok(out.sent < N, 'moved while messages flowed');
    await out.done;
    await until(async () => got.length >= N && (await p.evaluate(() => window.got.length)) >= N, 'everything delivered', 60e3);
    await sleep(300);
    const r = await p.evaluate(() => ({ got: window.got, moves: window.moves, ids: window.ids.size, st: window.sock.stats() }));
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => `p${i}`), 'bob: every message once, in order');
    assert.deepEqual(r.got, Array.from({ length: N }, (_, i) => `b${i}`), 'page: every message once, in order');
    assert.deepEqual(r.moves.map((m) => m.slice(0, 2)), [['blocked', 'http'], ['upgrade', 'websocket']]);
    assert.equal(r.ids, 1, 'one session');
    assert.equal(r.st.duplicates, 0, 'nothing arrived twice');
    assert.deepEqual(unexpected(errors), []);
  } finally {
    bob.close();
    await ctx.close();
    await s.stop();
  }
});

test('a server that answers nothing: no move to HTTP; once it is up, the Socket opens over WebSocket', { timeout: 60e3 }, async () => {
  const port = await freePort();
  const { page: p, ctx, errors } = await page(`ws://127.0.0.1:${port}/`, 'ann', { ...OPTS, http: { fallbackAfter: 2 } });
  let relay;
  try {
    await until(() => p.evaluate(() => window.sock.stats().attempt >= 8), 'eight failed attempts');
    const st = await p.evaluate(() => ({ moves: window.moves, t: window.sock.stats().transport }));
    assert.deepEqual(st.moves, []);
    assert.equal(st.t, 'websocket');
    relay = await start(process.execPath, [RELAY_CLI, '--port', String(port), '--allowed-origin', server.url], /"port"/, 'relay');
    await until(() => p.evaluate(() => window.sock.readyState === 1), 'open once the relay is up');
    // If the last attempt was HTTP's, it opened over HTTP; the confirming probe moves it back
    // (how soon depends on the machine's load: wait for it, do not time it).
    await until(() => p.evaluate(() => window.sock.stats().transport === 'websocket'), 'back on WebSocket', 15000);
    const r = await p.evaluate(() => ({ moves: window.moves, t: window.sock.stats().transport }));
    assert.deepEqual(r.moves, []);
    assert.equal(r.t, 'websocket');
    assert.deepEqual(unexpected(errors), []);
  } finally {
    await ctx.close();
    await stop(relay, 'SIGKILL');
  }
});
