// EventStream { share } in Node: three streams of one key in this process
// stand for tabs (Node's BroadcastChannel reaches the other objects of its
// name; the TabGroup under them elects with leases), against the dev
// server's SSE endpoint, whose ids are the event numbers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../web/server.mjs';
import { init, EventStream } from '../../js/index.js';
import { until } from './net.mjs';

let srv;
before(async () => { await init(); srv = await startServer({ quiet: true }); });
after(() => srv.close());
const stats = async (s) => (await fetch(`${srv.url}/sse/stats?s=${s}`)).json();

function tab(url, key) {
  const es = new EventStream(url, { share: key, reconnect: { minDelay: 20 } });
  es.seen = [];
  es.addEventListener('time', (e) => es.seen.push(JSON.parse(e.data).n));
  return es;
}

test('a new holder resumes from the least advanced tab; the tabs ahead drop the replay as repeats', async () => {
  const s = `nshare-${process.pid}`;
  const url = `${srv.url}/sse/stream?s=${s}&interval=5&types=time&history=5000`;
  const a = tab(url, s);
  await until(() => a.stats().leader && a.seen.length >= 3, 'a holds and gets events', 8000);
  const b = tab(url, s);
  const c = tab(url, s);
  await until(() => b.seen.length >= 10 && c.seen.length >= 10, 'b and c get events', 8000);
  assert.equal(b.shared && c.shared, true);
  assert.equal((await stats(s)).requests.length, 1);
  // c reports a position 5 events back (as a tab whose deliveries were still
  // queued would) when the new holder asks; the holder must replay from there.
  const sh = c._share;
  const where = sh.where.bind(sh);
  let rewound = null;
  sh.where = () => {
    if (rewound === null) {
      sh.n -= 5;
      sh.id = String(sh.n);
      sh.idN = sh.n;
      rewound = where();
    }
    return rewound;
  };
  const bSeen = b.seen.length;
  a.close();
  await until(() => (b.stats().leader || c.stats().leader) && b.seen.length >= bSeen + 20, 'b gets events through the new holder', 8000);
  const st = await stats(s);
  assert.equal(st.requests.length, 2);
  assert.equal(st.requests[1].lastEventId, rewound.id, 'the new holder did not resume from the least advanced tab');
  for (let i = 1; i < b.seen.length; i++) assert.equal(b.seen[i], b.seen[i - 1] + 1, `b: ${b.seen[i - 1]} then ${b.seen[i]}`);
  assert.ok(b.stats().duplicates >= 1, 'b dropped no repeat');
  // c takes the replay from where it said it was (one step back), then goes on in order.
  const back = c.seen.slice(1).map((n, i) => [n - c.seen[i], n]).filter(([d]) => d !== 1);
  assert.deepEqual(back.map(([, n]) => n), [Number(rewound.id) + 1], `c: ${c.seen.join(',')}`);
  b.close();
  c.close();
});

test('the holder relays state: a fatal answer closes every tab with its error', async () => {
  const s = `nshare-fatal-${process.pid}`;
  const url = `${srv.url}/sse/stream?s=${s}&status=204`;
  const closes = [];
  const tabs = [tab(url, s), tab(url, s)];
  for (const t of tabs) t.addEventListener('close', (e) => closes.push([e.reason, e.error?.code]));
  await until(() => closes.length === 2, 'both closed', 8000);
  assert.deepEqual(closes, [['error', 'NO_CONTENT'], ['error', 'NO_CONTENT']]);
  assert.equal((await stats(s)).requests.length, 1);
});
