// The chaos test through a proxy that blocks the WebSocket upgrade
// (docs/socket.md, "When WebSocket is blocked"): Debian's nginx with its
// defaults in front of one relay process (http-proxy.mjs); a page and a Node
// Socket both move to HTTP and send SB_CHAOS_MESSAGES (10,000) messages each
// way while the relay is killed -9 and restarted 10 times: every message
// arrives once, in order, on one session all along.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Socket } from '../../js/socket.js';
import { useBrowserAndServer } from './harness.mjs';
import { stop, sleep } from '../node/redis-procs.mjs';
import { useProxies, skip, until, unexpected, OPTS, page, pump } from './http-proxy.mjs';

useBrowserAndServer();
const setup = useProxies('socket-http-chaos-');

test('behind nginx without upgrades: 10,000 messages each way while the relay is killed -9 and restarted 10 times; everything once, in order', { skip, timeout: 300e3 }, async () => {
  const N = Number(process.env.SB_CHAOS_MESSAGES || 10000);
  const s = await setup('chaos');
  const { page: p, ctx, errors } = await page(s.url, 'page', { ...OPTS, queue: { maxMessages: 2 * N }, http: { probeInterval: 1000 } });
  // The Node side goes through the same nginx: it falls back too (fetch streaming in Node).
  const node = new Socket(s.url, { WebSocket, ...OPTS, queue: { maxMessages: 2 * N }, hello: { room: 'chat', user: 'node' } });
  node.onerror = () => {};
  const got = [];
  node.onmessage = (e) => { if (e.channel === 0) got.push(e.data); };
  const ids = new Set(), why = {};
  node.addEventListener('open', () => ids.add(node.session));
  node.addEventListener('statechange', (e) => { why[`${e.state}:${e.reason}`] = (why[`${e.state}:${e.reason}`] || 0) + 1; });
  try {
    await until(() => node.readyState === 1 && node.stats().transport === 'http', 'node open over HTTP');
    await until(() => p.evaluate(() => window.sock.readyState === 1 && window.sock.stats().transport === 'http'), 'the page open over HTTP');
    const out = await pump(p, node, N, 'n', 20);
    const opens = async () => [node.stats().opens, await p.evaluate(() => window.sock.stats().opens)];
    for (let i = 0; i < 10; i++) {
      await sleep(200 + Math.random() * 400);
      const [a, b] = await opens();
      await stop(s.relay, 'SIGKILL');
      await sleep(Math.random() * 200);
      s.relay = await s.startRelay();
      await until(async () => { const [x, y] = await opens(); return x > a && y > b; }, `both back after kill ${i + 1}`);
      if (process.env.SB_DEBUG) console.log(`# kill ${i + 1}: node sent ${out.sent} got ${got.length}, page got ${await p.evaluate(() => window.got.length)}`);
    }
    await out.done;
    try {
      await until(async () => got.length >= N && (await p.evaluate(() => window.got.length)) >= N, 'everything delivered', 60e3);
    } catch (e) {
      const pg = await p.evaluate(() => ({ n: window.got.length, last: window.got.slice(-2), st: window.sock.stats(), why: window.reasons }));
      throw new Error(`${e.message}: node got ${got.length} (${got.slice(-2)}), stats ${JSON.stringify(node.stats())} ${JSON.stringify(why)}; page got ${pg.n} (${pg.last}), stats ${JSON.stringify(pg.st)} ${JSON.stringify(pg.why)}`);
    }
    await sleep(300); // a duplicate would arrive now
    const pageGot = await p.evaluate(() => window.got);
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => `p${i}`), 'node: every message of the page once, in order');
    assert.deepEqual(pageGot, Array.from({ length: N }, (_, i) => `n${i}`), 'page: every message of node once, in order');
    const st = await p.evaluate(() => ({ ids: window.ids.size, st: window.sock.stats() }));
    assert.equal(st.ids, 1, 'one session all along');
    assert.equal(ids.size, 1);
    assert.equal(st.st.transport, 'http');
    assert.equal(node.stats().transport, 'http');
    assert.ok(st.st.reconnects >= 10, `the kills moved the page (${st.st.reconnects} reconnects)`);
    assert.deepEqual(unexpected(errors), []);
  } finally {
    node.close();
    await ctx.close();
    await s.stop();
  }
});
