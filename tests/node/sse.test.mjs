// SseParser on the wasm core: decoding, chunking independence, caps, ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createParser } from 'eventsource-parser';
import { init } from '../../js/index.js';
import { core } from '../../js/core.js';
import { SseParser } from '../../js/sse.js';

await init();
const enc = new TextEncoder();

function parseAll(chunks, opts) {
  const p = new SseParser(opts);
  const out = [];
  try {
    for (const c of chunks) p.feed(c, (type, data, id) => { out.push([type, data, id]); });
  } finally {
    p.close();
  }
  return out;
}

test('types, ids, multi-line data and UTF-16 slicing of non-ASCII text', () => {
  const src = 'id: é1\nevent: 😀 party\ndata: naïve 😀\ndata: 二行目\n\n' +
    'data: \uFEFFkeeps its BOM\n\n' + ': comment\ndata: after\n\n';
  const got = parseAll([enc.encode('\uFEFF' + src)]);
  assert.deepEqual(got, [
    ['😀 party', 'naïve 😀\n二行目', 'é1'],
    ['message', '\uFEFFkeeps its BOM', 'é1'],
    ['message', 'after', 'é1'],
  ]);
});

test('invalid UTF-8 becomes U+FFFD exactly like TextDecoder', () => {
  const bad = [0xff, 0x41, 0xe2, 0x82, 0x42, 0xf0, 0x9f, 0x98, 0xed, 0xa0, 0x80, 0xc3];
  const bytes = new Uint8Array([...enc.encode('data: '), ...bad, 10, 10]);
  const got = parseAll([bytes]);
  assert.equal(got.length, 1);
  assert.equal(got[0][1], new TextDecoder().decode(new Uint8Array(bad)));
});

test('any chunking gives the same events (random streams, random splits)', () => {
  let seed = 12345;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  const pieces = ['data: ', 'data:', 'event: ', 'id: ', 'retry: 5', ': c', 'x', 'é', '😀', '\r', '\n', '\r\n', '\n\n', ' ', ':', '\u0000', 'data'];
  for (let round = 0; round < 60; round++) {
    let s = '';
    for (let i = 0; i < 200; i++) s += pieces[rnd(pieces.length)];
    const bytes = enc.encode(s);
    const whole = parseAll([bytes]);
    const chunks = [];
    for (let i = 0; i < bytes.length;) {
      const n = rnd(9);
      chunks.push(bytes.subarray(i, i + n));
      i += n;
    }
    assert.deepEqual(parseAll(chunks), whole);
    // a CRLF cut across chunks is one line end, not an extra blank line
    const cut = [];
    for (let i = 0; i < bytes.length; i++) cut.push(bytes.subarray(i, i + 1));
    assert.deepEqual(parseAll(cut), whole);
  }
});

test('agrees with eventsource-parser on well-formed LF streams fed whole', () => {
  let src = '';
  for (let i = 0; i < 300; i++) {
    if (i % 3 === 0) src += `id: ${i}\n`;
    if (i % 4 === 0) src += `event: t${i % 5}\n`;
    src += `data: line ${i} ${'x'.repeat(i % 37)}\n`;
    if (i % 7 === 0) src += 'data: second\n';
    src += '\n';
  }
  const theirs = [];
  const p = createParser({ onEvent: (e) => theirs.push([e.event || 'message', e.data, e.id ?? '']) });
  p.feed(src);
  // eventsource-parser reports only an event's own id; carry it like EventSource does
  let last = '';
  for (const e of theirs) { if (e[2]) last = e[2]; else e[2] = last; }
  assert.deepEqual(parseAll([enc.encode(src)]), theirs);
});

test('one feed yields many events; strings need not be ASCII', () => {
  const n = 5000;
  let s = 'id: 42\n';
  for (let i = 0; i < n; i++) s += `data: ${i}ü\n\n`;
  const got = parseAll([s]);
  assert.equal(got.length, n);
  assert.deepEqual(got[n - 1], ['message', `${n - 1}ü`, '42']);
});

test('caps: TOO_LARGE after delivering the events before it; sticky until end()', () => {
  const p = new SseParser({ maxLineBytes: 32, maxEventBytes: 64 });
  const seen = [];
  const on = (t, d) => { seen.push(d); };
  assert.throws(() => p.feed(`data: ok\n\ndata: ${'y'.repeat(40)}\n\n`, on), (e) => e.code === 'TOO_LARGE');
  assert.deepEqual(seen, ['ok']);
  assert.throws(() => p.feed('data: z\n\n', on), (e) => e.code === 'TOO_LARGE');
  p.end();
  p.feed('data: z\n\n', on);
  assert.deepEqual(seen, ['ok', 'z']);
  assert.throws(() => p.feed('data: 0123456789abcdef0123\n'.repeat(4) + '\n', on), (e) => e.code === 'TOO_LARGE');
  p.close();
  assert.throws(() => p.feed('data: x\n\n', on), (e) => e.code === 'CLOSED');
  p.close(); // idempotent
});

test('lastEventId: seeded, moved by id-only blocks, not by an unterminated event; retry', () => {
  const p = new SseParser();
  p.lastEventId = 'start';
  assert.equal(p.lastEventId, 'start');
  assert.equal(p.retry, null);
  const ids = [];
  p.feed('data: a\n\nid: 7\n\nretry: 1234\nid: 8\ndata: b', (t, d, id) => ids.push(id));
  assert.deepEqual(ids, ['start']);
  assert.equal(p.lastEventId, '7');
  assert.equal(p.retry, 1234);
  p.end(); // connection lost: event 8 was never complete
  assert.equal(p.lastEventId, '7');
  assert.throws(() => { p.lastEventId = 'a\u0000b'; }, (e) => e.code === 'INVALID');
  p.close();
});

test('a handler returning false stops delivery of the batch', () => {
  const p = new SseParser();
  const seen = [];
  const n = p.feed('data: 1\n\ndata: 2\n\ndata: 3\n\n', (t, d) => { seen.push(d); return d !== '2' && undefined; });
  assert.equal(n, 2);
  assert.deepEqual(seen, ['1', '2']);
  p.close();
});

test('a handler that grows the wasm heap mid-batch does not corrupt the rest of the batch', () => {
  const p = new SseParser();
  const other = new SseParser({ maxLineBytes: 1 << 24, maxEventBytes: 1 << 24 });
  const before = core().memory.buffer.byteLength;
  const seen = [];
  let grew = false;
  p.feed('id: a\nevent: x\ndata: 1\n\nevent: x\ndata: 2\n\ndata: 3\n\n', (type, data, id) => {
    seen.push([type, data, id]);
    if (!grew) {
      grew = true;
      other.feed(new Uint8Array(8 << 20).fill(0x61), () => {}); // one 8 MiB line: the heap must grow
    }
  });
  assert.ok(core().memory.buffer.byteLength > before, 'heap did not grow; the test proves nothing');
  assert.deepEqual(seen, [['x', '1', 'a'], ['x', '2', 'a'], ['message', '3', 'a']]);
  assert.throws(() => p.feed('data: x\n\n', () => p.feed('data: y\n\n', () => {})), (e) => e.code === 'BAD_STATE');
  p.close();
  other.close();
});
