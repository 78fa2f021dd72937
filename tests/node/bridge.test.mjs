// The bridge over Node's MessageChannel: the same glue and wasm router as in
// browsers (ports need no window handshake), so RPC semantics are checked here
// fast; windows, origins and spoofing are in tests/browser/bridge.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, CallOptions, transfer } from '../../js/bridge.js';

async function pair(aOpts = {}, bOpts = {}) {
  const mc = new MessageChannel();
  const [a, b] = await Promise.all([connect(mc.port1, aOpts), connect(mc.port2, bOpts)]);
  return [a, b];
}

test('calls, errors with name/message/stack/code, missing and inherited methods', async () => {
  const [a, b] = await pair({}, {
    sendErrorStacks: true, // a MessagePort's peer may be any origin: stacks only when asked
    methods: {
      add: (x, y) => x + y,
      async later(v) { await new Promise((r) => setTimeout(r, 5)); return v; },
      boom() { const e = new RangeError('too far'); e.code = 'E_FAR'; throw e; },
      rejectPlain() { return Promise.reject('just a string'); },
    },
  });
  assert.equal(await a.call('add', 2, 40), 42);
  assert.deepEqual(await a.call('later', { m: new Map([[1, 2]]) }), { m: new Map([[1, 2]]) });
  await assert.rejects(a.call('boom'), (e) => e instanceof Error && e.name === 'RangeError' && e.message === 'too far' && e.code === 'E_FAR' && /boom/.test(e.stack));
  await assert.rejects(a.call('rejectPlain'), (e) => e.message === 'just a string');
  for (const name of ['nope', 'constructor', 'hasOwnProperty', '__proto__']) {
    await assert.rejects(a.call(name), (e) => e.code === 'NOT_FOUND', name);
  }
  a.close();
  b.close();
});

test('error stacks do not cross to a peer of unknown origin unless sendErrorStacks is set', async () => {
  const boom = () => { throw new RangeError('too far'); };
  const [a, b] = await pair({}, { methods: { boom } });
  await assert.rejects(a.call('boom'), (e) => e.name === 'RangeError' && e.message === 'too far' && !/boom/.test(e.stack));
  const [c, d] = await pair({}, { methods: { boom }, sendErrorStacks: false });
  await assert.rejects(c.call('boom'), (e) => !/boom/.test(e.stack));
  for (const r of [a, b, c, d]) r.close();
});

test('whatever a method throws or rejects with, the caller gets an error at once, not a timeout', async () => {
  const [a, b] = await pair({ timeout: 400 }, {
    methods: {
      sym() { throw Symbol('s'); },
      num() { throw 42; },
      undef() { throw undefined; },
      getter() { throw { get name() { throw new Error('no name'); } }; },
      proxy() { throw new Proxy({}, { get() { throw new Error('trap'); } }); },
      fn() { throw function secret() {}; },
      rejectSym() { return Promise.reject(Symbol('r')); },
      rejectGetter() { return Promise.reject({ get message() { throw new Error('no message'); } }); },
      badThen() { return { get then() { throw new Error('then'); } }; },
    },
  });
  const expected = { sym: 'Symbol(s)', num: '42', undef: 'undefined', rejectSym: 'Symbol(r)', badThen: 'then' };
  for (const name of ['sym', 'num', 'undef', 'getter', 'proxy', 'fn', 'rejectSym', 'rejectGetter', 'badThen']) {
    const t0 = performance.now();
    const e = await a.call(name).then(() => null, (x) => x);
    assert.ok(e instanceof Error, name);
    assert.notEqual(e.code, 'TIMEOUT', `${name} got no answer`);
    assert.ok(performance.now() - t0 < 300, name);
    if (expected[name]) assert.equal(e.message, expected[name], name);
  }
  assert.equal(await a.call('num').catch(() => 'still connected'), 'still connected');
  a.close();
  b.close();
});

test('per-call timeout, late answers dropped, the id is retired in the core', async () => {
  const [a, b] = await pair({ timeout: 1000 }, {
    methods: { slow: (ms) => new Promise((r) => setTimeout(() => r('late'), ms)), echo: (x) => x },
  });
  const t0 = performance.now();
  await assert.rejects(a.call('slow', 200, new CallOptions({ timeout: 30 })), (e) => e.code === 'TIMEOUT');
  assert.ok(performance.now() - t0 < 190);
  await new Promise((r) => setTimeout(r, 250)); // the late reply arrives and is ignored
  assert.equal(a.pending.size, 0);
  assert.equal(await a.call('echo', 'still fine'), 'still fine');
  a.close();
  b.close();
});

test('transferables both ways, events both ways, batching keeps order with calls', async () => {
  let got = [];
  const [a, b] = await pair({ batch: true }, {
    methods: {
      size: (buf) => buf.byteLength,
      make: (n) => { const buf = new ArrayBuffer(n); return transfer(buf, [buf]); },
      seen: () => got,
    },
  });
  b.on('tick', (d) => got.push(d));
  const buf = new ArrayBuffer(1000);
  assert.equal(await a.call('size', buf, new CallOptions({ transfer: [buf] })), 1000);
  assert.equal(buf.byteLength, 0); // detached on the sender
  assert.equal((await a.call('make', 77)).byteLength, 77);
  for (let i = 0; i < 10; i++) a.emit('tick', i);
  assert.deepEqual(await a.call('seen'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const back = new Promise((r) => a.on('pong', r));
  b.emit('pong', { ok: true });
  assert.deepEqual(await back, { ok: true });
  got = [];
  a.close();
  b.close();
});

test('closing one side rejects the other side\'s pending calls with CONNECTION_LOST; own pending with CLOSED', async () => {
  const [a, b] = await pair({ methods: { never: () => new Promise(() => {}) } }, { methods: { never: () => new Promise(() => {}) } });
  const lost = a.call('never');
  const own = b.call('never');
  let disconnected = null;
  a.addEventListener('disconnect', (e) => { disconnected = e.reason; });
  b.close();
  await assert.rejects(own, (e) => e.code === 'CLOSED');
  await assert.rejects(lost, (e) => e.code === 'CONNECTION_LOST');
  assert.ok(['bye', 'port-closed'].includes(disconnected));
  await assert.rejects(a.call('never'), (e) => e.code === 'CLOSED' || e.code === 'CONNECTION_LOST');
  assert.throws(() => b.emit('x'), (e) => e.code === 'CLOSED');
  a.close();
});

test('a peer that never answers the handshake: connect rejects with TIMEOUT', async () => {
  const mc = new MessageChannel();
  await assert.rejects(connect(mc.port1, { timeout: 100 }), (e) => e.code === 'TIMEOUT');
  mc.port2.close();
});

test('a peer that handshakes and then goes silent is lost after heartbeatTimeout', async () => {
  const mc = new MessageChannel();
  // a hand-written peer: echoes our nonce (ACK = 11 for SYN = 10), then never answers again
  mc.port2.onmessage = (e) => { if (e.data[0] === 10) mc.port2.postMessage([11, 0, e.data[2]]); };
  const a = await connect(mc.port1, { heartbeatInterval: 20, heartbeatTimeout: 80, timeout: 0 });
  const reasons = [];
  a.addEventListener('disconnect', (e) => { assert.equal(e.detail.reason, e.reason, "detail: the same data (deprecated)"); reasons.push(e.reason); });
  const t0 = performance.now();
  await assert.rejects(a.call('anything'), (e) => e.code === 'CONNECTION_LOST');
  const ms = performance.now() - t0;
  assert.ok(ms >= 60 && ms < 1000, `lost after ${ms} ms ${reasons}`);
  assert.deepEqual(reasons, ['timeout']);
  mc.port2.close();
});

test('AbortSignal cancels one call; the late answer is dropped', async () => {
  const [a, b] = await pair({}, { methods: { slow: (ms) => new Promise((r) => setTimeout(() => r('late'), ms)), echo: (x) => x } });
  const ac = new AbortController();
  const p = a.call('slow', 50, new CallOptions({ signal: ac.signal }));
  ac.abort(new Error('user left'));
  await assert.rejects(p, (e) => e.message === 'user left');
  await assert.rejects(a.call('echo', 1, new CallOptions({ signal: AbortSignal.abort() })), (e) => e.name === 'AbortError');
  assert.equal(a.pending.size, 0);
  await new Promise((r) => setTimeout(r, 80));
  const ok = new AbortController();
  assert.equal(await a.call('echo', 'kept', new CallOptions({ signal: ok.signal })), 'kept');
  a.close();
  b.close();
});
