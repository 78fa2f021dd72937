// EventStream (fetch transport) against the dev server's real SSE endpoint.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../web/server.mjs';
import { init, EventStream } from '../../js/index.js';

await init();
const srv = await startServer({ quiet: true });
after(() => srv.close());

let n = 0;
const name = () => `node-${process.pid}-${++n}`;
const stats = async (s) => (await fetch(`${srv.url}/sse/stats?s=${s}`)).json();
const closed = (es) => new Promise((ok) => es.addEventListener('close', ok, { once: true }));
const TYPES = ['time', 'notification', 'alert', 'message'];

test('named events, and 20 mid-event drops lose and duplicate nothing', async () => {
  const s = name();
  const es = new EventStream(`${srv.url}/sse/stream?s=${s}&interval=3&count=200&retry=10&dropEvery=9`);
  const ids = [];
  const types = new Set();
  for (const t of TYPES) {
    es.addEventListener(t, (e) => {
      const body = JSON.parse(e.data);
      assert.equal(String(body.n), e.lastEventId);
      ids.push(body.n);
      types.add(e.type);
    });
  }
  let retries = 0;
  es.addEventListener('reconnecting', () => retries++);
  const ev = await closed(es);
  assert.equal(ev.error?.code, 'NO_CONTENT'); // the finished stream says 204
  assert.deepEqual(ids, Array.from({ length: 200 }, (_, i) => i + 1));
  assert.deepEqual([...types].sort(), [...TYPES].sort());
  const st = await stats(s);
  assert.ok(st.drops >= 20, `only ${st.drops} drops`);
  assert.ok(retries >= 20);
  // every reconnect carried the last id it had seen
  const resumed = st.requests.slice(1).map((r) => Number(r.lastEventId));
  assert.ok(resumed.every((v, i) => v > 0 && (i === 0 || v >= resumed[i - 1])));
  assert.equal(es.readyState, EventStream.CLOSED);
});

test('POST with headers and a body', async () => {
  const es = new EventStream(`${srv.url}/sse/stream?s=${name()}&interval=0&echo=1`, {
    method: 'POST',
    headers: { authorization: 'Bearer t0ken', 'x-trace': 'abc' },
    body: JSON.stringify({ prompt: 'hi' }),
  });
  const req = await new Promise((ok) => es.addEventListener('request', (e) => ok(JSON.parse(e.data))));
  es.close();
  assert.equal(req.method, 'POST');
  assert.equal(req.headers.authorization, 'Bearer t0ken');
  assert.equal(req.headers['x-trace'], 'abc');
  assert.equal(req.headers.accept, 'text/event-stream');
  assert.deepEqual(JSON.parse(req.body), { prompt: 'hi' });
});

test('retry: is the floor of the reconnect delay and Last-Event-ID is sent', async () => {
  const s = name();
  const es = new EventStream(`${srv.url}/sse/stream?s=${s}&interval=5&count=12&retry=150&dropEvery=4`, { lastEventId: '0' });
  const delays = [];
  es.addEventListener('reconnecting', (e) => delays.push(e.delay));
  await closed(es);
  assert.equal(es.retry, 150);
  assert.ok(delays.length >= 3);
  // retry is the floor; the waits are jittered above it (up to 2× on a first attempt)
  for (const d of delays) assert.ok(d >= 150, `delay ${d} under the server's retry`);
  assert.ok(new Set(delays).size > 1 && delays.some((d) => d > 150), `not jittered: ${delays}`);
  const st = await stats(s);
  for (let i = 1; i < st.requests.length; i++) {
    assert.ok(st.requests[i].at - st.requests[i - 1].at >= 145, 'reconnected before retry ms');
  }
  assert.equal(st.requests[0].lastEventId, '0');
  assert.ok(st.requests.slice(1).every((r) => Number(r.lastEventId) > 0));
});

test('204 stops for good', async () => {
  const s = name();
  const es = new EventStream(`${srv.url}/sse/stream?s=${s}&status=204`, { reconnect: { minDelay: 5 } });
  let errors = 0;
  es.addEventListener('error', () => errors++);
  const ev = await closed(es);
  assert.equal(ev.reason, 'error');
  assert.equal(ev.error.code, 'NO_CONTENT');
  assert.equal(errors, 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await stats(s)).requests.length, 1);
});

test('a wrong content type stops with BAD_CONTENT_TYPE', async () => {
  const es = new EventStream(`${srv.url}/sse/stream?s=${name()}&ctype=text/plain`);
  const ev = await closed(es);
  assert.equal(ev.error.code, 'BAD_CONTENT_TYPE');
});

test('404 is fatal, 503 retries with backoff until maxAttempts', async () => {
  const a = new EventStream(`${srv.url}/sse/nope`);
  const ea = await closed(a);
  assert.equal(ea.error.code, 'HTTP_ERROR');
  assert.equal(ea.error.status, 404);

  const s = name();
  const b = new EventStream(`${srv.url}/sse/stream?s=${s}&status=503`, { reconnect: { minDelay: 5, maxDelay: 40, maxAttempts: 3, seed: 7 } });
  const delays = [];
  b.addEventListener('reconnecting', (e) => delays.push(e.delay));
  const eb = await closed(b);
  assert.equal(eb.error.code, 'CONNECTION_LOST');
  assert.equal(delays.length, 3);
  // jittered from the first attempt: [5, 10], then [5, 20], [5, 40]
  assert.ok(delays[0] >= 5 && delays[0] <= 10 && delays[0] !== 5, `first delay ${delays[0]}`);
  assert.ok(delays.every((d) => d >= 5 && d <= 40));
  assert.equal((await stats(s)).requests.length, 4);
});

test('Retry-After on 429/503 (seconds or HTTP-date) sets the next wait, bounded by maxDelay', async () => {
  // A fetch that answers each request with the next canned response.
  const fake = (...answers) => async () => answers.shift();
  const firstDelay = (answer, reconnect) => new Promise((resolve) => {
    const es = new EventStream('http://x/feed', { fetch: fake(answer), reconnect: { minDelay: 5, maxDelay: 4000, ...reconnect } });
    es.addEventListener('error', () => {});
    es.addEventListener('reconnecting', (e) => { es.close(); resolve(e.delay); });
  });
  const at = (ms) => new Date(Date.now() + ms).toUTCString();
  assert.equal(await firstDelay(new Response('busy', { status: 503, headers: { 'retry-after': '2' } })), 2000);
  const d = await firstDelay(new Response('slow down', { status: 429, headers: { 'retry-after': at(3000) } }));
  assert.ok(d > 1500 && d <= 3000, `HTTP-date: ${d}`);
  assert.equal(await firstDelay(new Response('', { status: 503, headers: { 'retry-after': '86400' } })), 4000);
  // garbage, a date in the past, or another status: the plain backoff
  for (const [status, ra] of [[503, 'soon'], [503, at(-60000)], [500, '2']]) {
    const x = await firstDelay(new Response('', { status, headers: { 'retry-after': ra } }));
    assert.ok(x >= 5 && x <= 10, `${status} ${ra}: ${x}`);
  }
});

test('abort signal and close() both fire close', async () => {
  const ac = new AbortController();
  const a = new EventStream(`${srv.url}/sse/stream?s=${name()}&interval=5`, { signal: ac.signal });
  await new Promise((ok) => a.addEventListener('open', ok, { once: true }));
  const states = [];
  a.addEventListener('statechange', (e) => states.push(e.state));
  ac.abort();
  const ea = await closed(a);
  assert.equal(ea.reason, 'aborted');
  assert.deepEqual(states, ['closed']);

  const b = new EventStream(`${srv.url}/sse/stream?s=${name()}&interval=5`);
  const got = [];
  b.addEventListener('time', () => { got.push(1); if (got.length === 2) b.close(); });
  const eb = await closed(b);
  assert.equal(eb.reason, 'closed');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(got.length, 2); // nothing after close, even from the same chunk
  b.close(); // idempotent

  const c = new EventStream(`${srv.url}/sse/stream`, { signal: AbortSignal.abort() });
  assert.equal((await closed(c)).reason, 'aborted');
});

test('options are checked', () => {
  assert.throws(() => new EventStream('http://x/', { method: 'GET', body: 'b' }), (e) => e.code === 'INVALID');
  assert.throws(() => new EventStream('http://x/', { transport: 'native' }), (e) => e.code === 'INVALID');
  assert.throws(() => new EventStream('http://x/', { transport: 'carrier-pigeon' }), (e) => e.code === 'INVALID');
  assert.throws(() => new EventStream('http://x/', { reconnect: { minDelay: -1 } }), (e) => e.code === 'INVALID');
  assert.throws(() => new EventStream('http://x/', { reconnect: { factor: 0.5 } }), (e) => e.code === 'INVALID');
  assert.throws(() => new EventStream('http://x/', { maxEventBytes: 0 }), (e) => e.code === 'INVALID');
  assert.throws(() => new EventStream('http://x/', { lastEventId: 'a\u0000b' }), (e) => e.code === 'INVALID');
  assert.throws(() => new EventStream('http://x/', { method: 'POST', body: new ReadableStream() }), (e) => e.code === 'INVALID');
});

test('reconnect: false closes on the first lost connection', async () => {
  const s = name();
  const es = new EventStream(`${srv.url}/sse/stream?s=${s}&interval=3&dropEvery=3`, { reconnect: false });
  const got = [];
  for (const t of TYPES) es.addEventListener(t, (e) => got.push(Number(e.lastEventId)));
  const errors = [];
  es.addEventListener('error', (e) => errors.push(e.error.code));
  const ev = await closed(es);
  assert.equal(ev.reason, 'error');
  assert.equal(ev.error.code, 'CONNECTION_LOST');
  assert.deepEqual(got, [1, 2, 3]);
  assert.deepEqual(errors, ['CONNECTION_LOST']);
  assert.equal((await stats(s)).requests.length, 1);
});

test('async iteration: events in order, ends on close, throws the closing error, break closes', async () => {
  const a = new EventStream(`${srv.url}/sse/stream?s=${name()}&interval=2&count=30&retry=5&dropEvery=7`);
  const ns = [];
  await assert.rejects(async () => {
    for await (const e of a.events(TYPES)) ns.push(JSON.parse(e.data).n);
  }, (e) => e.code === 'NO_CONTENT');
  assert.deepEqual(ns, Array.from({ length: 30 }, (_, i) => i + 1));

  const b = new EventStream(`${srv.url}/sse/stream?s=${name()}&interval=2&types=message`);
  let k = 0;
  for await (const e of b) {
    assert.equal(e.type, 'message');
    if (++k === 5) break;
  }
  assert.equal(b.readyState, EventStream.CLOSED);

  const c = new EventStream(`${srv.url}/sse/stream?s=${name()}&interval=1&types=time`);
  const it = c.events(['time'], { maxBuffered: 3 });
  await new Promise((r) => setTimeout(r, 80)); // nobody reads: the buffer overflows
  await assert.rejects(async () => { for await (const e of it) assert.ok(e); }, (e) => e.code === 'QUEUE_FULL');
  assert.equal(c.readyState, EventStream.CLOSED);
});

test('dev endpoint: what it reflects is validated and escaped; state changes need POST from its own origin', async () => {
  const get = (q, headers) => fetch(`${srv.url}/sse/stream?s=${name()}&interval=0&${q}`, { headers });
  // content types from an allowlist only (text/html would run script on the dev origin)
  for (const ctype of ['text/html', 'image/svg+xml', 'text/html; charset=utf-8', 'text/event-stream%0D%0ASet-Cookie:%20x=1']) {
    const r = await get(`ctype=${ctype}`);
    assert.equal(r.status, 400, ctype);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    await r.body?.cancel();
  }
  const plain = await get('ctype=text/plain');
  assert.equal(plain.headers.get('content-type'), 'text/plain');
  await plain.body.cancel();
  // event names: a safe charset, so no markup and no injected fields
  for (const types of ['<svg onload=alert(1)>', 'time%0Adata:%20injected', 'time%0D%0Aid:%20999', 'a:b', 'x'.repeat(65)]) {
    const r = await get(`types=${types}`);
    assert.equal(r.status, 400, types);
    await r.body?.cancel();
  }
  // no cookie echo
  const es = new EventStream(`${srv.url}/sse/stream?s=${name()}&interval=0&echo=1`, { headers: { cookie: 'session=secret', 'x-trace': 'ok' } });
  const req = await new Promise((ok) => es.addEventListener('request', (e) => ok(JSON.parse(e.data))));
  es.close();
  assert.equal(req.headers.cookie, undefined);
  assert.equal(req.headers['x-trace'], 'ok');
  // drop / emit: POST only, with an Origin of the dev server itself
  const s = name();
  const live = new EventStream(`${srv.url}/sse/stream?s=${s}&interval=0`);
  await new Promise((ok) => live.addEventListener('open', ok, { once: true }));
  const post = (path, origin, body) => fetch(`${srv.url}${path}`, { method: 'POST', headers: origin ? { origin } : {}, body });
  assert.equal((await fetch(`${srv.url}/sse/drop?s=${s}`)).status, 405);
  assert.equal((await post(`/sse/drop?s=${s}`, 'http://evil.example')).status, 403);
  assert.equal((await post(`/sse/drop?s=${s}`)).status, 403);
  assert.equal((await post(`/sse/emit?s=${s}&type=note`, 'http://evil.example', 'x')).status, 403);
  assert.equal((await post(`/sse/emit?s=${s}&type=a%0Adata:%20x`, srv.url, 'x')).status, 400);
  const got = new Promise((ok) => live.addEventListener('note', (e) => ok(e.data)));
  assert.equal((await post(`/sse/emit?s=${s}&type=note`, srv.url, 'line1\rid: 7\r\nline2')).status, 200);
  assert.equal(await got, 'line1\nid: 7\nline2'); // CR/LF only ever end data lines
  assert.equal(live.lastEventId, '1');
  assert.deepEqual(await (await post(`/sse/drop?s=${s}`, srv.url)).json(), { dropped: 1 });
  live.close();
});

test('an id beyond Latin-1 resumes: Last-Event-ID carries its UTF-8 bytes (Headers would throw on the string)', async () => {
  const asked = [];
  const answers = [
    () => new Response('id: é😀1\ndata: first\n\n', { headers: { 'content-type': 'text/event-stream' } }),
    () => new Response('data: second\n\n', { headers: { 'content-type': 'text/event-stream' } }),
    () => new Response(null, { status: 204 }),
  ];
  const es = new EventStream('http://sse.invalid/', {
    reconnect: { minDelay: 0, maxDelay: 1, maxAttempts: 3 },
    fetch: async (url, init) => { asked.push(init.headers.get('last-event-id')); return answers[asked.length - 1](); },
  });
  const got = [];
  es.addEventListener('message', (e) => got.push([e.data, e.lastEventId]));
  const ev = await closed(es);
  assert.equal(ev.error?.code, 'NO_CONTENT');
  assert.deepEqual(got, [['first', 'é😀1'], ['second', 'é😀1']]);
  assert.equal(Buffer.from(asked[1], 'latin1').toString('utf8'), 'é😀1');
  assert.equal(asked[2], asked[1]);
});
