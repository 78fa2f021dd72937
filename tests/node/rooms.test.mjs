// Many rooms per connection (docs/socket.md, "Rooms"; docs/relay.md,
// "Rooms"): socket.subscribe(room) channels on real Sockets over `ws`
// against the relay: the sender stamped by the relay, per-room offsets,
// presence, authorize for join and publish, resume from the room's log
// (after a drop, on a new session, from a saved position) and the explicit
// "not recovered" when the log no longer has it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { SS_QUEUED } from '../../js/constants.js';
import { Relay, MemoryStore } from '../../js/server/index.mjs';
import { serve, sleep, until } from './net.mjs';

const FAST = { reconnect: { minDelay: 20, maxDelay: 100, connectTimeout: 2000 }, heartbeat: false };
const open = new Set();
before(() => init());
after(() => { for (const x of open) x.close(); });



/** A Socket; token names its user for the relay's authenticate below. */
function sock(url, token, opts = {}) {
  const s = new Socket(`${url}?token=${token}`, { WebSocket, ...FAST, ...opts });
  s.onerror = () => {};
  open.add(s);
  return s;
}

/** What a channel receives: .got [{data, from, offset}], .presence, .errors, .gaps. */
function watch(ch) {
  ch.got = [];
  ch.errors = [];
  ch.gaps = [];
  ch.presence = [];
  ch.addEventListener('message', (e) => ch.got.push({ data: e.data, from: e.from, offset: e.offset }));
  ch.addEventListener('error', (e) => ch.errors.push(e.error.code));
  ch.addEventListener('unrecovered', (e) => ch.gaps.push(e.room));
  ch.addEventListener('presence', (e) => ch.presence.push(`${e.change}:${e.user}`));
  return ch;
}

// Tokens name users; "ro-*" rooms are read-only for everyone but Ann, "vip" is Ann's alone.
const authenticate = ({ request }) => new URL(request.url, 'http://x').searchParams.get('token') || null;
const authorize = ({ user, room, action }) => (room === 'vip' ? user.id === 'ann' : action === 'join' || !room.startsWith('ro-') || user.id === 'ann');

test('rooms on one connection: each message reaches its room\'s subscribers once, in order, stamped with the authenticated sender and an offset', async () => {
  const relay = await Relay.create({ authenticate, authorize });
  const s = await serve(relay);
  // Bob claims to be Ann in his hello: the relay stamps who authenticate says.
  const ann = sock(s.url, 'ann', { hello: { room: 'lobby' } });
  const bob = sock(s.url, 'bob', { hello: { room: 'lobby', user: 'ann' } });
  const annA = watch(ann.subscribe('a')), annB = watch(ann.subscribe('b'));
  const bobA = watch(bob.subscribe('a'));
  assert.equal(ann.subscribe('a'), annA, 'one channel per room');
  await Promise.all([annA.ready, annB.ready, bobA.ready]);
  assert.notEqual(annA.channel, annB.channel);
  for (let i = 0; i < 300; i++) {
    annA.send(`a${i}`);
    annB.send(`b${i}`);
    bobA.send(`x${i}`);
  }
  await until(() => bobA.got.filter((m) => m.from === 'ann').length === 300 && annA.got.length === 300, 'room a');
  // Ann is not echoed her own; Bob gets Ann's in order, stamped "ann".
  assert.deepEqual(annA.got.map((m) => m.data), Array.from({ length: 300 }, (_, i) => `x${i}`));
  assert.ok(annA.got.every((m) => m.from === 'bob'), 'stamped with the authenticated user, not the hello\'s');
  assert.deepEqual(bobA.got.map((m) => m.data), Array.from({ length: 300 }, (_, i) => `a${i}`));
  assert.equal(annB.got.length, 0, 'nobody else is in b');
  const offsets = [...annA.got, ...bobA.got].map((m) => m.offset).sort((x, y) => x - y);
  assert.deepEqual(offsets, Array.from({ length: 600 }, (_, i) => i + 1), 'one log for room a: every offset once');
  assert.equal(annA.position.offset, Math.max(...annA.got.map((m) => m.offset)));
  // Presence per room, with the relay's names.
  await until(() => annA.users.join() === 'ann,bob', 'presence in a');
  assert.deepEqual(annB.users, ['ann']);
  // Unsubscribe: nothing more arrives there, and the other side sees the leave.
  await bobA.unsubscribe();
  await until(() => annA.presence.includes('leave:bob'), 'leave');
  annA.send('after');
  await sleep(100);
  assert.ok(!bobA.got.some((m) => m.data === 'after'));
  ann.close(); bob.close(); relay.close(); s.close();
});

test('authorize per room and action: a refused join rejects the channel, a refused publish is reported and delivered to nobody', async () => {
  const relay = await Relay.create({ authenticate, authorize });
  const s = await serve(relay);
  const ann = sock(s.url, 'ann');
  const eve = sock(s.url, 'eve');
  const annRo = watch(ann.subscribe('ro-news')), eveRo = watch(eve.subscribe('ro-news'));
  const eveVip = watch(eve.subscribe('vip'));
  await assert.rejects(eveVip.ready, { code: 'FORBIDDEN' });
  assert.equal(eveVip.state, 'unsubscribed');
  await Promise.all([annRo.ready, eveRo.ready]);
  assert.equal(eveRo.publish, false);
  assert.equal(annRo.publish, true);
  eveRo.send('spam');
  annRo.send('news');
  await until(() => eveRo.got.length === 1 && eveRo.errors.length === 1, 'refusal and news');
  assert.deepEqual(eveRo.errors, ['FORBIDDEN']);
  await sleep(100);
  assert.deepEqual(annRo.got, [], 'the refused message reached nobody');
  assert.equal(eveRo.got[0].data, 'news');
  assert.equal(eve.readyState, 1, 'a refused publish does not close the connection');
  ann.close(); eve.close(); relay.close(); s.close();
});

test('resume per room: a dropped connection gets what it missed from each room\'s log, once; a detached session holds nothing meanwhile', async () => {
  const relay = await Relay.create({ authenticate });
  const s = await serve(relay);
  const pub = sock(s.url, 'pub');
  const sub = sock(s.url, 'sub', { reconnect: { minDelay: 300, maxDelay: 300 } });
  const p1 = pub.subscribe('r1'), p2 = pub.subscribe('r2');
  const s1 = watch(sub.subscribe('r1')), s2 = watch(sub.subscribe('r2'));
  await Promise.all([p1.ready, p2.ready, s1.ready, s2.ready]);
  p1.send('before');
  await until(() => s1.got.length === 1, 'before');
  relay.sessions.get(sub.session).conn.ws.terminate();
  await until(() => !relay.sessions.get(sub.session).conn, 'detached');
  const held = relay.sessions.get(sub.session).s.stat(SS_QUEUED); // what was in flight at the drop
  for (let i = 0; i < 500; i++) { p1.send(`r1-${i}`); p2.send(`r2-${i}`); }
  await until(() => relay.stats.messagesIn >= 1001, 'published');
  assert.equal(relay.sessions.get(sub.session).s.stat(SS_QUEUED), held, 'nothing more queued for the detached session: the log has it');
  await until(() => s1.got.length === 501 && s2.got.length === 500, 'caught up');
  await sleep(100);
  assert.deepEqual(s1.got.map((m) => m.data), ['before', ...Array.from({ length: 500 }, (_, i) => `r1-${i}`)]);
  assert.deepEqual(s2.got.map((m) => m.data), Array.from({ length: 500 }, (_, i) => `r2-${i}`));
  assert.deepEqual([...s1.gaps, ...s2.gaps], []);
  pub.close(); sub.close(); relay.close(); s.close();
});

test('a slow reader is handed its window at a time and catches up from the log: nothing lost, nothing twice', async () => {
  const relay = await Relay.create({ maxHistory: 16 });
  const s = await serve(relay);
  const pub = sock(s.url, 'p'), sub = sock(s.url, 's');
  const p = pub.subscribe('firehose'), c = watch(sub.subscribe('firehose'));
  await Promise.all([p.ready, c.ready]);
  // Each window is confirmed after the client's ack delay: a few dozen rounds.
  for (let i = 0; i < 600; i++) p.send(`m${i}`);
  await until(() => c.got.length === 600, 'all', 30000);
  assert.deepEqual(c.got.map((m) => m.data), Array.from({ length: 600 }, (_, i) => `m${i}`));
  assert.ok(relay.stats.replayed > 0, 'it fell behind and caught up from the log');
  pub.close(); sub.close(); relay.close(); s.close();
});

test('a new session resumes a room from its position; a log that no longer has it says so (unrecovered)', async () => {
  const store = new MemoryStore();
  let relay = await Relay.create({ store, roomHistory: 50 });
  let s = await serve(relay);
  const pub = sock(s.url, 'p');
  const p = pub.subscribe('news');
  const first = sock(s.url, 'reader');
  const c1 = watch(first.subscribe('news'));
  await Promise.all([p.ready, c1.ready]);
  for (let i = 0; i < 10; i++) p.send(`n${i}`);
  await until(() => c1.got.length === 10, 'ten');
  const saved = c1.position;
  first.close();
  for (let i = 10; i < 30; i++) p.send(`n${i}`);
  // A page reloaded with the position it saved: a new session, the room from there.
  const second = sock(s.url, 'reader');
  const c2 = watch(second.subscribe('news', { since: saved }));
  await until(() => c2.got.length === 20, 'the twenty it missed');
  assert.deepEqual(c2.got.map((m) => m.data), Array.from({ length: 20 }, (_, i) => `n${i + 10}`));
  assert.deepEqual(c2.gaps, []);
  // Past the log's bound: told, then the newest it has.
  const mark = c2.position;
  second.close();
  for (let i = 30; i < 130; i++) p.send(`n${i}`);
  await until(() => relay.rooms.logs.get('news').next === 131, 'published');
  const third = sock(s.url, 'reader');
  const c3 = watch(third.subscribe('news', { since: mark }));
  await until(() => c3.gaps.length === 1 && c3.got.length === 50, 'the gap and the log\'s fifty');
  assert.deepEqual(c3.got.map((m) => m.data), Array.from({ length: 50 }, (_, i) => `n${i + 80}`));
  // A relay restarted on another store: another epoch, nothing to resume from.
  const at = c3.position;
  third.close(); pub.close(); relay.close(); s.close();
  relay = await Relay.create({});
  s = await serve(relay);
  const fourth = sock(s.url, 'reader');
  const c4 = watch(fourth.subscribe('news', { since: at }));
  await until(() => c4.gaps.length === 1, 'unrecovered on a new epoch');
  assert.notEqual(c4.epoch, at.epoch);
  fourth.close(); relay.close(); s.close();
});

test('the channel protocol is refused when malformed, and a channel never bound is refused', async () => {
  const relay = await Relay.create({});
  const s = await serve(relay);
  const a = sock(s.url, 'a');
  await new Promise((r) => a.addEventListener('open', r, { once: true }));
  for (const [q, code] of [['nope', 'INVALID'], [{ op: 'subscribe', room: 'r', channel: 1 }, 'INVALID'], [{ op: 'subscribe', room: '', channel: 5 }, 'INVALID'],
    [{ op: 'dance', channel: 5 }, 'INVALID'], [{ op: 'subscribe', room: 'x'.repeat(129), channel: 5 }, 'INVALID']]) {
    await assert.rejects(a.request(typeof q === 'string' ? q : JSON.stringify(q), { channel: 1 }), { code }, JSON.stringify(q));
  }
  const notices = [];
  a.addEventListener('message', (e) => { if (e.channel === 1) notices.push(JSON.parse(e.data)); });
  a.send('to nowhere', { channel: 9 });
  await until(() => notices.some((n) => n.type === 'refused' && n.channel === 9 && n.code === 'NOT_FOUND'), 'refused');
  assert.equal(a.readyState, 1);
  a.close(); relay.close(); s.close();
});
