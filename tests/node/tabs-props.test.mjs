// Property tests of the tabs glue against foreign BroadcastChannel traffic
// (issue 18, item 6): random, crafted and mutated sync and lease messages
// posted into a live SharedState / TabGroup. For every seeded run: nothing
// escapes as an uncaught exception; every message the core refuses, and
// every oversized one, is reported as an `error` event carrying a
// SwitchboardError code; the glue's cache holds exactly what its core holds,
// which is what a second core fed the same messages holds; and afterwards
// ordinary tabs still replicate, and the saved snapshot loads.
// Also the deterministic same-timestamp tie (issue 18, item 5).
// A failure prints the seed: SB_PROP_SEED=<seed> replays it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { init, SharedState, TabGroup, SwitchboardError } from '../../js/index.js';
import { core } from '../../js/core.js';
import { SYNC_CH_DELETED } from '../../js/constants.js';
import { property, watchUncaught, until, varint, readVar } from './props.mjs';

await init();
const watch = watchUncaught();
after(() => watch.stop());

const enc = new TextEncoder();
const dec = new TextDecoder();
const fast = { mode: 'lease', heartbeatInterval: 20, heartbeatTimeout: 120 };
let n = 0;
const uniq = (p) => `${p}-${process.pid}-${++n}`;

function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k), map: m };
}

// Caps of the SharedStates under test; the judge core gets the same.
const CAPS = { maxKeys: 24, maxKeyBytes: 32, maxValueBytes: 256, maxTombstones: 24, maxTabs: 16, maxStateBytes: 4096 };
const SKEW = 86400000;

// Asks a replica for a snapshot (the answer to a REQUEST from this id).
const ASK = frame(8, [4, ...varint(0x7ffffffe)]);

/**
 * A replica in the core, driven directly: writers of valid traffic and the
 * judge. The tabs job's core exports what the glue calls, so each output is
 * asked of the policy (src/sync.h): it joins at once, a digest is due 1 ms
 * after the last, writes wait for flush(), a snapshot answers a REQUEST, and
 * a REQUEST is its join request (a REQUEST carries only its origin).
 */
class Replica {
  constructor(id) {
    this.c = core();
    this.f = this.c.fn;
    this.h = this.f.sb_sync_create(id >>> 0, CAPS.maxKeys, CAPS.maxKeyBytes, CAPS.maxValueBytes, CAPS.maxTombstones, CAPS.maxTabs);
    this.maxMsg = this.f.sb_sync_limits(this.h, CAPS.maxStateBytes, SKEW);
    assert.ok(this.h && this.maxMsg > 0);
    this.t = Date.now();
    assert.equal(this.f.sb_sync_start(this.h, this.t, 0, 1, Infinity, 0), 0);
    this.req = this.poll();
    assert.equal(syncType(this.req), 4);
    assert.equal(this.poll(), null);
  }
  /** The replica's clock: Date.now(), never behind what it was given before. */
  now(ahead = 0) { this.t = Math.max(this.t + ahead, Date.now()); return this.t; }
  poll(ahead = 0) { return this.out(this.f.sb_sync_poll(this.h, this.now(ahead))); }
  out(len) { return len > 0 ? this.c.readBytes(this.f.sb_sync_out(this.h), len) : null; }
  set(key, text) {
    const k = enc.encode(key), v = enc.encode(text);
    const p = this.c.scratch(k.length + v.length);
    this.c.heap().set(k, p);
    this.c.heap().set(v, p + k.length);
    return this.f.sb_sync_set(this.h, this.now(), p, k.length, p + k.length, v.length);
  }
  del(key) { const k = enc.encode(key); return this.f.sb_sync_delete(this.h, this.now(), this.c.writeBytes(k), k.length); }
  flush() { return this.out(this.f.sb_sync_flush(this.h)); }
  /** Each of these expects every write flushed (else the poll returns the ops first). */
  snapshot() { assert.ok(this.f.sb_sync_merge(this.h, this.now(), this.c.writeBytes(ASK), ASK.length) >= 0); return this.expect(this.poll(), 2); }
  digest() { return this.expect(this.poll(1), 3); }
  request() { return this.req; }
  expect(m, type) { assert.equal(syncType(m), type); return m; }
  /** Merge like the glue does; returns {rc, skewed, changes: Map key -> value bytes | null (deleted)}. */
  merge(bytes) {
    const rc = this.f.sb_sync_merge(this.h, this.now(), this.c.writeBytes(bytes), bytes.length);
    const changes = new Map();
    if (rc > 0) {
      const buf = this.c.readBytes(this.f.sb_sync_changes(this.h), this.f.sb_sync_changes_len(this.h));
      const pos = { i: 0 };
      for (let k = 0; k < rc; k++) {
        const flags = buf[pos.i++];
        const kl = readVar(buf, pos);
        const key = dec.decode(buf.subarray(pos.i, (pos.i += kl)));
        const vl = readVar(buf, pos);
        const val = buf.slice(pos.i, (pos.i += vl));
        changes.set(key, flags & SYNC_CH_DELETED ? null : val);
      }
    }
    return { rc, skewed: rc >= 0 ? this.f.sb_sync_skewed(this.h) : 0, changes };
  }
  destroy() { this.f.sb_sync_destroy(this.h); }
}

/** The state a snapshot carries, as {key: value text}. */
function stateOf(snapshot) {
  const r = new Replica(0x7ffffff0);
  try {
    const m = r.merge(snapshot);
    assert.ok(m.rc >= 0, `a snapshot of ours does not merge: ${m.rc}`);
    const o = {};
    for (const [k, v] of m.changes) if (v) o[k] = dec.decode(v);
    return o;
  } finally { r.destroy(); }
}

/** The sync type of a STATE_OP frame (its payload's first byte). */
function syncType(m) {
  if (!(m instanceof Uint8Array) || m.length < 5) return -1;
  const pos = { i: 3 };
  readVar(m, pos);
  return m[pos.i];
}

function frame(kind, payload) { return new Uint8Array([0x10 | kind, 0x10, 0x00, ...varint(payload.length), ...payload]); }

/** A hand-made OPS message: any origin, seq, clock, key and value bytes. */
function craftedOps(r, now) {
  const origin = r.pick([1, 2, 0x7fffffff, 0xffffffff, r.range(1, 1000)]);
  const wall = r.pick([0, 1, now, now - 5000, now + 1000, now + 2 * SKEW, 2 ** 53, 2 ** 53 - 1, 2 ** 48]);
  const ctr = r.pick([0, 1, 2 ** 32 - 1, 2 ** 31, r.int(100)]);
  const count = r.pick([0, 1, 2, 3]);
  const body = [];
  let seq = r.range(0, 3);
  for (let i = 0; i < count; i++) {
    seq += r.pick([0, 1, 1, 2]);
    const del = r.bool(0.2);
    const key = [...enc.encode(r.bool(0.1) ? 'k'.repeat(40) : r.pick(['a', 'b', 'c', 'é', '']) + r.string(3))];
    const val = [...enc.encode(r.bool(0.8) ? JSON.stringify(r.json()) : r.string(6))];
    body.push(...varint(seq), ...varint(wall), ...varint(ctr), del ? 1 : r.pick([0, 0, 2, 0xff]), ...varint(key.length), ...key);
    if (!del) body.push(...varint(val.length), ...val);
  }
  return frame(8, [r.pick([1, 1, 1, 2, 3, 4, 0, 9]), ...varint(origin), ...varint(count), ...body]);
}

/** Valid traffic from two writers in the core, seeded. */
function corpus(r) {
  const ws = [new Replica(r.range(1, 2 ** 31)), new Replica(r.range(1, 2 ** 31))];
  const msgs = [];
  try {
    for (let i = 0; i < 12; i++) {
      const w = r.pick(ws);
      const nk = 1 + r.int(3);
      for (let k = 0; k < nk; k++) {
        const key = r.pick(['a', 'b', 'c', 'd', 'é']);
        if (r.bool(0.2)) w.del(key); else w.set(key, JSON.stringify(r.json()));
      }
      msgs.push(w.flush());
      if (r.bool(0.3)) msgs.push(w.digest());
      if (r.bool(0.2)) msgs.push(w.snapshot());
      if (r.bool(0.1)) msgs.push(w.request());
    }
  } finally { for (const w of ws) w.destroy(); }
  return msgs.filter(Boolean);
}

function hostile(r, valid, now) {
  switch (r.int(8)) {
    case 0: return r.pick(valid);
    case 1: case 2: case 3: return r.mutate(r.pick(valid), valid);
    case 4: return craftedOps(r, now);
    case 5: return r.mutate(craftedOps(r, now));
    case 6: return r.bytes(r.int(40));
    default: return r.pick([r.bytes(5000), new Uint8Array(0), frame(8, []), frame(5, [1, 1, 0, 0, 0]), frame(8, [4])]);
  }
}

test('SharedState: random and mutated sync messages are merged or reported, never corrupt the state, and the group keeps working', async () => {
  await property('tabs sync messages', 6, async (r) => {
    const name = uniq('pstate');
    const storage = memoryStorage();
    const opts = { ...CAPS, group: fast, joinTimeout: 10, digestInterval: 1e9, persist: true, storage };
    const s = await SharedState.open(name, opts);
    const judge = new Replica(s.id);
    const errors = [];
    const changed = [];
    s.addEventListener('error', (e) => errors.push(e.detail));
    s.addEventListener('change', (e) => changed.push(...e.detail.keys));
    const spy = new BroadcastChannel(`switchboard:state:${name}`);
    const fromS = [];
    spy.onmessage = (e) => fromS.push(e.data);
    try {
      const valid = corpus(r);
      const now = Date.now();
      const expected = []; // the codes s must report, in order
      const over = r.int(40);
      for (let i = 0; i < 40; i++) {
        // One message just over the size limit, whose head is a valid message.
        const m = i === over ? (() => { const b = new Uint8Array(judge.maxMsg + 1 + r.int(64)); b.set(r.pick(valid)); return b; })() : hostile(r, valid, now);
        spy.postMessage(m);
        if (m.length > judge.maxMsg) { expected.push('TOO_LARGE'); continue; } // not read at all
        const v = judge.merge(m);
        if (v.rc < 0) { expected.push(judge.c.cstr(judge.f.sb_errname(v.rc))); continue; }
        // A value JSON cannot read is reported too (the key reads as absent).
        if ([...v.changes.values()].some((b) => { try { if (b) JSON.parse(dec.decode(b)); return false; } catch { return true; } })) expected.push('CORRUPT');
        if (v.skewed > 0) expected.push('CLOCK_SKEW');
      }
      // A barrier: one valid write after them all (one sender's messages arrive in order).
      const w = new Replica(0x7ffffff1);
      w.set('barrier', JSON.stringify(r.seed));
      const bar = w.flush();
      w.destroy();
      judge.merge(bar);
      spy.postMessage(bar);
      await until(() => s.get('barrier') === r.seed, 'the barrier write');
      // Every refusal was reported, each as a SwitchboardError with a code.
      for (const e of errors) assert.ok(e instanceof SwitchboardError && typeof e.code === 'string' && e.code, `not a SwitchboardError: ${e}`);
      assert.deepEqual(errors.map((e) => e.code), expected, 'what s reported, against what the judge refused');
      watch.check('while foreign messages arrived');

      // The cache is what the core holds, and the core holds what the judge
      // (fed the same messages) holds: ask s for a snapshot, as a new tab would.
      const req = new Replica(0x7ffffff2);
      const ask = req.request();
      req.destroy();
      fromS.length = 0;
      spy.postMessage(ask);
      await until(() => fromS.some((m) => syncType(m) === 2), 'the snapshot s answers with');
      const core = stateOf(fromS.find((m) => syncType(m) === 2));
      const judged = stateOf(judge.snapshot());
      assert.deepEqual(core, judged, 'the core of s holds what a core fed the same messages holds');
      const cache = {};
      for (const [k, v] of s.entries()) cache[k] = v;
      const expectCache = {};
      for (const [k, t] of Object.entries(core)) { try { expectCache[k] = JSON.parse(t); } catch { /* not JSON: see below */ } }
      assert.deepEqual(cache, expectCache, 'the cache of s is its core state, decoded');

      // Ordinary tabs still replicate both ways, and a late tab gets all of it.
      const b = await SharedState.open(name, { ...opts, joinTimeout: 200 });
      try {
        b.set('after', r.seed);
        await until(() => s.get('after') === r.seed, 'b -> s');
        s.set('back', 1);
        await until(() => b.get('back') === 1, 's -> b');
        await until(() => JSON.stringify(Object.entries(b.toJSON()).sort()) === JSON.stringify(Object.entries(s.toJSON()).sort()), 'b and s agree');
      } finally { b.close(); }
      const state = s.toJSON();
      s.close();
      const c = await SharedState.open(name, { ...opts, joinTimeout: 10 });
      try { assert.deepEqual(c.toJSON(), state, 'the saved snapshot loads whole'); } finally { c.close(); }
      assert.equal(errors.length, expected.length, 'nothing ordinary was refused');
      watch.check('after the hostile messages');
    } finally {
      spy.close();
      judge.destroy();
      if (!s.closed) s.close();
    }
  });
});

test('TabGroup: random and mutated lease messages never throw, and once they stop the real tabs agree on one leader among them', async () => {
  await property('tabs lease messages', 4, async (r) => {
    const name = uniq('pgroup');
    const groups = [await TabGroup.open(name, fast), await TabGroup.open(name, fast)];
    const spy = new BroadcastChannel(`switchboard:tabs:${name}`);
    const seen = [];
    spy.onmessage = (e) => { if (seen.length < 50) seen.push(e.data); };
    try {
      await until(() => groups.every((g) => g.leader && g.leader === groups[0].leader) && seen.length >= 4, 'a first leader');
      const ids = groups.map((g) => g.id);
      const lease = (type, id, flags, term, leader) => frame(5, [type, ...varint(id), flags, ...varint(term), ...varint(leader)]);
      for (let i = 0; i < 60; i++) {
        let m;
        switch (r.int(5)) {
          case 0: m = r.mutate(r.pick(seen), seen); break;
          case 1: m = lease(r.pick([1, 2, 0, 3]), r.pick([...ids, r.range(1, 2 ** 32 - 1), 0]), r.int(16), r.pick([0, 1, 2 ** 32 - 1, 2 ** 31, r.int(50)]), r.pick([...ids, 0, r.range(1, 2 ** 32 - 1)])); break;
          case 2: m = r.mutate(lease(1, r.range(1, 1e6), r.int(16), r.int(1e4), r.range(0, 1e6))); break;
          case 3: m = r.bytes(r.int(80)); break;
          default: m = r.pick([r.pick(seen), 'text', { t: 1 }, new Uint8Array(65), new ArrayBuffer(7)]);
        }
        spy.postMessage(m);
        if (i % 10 === 9) await new Promise((ok) => setTimeout(ok, 5));
      }
      watch.check('while foreign lease messages arrived');
      // Forged tabs expire; the two real tabs end with one leader, one of them, known to both.
      await until(() => groups.every((g) => g.tabs.length === 2) && groups.filter((g) => g.isLeader).length === 1 &&
        groups.every((g) => g.leader === groups.find((x) => x.isLeader).id), 'one real leader, agreed on', 5000);
      assert.deepEqual(groups[0].tabs.map((t) => t.id), [...ids].sort((a, b) => a - b));
      watch.check('after the hostile lease messages');
    } finally {
      spy.close();
      for (const g of groups) g.close();
    }
  });
});

// issue 18 item 5: which replica wins a same-timestamp tie. Two writers stamp
// one key with the same (wall, counter); the higher writer id must win in
// every replica, whichever write arrives first. Driven by hand, no timing.
test('SharedState: a same-timestamp tie goes to the higher writer id in every replica, in either arrival order', async () => {
  const wall = Date.now();
  const op = (origin, value) => {
    const kb = [...enc.encode('tie')], vb = [...enc.encode(JSON.stringify(value))];
    return frame(8, [1, ...varint(origin), 1, ...varint(1), ...varint(wall), ...varint(7), 0, ...varint(kb.length), ...kb, ...varint(vb.length), ...vb]);
  };
  const low = op(1000, 'from-1000'), high = op(2000, 'from-2000');
  const replicas = [];
  for (const order of [[low, high], [high, low]]) {
    const name = uniq('tie');
    const s = await SharedState.open(name, { group: fast, joinTimeout: 10 });
    const spy = new BroadcastChannel(`switchboard:state:${name}`);
    const seen = [];
    s.watch('tie', (v) => seen.push(v));
    for (const m of order) spy.postMessage(m);
    // A barrier after both: another key from a third writer.
    spy.postMessage(frame(8, [1, ...varint(3000), 1, ...varint(1), ...varint(wall), ...varint(0), 0, 1, 0x7a, 1, 0x31]));
    await until(() => s.has('z'), 'the barrier');
    replicas.push({ s, spy, seen });
  }
  assert.deepEqual(replicas.map((x) => x.s.get('tie')), ['from-2000', 'from-2000']);
  // Low first: overwritten by high. High first: low changes nothing.
  assert.deepEqual(replicas[0].seen, ['from-1000', 'from-2000']);
  assert.deepEqual(replicas[1].seen, ['from-2000']);
  for (const { s, spy } of replicas) { spy.close(); s.close(); }
});
