// Frame codec through wasm: the shared test vectors (also read by
// tests/c/test_frame.c), round trips and strict errors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { init } from '../../js/core.js';
import { encodeFrame, decodeFrame, BatchReader, FrameKind, FrameFlag, kindName } from '../../js/frame.js';

const vectors = JSON.parse(readFileSync(new URL('../data/frame-vectors.json', import.meta.url), 'utf8'));
const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));

before(() => init());

test('every valid vector decodes to its fields and re-encodes byte for byte', () => {
  assert.ok(vectors.valid.length >= 10);
  for (const v of vectors.valid) {
    const f = decodeFrame(unhex(v.hex));
    assert.equal(FrameKind[f.kind], v.kind, v.name);
    for (const k of ['flags', 'channel', 'id', 'seq', 'corr', 'deadline']) assert.equal(f[k], v[k], `${v.name}: ${k}`);
    assert.equal(hex(f.payload), v.payload, v.name);
    assert.equal(hex(encodeFrame(f)), v.hex, v.name);
  }
});

test('every invalid vector fails with its error code', () => {
  assert.ok(vectors.invalid.length >= 10);
  for (const v of vectors.invalid) {
    assert.throws(() => decodeFrame(unhex(v.hex), { maxPayload: v.maxPayload }), (e) => e.name === 'SwitchboardError' && e.code === v.error, v.name);
  }
});

test('round trip with string payloads, names and deadlines', () => {
  const bytes = encodeFrame({ kind: 'state-op', channel: 7, id: 2 ** 32 - 1, seq: 300, corr: 1, deadline: Date.UTC(2026, 0, 1), payload: '{"k":"é✓"}', flags: FrameFlag.LAST });
  const f = decodeFrame(bytes, { text: true });
  assert.deepEqual(f, { kind: 'state-op', flags: FrameFlag.LAST, channel: 7, id: 2 ** 32 - 1, seq: 300, corr: 1, deadline: Date.UTC(2026, 0, 1), payload: '{"k":"é✓"}' });
  assert.equal(kindName(99), 'unknown');
  assert.throws(() => encodeFrame({ kind: 'nope' }), { code: 'INVALID' });
  assert.throws(() => encodeFrame({ kind: 'message', id: -1 }), { code: 'INVALID' });
  assert.throws(() => encodeFrame({ kind: 'message', deadline: 1.5 }), { code: 'INVALID' });
  assert.throws(() => encodeFrame({ kind: 'message', flags: FrameFlag.SHARED }), { code: 'INVALID' });
  // payload is a view into the input, not a copy
  const g = decodeFrame(bytes);
  assert.equal(g.payload.buffer, bytes.buffer);
});

test('BatchReader yields the frames of a batch vector and rejects garbage', () => {
  const r = new BatchReader();
  const v = vectors.valid.find((x) => x.name === 'batch of two');
  const frames = r.read(unhex(v.hex), { text: true });
  assert.deepEqual(frames.map((f) => [f.seq, f.payload]), [[1, 'a'], [2, 'b']]);
  assert.deepEqual(decodeFrame(frames[1].bytes, { text: true }).payload, 'b');
  assert.throws(() => r.read(unhex('7b7d')), { code: 'BAD_VERSION' });
  // batch nested 5 deep with the default depth 4
  let b = encodeFrame({ kind: 'message', seq: 1, payload: 'x' });
  for (let i = 0; i < 5; i++) b = encodeFrame({ kind: 'batch', payload: b });
  assert.throws(() => r.read(b), { code: 'TOO_DEEP' });
  r.close();
  assert.throws(() => r.read(b), { code: 'CLOSED' });
});
