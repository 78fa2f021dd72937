// Batcher, Outbox, Inbox and MessageQueue on the wasm core, over a real
// MessageChannel (and a deliberately lossy wrapper around it).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { init } from '../../js/core.js';
import { encodeFrame, decodeFrame, BatchReader, FrameFlag } from '../../js/frame.js';
import { Batcher, Outbox, Inbox, MessageQueue } from '../../js/queue.js';

before(() => init());

function chat(i) {
  const words = ['hello', 'anyone', 'seen', 'the', 'deploy', 'logs', 'today', 'looks', 'fine', 'ship', 'it'];
  const text = Array.from({ length: 10 }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(' ');
  return JSON.stringify({ type: 'chat', room: 'general', id: 1000 + i, user: ['alice', 'bob', 'carol'][i % 3], ts: 1767225600 + i * 7, text, meta: { client: 'web', v: 3 } });
}

test('Batcher flushes on count, on delay and on close; compression only when it helps', async () => {
  const out = [];
  const b = new Batcher({ maxMessages: 3, maxDelay: 5, compressAbove: 1 << 20 }, (bytes, info) => out.push(info));
  let flushEvents = 0;
  b.addEventListener('flush', () => flushEvents++);
  for (let i = 1; i <= 3; i++) b.add({ kind: 'message', seq: i, payload: `m${i}` });
  assert.equal(out.length, 1);
  assert.equal(out[0].frames, 3);
  assert.equal(out[0].compressed, false);
  b.add({ kind: 'message', seq: 4, payload: 'm4' });
  assert.equal(out.length, 1);
  await sleep(30); // the single timer fires at the delay deadline
  assert.equal(out.length, 2);
  // a lone frame goes out as itself
  assert.equal(decodeFrame(out[1].bytes, { text: true }).payload, 'm4');
  b.add(encodeFrame({ kind: 'message', seq: 5, payload: 'm5' }));
  b.close(); // nothing stranded
  assert.equal(out.length, 3);
  assert.equal(flushEvents, 3);
  assert.throws(() => b.add({ kind: 'message' }), { code: 'CLOSED' });
  assert.throws(() => new Batcher({ compression: 'lz4' }), { code: 'INVALID' });

  // 100 chat messages, shared window: >= 2.4x smaller than their JSON
  const reader = new BatchReader();
  const z = new Batcher({ maxMessages: 100, maxDelay: 1000, compressAbove: 512 });
  let raw = 0;
  let wire = 0;
  const got = [];
  z.addEventListener('flush', (e) => {
    wire += e.bytes.length;
    for (const f of reader.read(e.bytes, { text: true })) got.push(f.payload);
  });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 100; i++) {
      const m = chat(round * 100 + i);
      raw += m.length;
      z.add({ kind: 'message', channel: 1, id: round * 100 + i + 1, seq: round * 100 + i + 1, payload: m });
    }
  }
  assert.equal(z.stats().compressed, 3); // three full batches, all compressed
  assert.equal(z.stats().batches, 3);
  z.close();
  assert.equal(got.length, 300);
  assert.equal(got[299], chat(299));
  assert.ok(raw / wire >= 2.4, `ratio ${raw / wire}`);
  reader.close();
});

test('Batcher at every level 0-9: level 0 sends batches as they are, the others compress, and all of it reads back', () => {
  // On the queue job's core this is zlib without its stored coder
  // (src/zlib-raw.patch): level 0 must never reach it.
  for (let level = 0; level <= 9; level++) {
    const reader = new BatchReader();
    const got = [];
    const infos = [];
    const b = new Batcher({ maxMessages: 20, maxDelay: 1000, compressAbove: 64, level }, (bytes, info) => {
      infos.push(info);
      for (const f of reader.read(bytes, { text: true })) got.push(f.payload);
    });
    for (let i = 0; i < 60; i++) b.add({ kind: 'message', channel: 1, id: i + 1, seq: i + 1, payload: chat(i) });
    b.close();
    assert.equal(got.length, 60, `level ${level}`);
    assert.equal(got[59], chat(59));
    assert.equal(infos.length, 3);
    assert.ok(infos.every((i) => i.compressed === (level > 0)), `level ${level}: ${infos.map((i) => i.compressed)}`);
    reader.close();
  }
});

/** A MessageChannel link between an Outbox and an Inbox; `lossy` drops,
 * duplicates and delays (so reorders) messages in both directions. */
function link({ lossy = false, seed = 1, outbox = {}, inbox = {} } = {}) {
  const { port1, port2 } = new MessageChannel();
  let r = seed;
  const rand = () => { r ^= r << 13; r >>>= 0; r ^= r >>> 17; r ^= r << 5; r >>>= 0; return r / 2 ** 32; };
  const stats = { lost: 0, duped: 0 };
  const send = (port, bytes) => {
    if (!lossy) return port.postMessage(bytes);
    if (rand() < 0.2) { stats.lost++; return; }
    const copies = rand() < 0.1 ? 2 : 1;
    if (copies === 2) stats.duped++;
    for (let k = 0; k < copies; k++) setTimeout(() => port.postMessage(bytes), Math.floor(rand() * 4));
  };
  const ob = new Outbox({ transmit: (bytes) => send(port1, bytes), ackTimeout: 40, retryMinDelay: 5, retryMaxDelay: 40, seed, ...outbox });
  const delivered = [];
  const ib = new Inbox({ sendAck: (bytes) => send(port2, bytes), text: true, ...inbox });
  ib.addEventListener('message', (e) => delivered.push(e.detail));
  port2.onmessage = (e) => ib.receive(e.data);
  port1.onmessage = (e) => ob.receiveAck(e.data);
  const close = () => { ob.close(); ib.close(); port1.close(); port2.close(); };
  return { ob, ib, delivered, stats, close, port1, port2 };
}

test('Outbox + Inbox over a MessageChannel: every message once, in order, acked', async () => {
  // A generous ack timeout: this link loses nothing, so no retry may happen
  // however slow a loaded machine is.
  const l = link({ outbox: { ackTimeout: 30000 } });
  const acks = [];
  l.ob.addEventListener('ack', (e) => acks.push(e.detail));
  const sends = [];
  for (let i = 0; i < 200; i++) sends.push(l.ob.send(`m${i}`, { channel: 1 + (i % 3) }));
  const res = await Promise.all(sends);
  assert.equal(res.length, 200);
  assert.ok(res.every((x) => x.rtt >= 0));
  assert.equal(acks.length, 200);
  assert.deepEqual(l.delivered.map((f) => f.payload), Array.from({ length: 200 }, (_, i) => `m${i}`));
  for (const ch of [1, 2, 3]) {
    const seqs = l.delivered.filter((f) => f.channel === ch).map((f) => f.seq);
    assert.deepEqual(seqs, seqs.map((_, k) => k + 1));
  }
  const s = l.ob.stats();
  assert.equal(s.depth, 0);
  assert.equal(s.acked, 200);
  assert.equal(s.retries, 0);
  assert.ok(s.rtt >= 0);
  l.close();
});

test('a lossy, duplicating, reordering link still delivers exactly once, in order', async () => {
  const l = link({ lossy: true, seed: 12345, outbox: { window: 16 } });
  const sends = [];
  for (let i = 0; i < 150; i++) sends.push(l.ob.send(`x${i}`, { channel: 1 + (i % 2) }));
  await Promise.all(sends);
  await sleep(20);
  const ids = l.delivered.map((f) => f.payload);
  assert.equal(new Set(ids).size, ids.length, 'no duplicates');
  assert.equal(ids.length, 150, 'no loss');
  for (const ch of [1, 2]) {
    const mine = l.delivered.filter((f) => f.channel === ch).map((f) => Number(f.payload.slice(1)));
    assert.deepEqual(mine, [...mine].sort((a, b) => a - b), 'per-channel order');
  }
  assert.ok(l.stats.lost > 0 && l.stats.duped > 0, 'the link really was lossy');
  assert.ok(l.ob.stats().retries > 0);
  assert.ok(l.ib.stats().duplicates > 0);
  l.close();
});

test('overflow policies report every drop', async () => {
  const sent = [];
  const ob = new Outbox({ transmit: (b) => sent.push(b), maxMessages: 2, window: 1, overflow: 'drop-oldest', ackTimeout: 1e6 });
  const drops = [];
  ob.addEventListener('drop', (e) => drops.push(e.detail));
  const p1 = ob.send('a');
  await sleep(0); // a goes in flight
  const p2 = ob.send('b');
  const p3 = ob.send('c'); // evicts b (oldest unsent)
  await assert.rejects(p2, { code: 'QUEUE_FULL' });
  assert.equal(drops.length, 1);
  assert.equal(drops[0].error.code, 'QUEUE_FULL');
  ob.close();
  await assert.rejects(p1, { code: 'CLOSED' });
  await assert.rejects(p3, { code: 'CLOSED' });

  const rej = new Outbox({ transmit: () => {}, maxMessages: 1, overflow: 'reject' });
  rej.enqueue('a');
  assert.throws(() => rej.enqueue('b'), { code: 'QUEUE_FULL' });
  await assert.rejects(rej.send('c'), { code: 'QUEUE_FULL' });
  rej.close();

  const newest = new Outbox({ transmit: () => {}, maxMessages: 1, overflow: 'drop-newest' });
  newest.enqueue('a');
  await assert.rejects(newest.send('b'), { code: 'QUEUE_FULL' });
  assert.equal(newest.stats().drops, 1);
  newest.close();
});

test('TTL expiry, ack timeouts with retries, dead letters', async () => {
  const ob = new Outbox({ transmit: () => {}, online: false });
  const expired = [];
  ob.addEventListener('expired', (e) => expired.push(e.id));
  const p = ob.send('late', { ttl: 10 });
  await assert.rejects(p, { code: 'EXPIRED' });
  assert.equal(expired.length, 1);
  ob.close();

  let transmissions = 0;
  let skips = 0;
  const dl = new Outbox({ transmit: (b) => { if (decodeFrame(b).kind === 'skip') skips++; else transmissions++; }, ackTimeout: 5, retryMinDelay: 1, retryMaxDelay: 4, maxRetries: 2 });
  const timeouts = [];
  dl.addEventListener('timeout', (e) => timeouts.push(e.detail));
  const dead = [];
  dl.addEventListener('deadletter', (e) => dead.push(e.detail));
  await assert.rejects(dl.send('void'), { code: 'TIMEOUT' });
  assert.equal(transmissions, 3); // first try + 2 retries
  await sleep(0);
  assert.equal(skips, 1); // and the receiver is told not to wait for it
  assert.equal(timeouts.length, 2);
  assert.ok(timeouts.every((t) => t.delay >= 0.5 && t.delay <= 4)); // [min/2, ceiling]
  assert.equal(dead.length, 1);
  assert.equal(dead[0].attempts, 3);
  assert.equal(dl.stats().deadLetters, 1);
  dl.close();
});

test('serialize/restore: a reload loses nothing and delivers nothing twice', async () => {
  const l = link();
  await l.ob.send('before', { channel: 1 });
  // The link goes down; three more messages wait in the queue.
  l.ob.setOnline(false);
  for (const m of ['q1', 'q2', 'q3']) l.ob.enqueue(m, { channel: 1 });
  await sleep(5);
  const state = l.ob.serialize();
  const inboxState = l.ib.serialize();
  l.ob.close();
  // "Reload": a new Outbox from the persisted state on the same link.
  const { port1 } = l;
  const ob2 = new Outbox({ transmit: (b) => port1.postMessage(b), state, ackTimeout: 40, retryMinDelay: 5 });
  port1.onmessage = (e) => ob2.receiveAck(e.data);
  while (ob2.stats().depth > 0) await sleep(2);
  assert.deepEqual(l.delivered.map((f) => f.payload), ['before', 'q1', 'q2', 'q3']);
  assert.deepEqual(l.delivered.map((f) => f.seq), [1, 2, 3, 4]);
  // The receiver's dedup state round-trips too.
  const ib2 = new Inbox({ sendAck: () => {}, state: inboxState });
  assert.equal(ib2.push(encodeFrame({ kind: 'message', flags: 0x08, channel: 1, seq: 1, payload: 'before' })), 0);
  assert.equal(ib2.stats().duplicates, 1);
  ib2.close();
  assert.throws(() => new Outbox({ transmit: () => {}, state: state.subarray(0, 5) }), { code: 'CORRUPT' });
  ob2.close();
  l.close();
});

test('MessageQueue: ordered, concurrency-limited, retries, dead letters, replay', async () => {
  // strict order with concurrency 1, even when an item fails once
  const seen = [];
  let failOnce = true;
  const q = new MessageQueue(async (item) => {
    seen.push(item);
    await sleep(1);
    if (item === 2 && failOnce) { failOnce = false; throw new Error('flaky'); }
  }, { concurrency: 1, maxRetries: 2, retryMinDelay: 1, retryMaxDelay: 5, seed: 3 });
  const retries = [];
  q.addEventListener('retry', (e) => { assert.equal(e.detail.delay, e.delay, 'detail: the same data (deprecated)'); retries.push(e); });
  for (let i = 1; i <= 4; i++) q.push(i);
  await q.idle();
  assert.deepEqual(seen, [1, 2, 2, 3, 4]);
  assert.equal(retries.length, 1);
  assert.ok(retries[0].delay >= 0.5 && retries[0].delay < 1, `first retry ${retries[0].delay}`); // [min/2, min], jittered
  assert.equal(q.stats().done, 4);

  // the concurrency limit holds
  let active = 0;
  let peak = 0;
  const c = new MessageQueue(async () => { active++; peak = Math.max(peak, active); await sleep(3); active--; }, { concurrency: 3 });
  for (let i = 0; i < 12; i++) c.push(i);
  await c.idle();
  assert.equal(peak, 3);

  // dead letters, inspect and replay
  let healthy = false;
  const d = new MessageQueue((item) => { if (!healthy && item === 'bad') throw new Error('nope'); }, { maxRetries: 1, retryMinDelay: 1, retryMaxDelay: 2 });
  const dead = [];
  d.addEventListener('deadletter', (e) => dead.push(e.detail));
  d.push('ok');
  d.push('bad');
  await d.idle();
  assert.equal(dead.length, 1);
  assert.equal(d.deadLetters[0].item, 'bad');
  assert.equal(d.deadLetters[0].attempts, 2);
  assert.equal(d.deadLetters[0].error.message, 'nope');
  healthy = true;
  assert.equal(d.replay(), 1);
  await d.idle();
  assert.equal(d.deadLetters.length, 0);
  assert.equal(d.stats().done, 2);

  // close aborts running handlers
  let aborted = false;
  const a = new MessageQueue((_, { signal }) => new Promise((resolve) => signal.addEventListener('abort', () => { aborted = true; resolve(); })));
  a.push(1);
  a.close();
  assert.equal(aborted, true);
  assert.throws(() => a.push(2), { code: 'CLOSED' });
});

test('full stack both ways: Outbox -> Batcher (shared deflate) -> MessageChannel -> Inbox, acks batched back', async () => {
  const { port1, port2 } = new MessageChannel();
  // Each side: an Outbox for its messages, a Batcher onto its port, an Inbox
  // that takes the peer's batches (data and acks) through one BatchReader.
  function side(port, name) {
    const wire = { messages: 0, bytes: 0 };
    const batcher = new Batcher({ maxMessages: 32, maxDelay: 2, compressAbove: 256 }, (bytes) => {
      wire.messages++;
      wire.bytes += bytes.length;
      port.postMessage(bytes);
    });
    const outbox = new Outbox({ transmit: (f) => batcher.add(f), window: 32, ackTimeout: 30000, retryMinDelay: 10 });
    const got = [];
    const inbox = new Inbox({ sendAck: (a) => batcher.add(a), outbox, text: true, onMessage: (f) => got.push(f.payload) });
    port.onmessage = (e) => inbox.receive(e.data);
    return { name, batcher, outbox, inbox, got, wire, close() { outbox.close(); inbox.close(); batcher.close(); port.close(); } };
  }
  const a = side(port1, 'a');
  const b = side(port2, 'b');
  const N = 300;
  const sends = [];
  let raw = 0;
  for (let i = 0; i < N; i++) {
    const m = chat(i);
    raw += m.length;
    sends.push(a.outbox.send(m, { channel: 1 }));
    sends.push(b.outbox.send(`pong ${i}`, { channel: 2 }));
  }
  await Promise.all(sends);
  assert.deepEqual(b.got, Array.from({ length: N }, (_, i) => chat(i)));
  assert.deepEqual(a.got, Array.from({ length: N }, (_, i) => `pong ${i}`));
  // batching: far fewer transport messages than frames; compression: the
  // chat side's wire bytes (data + acks) well under its JSON
  assert.ok(a.wire.messages < N / 4, `${a.wire.messages} transport messages`);
  assert.ok(raw / a.wire.bytes >= 2.4, `ratio ${raw / a.wire.bytes}`);
  assert.ok(a.batcher.stats().compressed > 0);
  assert.equal(a.outbox.stats().retries, 0);
  a.close();
  b.close();
});

test('the inbox holds frames ahead of a gap within its window and refuses (does not ack) those beyond it', () => {
  const acks = [];
  const got = [];
  const ib = new Inbox({ sendAck: (a) => acks.push(decodeFrame(a)), window: 4, text: true, onMessage: (f) => got.push(f.payload) });
  const m = (seq) => encodeFrame({ kind: 'message', channel: 1, seq, flags: FrameFlag.ACK_REQ, payload: `m${seq}` });
  assert.equal(ib.push(m(1)), 1);
  let refused = null;
  try { ib.push(m(10)); } catch (e) { refused = e.code; } // 10 > 1 + 4: beyond the window
  assert.equal(ib.stats().refused, 1, `refused (${refused ?? 'no error'})`);
  assert.equal(ib.stats().held, 0);
  assert.equal(ib.push(m(3)), 0); // ahead of the gap at 2, within the window: held
  assert.equal(ib.stats().held, 1);
  assert.equal(ib.push(m(2)), 2); // the gap fills: 2 and 3, in order
  assert.deepEqual(got, ['m1', 'm2', 'm3']);
  ib.close();
});

test('foreign bytes: garbage and bad acks are refused with codes, good frames still flow', () => {
  const acked = [];
  const ob = new Outbox({ transmit: () => {}, ackTimeout: 30000 });
  const ib = new Inbox({ sendAck: (a) => acked.push(a), outbox: ob, text: true });
  const got = [];
  ib.addEventListener('message', (e) => got.push(e.payload));
  assert.throws(() => ib.receive(new TextEncoder().encode('{"hello":1}')), { code: 'BAD_VERSION' });
  assert.throws(() => ib.receive(new Uint8Array([0x10, 0x00])), { code: 'TRUNCATED' });
  // a batch: a malformed ack (SACK range with gap 0) then a good message
  const badAck = encodeFrame({ kind: 'ack', channel: 1, seq: 1, payload: new Uint8Array([0, 1]) });
  const good = encodeFrame({ kind: 'message', flags: 0x08, channel: 1, seq: 1, payload: 'ok' });
  const inner = new Uint8Array([...badAck, ...good]);
  assert.throws(() => ib.receive(encodeFrame({ kind: 'batch', payload: inner })), { code: 'BAD_FRAME' });
  assert.deepEqual(got, ['ok']);
  assert.throws(() => ob.receiveAck(good), { code: 'INVALID' });
  ob.close();
  ib.close();
});
