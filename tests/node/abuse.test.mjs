// The relay bounded under abuse (docs/socket.md, "Limits"): connections that
// never say hello, a message flood, compression bombs, idle connections
// holding no zlib state, a memory budget, a client that stops reading,
// clients that reset while refused, the connection caps. In every test a
// well-behaved pair keeps going (in the same room as the flood and the
// client that stops reading) and receives every message once, in order.
// About 20 s in all, most of it opening the 10,000 connections and inflating
// 300 x 8 MiB.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import WebSocket from 'ws';
import { init } from '../../js/core.js';
import { encodeFrame } from '../../js/frame.js';
import { Relay } from '../../js/server/relay.mjs';
import {
  SESSION_PROTOCOL, SS_QUEUED, SS_BYTES_IN, SS_PAYLOAD_BYTES_IN, FRAME_F_ACK_REQ, FRAME_F_COMPRESSED,
  CLOSE_TRY_AGAIN, CLOSE_HELLO_TIMEOUT, CLOSE_RATE_LIMITED,
} from '../../js/constants.js';
import { SessionClient, hijacked } from './session-client.mjs';
import { serve, sleep, until } from './net.mjs';

before(async () => {
  await init();
});





/**
 * A well-behaved pair in room: a sends a numbered message every 10 ms;
 * check() stops it and asserts that b has every one of them once, in order,
 * and that neither was ever closed.
 */
async function pair(url, room) {
  const a = new SessionClient(url, { hello: { room, user: 'a' } });
  const b = new SessionClient(url, { hello: { room, user: 'b' } });
  await Promise.all([a.until(() => a.open, 5000, 'a open'), b.until(() => b.open, 5000, 'b open')]);
  let n = 0;
  const pump = setInterval(() => a.send(`a${n++}`), 10);
  const mine = () => b.texts().filter((t) => /^a\d+$/.test(t));
  return {
    a, b,
    get sent() { return n; },
    async check(what) {
      await until(() => n >= 20, 5000, `${what}: the pair sent`);
      clearInterval(pump);
      assert.ok(n > 10, `${what}: the pair kept sending (${n})`);
      await b.until(() => mine().length >= n, 10000, `${what}: b has all of a's messages`);
      assert.deepEqual(mine(), Array.from({ length: n }, (_, i) => `a${i}`), what);
      assert.deepEqual(a.closes, [], `${what}: a was never closed`);
      assert.deepEqual(b.closes, [], `${what}: b was never closed`);
      assert.deepEqual(b.errors, [], `${what}: b heard of no loss`);
    },
    close() { clearInterval(pump); a.close(); b.close(); },
  };
}

/** Open a plain WebSocket offering the subprotocol; resolves 'open' or the error message. */
function dial(url, onClose) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, [SESSION_PROTOCOL], { perMessageDeflate: false });
    ws.on('open', () => resolve({ ws, result: 'open' }));
    ws.on('error', (e) => resolve({ ws, result: e.message }));
    ws.on('close', (code) => onClose?.(code));
  });
}

test('10,000 connections that never say hello are shed by the hello deadline; the relay drops back to holding none', async () => {
  const relay = await Relay.create({ helloTimeoutMs: 500, maxConnections: 20000, maxConnectionsPerAddress: 20000 });
  const s = await serve(relay);
  const p = await pair(s.url, 'storm');
  try {
    const N = 10000, BATCH = 500;
    const codes = new Map();
    const held = []; // sockets the relay holds apart from the pair, sampled after each batch
    const t0 = Date.now();
    for (let k = 0; k < N; k += BATCH) {
      const r = await Promise.all(Array.from({ length: BATCH }, () => dial(s.url, (code) => codes.set(code, (codes.get(code) || 0) + 1))));
      assert.ok(r.every((x) => x.result === 'open'), 'every one admitted');
      held.push(relay.usage().sockets - 2);
    }
    const opened = Date.now() - t0;
    await until(() => relay.usage().sockets === 2 && relay.conns.size === 2, 15000, 'every silent connection shed');
    held.push(relay.usage().sockets - 2);
    await until(() => codes.get(CLOSE_HELLO_TIMEOUT) === N, 5000, 'every one closed with 4003');
    assert.deepEqual([...codes.keys()], [CLOSE_HELLO_TIMEOUT]);
    assert.equal(relay.stats.connections, N + 2);
    assert.equal(relay.sessions.size, 2, 'no session was made for them');
    assert.equal(held.at(-1), 0);
    // Shed as they came: never near all of them at once.
    assert.ok(Math.max(...held) < N / 2, `held at most ${Math.max(...held)} (opened in ${opened} ms)`);
    await p.check('storm');
  } finally {
    p.close(); relay.close();
    await s.kill();
  }
});

test('a message flood is throttled (the socket paused) and then closed with 4008 RATE_LIMITED; what it got in arrives once', async () => {
  const logs = [];
  const relay = await Relay.create({ rateMessages: 500, rateMessagesBurst: 500, rateToleranceMs: 1000, log: (m) => logs.push(m) });
  const s = await serve(relay);
  const room = 'flood';
  const p = await pair(s.url, room);
  const { ws } = await hijacked(s.url, room);
  try {
    let seq = 0, closedAt = 0;
    ws.closed.then(() => { closedAt = Date.now(); });
    const t0 = Date.now();
    // 250 frames every 20 ms: 25 times the rate.
    while (!closedAt && Date.now() - t0 < 10000) {
      if (ws.readyState === 1) {
        ws.send(encodeFrame({ kind: 'batch', payload: Buffer.concat(Array.from({ length: 250 }, () => {
          seq++;
          return encodeFrame({ kind: 'message', channel: 0, seq, flags: FRAME_F_ACK_REQ, payload: `f${seq}` });
        })) }));
      }
      await sleep(20);
    }
    const c = await ws.closed;
    assert.equal(c.code, CLOSE_RATE_LIMITED, JSON.stringify(c));
    assert.match(c.reason, /^RATE_LIMITED: messages over the rate limit/);
    assert.ok(relay.stats.pauses >= 1, 'throttled first');
    assert.ok(closedAt - t0 >= 400, `not closed before a pause had run out (${closedAt - t0} ms)`);
    // What the relay took of the flood reaches b once, in order, and is bounded
    // by the burst + the rate over the time + the tolerance.
    const flood = () => p.b.texts().filter((t) => t[0] === 'f');
    await sleep(100);
    const got = flood();
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => `f${i + 1}`));
    assert.ok(got.length >= 500 && got.length <= 500 + 500 * (closedAt - t0) / 1000 + 500 + 250, `${got.length} of ${seq}`);
    assert.ok(got.length < seq, 'not all of it');
    assert.ok(logs.some((l) => /4008 RATE_LIMITED/.test(l)), 'logged');
    await p.check('flood');
  } finally {
    ws.terminate();
    p.close(); relay.close();
    await s.kill();
  }
});

/** A compressed batch of 8 messages of (1 MiB - 128) zeros: ~8 KB that inflate to 8 MiB. */
function bomb() {
  const frames = Array.from({ length: 8 }, (_, i) => encodeFrame({ kind: 'message', channel: 0, seq: i + 1, flags: FRAME_F_ACK_REQ, payload: Buffer.alloc((1 << 20) - 128) }));
  return encodeFrame({ kind: 'batch', flags: FRAME_F_COMPRESSED, payload: deflateRawSync(Buffer.concat(frames), { level: 9 }) });
}

test('300 connections each sending an 8 KB deflate bomb stay open and the heap stays small: the buffers go back after each, and a detached session holds no link', async () => {
  const budget = 256 << 20;
  const relay = await Relay.create({ maxMemory: budget, maxConnectionsPerAddress: 1000 });
  const s = await serve(relay);
  const p = await pair(s.url, 'bombs');
  const hostile = [];
  try {
    const b = bomb();
    assert.ok(b.length < 8400, `${b.length} B`);
    for (let k = 0; k < 300; k += 50) {
      hostile.push(...await Promise.all(Array.from({ length: 50 }, (_, i) => hijacked(s.url, `bomb-${k + i}`))));
    }
    const before = relay.usage().memory;
    let peak = 0;
    const sample = setInterval(() => { peak = Math.max(peak, relay.core.memory.buffer.byteLength); }, 5);
    const in0 = relay.stats.messagesIn;
    for (const { ws } of hostile) ws.send(b);
    // 2,400 messages of 1 MiB each, plus the pair's.
    await until(() => relay.stats.messagesIn - in0 >= 2400, 30000, 'every bomb taken');
    clearInterval(sample);
    peak = Math.max(peak, relay.core.memory.buffer.byteLength);
    const free = relay.core.fn.emmalloc_free_dynamic_memory() >>> 0;
    const inUse = relay.core.memory.buffer.byteLength - free;
    assert.equal(hostile.filter(({ ws }) => ws.readyState === 1).length, 300, 'none closed');
    assert.ok(peak <= budget);
    // 300 idle connections of 8 MiB each would be 2.4 GB; a few messages' worth at most.
    assert.ok(peak < 96 << 20, `peak ${peak >> 20} MiB (${before >> 20} MiB before)`);
    assert.ok(inUse < 300 * (128 << 10), `${(inUse / 300) >> 10} KiB held per connection`);
    // Their sockets drop: the sessions wait, detached, without their links' buffers.
    for (const { ws } of hostile) ws.terminate();
    await until(() => relay.conns.size === 2, 5000, 'the bombers detached');
    const detached = relay.core.memory.buffer.byteLength - (relay.core.fn.emmalloc_free_dynamic_memory() >>> 0);
    assert.equal(relay.sessions.size, 302);
    assert.ok(detached < (2 << 20) + 300 * (16 << 10), `${detached >> 10} KiB for 300 detached sessions`);
    await p.check('bombs');
  } finally {
    for (const { c } of hostile) c.close();
    p.close(); relay.close();
    await s.kill();
  }
});

test('an idle connection holds no compression state: 300 open compressing sessions cost the core a few KiB each; a link that then sends compresses', async () => {
  const relay = await Relay.create({ maxConnectionsPerAddress: 1000 });
  const s = await serve(relay);
  const inUse = () => relay.core.memory.buffer.byteLength - (relay.core.fn.emmalloc_free_dynamic_memory() >>> 0);
  const clients = [];
  try {
    const warm = new SessionClient(s.url, { hello: { room: 'idle-warm' } });
    await warm.until(() => warm.open, 5000, 'warm open');
    const before = inUse();
    const N = 300;
    for (let k = 0; k < N; k += 100) {
      const batch = Array.from({ length: 100 }, (_, i) => new SessionClient(s.url, { hello: { room: `idle-${k + i}`, user: `u${k + i}` } }));
      clients.push(...batch);
      await Promise.all(batch.map((c) => c.until(() => c.open, 10000, 'idle open')));
    }
    assert.equal(relay.conns.size, N + 1);
    const per = (inUse() - before) / N;
    // zlib's deflate state alone is ~260 KiB: made per link, this was ~280 KiB.
    assert.ok(per < 24 << 10, `${(per / 1024).toFixed(1)} KiB of the core per idle connection`);
    // Compression still happens once a link has something worth compressing.
    const [a, b] = clients;
    const text = 'the release review is after lunch, bring the dashboard numbers please. '.repeat(40);
    const got = b.s.stat(SS_BYTES_IN);
    const payload = b.s.stat(SS_PAYLOAD_BYTES_IN);
    const far = new SessionClient(s.url, { hello: { room: 'idle-1', user: 'far' } });
    clients.push(far);
    await far.until(() => far.open, 5000, 'far open');
    far.send(text);
    await b.until(() => b.texts().includes(text), 5000, 'b got it');
    assert.ok(b.s.stat(SS_BYTES_IN) - got < (b.s.stat(SS_PAYLOAD_BYTES_IN) - payload) / 4, 'it arrived deflated');
    assert.equal(a.texts().length, 0);
    warm.close();
  } finally {
    for (const c of clients) c.close();
    relay.close();
    await s.kill();
  }
});

test('the memory budget: an allocation past it closes only the connection that needed it (1013 NO_MEMORY); no headroom refuses upgrades (503)', async () => {
  const relay = await Relay.create({ maxMemory: 16 << 20, memoryHeadroom: 1 << 20 });
  const s = await serve(relay);
  const p = await pair(s.url, 'budget');
  try {
    const { ws } = await hijacked(s.url, 'budget-bomb');
    ws.send(bomb());
    const c = await ws.closed;
    assert.equal(c.code, CLOSE_TRY_AGAIN, JSON.stringify(c));
    assert.match(c.reason, /^NO_MEMORY/);
    assert.ok(relay.core.memory.buffer.byteLength <= 16 << 20);
    // The memory went back: a new client gets in and the pair carries on.
    const late = new SessionClient(s.url, { hello: { room: 'budget-late' } });
    await late.until(() => late.open, 5000, 'a new client after the failure');
    late.close();
    await p.check('budget');
  } finally {
    p.close(); relay.close();
    await s.kill();
  }
  const full = await Relay.create({ maxMemory: 16 << 20, memoryHeadroom: 16 << 20 });
  const s2 = await serve(full);
  try {
    const { result } = await dial(s2.url);
    assert.match(result, /503/);
    assert.equal(full.stats.connections, 0, 'nothing allocated for it');
    assert.equal(full.stats.refused, 1);
  } finally {
    full.close();
    await s2.kill();
  }
});

test('a client that stops reading is closed with 1013 once its socket stalls, and resumes with nothing lost, nothing twice', async () => {
  const logs = [];
  const relay = await Relay.create({ highWater: 256 << 10, stallTimeoutMs: 1000, rateBytesBurst: 64 << 20, log: (m) => logs.push(m) });
  const s = await serve(relay);
  const room = 'slow';
  const p = await pair(s.url, room);
  const slow = new SessionClient(s.url, { hello: { room, user: 'slow' } });
  try {
    await slow.until(() => slow.open, 5000, 'slow open');
    const id = slow.id;
    const first = slow.ws;
    first.pause(); // reads nothing from now on
    // 2,000 incompressible messages of 8 KiB (16 MiB: more than the socket buffers hold).
    const N = 2000;
    const expected = [];
    for (let i = 0; i < N; i++) {
      const m = randomBytes(8192);
      m.writeUInt32BE(i, 0);
      expected.push(i);
      p.a.send(new Uint8Array(m));
      if (i % 200 === 199) await p.a.until(() => p.a.s.stat(SS_QUEUED) < 400, 10000, 'a acked');
    }
    await until(() => relay.sessions.get(id)?.conn === null, 20000, 'the stalled socket closed by the relay');
    assert.ok(logs.some((l) => /closing .* 1013 TIMEOUT: the client is not reading/.test(l)), logs.join('\n'));
    assert.ok(relay.sessions.has(id), 'the session stays, detached');
    // The client reads again: what was buffered, then the close, then it resumes.
    first.resume();
    const big = () => slow.messages.filter((m) => m.channel === 0 && m.data instanceof Uint8Array);
    await slow.until(() => big().length >= N, 20000, 'slow has everything');
    assert.equal(slow.closes[0].code, CLOSE_TRY_AGAIN, JSON.stringify(slow.closes));
    assert.match(slow.closes[0].reason, /^TIMEOUT/);
    assert.equal(slow.id, id, 'the same session');
    assert.ok(slow.opens >= 2);
    assert.deepEqual(big().map((m) => Buffer.from(m.data.buffer, m.data.byteOffset, 4).readUInt32BE(0)), expected);
    assert.deepEqual(slow.errors, [], 'no gap reported');
    const bBig = p.b.messages.filter((m) => m.channel === 0 && m.data instanceof Uint8Array);
    assert.equal(bBig.length, N, 'b got every one');
    await p.check('slow');
  } finally {
    slow.close();
    p.close(); relay.close();
    await s.kill();
  }
});

test('clients that reset while refused (403, 400, 503) do not take the relay down', async () => {
  const logs = [];
  const relay = await Relay.create({ maxConnections: 3, log: (m) => logs.push(m) });
  const s = await serve(relay);
  const p = await pair(s.url, 'resets');
  const { port } = new URL(s.url);
  const upgrade = (headers) => `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${headers}\r\n`;
  const kinds = [
    `Sec-WebSocket-Protocol: ${SESSION_PROTOCOL}\r\nOrigin: https://evil.example\r\n`, // 403
    'Sec-WebSocket-Protocol: chat\r\n', // 400
    `Sec-WebSocket-Protocol: ${SESSION_PROTOCOL}\r\n`, // 503: two sockets are the pair's, one is held below
  ];
  const held = await dial(s.url);
  try {
    assert.equal(held.result, 'open');
    const refused0 = relay.stats.refused;
    // Each request is written and the connection reset at once: the relay's
    // answer meets a socket that is gone (ECONNRESET / EPIPE on its side).
    for (let round = 0; round < 30; round++) {
      await Promise.all(kinds.map((h) => new Promise((resolve) => {
        const sock = connect(Number(port), '127.0.0.1', () => {
          sock.write(upgrade(h), () => setImmediate(() => { sock.resetAndDestroy(); resolve(); }));
        });
        sock.on('error', () => resolve());
      })));
    }
    await until(() => relay.stats.refused - refused0 >= 60, 10000, 'the 403s and 503s counted');
    // Still serving: a new session gets in once there is room, the pair kept going.
    held.ws.terminate();
    await until(() => relay.usage().sockets === 2, 5000, 'the held socket gone');
    const late = new SessionClient(s.url, { hello: { room: 'resets' } });
    await late.until(() => late.open, 5000, 'a client after the resets');
    late.close();
    await p.check('resets');
  } finally {
    held.ws.terminate();
    p.close(); relay.close();
    await s.kill();
  }
});

test('connection caps: over maxConnectionsPerAddress or maxConnections the upgrade gets 503 before anything is allocated', async () => {
  const relay = await Relay.create({ maxConnections: 4, maxConnectionsPerAddress: 3 });
  const s = await serve(relay);
  const open = [];
  try {
    for (let i = 0; i < 3; i++) {
      const d = await dial(s.url);
      assert.equal(d.result, 'open');
      open.push(d.ws);
    }
    assert.match((await dial(s.url)).result, /Unexpected server response: 503/);
    assert.equal(relay.stats.connections, 3);
    assert.equal(relay.stats.refused, 1);
    assert.deepEqual({ ...relay.usage(), memory: 0, memoryFree: 0 }, { sockets: 3, addresses: 1, sessions: 0, memory: 0, memoryFree: 0 });
    // One goes: there is room again.
    open.shift().terminate();
    await until(() => relay.usage().sockets === 2, 5000, 'the count goes down');
    const d = await dial(s.url);
    assert.equal(d.result, 'open');
    open.push(d.ws);
  } finally {
    for (const ws of open) ws.terminate();
    relay.close();
    await s.kill();
  }
  const total = await Relay.create({ maxConnections: 2, maxConnectionsPerAddress: 100 });
  const s2 = await serve(total);
  const open2 = [];
  try {
    for (let i = 0; i < 2; i++) open2.push((await dial(s2.url)).ws);
    const refused = await new Promise((resolve) => {
      const ws = new WebSocket(s2.url, [SESSION_PROTOCOL]);
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, retry: res.headers['retry-after'], body }));
      });
      ws.on('error', () => {});
    });
    assert.deepEqual(refused, { status: 503, retry: '5', body: 'too many connections\n' });
    assert.equal(total.stats.connections, 2);
  } finally {
    for (const ws of open2) ws.terminate();
    total.close();
    await s2.kill();
  }
});
