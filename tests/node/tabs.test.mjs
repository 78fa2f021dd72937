// TabGroup and SharedState across several instances in one Node process
// (Node 20 has BroadcastChannel; instances with one name talk to each other).
// No Web Locks in Node 20, so these run the heartbeat-lease path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { init, SwitchboardError } from '../../js/index.js';
import { TabGroup, SharedState } from '../../js/tabs.js';
import { core } from '../../js/core.js';

await init();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(cond, ms = 3000, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
let n = 0;
const uniq = (p) => `${p}-${process.pid}-${++n}`;
const fast = { mode: 'lease', heartbeatInterval: 40, heartbeatTimeout: 200 };

function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k), map: m };
}

test('TabGroup: one leader everywhere, presence, leader close elects exactly one new leader', async () => {
  const name = uniq('g');
  const groups = [];
  for (let i = 0; i < 4; i++) groups.push(await TabGroup.open(name, fast));
  const leaders = () => groups.filter((g) => !g.closed && g.isLeader);
  await until(() => leaders().length === 1 && groups.every((g) => g.leader === leaders()[0].id && g.tabs.length === 4), 3000, 'election');
  assert.equal(groups[0].mode, 'lease');
  const old = leaders()[0];
  let lost = 0;
  old.addEventListener('leadershiplost', () => lost++);
  const changes = [];
  for (const g of groups) if (g !== old) g.addEventListener('leaderchange', (e) => changes.push(e.leader));
  const t0 = Date.now();
  old.close();
  const rest = groups.filter((g) => g !== old);
  await until(() => leaders().length === 1 && rest.every((g) => g.leader === leaders()[0].id), 2000, 're-election');
  assert.ok(Date.now() - t0 < 1000, 'a closing leader is replaced without waiting for its lease');
  assert.equal(lost, 1);
  assert.notEqual(leaders()[0].id, old.id);
  assert.ok(changes.length >= 3);
  // Stays exactly one for a while (no flapping).
  for (let i = 0; i < 10; i++) { await sleep(30); assert.equal(leaders().length, 1); }
  await until(() => rest.every((g) => g.tabs.length === 3), 2000, 'presence');
  for (const g of rest) g.close();
});

test('TabGroup: whenLeader and garbage on the channel', async () => {
  const name = uniq('w');
  const a = await TabGroup.open(name, fast);
  await a.whenLeader();
  const spy = new BroadcastChannel(`switchboard:tabs:${name}`);
  spy.postMessage(new Uint8Array([0x15, 0, 0, 9, 9]));
  spy.postMessage('not bytes');
  spy.postMessage(new Uint8Array(5000));
  await sleep(50);
  assert.ok(a.isLeader);
  spy.close();
  a.close();
  await assert.rejects(a.whenLeader(), (e) => e instanceof SwitchboardError);
});

test('SharedState: writes reach every tab, late tab catches up, deletes, one winner', async () => {
  const name = uniq('s');
  const tabs = [];
  for (let i = 0; i < 4; i++) tabs.push(await SharedState.open(name, { group: fast, joinTimeout: 60 }));
  const seen = [];
  tabs[1].addEventListener('change', (e) => seen.push(e.detail));
  tabs[0].set('theme', 'dark');
  tabs[0].set('cart', { items: [1, 2, 3], total: 9.5 });
  assert.equal(tabs[0].get('theme'), 'dark'); // visible locally at once
  await until(() => tabs.every((t) => t.get('cart')?.total === 9.5), 2000, 'propagation');
  assert.deepEqual(tabs[3].get('cart'), { items: [1, 2, 3], total: 9.5 });
  assert.equal(seen.length, 1, 'both keys arrived in one batch');
  assert.deepEqual(seen[0].keys.sort(), ['cart', 'theme']);
  assert.equal(seen[0].local, false);
  assert.equal(seen[0].origin, tabs[0].id);

  // Per-key watch: only that key, with its new value.
  const watched = [];
  const unwatch = tabs[3].watch('theme', (v, d) => watched.push([v, d.local]));
  tabs[0].set('unrelated', 1);
  tabs[0].set('theme', 'light');
  await until(() => watched.length === 1, 2000, 'watch');
  assert.deepEqual(watched, [['light', false]]);
  unwatch();
  tabs[0].set('theme', 'dark');
  await until(() => tabs[3].get('theme') === 'dark', 2000, 'theme back');
  assert.equal(watched.length, 1);

  // Local changes are reported as local.
  const local = [];
  const off = tabs[2].subscribe((d) => local.push(d));
  tabs[2].update('count', (v = 0) => v + 1);
  await sleep(0);
  assert.deepEqual(local[0], { keys: ['count'], local: true, origin: tabs[2].id });
  off();

  // Late tab: full state without anyone writing again.
  const late = await SharedState.open(name, { group: fast, joinTimeout: 500 });
  assert.equal(late.get('theme'), 'dark');
  assert.deepEqual(late.get('cart').items, [1, 2, 3]);
  await until(() => late.get('count') === 1, 1000, 'count');

  // Delete.
  assert.equal(tabs[1].delete('theme'), true);
  assert.equal(tabs[1].delete('theme'), false);
  await until(() => [...tabs, late].every((t) => !t.has('theme')), 2000, 'delete');

  // Concurrent writes of one key from every tab in the same task: all converge.
  for (let i = 0; i < tabs.length; i++) tabs[i].set('winner', `tab${i}`);
  await until(() => {
    const v = late.get('winner');
    return v !== undefined && tabs.every((t) => t.get('winner') === v);
  }, 2000, 'convergence');
  assert.deepEqual(Object.keys(late.toJSON()).sort(), ['cart', 'count', 'unrelated', 'winner']);
  for (const t of [...tabs, late]) t.close();
});

test('SharedState: values that cannot be encoded throw at set() time', async () => {
  const s = await SharedState.open(uniq('e'), { group: fast, joinTimeout: 10, maxValueBytes: 100 });
  const code = (fn) => { try { fn(); } catch (e) { assert.ok(e instanceof SwitchboardError); return e.code; } return null; };
  assert.equal(code(() => s.set('f', () => 1)), 'INVALID');
  assert.equal(code(() => s.set('u', undefined)), 'INVALID');
  assert.equal(code(() => s.set('b', 10n)), 'INVALID');
  const cyc = {}; cyc.self = cyc;
  assert.equal(code(() => s.set('c', cyc)), 'INVALID');
  assert.equal(code(() => s.set('big', 'x'.repeat(200))), 'TOO_LARGE');
  assert.equal(code(() => s.set('', 1)), 'INVALID');
  assert.equal(s.size, 0);
  // The stored value is a copy: mutating the caller's object changes nothing.
  const obj = { a: 1 };
  s.set('o', obj);
  obj.a = 2;
  assert.equal(s.get('o').a, 1);
  s.close();
  assert.equal(code(() => s.set('x', 1)), 'CLOSED');
  await assert.rejects(SharedState.open(uniq('bad'), { maxKeys: 0 }), (e) => e.code === 'INVALID');
  // Timings the core refuses; open() fails at once (no timer left behind).
  for (const bad of [{ digestInterval: 0 }, { joinTimeout: -1 }, { batchDelay: -5 }]) {
    await assert.rejects(SharedState.open(uniq('bad'), { group: fast, ...bad }), (e) => e.code === 'INVALID', JSON.stringify(bad));
  }
  await assert.rejects(TabGroup.open(uniq('bad'), { heartbeatInterval: 500, heartbeatTimeout: 100 }), (e) => e.code === 'INVALID');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(SharedState.open(uniq('bad'), { signal: ac.signal }), (e) => e.code === 'CLOSED');
  // Aborted while it waits for a live tab: open() rejects, it does not wait on.
  const joining = new AbortController();
  const t0 = Date.now();
  const opening = SharedState.open(uniq('j'), { group: fast, joinTimeout: 10000, signal: joining.signal });
  setTimeout(() => joining.abort(), 30);
  await assert.rejects(opening, (e) => e.code === 'CLOSED');
  assert.ok(Date.now() - t0 < 5000, 'open() ended with the abort, not with the join wait');
});

test('SharedState: a burst of sets is one broadcast', async () => {
  const name = uniq('b');
  const a = await SharedState.open(name, { group: fast, joinTimeout: 10 });
  const b = await SharedState.open(name, { group: fast, joinTimeout: 10 });
  const spy = new BroadcastChannel(`switchboard:state:${name}`);
  let msgs = 0;
  spy.onmessage = () => msgs++;
  for (let i = 0; i < 1000; i++) a.set(`k${i % 100}`, i);
  await until(() => b.get('k99') === 999 && msgs >= 1, 2000, 'burst');
  await sleep(30);
  assert.equal(msgs, 1);
  assert.equal(b.size, 100);
  spy.close();
  a.close();
  b.close();
});

test('SharedState: text on both sides of the ASCII fast path arrives as written', async () => {
  const name = uniq('t');
  const a = await SharedState.open(name, { group: fast, joinTimeout: 10 });
  const b = await SharedState.open(name, { group: fast, joinTimeout: 10 });
  // Lengths at the edge of the fast path (256 UTF-16 units), non-ASCII at
  // its start, middle and end, astral characters, a lone surrogate.
  const texts = ['', 'a', 'a'.repeat(254), 'a'.repeat(255), 'a'.repeat(256), 'a'.repeat(300), 'é', `${'a'.repeat(255)}é`,
    `é${'a'.repeat(300)}`, 'ключ', '鍵'.repeat(86), '😀', `x\u{1F600}y`, '\ud800', '\u007f\u0080', 'tab\tnl\n"q"\\'];
  const key = (t, i) => `${i}:${t.slice(0, 60)}`;
  texts.forEach((t, i) => { a.set(`v${i}`, { t }); a.set(key(t, i), i); });
  a.set('k'.repeat(256), 'longest key');
  await until(() => b.size === a.size, 2000, 'all keys');
  texts.forEach((t, i) => {
    assert.deepEqual(b.get(`v${i}`), JSON.parse(JSON.stringify({ t })), `value ${i}`);
    // A lone surrogate cannot be UTF-8: the key arrives with U+FFFD, as TextEncoder writes it.
    assert.equal(b.get(key(t, i).replace(/\ud800/, '\ufffd')), i, `key ${i}`);
  });
  assert.equal(b.get('k'.repeat(256)), 'longest key');
  a.close();
  b.close();
});

test('SharedState: persistence restores the state when a tab is alone', async () => {
  const name = uniq('p');
  const storage = memoryStorage();
  const a = await SharedState.open(name, { group: fast, joinTimeout: 10, persist: true, storage });
  a.set('draft', { text: 'hello' });
  a.set('gone', 1);
  a.delete('gone');
  a.close(); // the last tab saves on the way out
  assert.equal(storage.map.size, 1);
  const b = await SharedState.open(name, { group: fast, joinTimeout: 10, persist: true, storage, initial: { draft: { text: 'default' }, fresh: true } });
  assert.deepEqual(b.get('draft'), { text: 'hello' });
  assert.equal(b.has('gone'), false);
  assert.equal(b.get('fresh'), true, 'initial fills keys nobody has');
  // Corrupt storage is ignored, not fatal.
  b.close();
  storage.setItem(`switchboard:state:${name}`, 'garbage');
  const c = await SharedState.open(name, { group: fast, joinTimeout: 10, persist: true, storage });
  assert.equal(c.size, 0);
  c.close();
});

test('SharedState: a replica that missed a broadcast is repaired from a digest', async () => {
  const name = uniq('r');
  const a = await SharedState.open(name, { group: fast, joinTimeout: 10, digestInterval: 50 });
  const b = await SharedState.open(name, { group: fast, joinTimeout: 100, digestInterval: 50 });
  // Simulate a lost message: write while b's channel drops everything.
  const realPost = BroadcastChannel.prototype.postMessage;
  BroadcastChannel.prototype.postMessage = function (m) { if (this.name === `switchboard:state:${name}`) return; realPost.call(this, m); };
  a.set('lost', 42);
  a.flush();
  BroadcastChannel.prototype.postMessage = realPost;
  await sleep(20);
  assert.equal(b.has('lost'), false);
  await until(() => b.get('lost') === 42, 3000, 'repair');
  a.close();
  b.close();
});

test('SharedState: foreign garbage is refused by the core and reported', async () => {
  const name = uniq('x');
  const s = await SharedState.open(name, { group: fast, joinTimeout: 10 });
  s.set('keep', 1);
  s.flush();
  const errors = [];
  s.addEventListener('error', (e) => { assert.equal(e.detail, e.error, 'detail: the same error (deprecated)'); errors.push(e.error.code); });
  const spy = new BroadcastChannel(`switchboard:state:${name}`);
  spy.postMessage(new Uint8Array([0x18, 0x10, 0x00, 0x03, 0x01, 0x09, 0xff])); // truncated OPS
  spy.postMessage(new Uint8Array([0x18, 0x10, 0x00, 0x02, 0x09, 0x01]));       // unknown type
  spy.postMessage(new Uint8Array([0x15, 0x10, 0x00, 0x00]));                   // not a state op
  spy.postMessage({ not: 'bytes' });
  await until(() => errors.length === 3, 1000, 'errors');
  assert.deepEqual(errors, ['TRUNCATED', 'BAD_FRAME', 'BAD_FRAME']);
  assert.deepEqual(s.toJSON(), { keep: 1 });
  spy.close();
  s.close();
});

// A STATE_OP frame (docs/tabs.md) carrying one OPS write, built by hand.
function varint(v) {
  const out = [];
  while (v >= 128) { out.push((v % 128) + 128); v = Math.floor(v / 128); }
  out.push(v);
  return out;
}
function craftedOps(origin, seq, wall, ctr, key, value) {
  const kb = [...new TextEncoder().encode(key)], vb = [...new TextEncoder().encode(value)];
  const payload = [1, ...varint(origin), 1, ...varint(seq), ...varint(wall), ...varint(ctr), 0,
    ...varint(kb.length), ...kb, ...varint(vb.length), ...vb];
  return new Uint8Array([0x18, 0x10, 0x00, ...varint(payload.length), ...payload]);
}

test('SharedState: a remote clock at the end of its range is ignored and reported; the group keeps replicating', async () => {
  const name = uniq('clock');
  const storage = memoryStorage();
  const a = await SharedState.open(name, { group: fast, joinTimeout: 10, persist: true, storage });
  const b = await SharedState.open(name, { group: fast, joinTimeout: 100, persist: true, storage });
  const errors = [];
  for (const s of [a, b]) s.addEventListener('error', (e) => errors.push(e.error.code));
  const spy = new BroadcastChannel(`switchboard:state:${name}`);
  spy.postMessage(craftedOps(999, 1, 2 ** 53, 2 ** 32 - 1, 'evil', '1'));       // the cap, counter at UINT32_MAX
  spy.postMessage(craftedOps(998, 1, Date.now() + 2 * 86400000, 0, 'later', '1')); // two days ahead
  await until(() => errors.length === 4, 1000, 'clock reports');
  assert.deepEqual(errors, ['CLOCK_SKEW', 'CLOCK_SKEW', 'CLOCK_SKEW', 'CLOCK_SKEW']);
  assert.equal(a.has('evil') || a.has('later') || b.has('evil'), false);
  // The next local writes still encode, replicate and persist.
  a.set('k', 'after-a');
  await until(() => b.get('k') === 'after-a', 2000, 'a -> b');
  b.set('k', 'after-b');
  await until(() => a.get('k') === 'after-b', 2000, 'b -> a');
  assert.equal(errors.length, 4, 'nothing else was refused');
  a.close();
  b.close();
  const c = await SharedState.open(name, { group: fast, joinTimeout: 10, persist: true, storage });
  assert.equal(c.get('k'), 'after-b', 'the saved snapshot loads');
  spy.close();
  c.close();
});

test('SharedState: oversized messages and saved state are refused before any copy into wasm', async () => {
  const name = uniq('big');
  const storage = memoryStorage();
  const s = await SharedState.open(name, { group: fast, joinTimeout: 10, persist: true, storage });
  const errors = [];
  s.addEventListener('error', (e) => errors.push(e.error.code));
  const c = core();
  const copies = [];
  const writeBytes = c.writeBytes;
  c.writeBytes = function (b) { copies.push(b.length); return writeBytes.call(this, b); };
  try {
    // Default limits: 2 MiB of state, so a message over ~2.4 MB is no state of ours.
    const spy = new BroadcastChannel(`switchboard:state:${name}`);
    const big = new Uint8Array(3 << 20);
    big.set([0x18, 0x10, 0x00]);
    spy.postMessage(big);
    await until(() => errors.length === 1, 2000, 'report');
    assert.deepEqual(errors, ['TOO_LARGE']);
    assert.ok(copies.every((n) => n < 1 << 20), `copied ${Math.max(...copies)} bytes into wasm`);
    // Writes are refused before their bytes are copied too.
    assert.throws(() => s.set('v', 'x'.repeat(70000)), (e) => e.code === 'TOO_LARGE');
    assert.ok(copies.every((n) => n < 1 << 20));
    spy.close();
    // So is a saved state over the limit (it is skipped, like corrupt storage).
    s.close();
    storage.setItem(`switchboard:state:${name}`, '\x18'.repeat(3 << 20));
    const t = await SharedState.open(name, { group: fast, joinTimeout: 10, persist: true, storage });
    assert.equal(t.size, 0);
    assert.ok(copies.every((n) => n < 1 << 20), `copied ${Math.max(...copies)} bytes into wasm`);
    t.close();
  } finally {
    delete c.writeBytes;
  }
  // maxStateBytes caps the whole state: a write past it throws at set().
  const small = await SharedState.open(uniq('total'), { group: fast, joinTimeout: 10, maxStateBytes: 1000 });
  small.set('a', 'x'.repeat(600));
  assert.throws(() => small.set('b', 'x'.repeat(600)), (e) => e.code === 'TOO_LARGE');
  assert.equal(small.has('b'), false);
  small.close();
  await assert.rejects(SharedState.open(uniq('bad'), { group: fast, maxStateBytes: 0 }), (e) => e.code === 'INVALID');
});
