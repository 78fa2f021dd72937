// Property tests of the frame glue against hostile bytes (issue 18, item 6):
// random and mutated frames into decodeFrame, and a BatchReader fed a real
// Batcher's stream (compressed, shared window) with messages mutated. For
// every seeded run: nothing escapes as an uncaught exception; every refusal
// is a SwitchboardError with a code; what is accepted decodes canonically or
// is exactly what was sent; and afterwards the codec and the reader handle
// well-formed input exactly. The Socket's session: socket-props.test.mjs.
// A failure prints the seed: SB_PROP_SEED=<seed> replays it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { init, encodeFrame, decodeFrame, BatchReader, Batcher, FrameKind, SwitchboardError } from '../../js/index.js';
import { property, watchUncaught } from './props.mjs';

await init();
const watch = watchUncaught();
after(() => watch.stop());

const vectors = JSON.parse(readFileSync(new URL('../data/frame-vectors.json', import.meta.url), 'utf8'));
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const hex = (b) => Buffer.from(b).toString('hex');
const enc = new TextEncoder();
const KINDS = Object.keys(FrameKind);

/** A SwitchboardError with a non-empty string code, or the assertion says what it was. */
function refusal(e, where) {
  assert.ok(e instanceof SwitchboardError && typeof e.code === 'string' && e.code, `${where}: not a SwitchboardError: ${e?.stack || e}`);
  return e.code;
}

function randomFrame(r) {
  const u32 = () => r.pick([0, 1, 127, 128, 2 ** 32 - 1, r.int(2 ** 32), r.int(300)]);
  return {
    kind: r.pick(KINDS.filter((k) => k !== 'batch')),
    flags: r.pick([0, 4, 8, 16, 32, 16 | 4]),
    channel: u32(), id: u32(), seq: u32(), corr: u32(),
    deadline: r.pick([-1, -1, 0, Date.UTC(2026, 0, 1), 2 ** 52]),
    payload: r.bool() ? r.bytes(r.pick([0, 1, 5, 130, r.int(3000)])) : enc.encode(r.string(20)),
  };
}

function sameFrame(got, want, where) {
  for (const k of ['kind', 'flags', 'channel', 'id', 'seq', 'corr', 'deadline']) assert.equal(got[k], want[k], `${where}: ${k}`);
  assert.equal(hex(got.payload), hex(want.payload), `${where}: payload`);
}

test('decodeFrame: random frames round-trip; random and mutated bytes decode canonically or are refused with a code; the codec stays exact', async () => {
  await property('frame codec', 8, (r) => {
    const valid = [];
    for (let i = 0; i < 150; i++) {
      const f = randomFrame(r);
      const bytes = encodeFrame(f);
      valid.push(bytes);
      sameFrame(decodeFrame(bytes), f, 'round trip');
    }
    const codes = new Set();
    for (let i = 0; i < 400; i++) {
      const m = r.bool(0.8) ? r.mutate(r.pick(valid), valid) : r.bytes(r.int(24));
      let f;
      try {
        f = decodeFrame(m, { maxPayload: r.pick([undefined, 64, 1 << 20]), text: r.bool(0.2) });
      } catch (e) { codes.add(refusal(e, 'decodeFrame')); continue; }
      // What decodes is a frame: re-encoding it decodes to the same fields.
      if (typeof f.payload === 'string') continue;
      sameFrame(decodeFrame(encodeFrame(f)), f, 'decoded, re-encoded');
    }
    assert.ok(codes.size >= 2, `mutations reached only ${[...codes]}`);
    for (const v of vectors.valid) assert.equal(hex(encodeFrame(decodeFrame(unhex(v.hex)))), v.hex, v.name);
    for (const v of vectors.invalid) assert.throws(() => decodeFrame(unhex(v.hex), { maxPayload: v.maxPayload }), (e) => e.code === v.error, v.name);
    watch.check('in the frame codec');
  });
});

/** Transport messages from a Batcher for these frames, in order. */
function batches(frames, r, opts = {}) {
  const out = [];
  const b = new Batcher({ compression: r.pick(['shared', 'deflate', 'none']), compressAbove: r.pick([0, 64, 1024]), maxMessages: 1 + r.int(8), maxDelay: 1e6, ...opts }, (bytes) => out.push(bytes.slice()));
  try {
    for (const f of frames) b.add(f);
    b.flush();
  } finally { b.close(); }
  return out;
}

test('BatchReader: batches from a Batcher read back exactly; mutated ones give frames or a coded refusal; after resetStream a clean stream reads exactly', async () => {
  await property('batch reader', 8, (r) => {
    const frames = Array.from({ length: 30 }, () => ({ ...randomFrame(r), kind: 'message', deadline: -1, payload: enc.encode(r.string(80).repeat(1 + r.int(4))) }));
    const msgs = batches(frames, r);
    const clean = new BatchReader();
    const hit = new BatchReader({ maxInflated: r.pick([0, 4096]) });
    try {
      const got = msgs.flatMap((m) => clean.read(m));
      assert.equal(got.length, frames.length);
      got.forEach((f, i) => sameFrame(f, frames[i], `frame ${i}`));
      // The same stream with some messages mutated, into another reader.
      const surely = r.int(msgs.length);
      for (let j = 0; j < msgs.length; j++) {
        const m = msgs[j];
        const bad = j === surely || r.bool(0.4) ? r.mutate(m, msgs) : m;
        let outer = true; // a message is one frame (maybe a batch): one decodeFrame refuses is no message
        try { decodeFrame(bad); } catch { outer = false; }
        let frames;
        try { frames = hit.read(bad); } catch (e) { refusal(e, 'BatchReader.read'); continue; }
        assert.ok(outer, 'read() accepted a message whose frame decodeFrame refuses, and reported nothing');
        for (const f of frames) assert.ok(f.bytes instanceof Uint8Array && typeof f.kind === 'string');
      }
      watch.check('in the batch reader');
      // resetStream forgets the shared window: the next message of the old
      // stream (compressed against it) is refused, a fresh stream reads exactly.
      const same = { kind: 'message', seq: 1, payload: enc.encode(`${r.string(8)} compressible `.repeat(12)) };
      const shared = batches([same, same, same], r, { compression: 'shared', compressAbove: 0, maxMessages: 1 }); // the next refers back
      clean.resetStream();
      clean.read(shared[0]);
      clean.resetStream();
      assert.throws(() => clean.read(shared[1]), (e) => e.code === 'CORRUPT', 'a shared-window message after resetStream');
      hit.resetStream();
      const again = batches(frames, r).flatMap((m) => hit.read(m));
      assert.equal(again.length, frames.length);
      again.forEach((f, i) => sameFrame(f, frames[i], `after reset, frame ${i}`));
    } finally { clean.close(); hit.close(); }
  });
});

