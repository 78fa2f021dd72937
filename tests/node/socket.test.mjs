// Socket + relay over real `ws` servers on loopback (Node has no global
// WebSocket: the Socket takes the `ws` constructor as an option).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { SESSION_PROTOCOL as PROTOCOL, FRAME_BATCH, FRAME_F_COMPRESSED } from '../../js/constants.js';
import { handshake, frames } from './fake-server.mjs';
import { Relay } from '../../js/server/relay.mjs';
import { SqliteStore } from '../../js/server/store.mjs';
import { createEchoServer } from '../../js/server/echo.mjs';
import { once, serve, until } from './net.mjs';

const FAST = { reconnect: { minDelay: 20, maxDelay: 200, connectTimeout: 2000 }, heartbeat: false };

before(async () => {
  await init();
});




test('framed mode: messages fan out in order, requests resolve, payloads are compressed', async () => {
  const relay = await Relay.create();
  const s = await serve(relay);
  const a = new Socket(s.url, { WebSocket, ...FAST, hello: { room: 'r1', user: 'ann' } });
  const b = new Socket(s.url, { WebSocket, ...FAST, hello: { room: 'r1', user: 'bob' } });
  const got = [];
  const presence = [];
  b.onmessage = (e) => (e.channel === 1 ? presence.push(JSON.parse(e.data)) : got.push(e.data));
  await Promise.all([once(a, 'open'), once(b, 'open')]);
  assert.equal(a.protocol, PROTOCOL);
  assert.equal(a.mode, 'framed');
  assert.equal(a.readyState, Socket.OPEN);
  const msgs = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ type: 'chat', user: 'ann', n: i, text: `message number ${i} from ann to the room` }));
  for (const m of msgs) a.send(m);
  a.send(new Uint8Array([1, 2, 3]));
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => a.request(`q${i}`)));
  assert.deepEqual(answers, Array.from({ length: 50 }, (_, i) => `q${i}`));
  await until(() => got.length === 2001);
  assert.deepEqual(got.slice(0, 2000), msgs);
  assert.ok(got[2000] instanceof Blob);
  assert.deepEqual([...new Uint8Array(await got[2000].arrayBuffer())], [1, 2, 3]);
  assert.ok(presence.some((p) => p.type === 'join' && p.users.includes('ann') && p.users.includes('bob')));
  await until(() => a.stats().queued === 0);
  const st = a.stats();
  assert.equal(st.sent, 2001);
  assert.ok(st.bytesOut * 2.4 < st.payloadBytesOut, `wire ${st.bytesOut} vs payload ${st.payloadBytesOut}`);
  const closed = once(a, 'close');
  a.close(1000, 'bye');
  const ev = await closed;
  assert.equal(ev.code, 1000);
  assert.equal(a.readyState, Socket.CLOSED);
  assert.throws(() => a.send('late'), { code: 'CLOSED' });
  const left = once(b, 'message', (e) => e.channel === 1 && JSON.parse(e.data).type === 'leave');
  await left;
  b.close();
  relay.close();
  await s.kill();
});

test('statechange says the state it left: idle, connecting, open, then reconnecting after the relay goes, open again', async () => {
  const relay = await Relay.create();
  let s = await serve(relay);
  const port = new URL(s.url).port;
  const a = new Socket(s.url, { WebSocket, ...FAST });
  const seen = [];
  a.addEventListener('statechange', (e) => seen.push([e.previous, e.state]));
  await once(a, 'open');
  await s.kill();
  await until(() => a.state === 'reconnecting', 5000, 'reconnecting');
  s = await serve(relay, Number(port));
  await until(() => a.readyState === Socket.OPEN, 8000, 'open again');
  for (let i = 1; i < seen.length; i++) assert.equal(seen[i][0], seen[i - 1][1], `each from the one before: ${JSON.stringify(seen)}`);
  assert.deepEqual(seen.slice(0, 2), [['idle', 'connecting'], ['connecting', 'open']]);
  assert.ok(seen.some(([p, st]) => p === 'open' && st !== 'open'), 'it left open');
  assert.equal(seen.at(-1)[1], 'open');
  a.close();
  await s.kill();
});

test('the first big message: 1 MiB of incompressible bytes goes through, the relay stays up, the queue moves on', async () => {
  const { randomBytes } = await import('node:crypto');
  const relay = await Relay.create();
  const s = await serve(relay);
  const a = new Socket(s.url, { WebSocket, ...FAST, binaryType: 'arraybuffer', compress: { threshold: 1e9 }, hello: { room: 'big', echo: true } });
  const b = new Socket(s.url, { WebSocket, ...FAST, binaryType: 'arraybuffer', hello: { room: 'big' } });
  const gotA = [], gotB = [];
  a.onmessage = (e) => { if (e.channel === 0) gotA.push(e.data); };
  b.onmessage = (e) => { if (e.channel === 0) gotB.push(e.data); };
  await Promise.all([once(a, 'open'), once(b, 'open')]);
  const big = randomBytes(1 << 20);
  a.send(big);
  a.send('after');
  await until(() => gotA.length === 2 && gotB.length === 2, 10000);
  for (const got of [gotA, gotB]) {
    assert.ok(Buffer.from(got[0]).equals(big));
    assert.equal(got[1], 'after');
  }
  // Over the frame cap: refused at send(), never queued, nothing stuck.
  assert.throws(() => a.send(randomBytes((1 << 20) + 1)), { code: 'TOO_LARGE' });
  a.send('still moving');
  await until(() => gotB.length === 3);
  assert.equal(gotB[2], 'still moving');
  a.close(); b.close(); relay.close();
  await s.kill();
});

test('resume: relay killed and restarted from its journal mid-stream, nothing lost, nothing twice', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-relay-'));
  const journal = join(dir, 'relay.db');
  let relay = await Relay.create({ store: await SqliteStore.open(journal) });
  let s = await serve(relay);
  const port = s.port;
  const a = new Socket(s.url, { WebSocket, ...FAST, hello: { room: 'chaos', user: 'a' } });
  const b = new Socket(s.url, { WebSocket, ...FAST, hello: { room: 'chaos', user: 'b' } });
  const gotA = [], gotB = [];
  a.onmessage = (e) => { if (e.channel === 0) gotA.push(e.data); };
  b.onmessage = (e) => { if (e.channel === 0) gotB.push(e.data); };
  await Promise.all([once(a, 'open'), once(b, 'open')]);
  const N = 3000;
  let sent = 0;
  const pump = setInterval(() => {
    for (let k = 0; k < 60 && sent < N; k++, sent++) { a.send(`a${sent}`); b.send(`b${sent}`); }
  }, 2);
  for (let round = 0; round < 4; round++) {
    await until(() => a.state === 'open' && b.state === 'open', 5000);
    await new Promise((r) => setTimeout(r, 30 + round * 15));
    relay.close();
    await s.kill();
    relay = await Relay.create({ store: await SqliteStore.open(journal) });
    s = await serve(relay, port);
  }
  await until(() => sent === N && gotA.length >= N && gotB.length >= N, 20000).catch((e) => {
    if (process.env.SB_DEBUG) console.log('DEBUG', sent, gotA.length, gotB.length, a.state, b.state, JSON.stringify(a.stats()), JSON.stringify(b.stats()));
    throw e;
  });
  clearInterval(pump);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(gotB, Array.from({ length: N }, (_, i) => `a${i}`));
  assert.deepEqual(gotA, Array.from({ length: N }, (_, i) => `b${i}`));
  // Everything may have arrived before the last kill's reconnect completed.
  await until(() => a.stats().reconnects >= 4, 10000, 'a reconnected after each kill');
  a.close(); b.close(); relay.close();
  await s.kill();
  rmSync(dir, { recursive: true, force: true });
});

test('fallback: a plain echo server gets plain text and binary; the queue waits for it', async () => {
  const echo = createEchoServer();
  // Start before the server exists: sends queue up while connecting fails.
  const probe = await serve(echo);
  const port = probe.port;
  await probe.kill();
  const sock = new Socket(`ws://127.0.0.1:${port}/`, { WebSocket, ...FAST, binaryType: 'arraybuffer' });
  const got = [];
  sock.onmessage = (e) => got.push(e.data);
  sock.send('one');
  sock.send('two');
  sock.send(new Uint8Array([9, 8, 7]).buffer);
  await once(sock, 'reconnecting');
  assert.equal(sock.stats().queued, 3);
  const s = await serve(echo, port);
  await once(sock, 'open', () => true, 5000);
  assert.equal(sock.mode, 'plain');
  assert.equal(sock.protocol, '');
  await until(() => got.length === 3);
  assert.deepEqual(got.slice(0, 2), ['one', 'two']);
  assert.deepEqual([...new Uint8Array(got[2])], [9, 8, 7]);
  await until(() => sock.stats().queued === 0);
  await assert.rejects(sock.request('x'), { code: 'BAD_STATE' });
  sock.close();
  echo.close();
  await s.kill();
});

/** A plain `ws` server that records every message it receives. */
function recordingServer({ speaksFirst }) {
  const wss = new WebSocketServer({ noServer: true }); // ws accepts the first protocol offered
  const received = [];
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    // The seeds' chat server greets and broadcasts what it gets.
    if (speaksFirst) ws.send(JSON.stringify({ type: 'system', text: 'welcome to the chat' }));
    ws.on('message', (d, bin) => { received.push(bin ? [...new Uint8Array(d)] : String(d)); ws.send(d, { binary: bin }); });
    ws.on('error', () => {});
  });
  return {
    received,
    get connections() { return connections; },
    handleUpgrade: (q, so, h) => wss.handleUpgrade(q, so, h, (ws) => wss.emit('connection', ws, q)),
    close: () => { for (const c of wss.clients) c.terminate(); wss.close(); },
  };
}

for (const speaksFirst of [true, false]) {
  test(`plain mode: a server that accepts any subprotocol and ${speaksFirst ? 'speaks first' : 'stays silent'} receives only what the app sent, from the first connection`, async () => {
    const srv = recordingServer({ speaksFirst });
    const s = await serve(srv);
    const sock = new Socket(s.url, { WebSocket, ...FAST, reconnect: { ...FAST.reconnect, helloTimeout: 200 } });
    const got = [];
    sock.onmessage = (e) => got.push(e.data);
    sock.send('first');
    sock.send('second');
    await once(sock, 'open', () => true, 5000);
    assert.equal(sock.mode, 'plain');
    await until(() => srv.received.length === 2);
    sock.send('third');
    await until(() => srv.received.length === 3);
    assert.deepEqual(srv.received, ['first', 'second', 'third']);
    assert.equal(srv.connections, 1);
    if (speaksFirst) assert.equal(JSON.parse(got[0]).text, 'welcome to the chat'); // the app hears the greeting
    sock.close();
    srv.close();
    await s.kill();
  });
}

/** A switchboard.v1 server that says hello and then never says anything again. */
function silentServer() {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => PROTOCOL });
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    handshake(ws);
  });
  return {
    get connections() { return connections; },
    handleUpgrade: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)),
    close: () => { for (const c of wss.clients) c.terminate(); wss.close(); },
  };
}

/**
 * A real relay slow to greet: the upgrade answer goes out at once; on the
 * next `late` connections every later byte to the client waits `ms`
 * (corked: the greeting, and whatever follows it, in order).
 */
function slowToGreet(relay, ms) {
  return {
    late: 0,
    handleUpgrade(req, socket, head) {
      if (this.late > 0) {
        this.late--;
        const write = socket.write;
        socket.write = function (...a) {
          socket.write = write;
          const r = write.apply(socket, a); // the 101 answer
          socket.cork();
          setTimeout(() => socket.uncork(), ms);
          return r;
        };
      }
      relay.handleUpgrade(req, socket, head);
    },
  };
}

test('a relay greeting after the hello timeout is never a message: the Socket comes back framed, nothing lost or twice', async () => {
  const relay = await Relay.create();
  // The greeting comes 600 ms late: past helloTimeout (400), inside the
  // second one the raw writes stay unconfirmed for.
  const slow = slowToGreet(relay, 600);
  const s = await serve(slow);
  const peer = new Socket(s.url, { WebSocket, ...FAST, hello: { room: 'late' } });
  const heard = [];
  peer.onmessage = (e) => { if (e.channel === 0) heard.push(e.data); };
  await once(peer, 'open');
  slow.late = 1;
  const sock = new Socket(s.url, { WebSocket, ...FAST, hello: { room: 'late' }, reconnect: { ...FAST.reconnect, helloTimeout: 400 } });
  const got = [];
  sock.onmessage = (e) => { if (e.channel === 0) got.push(e.data); };
  sock.send('before');
  await once(sock, 'open', () => true, 5000); // plain, for now
  sock.send('while plain');
  await once(sock, 'open', () => sock.mode === 'framed', 5000);
  sock.send('framed');
  await until(() => heard.length === 3, 'the peer hears all three');
  assert.deepEqual(heard, ['before', 'while plain', 'framed']);
  assert.deepEqual(got, []); // the greeting's bytes never reached the app
  await until(() => sock.stats().queued === 0);
  assert.equal(sock.stats().lateGreetings, 1);
  assert.equal(sock.protocol, PROTOCOL);
  sock.close();
  peer.close();
  await relay.close();
  await s.kill();
});

test('fallback: a server that accepts the subprotocol blindly and echoes is detected', async () => {
  const wss = new WebSocketServer({ noServer: true }); // ws picks the first offered protocol
  wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
  const s = await serve({ handleUpgrade: (q, so, h) => wss.handleUpgrade(q, so, h, (ws) => wss.emit('connection', ws, q)) });
  const sock = new Socket(s.url, { WebSocket, ...FAST });
  const got = [];
  sock.onmessage = (e) => got.push(e.data);
  sock.send('hi');
  await once(sock, 'open');
  assert.equal(sock.mode, 'plain');
  await until(() => got.length === 1);
  assert.deepEqual(got, ['hi']);
  sock.close();
  for (const c of wss.clients) c.terminate();
  wss.close();
  await s.kill();
});

test('heartbeat: a server that stops answering without closing is detected and replaced', async () => {
  const srv = silentServer();
  const s = await serve(srv);
  const sock = new Socket(s.url, { WebSocket, reconnect: { minDelay: 10, maxDelay: 20 }, heartbeat: { interval: 80, timeout: 80 } });
  await once(sock, 'open');
  const t0 = Date.now();
  const ev = await once(sock, 'reconnecting', () => true, 3000);
  assert.equal(ev.reason, 'heartbeat-timeout');
  assert.ok(Date.now() - t0 >= 150, 'not before interval + timeout');
  await until(() => srv.connections >= 2);
  sock.close();
  srv.close();
  await s.kill();
});

test('backoff: delays between failed attempts grow and are jittered', async () => {
  const probe = await serve(createEchoServer());
  const port = probe.port;
  await probe.kill();
  const delays = [];
  const sock = new Socket(`ws://127.0.0.1:${port}/`, { WebSocket, reconnect: { minDelay: 5, maxDelay: 400, factor: 2 }, heartbeat: false });
  sock.addEventListener('reconnecting', (e) => delays.push(e.delay));
  sock.addEventListener('error', () => {});
  await until(() => delays.length >= 7, 10000);
  sock.close();
  // attempt k draws from [5/2, 5 * 2^k] (full jitter from the first attempt)
  delays.forEach((d, k) => assert.ok(d >= 2.5 && d <= 5 * 2 ** k + 1e-9, `delay ${d} at attempt ${k}`));
  assert.ok(Math.max(...delays.slice(4)) > 20, 'later delays reach past the early ceilings');
  assert.ok(new Set(delays.map(Math.round)).size >= 5, 'jittered, not a fixed ladder');
});

test('full queue: each overflow policy applies and every drop is an event', async () => {
  const dead = 'ws://127.0.0.1:9/'; // nothing listens: everything stays queued
  for (const overflow of ['reject', 'drop-oldest', 'drop-newest']) {
    const sock = new Socket(dead, { WebSocket, ...FAST, queue: { maxMessages: 3, overflow } });
    sock.addEventListener('error', () => {});
    const drops = [];
    sock.addEventListener('drop', (e) => drops.push([e.data, e.reason]));
    for (const m of ['m1', 'm2', 'm3']) sock.send(m);
    if (overflow === 'reject') {
      assert.throws(() => sock.send('m4'), { code: 'QUEUE_FULL' });
      assert.deepEqual(drops, [['m4', 'rejected']]);
    } else {
      sock.send('m4');
      sock.send('m5');
      assert.deepEqual(drops, overflow === 'drop-oldest' ? [['m1', 'overflow'], ['m2', 'overflow']] : [['m4', 'overflow'], ['m5', 'overflow']]);
    }
    assert.equal(sock.stats().queued, 3);
    assert.equal(sock.stats().dropped, drops.length);
    sock.close();
  }
  const big = new Socket(dead, { WebSocket, ...FAST, queue: { maxBytes: 10 } });
  big.addEventListener('error', () => {});
  big.addEventListener('drop', () => {});
  assert.throws(() => big.send('x'.repeat(11)), { code: 'TOO_LARGE' });
  big.close();
});

/** A switchboard.v1 server that answers hello and then sends `evil` bytes. */
function evilServer(evil) {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => PROTOCOL });
  wss.on('connection', (ws) => handshake(ws, () => ws.send(evil())));
  return {
    handleUpgrade: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)),
    close: () => { for (const c of wss.clients) c.terminate(); wss.close(); },
  };
}

test('a message the server sends twice is delivered once (and counted as a duplicate)', async () => {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => PROTOCOL });
  wss.on('connection', (ws) => handshake(ws, (session) => {
    session.send(0, false, 'once', Date.now());
    const [bytes] = frames(session); // one uncompressed frame, seq 1
    ws.send(bytes);
    ws.send(bytes); // the same seq again, as after a resend
    session.send(0, false, 'then', Date.now());
    for (const b of frames(session)) ws.send(b);
  }, { compress: false }));
  const s = await serve({ handleUpgrade: (q, so, h) => wss.handleUpgrade(q, so, h, (ws) => wss.emit('connection', ws, q)) });
  const sock = new Socket(s.url, { WebSocket, ...FAST });
  const got = [];
  sock.onmessage = (e) => got.push(e.data);
  await until(() => got.length === 2);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(got, ['once', 'then']);
  assert.equal(sock.stats().duplicates, 1);
  sock.close();
  for (const c of wss.clients) c.terminate();
  wss.close();
  await s.kill();
});

test('bad input from the server closes the connection with a clear error', async () => {
  const zlib = await import('node:zlib');
  const bomb = zlib.deflateRawSync(Buffer.alloc(64 << 20), { level: 9 });
  const frameOf = (kind, flags, payload) => {
    // Hand-made header: version 1, kind, flags, no fields, varint length.
    const len = [];
    let n = payload.length;
    do { len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); n >>>= 7; } while (n);
    return Buffer.concat([Buffer.from([0x10 | kind, flags, 0]), Buffer.from(len), payload]);
  };
  const cases = [
    ['garbage', () => Buffer.from('{"not":"a frame"}'), 'BAD_VERSION'],
    ['text in framed mode', null, 'BAD_FRAME'],
    ['truncated', () => Buffer.from([0x10, 0x00, 0x00, 0x05, 0x61]), 'TRUNCATED'],
    ['oversize payload', () => frameOf(0, 0, Buffer.alloc((1 << 20) + 256 + 1)), 'TOO_LARGE'], // the cap, plus room for a stamp
    ['deflate bomb', () => frameOf(FRAME_BATCH, FRAME_F_COMPRESSED, bomb), 'TOO_LARGE'],
    ['corrupt deflate', () => frameOf(FRAME_BATCH, FRAME_F_COMPRESSED, Buffer.from([0xff, 0xff, 0xff, 0xff])), 'CORRUPT'],
    ['nested batch', () => frameOf(FRAME_BATCH, 0, frameOf(FRAME_BATCH, 0, Buffer.alloc(0))), 'TOO_DEEP'],
  ];
  for (const [name, make, code] of cases) {
    const srv = make ? evilServer(make) : (() => {
      const wss = new WebSocketServer({ noServer: true, handleProtocols: () => PROTOCOL });
      wss.on('connection', (ws) => handshake(ws, () => ws.send('plain text')));
      return { handleUpgrade: (q, so, h) => wss.handleUpgrade(q, so, h, (ws) => wss.emit('connection', ws, q)), close: () => { for (const c of wss.clients) c.terminate(); wss.close(); } };
    })();
    const s = await serve(srv);
    const sock = new Socket(s.url, { WebSocket, reconnect: { minDelay: 1000, maxDelay: 1000 }, heartbeat: false });
    const err = await once(sock, 'error', (e) => e.error?.code !== 'CONNECTION_LOST');
    assert.equal(err.error.code, code, name);
    const rec = await once(sock, 'reconnecting');
    assert.equal(rec.reason, 'protocol-error', name);
    sock.close();
    srv.close();
    await s.kill();
  }
});

test('a request outlives a reconnect and fails cleanly on timeout and close', async () => {
  let answer = true;
  const relay = await Relay.create({ onRequest: ({ data }) => (answer ? `re:${data}` : new Promise(() => {})) });
  const s = await serve(relay);
  const sock = new Socket(s.url, { WebSocket, ...FAST });
  await once(sock, 'open');
  assert.equal(await sock.request('a'), 're:a');
  answer = false;
  await assert.rejects(sock.request('slow', { timeout: 50 }), { code: 'TIMEOUT' });
  const ac = new AbortController();
  const aborted = sock.request('b', { signal: ac.signal });
  ac.abort();
  await assert.rejects(aborted);
  const pending = sock.request('c', { timeout: 0 });
  sock.close();
  await assert.rejects(pending, { code: 'CLOSED' });
  relay.close();
  await s.kill();
});

test('request errors: the library\'s codes as they are, an application\'s own as REMOTE with remoteCode, a bare throw as INTERNAL', async () => {
  const relay = await Relay.create({
    log: () => {},
    onRequest: ({ data }) => {
      if (data === 'app') throw Object.assign(new Error('not yours'), { code: 'E_NOT_YOURS' });
      if (data === 'lib') return Promise.reject(Object.assign(new Error('no'), { code: 'FORBIDDEN' }));
      throw new Error('secret path /srv/app/db.sqlite');
    },
  });
  const s = await serve(relay);
  const sock = new Socket(s.url, { WebSocket, ...FAST });
  try {
    await once(sock, 'open');
    await assert.rejects(sock.request('app'), (e) => e.code === 'REMOTE' && e.remoteCode === 'E_NOT_YOURS' && e.message === 'not yours');
    await assert.rejects(sock.request('lib'), (e) => e.code === 'FORBIDDEN' && e.remoteCode === undefined);
    await assert.rejects(sock.request('bare'), (e) => e.code === 'INTERNAL' && !/secret/.test(e.message));
  } finally {
    sock.close();
    relay.close();
    await s.kill();
  }
});

test('the URL provider is asked before every attempt (fresh token each time)', async () => {
  const relay = await Relay.create();
  const s = await serve(relay);
  const seen = [];
  const sock = new Socket(async (attempt) => {
    seen.push(attempt);
    await new Promise((r) => setTimeout(r, 1));
    // first attempt: a port nobody listens on; then the relay, with a token
    return seen.length === 1 ? 'ws://127.0.0.1:9/' : { url: `${s.url}?token=t${seen.length}` };
  }, { WebSocket, ...FAST });
  sock.onerror = () => {};
  await once(sock, 'open');
  // attempt numbers count up (one extra attempt may probe for a plain server)
  assert.deepEqual(seen, seen.map((_, i) => i));
  assert.ok(seen.length >= 2);
  assert.equal(sock.url, `${s.url}?token=t${seen.length}`);
  sock.close();
  relay.close();
  await s.kill();
});

test('a client away for longer than the relay\'s bounded history is told about the gap and goes on', async () => {
  const relay = await Relay.create({ roomHistory: 5 });
  const s = await serve(relay);
  const a = new Socket(s.url, { WebSocket, ...FAST, hello: { room: 'gap' } });
  const b = new Socket(s.url, { WebSocket, reconnect: { minDelay: 300, maxDelay: 300 }, heartbeat: false, hello: { room: 'gap' } });
  const got = [];
  const errors = [];
  b.onmessage = (e) => { if (e.channel === 0) got.push(e.data); };
  b.onerror = (e) => errors.push(e.error.code);
  const gaps = [];
  b.addEventListener('unrecovered', (e) => gaps.push(e.room));
  await Promise.all([once(a, 'open'), once(b, 'open')]);
  a.send('m-before');
  await until(() => got.length === 1);
  relay.sessions.get(b.session).conn.ws.terminate();
  await once(b, 'reconnecting');
  for (let i = 0; i < 20; i++) a.send(`m${i}`);
  // What it gets is the newest of what it missed (the room's log keeps 5),
  // in order, and it is told that the rest is gone.
  await until(() => got.at(-1) === 'm19', 5000);
  const tail = got.slice(1);
  assert.equal(got[0], 'm-before');
  assert.deepEqual(tail, ['m15', 'm16', 'm17', 'm18', 'm19']);
  assert.deepEqual(gaps, ['gap']);
  assert.deepEqual(errors, []);
  a.close(); b.close(); relay.close();
  await s.kill();
});

test('options are validated in the constructor; reconnect.minDelay 0 means as fast as the backoff goes', async () => {
  assert.throws(() => new Socket('ws://127.0.0.1:9/', { WebSocket, queue: { overflow: 'lose-it' } }), { code: 'INVALID' });
  assert.throws(() => new Socket('ws://127.0.0.1:9/', { WebSocket, reconnect: { connectTimeout: 0 } }), { code: 'INVALID' });
  assert.throws(() => new Socket('ws://127.0.0.1:9/', { WebSocket, reconnect: { minDelay: -1 } }), { code: 'INVALID' });
  const relay = await Relay.create();
  let s = await serve(relay);
  const port = s.port;
  const sock = new Socket(s.url, { WebSocket, heartbeat: false, reconnect: { minDelay: 0, maxDelay: 50 } });
  const errors = [];
  sock.onerror = (e) => errors.push(e.error);
  try {
    await once(sock, 'open');
    await s.kill();
    await once(sock, 'reconnecting');
    s = await serve(relay, port);
    await once(sock, 'open');
    assert.equal(await sock.request('again'), 'again');
    assert.deepEqual(errors, []);
  } finally {
    sock.close();
    relay.close();
    await s.kill();
  }
});


test('a flood of slow requests: past maxPendingRequests each is refused QUEUE_FULL at once, onRequest is not called for it; the others resolve', async () => {
  let calls = 0;
  const release = [];
  const relay = await Relay.create({ maxPendingRequests: 5, onRequest: ({ data }) => { calls++; return new Promise((r) => release.push(() => r(`ok ${data}`))); } });
  const s = await serve(relay);
  const a = new Socket(s.url, { WebSocket, ...FAST });
  a.onerror = () => {};
  await once(a, 'open');
  const results = Array.from({ length: 8 }, (_, i) => a.request(`q${i}`).then((v) => v, (e) => e.code));
  await until(() => calls === 5);
  const refused = await Promise.all(results.slice(5));
  assert.deepEqual(refused, ['QUEUE_FULL', 'QUEUE_FULL', 'QUEUE_FULL']);
  for (const r of release) r();
  assert.deepEqual(await Promise.all(results.slice(0, 5)), ['ok q0', 'ok q1', 'ok q2', 'ok q3', 'ok q4']);
  assert.equal(calls, 5);
  // The bound is on requests in progress: once answered, more go through.
  const again = a.request('q9');
  await until(() => calls === 6);
  release[5]();
  assert.equal(await again, 'ok q9');
  a.close(); relay.close();
  await s.kill();
});
