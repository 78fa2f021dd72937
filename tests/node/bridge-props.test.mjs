// Property tests of the bridge glue against a hostile peer (issue 18,
// item 6): random and mutated port messages (any structured-clone value,
// real message shapes with wrong kinds, ids, names and arguments) posted on
// the private MessagePort of a connected pair, as the peer's own glue would.
// For every seeded run: nothing escapes as an uncaught exception; every call
// the peer makes is answered exactly once (an unknown or inherited method, a
// bad name or bad arguments with an error carrying a code where the bridge
// has one: NOT_FOUND), never left waiting; and afterwards calls both ways and
// events in order still work on the same pair.
// Windows, origins and forged handshakes: tests/browser/bridge.test.mjs.
// A failure prints the seed: SB_PROP_SEED=<seed> replays it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { init, connect } from '../../js/index.js';
import { property, watchUncaught, until } from './props.mjs';

await init();
const watch = watchUncaught();
after(() => watch.stop());

// Port message kinds (js/bridge.js): CALL, OK, ERR, EVENT, BATCH, PING, PONG, BYE, READY, SYN, ACK, CALL1.
const CALL = 1, OK = 2, ERR = 3, EVENT = 4, BATCH = 5, BYE = 8, CALL1 = 12;

function value(r, depth = 2) {
  switch (r.int(depth > 0 ? 12 : 9)) {
    case 0: return undefined;
    case 1: return null;
    case 2: return r.pick([0, -0, NaN, Infinity, 2 ** 53, -1, 1.5, 2 ** 32]);
    case 3: return r.string(10);
    case 4: return r.pick([10n, -(2n ** 70n)]);
    case 5: return new Date(r.pick([0, NaN, 8.64e15]));
    case 6: return r.bytes(r.int(16));
    case 7: return r.pick([new ArrayBuffer(3), /x/g, new Error('e'), 'x'.repeat(100000)]);
    case 8: return r.bool();
    case 9: return Array.from({ length: r.pick([0, 1, 2, 3, 300]) }, () => (depth > 1 ? null : value(r, depth - 1)));
    case 10: return new Map([[value(r, depth - 1), value(r, depth - 1)]]);
    default: return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick(['0', 'name', 'message', 'code', 'stack', '__proto__', r.string(3)]), value(r, depth - 1)]));
  }
}

const NAMES = ['echo', 'add', 'nope', 'constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', '', 'secret'];

/** One hostile port message; calls are recorded in `calls` (id -> name) to check their answers. */
function hostile(r, calls, nextId) {
  const name = () => (r.bool(0.8) ? r.pick(NAMES) : value(r, 1));
  switch (r.int(10)) {
    case 0: case 1: {
      const id = nextId();
      const n = name();
      calls.set(id, n);
      return r.bool() ? [CALL, id, n, r.bool(0.8) ? Array.from({ length: r.int(3) }, () => value(r, 1)) : value(r, 1)] : [CALL1, id, n, value(r, 1)];
    }
    case 2: return [r.pick([OK, ERR]), r.pick([0, 1, 2, -1, 2 ** 32 + 1, 'x', null, 1.5]), value(r, 1)];
    case 3: return [EVENT, r.pick(['ev', 'other', value(r, 0)]), value(r, 1)];
    case 4: return [BATCH, r.pick([['ev', 1, 'ev'], value(r, 1), Array.from({ length: r.int(6) }, () => r.pick(['ev', 'x', value(r, 0)]))])];
    case 5: { const k = r.int(16); return [k === BYE ? 0 : k, value(r, 0), value(r, 0), value(r, 0)]; }
    case 6: return value(r, 2);
    case 7: return [];
    case 8: return Array.from({ length: 1 + r.int(5) }, () => value(r, 0)).map((v, i) => (i === 0 && v === BYE ? 0 : v));
    default: return [r.pick([CALL, CALL1]), value(r, 0), name(), value(r, 1)]; // ids that are not numbers: answered, but not tracked
  }
}

test('bridge: random and mutated port messages from the peer never throw, every call gets one answer, and the pair keeps working', async () => {
  await property('bridge port messages', 6, async (r) => {
    const mc = new MessageChannel();
    const events = [];
    const [a, b] = await Promise.all([connect(mc.port1, { timeout: 2000 }), connect(mc.port2, {
      timeout: 2000,
      methods: { echo: (v) => v, add: (x, y) => x + y, secret: undefined },
    })]);
    b.on('ev', (d) => events.push(d));
    const lost = [];
    for (const [n, x] of [['a', a], ['b', b]]) x.addEventListener('disconnect', (e) => lost.push(`${n}: ${e.detail.reason} after message ${sentCount}`));
    let sentCount = 0;
    // Answers b sends to hostile calls arrive on a's port (a drops them as not its own).
    const answers = new Map();
    const onAnswer = (e) => {
      const d = e.data;
      if (Array.isArray(d) && (d[0] === OK || d[0] === ERR) && typeof d[1] === 'number' && d[1] >= 1e9) {
        answers.set(d[1], [...(answers.get(d[1]) || []), d]);
      }
    };
    a.port.addEventListener('message', onAnswer);
    const calls = new Map();
    let id = 1e9;
    try {
      for (let i = 0; i < 120; i++) {
        const m = hostile(r, calls, () => id++);
        sentCount = i;
        try { a.port.postMessage(m); } catch (e) { assert.equal(e.name, 'DataCloneError', String(e)); }
      }
      // Every tracked call is answered once: own methods with OK or a thrown
      // error, the rest with NOT_FOUND.
      assert.deepEqual(lost, [], 'the pair disconnected');
      await until(() => [...calls.keys()].every((k) => answers.has(k)), 'an answer to every call', 5000).catch((e) => { throw new Error(`${e.message}: unanswered ${[...calls].filter(([k]) => !answers.has(k)).map(([k, n]) => `${k}:${String(n)}`)}`); });
      for (const [k, n] of calls) {
        const got = answers.get(k);
        assert.equal(got.length, 1, `call ${k} (${String(n)}) answered ${got.length} times`);
        const [kind, , v] = got[0];
        if (n === 'echo' || n === 'add') assert.ok(kind === OK || (kind === ERR && typeof v?.message === 'string'), `call ${String(n)}`);
        else assert.ok(kind === ERR && v.code === 'NOT_FOUND', `call of ${String(n)} answered ${JSON.stringify(got[0])}`);
      }
      watch.check('while the peer sent hostile messages');
      // The pair still works both ways, events in order.
      assert.ok(a.isConnected && b.isConnected);
      assert.equal(await a.call('add', 2, 40), 42);
      const big = { deep: [1, 'two', new Map([[3, 4]])], when: new Date(0) };
      assert.deepEqual(await a.call('echo', big), big);
      events.length = 0;
      for (let i = 0; i < 20; i++) a.emit('ev', i);
      await until(() => events.length >= 20, 'the events after');
      assert.deepEqual(events, Array.from({ length: 20 }, (_, i) => i));
      await assert.rejects(b.call('anything'), (e) => e.code === 'NOT_FOUND');
      watch.check('after the hostile messages');
    } finally {
      a.port?.removeEventListener('message', onAnswer);
      a.close();
      b.close();
    }
  });
});
