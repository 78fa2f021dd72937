// The relay (js/server/relay.mjs) driven by raw clients: client-role
// sessions of js/session.js over `ws` (tests/node/session-client.mjs), and
// hand-made frames (js/frame.js) where a test plays a hostile client.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { init } from '../../js/core.js';
import { encodeFrame, BatchReader } from '../../js/frame.js';
import { Relay } from '../../js/server/relay.mjs';
import { MemoryStore, SqliteStore } from '../../js/server/store.mjs';
import {
  SESSION_PROTOCOL, SESSION_CLOSED, SS_DUPLICATES, SS_QUEUED,
  FRAME_F_ACK_REQ, FRAME_F_RETRY, FRAME_F_COMPRESSED,
  CLOSE_PROTOCOL, CLOSE_TOO_BIG, CLOSE_TRY_AGAIN, CLOSE_REPLACED, CLOSE_HELLO_TIMEOUT,
} from '../../js/constants.js';
import { SessionClient, hijacked } from './session-client.mjs';
import { kill9, serve, until } from './net.mjs';

const RELAY_CLI = fileURLToPath(new URL('../../js/server/relay-cli.mjs', import.meta.url));

before(async () => {
  await init();
});



/** A plain WebSocket offering the subprotocol; resolves its close {code, reason}. */
function rawSocket(url) {
  const ws = new WebSocket(url, [SESSION_PROTOCOL]);
  ws.on('error', () => {});
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  ws.opened = new Promise((resolve) => ws.on('open', resolve));
  return ws;
}

const batch = (frames) => encodeFrame({ kind: 'batch', payload: Buffer.concat(frames) });
const msg = (seq, payload, flags = 0) => encodeFrame({ kind: 'message', channel: 0, seq, flags: FRAME_F_ACK_REQ | flags, payload });


test('fan-out in order, presence, requests (sync, async, failing), binary, echo', async () => {
  const relay = await Relay.create({
    onRequest: ({ data, session }) => {
      if (data === 'boom') throw new Error('handler failed');
      if (data === 'later') return new Promise((r) => setTimeout(() => r({ who: session.user }), 5));
      return `re:${data}`;
    },
  });
  const s = await serve(relay);
  const a = new SessionClient(s.url, { hello: { room: 'r1', user: 'ann', echo: true } });
  const b = new SessionClient(s.url, { hello: { room: 'r1', user: 'bob' } });
  const other = new SessionClient(s.url, { hello: { room: 'r2', user: 'cid' } });
  await Promise.all([a.until(() => a.open), b.until(() => b.open), other.until(() => other.open)]);
  await b.until(() => b.presence().some((p) => p.type === 'join' && p.users.join() === 'ann,bob'), 5000, 'join of both');
  const msgs = Array.from({ length: 3000 }, (_, i) => `message number ${i} from ann`);
  for (const m of msgs) a.send(m);
  a.send(new Uint8Array([1, 2, 3]));
  assert.equal(await a.request('q'), 're:q');
  assert.equal(await a.request('later'), '{"who":"ann"}');
  // a throw without a code: INTERNAL, and its message (server internals) stays in the relay's log
  await assert.rejects(a.request('boom'), { code: 'INTERNAL', message: 'the request handler failed' });
  await b.until(() => b.messages.filter((m) => m.channel === 0).length === 3001, 10000, 'b has everything');
  assert.deepEqual(b.texts().slice(0, 3000), msgs);
  assert.deepEqual([...b.messages.filter((m) => m.channel === 0)[3000].data], [1, 2, 3]);
  await a.until(() => a.texts().length === 3001, 5000, 'echo');
  assert.deepEqual(a.texts().slice(0, 3000), msgs);
  assert.equal(other.texts().length, 0, 'rooms are separate');
  await a.until(() => a.s.stat(SS_QUEUED) === 0, 5000, 'all acked');
  assert.notEqual(a.id, b.id);
  assert.match(a.id, /^[A-Za-z0-9_-]{22}$/, '128 random bits, base64url');
  b.close();
  await a.until(() => a.presence().some((p) => p.type === 'leave' && p.user === 'bob'), 5000, 'leave');
  a.close(); other.close(); relay.close();
  await s.kill();
});

test('hostile clients: each is closed with a code, the relay stays up, a well-behaved pair sees everything once', async () => {
  const logs = [];
  const relay = await Relay.create({ helloTimeoutMs: 300, maxHistory: 1000, log: (m) => logs.push(m) });
  const s = await serve(relay);
  const room = 'hostile';
  const a = new SessionClient(s.url, { hello: { room, user: 'a' } });
  const b = new SessionClient(s.url, { hello: { room, user: 'b' } });
  await Promise.all([a.until(() => a.open), b.until(() => b.open)]);
  const expected = [];
  const roundTrip = async (name) => {
    for (let i = 0; i < 20; i++) {
      a.send(`${name}-${i}`);
      expected.push(`${name}-${i}`);
    }
    await b.until(() => b.texts().length >= expected.length, 5000, `b gets the messages after ${name}`);
    assert.deepEqual(b.texts(), expected, name);
  };
  const cases = [];
  const closedWith = async (name, closed, code, reason) => {
    const c = await closed;
    assert.equal(c.code, code, `${name}: ${JSON.stringify(c)}`);
    if (reason) assert.match(c.reason, reason, name);
    cases.push(name);
    await roundTrip(name);
  };

  // 1 MiB of incompressible bytes through a real session: within the caps, so delivered.
  {
    const big = randomBytes(1 << 20);
    const h = new SessionClient(s.url, { hello: { room, user: 'big' } });
    await h.until(() => h.open);
    h.send(new Uint8Array(big));
    await b.until(() => b.messages.some((m) => m.data instanceof Uint8Array && m.data.length === big.length), 10000, '1 MiB delivered');
    assert.ok(Buffer.from(b.messages.find((m) => m.data instanceof Uint8Array).data).equals(big));
    b.messages = b.messages.filter((m) => !(m.data instanceof Uint8Array));
    a.messages = a.messages.filter((m) => !(m.data instanceof Uint8Array));
    await h.until(() => h.s.stat(SS_QUEUED) === 0, 5000, 'acked');
    h.close();
    await roundTrip('1MiB-session');
  }
  // 1 MiB of random bytes as one WebSocket message after the handshake: not a frame.
  {
    const { ws } = await hijacked(s.url, room);
    ws.send(randomBytes(1 << 20));
    const c = await ws.closed;
    assert.ok([CLOSE_PROTOCOL, CLOSE_TOO_BIG].includes(c.code), JSON.stringify(c));
    cases.push('1MiB-random');
    assert.match(c.reason, /^(BAD_VERSION|BAD_FRAME|TRUNCATED|TOO_LARGE|TRAILING_DATA|CORRUPT)/);
    await roundTrip('1MiB-random');
  }
  // A compression bomb: 64 MiB of zeros deflated to ~64 KiB in a compressed batch.
  {
    const { ws } = await hijacked(s.url, room);
    const bomb = deflateRawSync(Buffer.alloc(64 << 20), { level: 9 });
    ws.send(encodeFrame({ kind: 'batch', flags: FRAME_F_COMPRESSED, payload: bomb }));
    await closedWith('bomb', ws.closed, CLOSE_TOO_BIG, /^TOO_LARGE/);
  }
  // 4,096 + 1 tiny frames in one batch: over maxFrames, none of them delivered.
  {
    const { ws } = await hijacked(s.url, room);
    ws.send(batch(Array.from({ length: 4097 }, (_, i) => msg(i + 1, 'x'))));
    await closedWith('4097-frames', ws.closed, CLOSE_TOO_BIG, /^TOO_LARGE/);
  }
  // A frame payload over maxPayload (1 MiB).
  {
    const { ws } = await hijacked(s.url, room);
    ws.send(msg(1, Buffer.alloc((1 << 20) + 1)));
    await closedWith('payload-cap', ws.closed, CLOSE_TOO_BIG, /^TOO_LARGE/);
  }
  // A WebSocket message over maxMessage (8 MiB): refused by the socket layer.
  {
    const { ws } = await hijacked(s.url, room);
    ws.send(Buffer.alloc((8 << 20) + 1));
    await closedWith('message-cap', ws.closed, CLOSE_TOO_BIG);
  }
  // Garbage before the hello.
  {
    const ws = rawSocket(s.url);
    await ws.opened;
    ws.send(Buffer.from('{"room":"hostile"}'));
    await closedWith('garbage-first', ws.closed, CLOSE_PROTOCOL, /^BAD_VERSION/);
  }
  // Text before the hello.
  {
    const ws = rawSocket(s.url);
    await ws.opened;
    ws.send('hello?');
    await closedWith('text-first', ws.closed, CLOSE_PROTOCOL, /^BAD_FRAME/);
  }
  // A hello that never comes.
  {
    const ws = rawSocket(s.url);
    await ws.opened;
    const t0 = Date.now();
    await closedWith('no-hello', ws.closed, CLOSE_HELLO_TIMEOUT, /^TIMEOUT/);
    assert.ok(Date.now() - t0 >= 250, 'not before the hello timeout');
  }
  // A hello whose application JSON is not an object.
  {
    const h = new SessionClient(s.url, { hello: [1, 2] });
    await h.until(() => h.closes.length > 0, 5000, 'refused');
    assert.equal(h.closes[0].code, 1008);
    assert.match(h.closes[0].reason, /^INVALID/);
    h.close();
    cases.push('bad-hello-json');
    await roundTrip('bad-hello-json');
  }
  // A flood of requests from a client that never reads the answers: its
  // history (maxHistory 1000) overflows and it is told to come back later.
  {
    const { ws } = await hijacked(s.url, room);
    let seq = 0;
    for (let k = 0; k < 6; k++) {
      ws.send(batch(Array.from({ length: 400 }, () => {
        seq++;
        return encodeFrame({ kind: 'request', channel: 0, id: seq, seq, flags: FRAME_F_ACK_REQ, payload: `q${seq}` });
      })));
    }
    await closedWith('request-flood', ws.closed, CLOSE_TRY_AGAIN, /^QUEUE_FULL/);
  }
  assert.equal(cases.length, 10);
  assert.ok(relay.stats.protocolErrors >= 6, JSON.stringify(relay.stats));
  assert.deepEqual(a.closes, [], 'the well-behaved sender was never closed');
  assert.deepEqual(b.closes, [], 'the well-behaved receiver was never closed');
  assert.deepEqual(b.texts(), expected);
  assert.equal(b.s.stat(SS_DUPLICATES), 0);
  a.close(); b.close(); relay.close();
  await s.kill();
});

test('duplicate check: a re-sent seq is acked and counted, not fanned out again; a seq past a gap waits for it', async () => {
  const relay = await Relay.create();
  const s = await serve(relay);
  const b = new SessionClient(s.url, { hello: { room: 'dup', user: 'b' } });
  await b.until(() => b.open);
  const { c, ws } = await hijacked(s.url, 'dup');
  const server = relay.sessions.get(c.id).s;
  const reader = new BatchReader();
  const seen = []; // ack frames the relay sent to the hostile client
  const lastAck = () => {
    for (const m of c.raw.splice(0)) for (const f of reader.read(m)) if (f.kind === 'ack') seen.push(f);
    return seen.at(-1);
  };
  ws.send(msg(1, 'd1'));
  await b.until(() => b.texts().length === 1, 5000, 'd1');
  await c.until(() => lastAck()?.seq === 1, 5000, 'ack of 1');
  // the same seq again, as a retransmission: acked, counted, dropped
  const before = seen.length;
  ws.send(msg(1, 'd1', FRAME_F_RETRY));
  await c.until(() => lastAck() && seen.length > before, 5000, 'ack of the duplicate');
  assert.equal(seen.at(-1).seq, 1);
  assert.equal(relay.stats.duplicatesIn, 1);
  assert.equal(server.stat(SS_DUPLICATES), 1);
  ws.send(msg(2, 'd2'));
  await b.until(() => b.texts().length === 2, 5000, 'd2');
  assert.deepEqual(b.texts(), ['d1', 'd2'], 'd1 was not delivered twice');
  // seq 4 before 3: held (acked selectively), not delivered out of order
  ws.send(msg(4, 'd4'));
  await c.until(() => { const a = lastAck(); return a && a.seq === 2 && a.payload.length > 0; }, 5000, 'selective ack of 4');
  assert.deepEqual(b.texts(), ['d1', 'd2']);
  ws.send(msg(3, 'd3'));
  await b.until(() => b.texts().length === 4, 5000, 'd3 and d4');
  assert.deepEqual(b.texts(), ['d1', 'd2', 'd3', 'd4']);
  await c.until(() => lastAck()?.seq === 4, 5000, 'cumulative ack of 4');
  reader.close();
  c.close(); b.close(); relay.close();
  await s.kill();
});

test('resume: dropped connections come back (takeover), nothing lost, nothing twice; a second transport replaces the first with 4000', async () => {
  const relay = await Relay.create();
  const s = await serve(relay);
  const a = new SessionClient(s.url, { hello: { room: 'resume', user: 'a' } });
  const b = new SessionClient(s.url, { hello: { room: 'resume', user: 'b' } });
  await Promise.all([a.until(() => a.open), b.until(() => b.open)]);
  const idA = a.id, idB = b.id;
  const N = 3000;
  let sent = 0;
  const pump = setInterval(() => {
    for (let k = 0; k < 25 && sent < N; k++, sent++) { a.send(`a${sent}`); b.send(`b${sent}`); }
  }, 2);
  try {
    for (let round = 0; round < 6; round++) {
      const c = round % 2 ? a : b;
      await until(() => a.open && b.open, 5000, 'both open');
      await until(() => sent >= (round + 1) * 400 || sent === N, 5000, 'traffic');
      c.ws.terminate(); // the network drops it, no close handshake
    }
    await until(() => sent === N && a.texts().length >= N && b.texts().length >= N, 15000, 'everything delivered');
  } finally {
    clearInterval(pump);
  }
  assert.deepEqual(b.texts(), Array.from({ length: N }, (_, i) => `a${i}`));
  assert.deepEqual(a.texts(), Array.from({ length: N }, (_, i) => `b${i}`));
  assert.equal(a.id, idA, 'same session after reconnecting');
  assert.equal(b.id, idB);
  assert.ok(a.opens >= 4 && b.opens >= 4, `${a.opens} ${b.opens}`);
  assert.equal(relay.sessions.size, 2);
  await until(() => a.s.stat(SS_QUEUED) === 0 && b.s.stat(SS_QUEUED) === 0, 5000, 'all acked');

  // A copy of b's state connects while b is still attached: it takes the
  // session over, b's socket is closed with 4000 and b does not come back.
  const copy = new SessionClient(s.url, { hello: { room: 'resume', user: 'b' }, blob: b.serialize() });
  await copy.until(() => copy.open, 5000, 'copy open');
  await b.until(() => b.closes.some((c) => c.code === CLOSE_REPLACED), 5000, 'b replaced');
  assert.equal(copy.id, idB);
  a.send('after takeover');
  await copy.until(() => copy.texts().includes('after takeover'), 5000, 'copy receives');
  assert.deepEqual(copy.texts(), ['after takeover'], 'nothing b already had');
  assert.ok(!b.texts().includes('after takeover'));
  await b.until(() => b.s.state === SESSION_CLOSED, 5000, 'b gave up');
  a.close(); b.close(); copy.close(); relay.close();
  await s.kill();
});

test('a client-chosen or unknown session id is never adopted', async () => {
  const relay = await Relay.create();
  const s = await serve(relay);
  const c = new SessionClient(s.url, { hello: { room: 'x' }, id: 'chosen-by-the-client-123' });
  await c.until(() => c.open);
  assert.notEqual(c.id, 'chosen-by-the-client-123');
  assert.ok(relay.sessions.has(c.id));
  assert.ok(!relay.sessions.has('chosen-by-the-client-123'));
  c.close(); relay.close();
  await s.kill();
});

test('a store that fails closes the connections whose bytes depended on it (1013); they resume, nothing lost, nothing twice', async () => {
  class FlakyStore extends MemoryStore {
    get inProcess() { return false; } // stands for a durable store: committed every turn
    commit(upserts, deletes) {
      if (this.fail) { this.fail = false; throw new Error('disk full'); }
      super.commit(upserts, deletes);
    }
  }
  const store = new FlakyStore();
  const logs = [];
  const relay = await Relay.create({ store, log: (m) => logs.push(m) });
  const s = await serve(relay);
  const a = new SessionClient(s.url, { hello: { room: 'flaky', user: 'a' } });
  const b = new SessionClient(s.url, { hello: { room: 'flaky', user: 'b' } });
  try {
    await Promise.all([a.until(() => a.open), b.until(() => b.open)]);
    a.send('x1');
    await b.until(() => b.texts().length === 1, 5000, 'x1');
    store.fail = true;
    // The turn that fails to commit holds x2 for b (a's ack waits for the
    // ack delay, a later turn): b's connection is closed, its session resumes.
    a.send('x2');
    await b.until(() => b.closes.length === 1, 5000, 'b closed');
    assert.equal(b.closes[0].code, CLOSE_TRY_AGAIN);
    assert.match(b.closes[0].reason, /^INTERNAL: store: disk full/);
    a.send('x3');
    await b.until(() => b.texts().length === 3, 5000, 'x2 and x3 after the resume');
    assert.deepEqual(b.texts(), ['x1', 'x2', 'x3']);
    await a.until(() => a.s.stat(SS_QUEUED) === 0, 5000, 'a acked');
    assert.ok(b.opens >= 2);
    assert.ok(logs.some((l) => l.includes('store commit failed')));
    assert.equal(store.rows.size, 2);
  } finally {
    a.close(); b.close(); relay.close();
    await s.kill();
  }
});

/** node js/server/relay-cli.mjs --port N --db FILE as a child; resolves once it listens. */
function startRelay(port, db) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RELAY_CLI, '--port', String(port), '--db', db], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.once('data', (d) => resolve({ child, port: JSON.parse(String(d).split('\n')[0]).port }));
    child.once('exit', (code) => reject(new Error(`relay exited ${code}: ${err}`)));
  });
}


test('resume: the relay killed (-9) and restarted from its SQLite store mid-stream, nothing lost, nothing twice', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-relay-'));
  const db = join(dir, 'relay.db');
  let r = await startRelay(0, db);
  const port = r.port;
  const url = `ws://127.0.0.1:${port}/`;
  const a = new SessionClient(url, { hello: { room: 'crash', user: 'a' } });
  const b = new SessionClient(url, { hello: { room: 'crash', user: 'b' } });
  const N = 4000;
  let sent = 0;
  let pump;
  try {
    await Promise.all([a.until(() => a.open), b.until(() => b.open)]);
    const idA = a.id, idB = b.id;
    pump = setInterval(() => {
      for (let k = 0; k < 10 && sent < N; k++, sent++) { a.send(`a${sent}`); b.send(`b${sent}`); }
    }, 2);
    for (let round = 0; round < 4; round++) {
      const mark = Math.min(N, (round + 1) * 700);
      await until(() => b.texts().length >= mark || sent === N, 10000, 'traffic');
      const [oa, ob] = [a.opens, b.opens];
      await kill9(r);
      r = await startRelay(port, db);
      await until(() => a.opens > oa && b.opens > ob, 10000, 'both back on the restarted relay');
    }
    await until(() => sent === N && a.texts().length >= N && b.texts().length >= N, 30000, 'everything delivered');
    clearInterval(pump);
    assert.deepEqual(b.texts(), Array.from({ length: N }, (_, i) => `a${i}`));
    assert.deepEqual(a.texts(), Array.from({ length: N }, (_, i) => `b${i}`));
    assert.equal(a.id, idA, 'the restarted relay knew the session');
    assert.equal(b.id, idB);
    assert.ok(a.opens >= 5 && b.opens >= 5, `${a.opens} ${b.opens}`);
    assert.deepEqual(a.errors, [], 'no gap reported');
    assert.deepEqual(b.errors, []);
  } finally {
    clearInterval(pump);
    a.close(); b.close();
    r.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SqliteStore: one transaction per commit, sessions survive reopening, a failed commit changes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-store-'));
  try {
    const path = join(dir, 's.db');
    const st = await SqliteStore.open(path);
    assert.equal(st.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.deepEqual(st.load(), []);
    st.commit([{ id: 'one', room: 'r', user: 'u', echo: true, blob: new Uint8Array([1, 2]) },
      { id: 'two', room: 'r', user: '', echo: false, blob: new Uint8Array([3]) }], []);
    st.commit([{ id: 'one', room: 'r2', user: 'u', echo: false, blob: new Uint8Array([4]) }], ['two']);
    assert.throws(() => st.commit([{ id: 'three', room: 'r', user: '', echo: false, blob: new Uint8Array([5]) },
      { id: null, room: 'r', user: '', echo: false, blob: new Uint8Array([6]) }], ['one']));
    st.close();
    const again = await SqliteStore.open(path);
    assert.deepEqual(again.load().map((r) => ({ ...r, blob: [...r.blob] })), [{ id: 'one', room: 'r2', user: 'u', owner: null, echo: false, subs: [], blob: [4] }]);
    again.commit([{ id: 'one', room: 'r2', user: 'Ann', owner: 'user-1', echo: false, blob: new Uint8Array([7]) }], []);
    again.close();
    // A database from before sessions had owners gains the column, its rows none.
    const old = join(dir, 'old.db');
    const { default: Database } = await import('better-sqlite3');
    const raw = new Database(old);
    raw.exec('CREATE TABLE sessions (id TEXT PRIMARY KEY, room TEXT NOT NULL, user TEXT NOT NULL, echo INTEGER NOT NULL, state BLOB NOT NULL, updated REAL NOT NULL) WITHOUT ROWID');
    raw.prepare('INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)').run('x', 'r', 'u', 0, Buffer.from([9]), 1);
    raw.close();
    const migrated = await SqliteStore.open(old);
    assert.deepEqual(migrated.load().map((r) => r.owner), [null]);
    migrated.close();
    const third = await SqliteStore.open(path);
    assert.equal(third.load()[0].owner, 'user-1');
    // A room's log: committed with the sessions, trimmed below its first offset, read back in order.
    const entry = (offset) => ({ offset, sid: 's1', from: 'Ann', flags: 0, payload: new Uint8Array([offset]), at: 1000 + offset });
    third.commit([{ id: 'one', room: 'r2', user: 'Ann', owner: 'user-1', echo: false, subs: [[0, 'r2', 3, 1], [2, 'side', 0, 0]], blob: new Uint8Array([8]) }], [],
      [{ room: 'side', epoch: 'E1', first: 1, next: 4, entries: [entry(1), entry(2), entry(3)] }]);
    third.commit([], [], [{ room: 'side', epoch: 'E1', first: 3, next: 5, entries: [entry(4)] }]);
    assert.throws(() => third.commit([], [], [{ room: 'side', epoch: 'E1', first: 3, next: 6, entries: [entry(5), { ...entry(6), payload: null }] }]));
    third.close();
    const fourth = await SqliteStore.open(path);
    assert.deepEqual(fourth.load()[0].subs, [[0, 'r2', 3, 1], [2, 'side', 0, 0]]);
    assert.deepEqual(fourth.loadRooms().map((r) => ({ ...r, entries: r.entries.map((e) => [e.offset, e.from, [...e.payload]]) })),
      [{ room: 'side', epoch: 'E1', next: 5, entries: [[3, 'Ann', [3]], [4, 'Ann', [4]]] }]);
    fourth.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the relay refuses garbage and oversize frames from a client with a close code and reason', async () => {
  const relay = await Relay.create({ maxPayload: 1024 });
  const s = await serve(relay);
  const closeOf = (send) => new Promise((resolve) => {
    const ws = new WebSocket(s.url, [SESSION_PROTOCOL]);
    ws.on('open', () => send(ws));
    ws.on('close', (code, reason) => resolve([code, String(reason)]));
  });
  let [code, reason] = await closeOf((ws) => ws.send(Buffer.from('{"hello":1}')));
  assert.equal(code, CLOSE_PROTOCOL);
  assert.match(reason, /^BAD_VERSION/);
  [code, reason] = await closeOf((ws) => ws.send('text'));
  assert.equal(code, CLOSE_PROTOCOL);
  assert.match(reason, /^BAD_FRAME/);
  [code, reason] = await closeOf((ws) => ws.send(encodeFrame({ kind: 'hello', payload: new Uint8Array(2000) })));
  assert.equal(code, CLOSE_TOO_BIG);
  assert.match(reason, /^TOO_LARGE/);
  [code, reason] = await closeOf((ws) => ws.send(encodeFrame({ kind: 'message', seq: 1, flags: FRAME_F_ACK_REQ, payload: 'x' })));
  assert.equal(code, CLOSE_PROTOCOL);
  assert.match(reason, /^BAD_STATE/); // no hello first
  // after a real handshake: a frame over the relay's maxPayload
  const c = new SessionClient(s.url, { hello: { room: 'caps' } });
  await c.until(() => c.open);
  const ws = c.hijack();
  const closed = new Promise((resolve) => ws.on('close', (k, r) => resolve([k, String(r)])));
  ws.send(encodeFrame({ kind: 'message', seq: 1, flags: FRAME_F_ACK_REQ, payload: new Uint8Array(2000) }));
  [code, reason] = await closed;
  assert.equal(code, CLOSE_TOO_BIG);
  assert.match(reason, /^TOO_LARGE/);
  c.close();
  assert.equal(relay.stats.protocolErrors, 5);
  // and without the subprotocol at all
  const refused = await new Promise((resolve) => {
    const ws = new WebSocket(s.url);
    ws.on('open', () => resolve('opened'));
    ws.on('error', (e) => resolve(e.message));
  });
  assert.match(refused, /400/);
  relay.close();
  await s.kill();
});


test('SQLite store: a relay restarted on the same database file resumes its sessions, nothing lost, nothing twice', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-sqlite-'));
  const db = join(dir, 'relay.db');
  let relay = await Relay.create({ store: await SqliteStore.open(db) });
  let s = await serve(relay);
  const port = s.port;
  const a = new SessionClient(s.url, { hello: { room: 'db', user: 'a' } });
  const b = new SessionClient(s.url, { hello: { room: 'db', user: 'b' } });
  try {
    await Promise.all([a.until(() => a.open), b.until(() => b.open)]);
    const ids = [a.id, b.id];
    for (let i = 0; i < 100; i++) a.send(`m${i}`);
    await b.until(() => b.texts().length >= 40, 5000, 'first messages');
    // The process dies (no close handshake, nothing flushed on the way out).
    await s.kill();
    relay.close();
    relay = await Relay.create({ store: await SqliteStore.open(db) });
    assert.deepEqual([...relay.sessions.keys()].sort(), [...ids].sort());
    s = await serve(relay, port);
    for (let i = 100; i < 150; i++) a.send(`m${i}`);
    await b.until(() => b.texts().length >= 150, 10000, 'everything');
    assert.deepEqual(b.texts(), Array.from({ length: 150 }, (_, i) => `m${i}`));
    assert.deepEqual([a.id, b.id], ids);
    assert.deepEqual(b.errors, []);
  } finally {
    a.close(); b.close(); relay.close();
    await s.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
