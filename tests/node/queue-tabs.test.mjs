// MessageQueue run() and { tabs }: two or three queues of one name in this
// process stand for tabs (Node's BroadcastChannel reaches the other objects
// of its name; the TabGroup under them elects with leases).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { init } from '../../js/core.js';
import { MessageQueue } from '../../js/queue.js';
import { sleep, until } from './net.mjs';

before(() => init());
let names = 0;
const name = () => `nq-${process.pid}-${++names}`;

test('run(): resolves with the result, rejects with the last error once dead-lettered, CLOSED for what never ran', async () => {
  const q = new MessageQueue(async (x) => { if (x === 'bad') throw new Error('no'); await sleep(1); return x * 2; }, { maxRetries: 1, retryMinDelay: 1 });
  assert.equal(await q.run(21), 42);
  await assert.rejects(q.run('bad'), /no/);
  assert.equal(q.deadLetters.length, 1);
  const slow = new MessageQueue(() => sleep(50));
  slow.push(1);
  const later = slow.run(2);
  slow.close();
  await assert.rejects(later, (e) => e.code === 'CLOSED');
  assert.throws(() => slow.push(3), (e) => e.code === 'CLOSED');
  q.close();
});

test('tabs: tasks from every queue run once, on one leader; results go back to the poster; errors too', async () => {
  const n = name();
  const ran = [];
  const make = (me) => new MessageQueue(async (item, info) => {
    ran.push({ ...item, by: me, id: info.id });
    if (item.k === 7) throw Object.assign(new Error('seven'), { code: 'TIMEOUT' });
    return { k: item.k, by: me };
  }, { tabs: n, maxRetries: 0 });
  const qs = [make('a'), make('b'), make('c')];
  const runs = [];
  for (let k = 0; k < 30; k++) runs.push(qs[k % 3].run({ k, from: k % 3 }).then((v) => ({ ok: true, v }), (e) => ({ ok: false, e })));
  const out = await Promise.all(runs);
  assert.equal(ran.length, 30);
  assert.equal(new Set(ran.map((r) => r.by)).size, 1, 'more than one tab ran tasks');
  assert.equal(new Set(ran.map((r) => r.id)).size, 30);
  for (const [k, o] of out.entries()) {
    if (k === 7) assert.deepEqual([o.ok, o.e.code, o.e.message], [false, 'TIMEOUT', 'seven']);
    else assert.equal(o.v.k, k);
  }
  assert.throws(() => qs[0].push(() => 1), (e) => e.code === 'INVALID');
  await Promise.all(qs.map((q) => q.idle()));
  for (const q of qs) assert.equal(q.stats().tabs.open, 0);
  for (const q of qs) q.close();
});

test('tabs: the leader closes with tasks open; the next leader runs them, the one it had started flagged rerun', async () => {
  const n = name();
  const ran = [];
  let gate = null;
  const make = (me) => new MessageQueue(async (item, info) => {
    ran.push({ k: item.k, by: me, rerun: info.rerun });
    if (item.k === 0 && !info.rerun) await new Promise((r) => { gate = r; });
    return me;
  }, { tabs: n });
  const a = make('a');
  await until(() => a.stats().tabs.leader, 'a leads', 5000);
  const b = make('b');
  await until(() => b.stats().tabs.tabs === 2, 'b joined', 5000);
  const results = [];
  for (let k = 0; k < 5; k++) b.run({ k }).then((v) => results.push([k, v]));
  await until(() => gate, 'task 0 started on a', 5000);
  assert.equal(a.stats().tabs.leader, true);
  a.close(); // its task 0 is cut; 1..4 never started
  await until(() => results.length === 5, 'all five settled', 8000);
  assert.deepEqual(results.sort((x, y) => x[0] - y[0]).map((r) => r[1]), ['b', 'b', 'b', 'b', 'b']);
  assert.deepEqual(ran.filter((r) => r.by === 'b').map((r) => [r.k, r.rerun]).sort(), [[0, true], [1, false], [2, false], [3, false], [4, false]]);
  assert.equal(b.stats().tabs.reruns, 1);
  gate();
  b.close();
});

test("tabs: a leader that dies right after a task's start, its post of the start lost with it: the task runs once, or again flagged rerun", { timeout: 20000 }, async () => {
  const n = name();
  const ran = [];
  // The first leader's "renderer" dies 20 ms after it posts task 4's start,
  // and takes its posts of those 20 ms with it (that start among them); what
  // its handler did before the crash (a fetch) got out.
  const Real = globalThis.BroadcastChannel;
  let muted = false, dead = false, owner = null;
  globalThis.BroadcastChannel = class extends Real {
    postMessage(m) {
      if (this.owner === 'a' && !muted && m?.t === 'start' && m.id.endsWith('.4')) { muted = true; setTimeout(() => { dead = true; }, 20); }
      if (this.owner !== 'a' || !muted) super.postMessage(m);
    }
    constructor(x) { super(x); this.owner = owner; }
  };
  const make = (me) => {
    owner = me;
    return new MessageQueue(async (item, info) => {
      if (me === 'a' && dead) return new Promise(() => {}); // a dead renderer does nothing more
      ran.push({ k: item.k, by: me, rerun: info.rerun });
      return me;
    }, { tabs: n });
  };
  try {
    const a = make('a');
    await until(() => a.stats().tabs.leader, 'a leads', 5000);
    const b = make('b');
    owner = null;
    await until(() => b.stats().tabs.tabs === 2, 'b joined', 5000);
    const results = [];
    for (let k = 1; k <= 6; k++) b.run({ k }).then((v) => results.push([k, v]));
    await until(() => results.length === 6, 'all six settled on b after the lease ran out', 15000);
    const fours = ran.filter((r) => r.k === 4);
    for (let k = 1; k <= 6; k++) {
      const runs = ran.filter((r) => r.k === k);
      assert.ok(runs.length === 1 || (runs.length === 2 && runs[1].rerun === true), `task ${k} ran twice unflagged: ${JSON.stringify(ran)}`);
    }
    a.close();
    b.close();
  } finally {
    globalThis.BroadcastChannel = Real;
  }
});
