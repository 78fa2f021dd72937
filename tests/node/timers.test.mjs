// The relay's one timer for all its sessions (js/server/timers.mjs): random
// schedules, moves and clears of many items, on the real clock. Every item
// still scheduled fires once, never before its time, in the order of its
// times; a cleared one never fires; what fire() schedules again fires again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Timers } from '../../js/server/timers.mjs';
import { sleep } from './net.mjs';

function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => ((x ^= x << 13, x ^= x >>> 17, x ^= x << 5) >>> 0) / 2 ** 32;
}

test('many deadlines on one timer: each fires once, on time, in order; cleared ones never', async () => {
  for (const seed of [1, 2, 3]) {
    const r = rng(seed);
    const fired = [];
    const t = new Timers((item) => fired.push([item, Date.now(), item.want]));
    const items = Array.from({ length: 400 }, (_, i) => ({ i, want: -1 }));
    const t0 = Date.now();
    for (let step = 0; step < 3000; step++) {
      const it = items[Math.floor(r() * items.length)];
      if (r() < 0.2) {
        t.clear(it);
        it.want = -1;
      } else {
        it.want = t0 + 20 + Math.floor(r() * 150);
        t.set(it, it.want);
      }
    }
    // the heap's own invariant, and every item's place in it
    t.heap.forEach((it, k) => {
      assert.equal(it.at, k);
      if (k) assert.ok(t.heap[(k - 1) >> 1].due <= it.due);
    });
    await sleep(400);
    const want = items.filter((it) => it.want >= 0);
    assert.equal(fired.length, want.length, `seed ${seed}: every scheduled item fired once`);
    assert.equal(new Set(fired.map((f) => f[0])).size, fired.length);
    for (const [it, at, due] of fired) {
      assert.ok(at >= due, `seed ${seed}: item ${it.i} fired ${due - at} ms early`);
      assert.equal(it.at, -1);
    }
    for (let k = 1; k < fired.length; k++) assert.ok(fired[k - 1][2] <= fired[k][2], 'in the order of their times');
    t.close();
  }
});

test('fire() may schedule again; close() stops everything', async () => {
  let n = 0;
  const it = {};
  const t = new Timers((x) => { if (++n < 3) t.set(x, Date.now() + 5); });
  t.set(it, Date.now() + 5);
  await sleep(200);
  assert.equal(n, 3);
  const other = {};
  t.set(other, Date.now() + 5);
  t.close();
  await sleep(50);
  assert.equal(n, 3);
  assert.equal(t.heap.length, 0);
});

test('a fire() that throws costs the others due with it nothing', () => {
  const fired = [];
  const t = new Timers((x) => { fired.push(x.i); if (x.i === 0) throw new Error('boom'); });
  const due = Date.now() - 1;
  for (let i = 0; i < 3; i++) t.set({ i }, due);
  assert.throws(() => t.run(), /boom/); // what the Node timer would have called: thrown once, after all ran
  assert.deepEqual(fired.sort(), [0, 1, 2]);
  assert.equal(t.heap.length, 0);
  t.close();
  t.set({ i: 9 }, Date.now());
  assert.equal(t.heap.length, 0, 'closed: nothing is scheduled again');
});
