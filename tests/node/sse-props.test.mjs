// Property tests of the SSE glue against hostile streams (issue 18, item 6):
// random and mutated event streams in random chunks into the SseParser and,
// through a fetch of our own, hostile answers (bodies, broken streams,
// statuses, content types, Retry-After) into an EventStream. For every seeded
// run: nothing escapes as an uncaught exception; every refusal is a
// SwitchboardError with a code, reported once; accepted events are
// eventsource-parser's; and afterwards the stream resumes with the id it saw
// or closes with that error, and a new stream works.
// A failure prints the seed: SB_PROP_SEED=<seed> replays it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createParser } from 'eventsource-parser';
import { init, SseParser, EventStream, SwitchboardError } from '../../js/index.js';
import { property, watchUncaught } from './props.mjs';

await init();
const watch = watchUncaught();
after(() => watch.stop());

const enc = new TextEncoder();

/** A SwitchboardError with a non-empty string code, or the assertion says what it was. */
function refusal(e, where) {
  assert.ok(e instanceof SwitchboardError && typeof e.code === 'string' && e.code, `${where}: not a SwitchboardError: ${e?.stack || e}`);
  return e.code;
}

const PIECES = ['data: ', 'data:', 'data', 'event: ', 'event:x', 'id: ', 'id:\u0000', 'retry: 5', 'retry: x', ': c', 'x', 'é', '😀', '\r', '\n', '\r\n', '\n\n', ' ', ':', '\u0000', '\ufeff'];

function sseStream(r) {
  let s = '';
  const n = r.int(120);
  for (let i = 0; i < n; i++) s += r.pick(PIECES);
  let b = enc.encode(s);
  if (r.bool(0.3)) b = r.mutate(b);
  if (r.bool(0.15)) b = new Uint8Array([...b, ...enc.encode('data: '), ...new Uint8Array(200).fill(0x61), 10, 10]); // over the caps below
  return b;
}

function chunks(r, b) {
  const out = [];
  for (let i = 0; i < b.length;) { const k = r.pick([1, 2, 3, 7, 64, b.length]); out.push(b.subarray(i, i + k)); i += k; }
  return out;
}

/** eventsource-parser's events for a whole stream, ids carried like EventSource. */
function reference(bytes, startId) {
  const out = [];
  const p = createParser({ onEvent: (e) => out.push([e.event || 'message', e.data, e.id]) });
  p.feed(new TextDecoder().decode(bytes));
  let last = startId; // the last id outlives a stream's end, as EventSource's does
  for (const e of out) { if (e[2] !== undefined) last = e[2]; e[2] = last; }
  return out;
}

test('SseParser: random and mutated streams in random chunks give the reference events or TOO_LARGE; after end() a clean event parses exactly', async () => {
  await property('sse parser', 10, (r) => {
    const p = new SseParser({ maxLineBytes: 128, maxEventBytes: 160 });
    try {
      for (let k = 0; k < 30; k++) {
        const b = sseStream(r);
        const got = [];
        const startId = p.lastEventId;
        let refused = null;
        for (const c of chunks(r, b)) {
          try { p.feed(c, (type, data, id) => { got.push([type, data, id]); }); } catch (e) { refused = refusal(e, 'SseParser.feed'); }
        }
        if (refused) assert.equal(refused, 'TOO_LARGE');
        else if (!b.includes(0) && !b.includes(0x0d)) {
          // NUL in ids and CR line ends: the two parsers differ on purpose (EventSource rules); elsewhere they agree.
          const ref = reference(b, startId);
          assert.deepEqual(got, ref.slice(0, got.length), 'events differ from eventsource-parser');
          assert.ok(got.length === ref.length, 'events missing');
        }
        p.end();
        const after = [];
        p.feed(enc.encode(`id: k${k}\ndata: ok ${k}\n\n`), (type, data, id) => { after.push([type, data, id]); });
        assert.deepEqual(after, [['message', `ok ${k}`, `k${k}`]]);
        assert.equal(p.lastEventId, `k${k}`);
        p.end();
      }
    } finally { p.close(); }
    watch.check('in the SSE parser');
  });
});

/** A fetch of our own: answer i is responses[i] (the last one repeats). */
function scriptedFetch(responses, seen) {
  let i = 0;
  return async (url, init) => {
    seen.push({ lastEventId: init.headers.get('last-event-id') });
    const make = responses[Math.min(i++, responses.length - 1)];
    return make(init.signal);
  };
}

function sseResponse(parts, { status = 200, type = 'text/event-stream', fail = false, headers = {} } = {}) {
  if (status === 204) return () => new Response(null, { status });
  // One chunk per pull, so a broken stream breaks after all of them were read.
  return () => {
    let i = 0;
    return new Response(new ReadableStream({
      pull(ctl) {
        if (i < parts.length) ctl.enqueue(parts[i++]);
        else if (fail) ctl.error(new Error('network down'));
        else ctl.close();
      },
    }), { status, headers: { 'content-type': type, ...headers } });
  };
}

const CAPS = { maxLineBytes: 128, maxEventBytes: 160 };
const RETRIED = new Set([500, 502, 429]); // of the statuses below, those EventSource semantics retry

/** What an SseParser with the caps makes of a body: its events' data, or null when it is over a cap. */
function oracle(parts) {
  const p = new SseParser(CAPS);
  const data = [];
  try {
    for (const c of parts) p.feed(c, (type, d) => { if (type === 'message') data.push(d); });
    return data;
  } catch (e) {
    assert.equal(e.code, 'TOO_LARGE');
    return null;
  } finally { p.close(); }
}

test('EventStream: every hostile answer is reported once with a code; a retriable one is followed by a clean resume, a final one closes and the next stream works', async () => {
  await property('event stream', 5, async (r) => {
    for (let k = 0; k < 8; k++) {
      const parts = chunks(r, sseStream(r));
      const kind = r.pick(['body', 'body', 'broken', 'status', 'type', 'status429']);
      const status = r.pick([500, 502, 404, 401, 301]);
      const first = {
        body: sseResponse(parts),
        broken: sseResponse(parts, { fail: true }),
        status: sseResponse([], { status }),
        type: sseResponse(parts, { type: r.pick(['text/html', '', 'application/json']) }),
        status429: sseResponse([], { status: 429, headers: { 'retry-after': r.pick(['0', 'soon', '-1', 'Wed, 21 Oct 2015 07:28:00 GMT']) } }),
      }[kind];
      const bodyData = kind === 'body' || kind === 'broken' ? oracle(parts) : [];
      // What must happen: the first code reported, and whether the stream goes on.
      const want = {
        body: bodyData ? ['CONNECTION_LOST', true] : ['TOO_LARGE', false],
        broken: bodyData ? ['CONNECTION_LOST', true] : ['TOO_LARGE', false],
        status: ['HTTP_ERROR', RETRIED.has(status)],
        type: ['BAD_CONTENT_TYPE', false],
        status429: ['HTTP_ERROR', true],
      }[kind];
      const seen = [];
      const es = new EventStream('http://props.invalid/sse', {
        fetch: scriptedFetch([first, sseResponse([enc.encode('id: clean\ndata: done\n\n')]), sseResponse([], { status: 204 })], seen),
        reconnect: { minDelay: 0, maxDelay: 1, maxAttempts: 5 }, ...CAPS,
      });
      const errors = [];
      const data = [];
      es.addEventListener('error', (e) => errors.push(e.error));
      es.addEventListener('message', (e) => data.push(e.data));
      const closed = await new Promise((ok) => es.addEventListener('close', ok, { once: true }));
      const where = `${kind}${kind === 'status' ? ` ${status}` : ''}`;
      for (const e of errors) refusal(e, `EventStream (${where}) error event`);
      if (want[1]) {
        // One report per answer: the hostile one, the clean stream's end, the 204.
        assert.deepEqual(errors.map((e) => e.code), [want[0], 'CONNECTION_LOST', 'NO_CONTENT'], where);
        assert.equal(closed.error, errors[2]);
        // What the hostile body carried (up to where it broke off), then the clean event, resumed from the id seen.
        if (kind === 'body' || kind === 'broken') assert.deepEqual(data, [...bodyData, 'done'], where);
        else assert.deepEqual(data, ['done'], where);
        assert.equal(seen.length, 3, where);
        assert.equal(seen[2].lastEventId, 'clean');
        assert.equal(es.lastEventId, 'clean');
      } else {
        // Refused for good: reported once, closed with that error, never retried.
        assert.deepEqual(errors.map((e) => e.code), [want[0]], where);
        assert.equal(closed.error, errors[0]);
        assert.equal(seen.length, 1, `${where}: a final refusal must not retry`);
      }
      assert.equal(es.readyState, EventStream.CLOSED);
    }
    // The core is intact: a new stream reads a clean answer.
    const es = new EventStream('http://props.invalid/sse', { fetch: scriptedFetch([sseResponse([enc.encode('id: 1\ndata: fine\n\n')]), sseResponse([], { status: 204 })], []), reconnect: { minDelay: 0, maxDelay: 1, maxAttempts: 5 } });
    const got = [];
    es.addEventListener('message', (e) => got.push([e.data, e.lastEventId]));
    await new Promise((ok) => es.addEventListener('close', ok, { once: true }));
    assert.deepEqual(got, [['fine', '1']]);
    watch.check('in the event stream');
  });
});
