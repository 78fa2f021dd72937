// The relay's HTTP transport (js/server/http.mjs, docs/protocol.md §13)
// against hostile input: raw HTTP requests (node:http, every header ours)
// beside well-behaved Sockets over HTTP in the same room. Every refusal has
// its status, every stream that misbehaves is closed with the session's close
// codes in a CLOSE record, the caps and the rate limit hold, and the
// well-behaved clients keep getting everything exactly once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { Relay } from '../../js/server/relay.mjs';
import {
  HTTP_PARAM, HTTP_SEQ, HTTP_HEADER, HTTP_BINARY, HTTP_CLOSE, HTTP_READY, HTTP_KEEPALIVE,
  CLOSE_PROTOCOL, CLOSE_TOO_BIG, CLOSE_TRY_AGAIN, CLOSE_HELLO_TIMEOUT,
} from '../../js/constants.js';
import { serve, until, sleep } from './net.mjs';

let relay, srv;
const sockets = new Set();
before(async () => {
  await init();
  relay = await Relay.create({
    allowedOrigins: ['https://app.example'], helloTimeoutMs: 3000, httpPostTimeoutMs: 1000, httpKeepaliveMs: 200,
    maxConnections: 40, maxMessage: 1 << 20, rateMessages: 200, rateMessagesBurst: 200,
  });
  srv = await serve(relay);
});
after(async () => {
  for (const s of sockets) s.close();
  await srv.kill();
  await relay.close();
});

const record = (type, body) => {
  const r = Buffer.alloc(HTTP_HEADER + body.length);
  r[0] = type;
  r.writeUInt32BE(body.length, 1);
  Buffer.from(body).copy(r, HTTP_HEADER);
  return r;
};

/** One HTTP request; resolves with {status, headers, body} once it ended. */
function call(path, { method = 'POST', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** An open stream: its records as they come, its id, its end. */
function stream(headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path: `/?${HTTP_PARAM}=open`, method: 'POST', headers }, (res) => {
      const st = { status: res.statusCode, headers: res.headers, records: [], id: null, ended: false, res };
      let buf = Buffer.alloc(0);
      res.on('data', (c) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= HTTP_HEADER && buf.length >= HTTP_HEADER + buf.readUInt32BE(1)) {
          const n = buf.readUInt32BE(1);
          const r = [buf[0], buf.subarray(HTTP_HEADER, HTTP_HEADER + n)];
          buf = buf.subarray(HTTP_HEADER + n);
          if (r[0] === HTTP_READY) st.id = JSON.parse(r[1]).id;
          st.records.push(r);
        }
      });
      res.on('end', () => { st.ended = true; });
      res.on('close', () => { st.ended = true; });
      if (res.statusCode !== 200) res.on('end', () => resolve(st));
      else until(() => st.id, 'READY').then(() => resolve(st), reject);
    });
    req.on('error', reject);
    req.end();
  });
}
const post = (st, n, body, headers = {}) => call(`/?${HTTP_PARAM}=${st.id}&${HTTP_SEQ}=${n}`, { body, headers });
/** The stream's CLOSE record: [code, reason]. */
async function closed(st) {
  await until(() => st.ended, 'the stream ends', 8000);
  const c = st.records.find((r) => r[0] === HTTP_CLOSE);
  assert.ok(c, 'a CLOSE record');
  return [c[1].readUInt16BE(0), c[1].subarray(2).toString()];
}

/** A Socket over HTTP in room `room`, collecting channel 0. */
async function client(room, user) {
  const s = new Socket(srv.url, { transports: ['http'], hello: { room, user } });
  sockets.add(s);
  s.got = [];
  s.onmessage = (e) => { if (e.channel === 0) s.got.push(e.data); };
  s.onerror = () => {};
  await new Promise((r) => s.addEventListener('open', r, { once: true }));
  return s;
}

test('a Socket over HTTP: READY, then the session; messages, requests, rooms, a keepalive on a quiet stream', async () => {
  const [a, b] = [await client('h1', 'ann'), await client('h1', 'bob')];
  assert.equal(a.stats().transport, 'http');
  for (let i = 0; i < 300; i++) a.send(`m${i}`);
  assert.equal(await a.request('ping'), 'ping');
  await until(() => b.got.length >= 300, 'bob gets all');
  assert.deepEqual(b.got, Array.from({ length: 300 }, (_, i) => `m${i}`));
  const st = await stream();
  assert.equal(st.status, 200);
  assert.equal(st.headers['x-accel-buffering'], 'no');
  await until(() => st.records.some((r) => r[0] === HTTP_KEEPALIVE), 'a keepalive', 3000);
  assert.equal(st.records[0][0], HTTP_READY);
  assert.equal(st.records[1][0], HTTP_BINARY, 'the greeting');
  st.res.destroy();
});

test('Origin: another site gets 403 on open and on a POST; an allowed one gets CORS headers', async () => {
  const bad = await call(`/?${HTTP_PARAM}=open`, { headers: { origin: 'https://evil.example' } });
  assert.equal(bad.status, 403);
  assert.equal(bad.headers['access-control-allow-origin'], undefined);
  const ok = await stream({ origin: 'https://app.example' });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
  assert.equal(ok.headers['access-control-allow-credentials'], 'true');
  const p = await post(ok, 1, record(HTTP_BINARY, Buffer.from('x')), { origin: 'https://evil.example' });
  assert.equal(p.status, 403);
  ok.res.destroy();
});

test('refusals: methods other than POST, an unknown or a guessed stream id', async () => {
  assert.equal((await call(`/?${HTTP_PARAM}=open`, { method: 'GET' })).status, 405);
  assert.equal((await call(`/?${HTTP_PARAM}=open`, { method: 'PUT' })).status, 405);
  assert.equal((await call(`/?${HTTP_PARAM}=AAAAAAAAAAAAAAAAAAAAAA&${HTTP_SEQ}=1`, { body: 'x' })).status, 404);
  assert.equal((await call(`/?${HTTP_PARAM}=&${HTTP_SEQ}=1`)).status, 404);
  // Not ours at all: the host answers it (serve() says 404 without a body of ours).
  assert.equal((await call('/?other=1', { method: 'GET' })).status, 404);
});

test('a POST over the cap: 413 and the stream closed 1009; by its Content-Length or by what it sends', async () => {
  const st = await stream();
  const big = await post(st, 1, Buffer.alloc(relay.http.maxPost + 1));
  assert.equal(big.status, 413);
  assert.deepEqual((await closed(st))[0], CLOSE_TOO_BIG);
  // Chunked, so that no length says it in advance.
  const st2 = await stream();
  const r = await new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path: `/?${HTTP_PARAM}=${st2.id}&${HTTP_SEQ}=1`, method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', () => resolve('reset'));
    const chunk = Buffer.alloc(64 << 10);
    for (let i = 0; i * chunk.length <= relay.http.maxPost; i++) req.write(chunk);
    req.end();
  });
  assert.ok(r === 413 || r === 'reset', `refused (${r})`);
  assert.equal((await closed(st2))[0], CLOSE_TOO_BIG);
});

test('malformed records, POSTs out of order or at once: 400/409 and the stream closed 1002', async () => {
  for (const body of [Buffer.from([HTTP_BINARY, 0, 0]), Buffer.from([HTTP_BINARY, 0, 0, 0, 9, 1]), record(HTTP_READY, Buffer.from('{}')), record(9, Buffer.alloc(0))]) {
    const st = await stream();
    assert.equal((await post(st, 1, body)).status, 400);
    assert.equal((await closed(st))[0], CLOSE_PROTOCOL);
  }
  const st = await stream();
  assert.equal((await post(st, 2, record(HTTP_BINARY, Buffer.from('x')))).status, 409);
  assert.equal((await closed(st))[0], CLOSE_PROTOCOL);
  // A second POST while the first is still arriving.
  const st2 = await stream();
  const slow = request({ host: '127.0.0.1', port: srv.port, path: `/?${HTTP_PARAM}=${st2.id}&${HTTP_SEQ}=1`, method: 'POST', headers: { 'content-length': 100 } });
  slow.on('error', () => {});
  slow.write('xx');
  await sleep(50);
  assert.equal((await post(st2, 2, record(HTTP_BINARY, Buffer.from('x')))).status, 409);
  assert.equal((await closed(st2))[0], CLOSE_PROTOCOL);
  slow.destroy();
});

test('a POST whose body never finishes: 408 at the deadline and the stream closed 1013', async () => {
  const st = await stream();
  const res = new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path: `/?${HTTP_PARAM}=${st.id}&${HTTP_SEQ}=1`, method: 'POST', headers: { 'content-length': 1000 } }, (r) => { r.resume(); resolve(r.statusCode); });
    req.on('error', () => resolve('reset'));
    req.write('partial');
  });
  assert.equal(await res, 408);
  assert.equal((await closed(st))[0], CLOSE_TRY_AGAIN);
});

test('the session decides as over WebSocket: garbage instead of a hello is 1002, no hello at all is 4003', async () => {
  const st = await stream();
  assert.equal((await post(st, 1, record(HTTP_BINARY, Buffer.from('{"not":"a frame"}')))).status, 204);
  const [code, reason] = await closed(st);
  assert.equal(code, CLOSE_PROTOCOL);
  assert.match(reason, /^BAD_VERSION/);
  const quiet = await stream();
  assert.equal((await closed(quiet))[0], CLOSE_HELLO_TIMEOUT);
});

test('caps: streams count as connections (503 past maxConnections); the rate limit holds a POST back and loses nothing', async () => {
  const all = await Promise.all(Array.from({ length: 50 }, () => stream()));
  const open = all.filter((st) => st.status === 200), refused = all.find((st) => st.status === 503);
  assert.ok(refused, `refused past the cap (${all.map((st) => st.status)}; ${JSON.stringify(relay.usage())})`);
  assert.ok(relay.usage().sockets <= 40, `${relay.usage().sockets} transports at most`);
  assert.equal(refused.headers['retry-after'], '5');
  for (const st of open) st.res.destroy();
  await until(() => relay.usage().sockets <= 4, 'the streams let go', 3000);
  const [a, b] = [await client('h2', 'ann'), await client('h2', 'bob')];
  const pauses = relay.stats.pauses;
  const N = 1500;
  for (let i = 0; i < N; i++) a.send(`r${i}`);
  await until(() => b.got.length >= N, 'everything, at the rate', 20000);
  assert.ok(relay.stats.pauses > pauses, 'the relay held POSTs back');
  await sleep(100);
  assert.deepEqual(b.got, Array.from({ length: N }, (_, i) => `r${i}`));
  assert.deepEqual(a.stats().transport, 'http');
});

test('authentication as over WebSocket: authenticate reads the open request; refused credentials close 4401, a room not theirs 4403; the relay stamps who it is', async () => {
  const hooks = await import('./relay-auth.mjs');
  const r = await Relay.create({ authenticate: hooks.authenticate, authorize: hooks.authorize });
  const sv = await serve(r);
  const made = [];
  const sock = (query, room) => {
    const s = new Socket(`${sv.url}?${query}`, { transports: ['http'], hello: { room } });
    s.onerror = () => {};
    made.push(s);
    return s;
  };
  const closeOf = (s) => new Promise((ok) => s.addEventListener('close', (e) => ok(e.code), { once: true }));
  try {
    const ann = sock('token=tok-ann', 'sec'), bob = sock('token=tok-bob', 'sec');
    const heard = [];
    ann.onmessage = (e) => { if (e.channel === 0) heard.push([e.from, e.data]); };
    await until(() => ann.readyState === 1 && bob.readyState === 1, 'both in');
    bob.send('hi');
    await until(() => heard.length === 1, 'ann hears bob');
    assert.deepEqual(heard, [['bob', 'hi']]);
    assert.equal(await closeOf(sock('token=nope', 'sec')), 4401);
    assert.equal(await closeOf(sock('token=tok-eve', 'staff')), 4403);
  } finally {
    for (const s of made) s.close();
    await sv.kill();
    await r.close();
  }
});
