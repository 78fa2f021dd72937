// The shared Socket (docs/socket.md, "Sharing") in Node: several Sockets of
// one process share a key (BroadcastChannel works between them; no Web
// Locks here, so the TabGroup elects by lease), against the real relay.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { Relay } from '../../js/server/relay.mjs';
import { serve, until, sleep } from './net.mjs';

const FAST = { WebSocket, reconnect: { minDelay: 20, maxDelay: 200, connectTimeout: 2000 }, heartbeat: false };
before(() => init());

function tabs(url, key, n, room) {
  return Array.from({ length: n }, () => {
    const t = new Socket(url, { ...FAST, share: key, hello: { room, user: 'tabs' } });
    t.got = [];
    t.onmessage = (e) => { if (e.channel === 0) t.got.push(e.data); };
    t.onerror = () => {};
    return t;
  });
}
const leaderOf = (ts) => ts.find((t) => t.stats().share.role === 'leader');

/** The first tab to lead, as one renderer: its posts to the tabs leave only while out() says so. */
async function firstLeader(url, key, room, WS, out) {
  const Real = globalThis.BroadcastChannel;
  globalThis.BroadcastChannel = class extends Real { postMessage(m) { if (out()) super.postMessage(m); } };
  try {
    const lead = new Socket(url, { ...FAST, WebSocket: WS, share: key, hello: { room, user: 'tabs' } });
    lead.onerror = () => {};
    await until(() => lead.readyState === 1 && lead.stats().share.role === 'leader', 8000, 'the first tab leads');
    return lead;
  } finally {
    globalThis.BroadcastChannel = Real;
  }
}

test('three shared Sockets hold one relay connection; the leader closes; nothing lost or doubled either way', async () => {
  const relay = await Relay.create({ onRequest: ({ data }) => `re:${data}` });
  const s = await serve(relay);
  const peer = new Socket(s.url, { ...FAST, hello: { room: 'r1', user: 'peer' } });
  peer.got = [];
  peer.onmessage = (e) => { if (e.channel === 0) peer.got.push(e.data); };
  await until(() => peer.readyState === 1, 5000, 'peer open');
  const ts = tabs(s.url, 'k1', 3, 'r1');
  ts[1].send('early'); // before its group is even open
  await until(() => ts.every((t) => t.readyState === 1), 8000, 'open');
  assert.equal(relay.conns.size, 2, 'one connection for the three, one for the peer');
  assert.deepEqual(ts.map((t) => t.stats().share.role).sort(), ['follower', 'follower', 'leader']);
  for (let i = 0; i < 20; i++) ts.forEach((t, j) => t.send(`t${j}-${i}`));
  for (let i = 0; i < 20; i++) peer.send(`p${i}`);
  assert.deepEqual(await Promise.all(ts.map((t, j) => t.request(`q${j}`))), ['re:q0', 're:q1', 're:q2']);
  const lead = leaderOf(ts);
  const rest = ts.filter((t) => t !== lead);
  lead.close();
  for (let i = 20; i < 40; i++) rest.forEach((t) => t.send(`t${ts.indexOf(t)}-${i}`));
  for (let i = 20; i < 40; i++) peer.send(`p${i}`);
  await until(() => rest.every((t) => t.got.length >= 40) && leaderOf(rest), 8000, 'after the handover');
  await sleep(200);
  assert.equal(peer.got.filter((d) => d === 'early').length, 1);
  for (const t of rest) assert.deepEqual(t.got, Array.from({ length: 40 }, (_, i) => `p${i}`));
  for (const t of rest) {
    const j = ts.indexOf(t);
    assert.deepEqual(peer.got.filter((d) => d.startsWith(`t${j}-`)), Array.from({ length: 40 }, (_, i) => `t${j}-${i}`));
  }
  await until(() => relay.conns.size === 2, 5000, 'the old connection gone');
  for (const t of rest) t.close();
  peer.close();
  await s.kill();
});

test("a follower's request answered only after the leader that sent it closed resolves once, in that follower", { timeout: 30000 }, async () => {
  let release;
  const gate = new Promise((r) => { release = r; });
  const seen = [];
  const relay = await Relay.create({ onRequest: async ({ data }) => { seen.push(data); if (data === 'slow') await gate; return `re:${data}`; } });
  const s = await serve(relay);
  const ts = tabs(s.url, 'k2', 2, 'r2');
  await until(() => ts.every((t) => t.readyState === 1), 8000, 'open');
  const lead = leaderOf(ts);
  const follower = ts.find((t) => t !== lead);
  let settled = 0;
  const answer = follower.request('slow', { timeout: 10000 }).finally(() => settled++);
  await until(() => seen.includes('slow'), 5000, 'the relay has the request');
  lead.close();
  await until(() => leaderOf([follower]), 8000, 'the follower leads');
  release();
  assert.equal(await answer, 're:slow');
  await sleep(100);
  assert.equal(settled, 1);
  assert.deepEqual(seen, ['slow'], 'the relay saw the request once');
  follower.close();
  await s.kill();
});

test("a leader dies after writing a request its snapshot never told the tabs of: the next leader's requests get their own answers", { timeout: 30000 }, async () => {
  const seen = [];
  const relay = await Relay.create({ onRequest: ({ data }) => { seen.push(data); return `re:${data}`; } });
  const s = await serve(relay);
  // The first leader's renderer: its BroadcastChannels and WebSockets, which the crash silences at once.
  const sockets = [];
  let muted = false, dead = false;
  class Dying extends WebSocket {
    constructor(...a) { if (dead) throw new Error('the renderer is gone'); super(...a); sockets.push(this); }
  }
  const lead = await firstLeader(s.url, 'k4', 'r4', Dying, () => !muted);
  const ts = tabs(s.url, 'k4', 2, 'r4');
  await until(() => ts.every((t) => t.readyState === 1), 8000, 'open');
  assert.equal(await ts[0].request('warm'), 're:warm');
  // Its last snapshot never leaves; the request it writes then reaches the relay and is answered.
  muted = true;
  lead.request('lost').catch(() => {});
  await until(() => seen.includes('lost'), 5000, 'the relay has it');
  await sleep(50);
  dead = true;
  for (const w of sockets) w.terminate();
  // A tab asks while no one leads: the next leader takes it before its connection is up.
  assert.equal(await ts[1].request('mine', { timeout: 10000 }), 're:mine', "its own answer, not the dead leader's");
  assert.equal(await ts[0].request('after'), 're:after');
  for (const t of ts) t.close();
  lead.close();
  await s.kill();
});

test('a leader cut off from its tabs and replaced follows the new one: its own sends that no tab confirmed still arrive once', { timeout: 30000 }, async () => {
  const relay = await Relay.create({ onRequest: ({ data }) => `re:${data}` });
  const s = await serve(relay);
  const peer = new Socket(s.url, { ...FAST, hello: { room: 'r6', user: 'peer' } });
  peer.got = [];
  peer.onmessage = (e) => { if (e.channel === 0) peer.got.push(e.data); };
  peer.onerror = () => {};
  await until(() => peer.readyState === 1, 5000, 'peer open');
  // The first tab, as a renderer that stops getting anything out: its posts to
  // the tabs and its writes to the relay vanish; it still runs and hears. It
  // is itself again the moment its connection ends (closed by the relay for
  // the new leader, or by itself on hearing that one): a thawed tab.
  let cut = false;
  class Cut extends WebSocket {
    constructor(...a) { super(...a); this.addEventListener('close', () => { cut = false; }); }
    send(d) { if (!cut) super.send(d); }
    close(...a) { cut = false; super.close(...a); }
  }
  const lead = await firstLeader(s.url, 'k6', 'r6', Cut, () => !cut);
  const ts = tabs(s.url, 'k6', 2, 'r6');
  await until(() => ts.every((t) => t.readyState === 1), 8000, 'open');
  lead.send('before');
  await until(() => peer.got.includes('before'), 5000, 'the peer has it');
  cut = true;
  // No tab confirms what it takes now (its snapshots never leave): they stay its own to send again.
  const asked = [lead.request('ql', { timeout: 10000 }), ts[0].request('qf', { timeout: 10000 })].map((p) => p.catch((e) => `error ${e.code}`));
  for (let i = 0; i < 5; i++) { lead.send(`z${i}`); await sleep(150); }
  await until(() => leaderOf(ts), 10000, 'another tab leads');
  await until(() => lead.stats().share.role === 'follower', 10000, 'the cut-off tab follows');
  assert.equal(cut, false);
  await until(() => ['z0', 'z1', 'z2', 'z3', 'z4'].every((m) => peer.got.includes(m)), 8000, 'what it took while cut off');
  await sleep(200);
  assert.deepEqual(peer.got.filter((d) => d !== 'before'), ['z0', 'z1', 'z2', 'z3', 'z4'], 'once, in order');
  // Its session, replaced, fails what it was asked: not for the tabs, whose requests the new leader answers.
  assert.deepEqual(await Promise.all(asked), ['re:ql', 're:qf']);
  for (const t of [...ts, lead]) t.close();
  peer.close();
  await s.kill();
});

test("every tab confirms a new leader's first snapshot: it hears which of the listed tabs live", async () => {
  const relay = await Relay.create();
  const s = await serve(relay);
  const ts = tabs(s.url, 'k7', 4, 'r7');
  await until(() => ts.every((t) => t.readyState === 1), 8000, 'open');
  const posts = [];
  const spy = new BroadcastChannel('switchboard:socket:k7');
  spy.onmessage = (e) => posts.push(e.data);
  const lead = leaderOf(ts);
  const rest = ts.filter((t) => t !== lead);
  lead.close();
  await until(() => leaderOf(rest), 8000, 'another tab leads');
  const next = leaderOf(rest).stats().share.leader;
  await until(() => posts.some((m) => m.t === 'snap' && m.from === next), 5000, 'its first snapshot');
  const { gen } = posts.find((m) => m.t === 'snap' && m.from === next);
  const confirmed = () => new Set(posts.filter((m) => m.t === 'got' && m.to === next && m.gen === gen).map((m) => m.tab)).size;
  await until(() => confirmed() === 2, 5000, 'both other tabs confirm it').catch(() => {});
  assert.equal(confirmed(), 2, 'both other tabs, not only the one asked');
  spy.close();
  for (const t of rest) t.close();
  await s.kill();
});

test("statechange in the tab that takes over says the state the shared connection left, not its new Socket's", async () => {
  const relay = await Relay.create();
  const s = await serve(relay);
  const ts = tabs(s.url, 'k8', 2, 'r8');
  await until(() => ts.every((t) => t.readyState === 1), 8000, 'open');
  const lead = leaderOf(ts);
  const next = ts.find((t) => t !== lead);
  const seen = [];
  next.addEventListener('statechange', (e) => seen.push([e.previous, e.state]));
  lead.close();
  await until(() => leaderOf([next]) && next.readyState === 1 && seen.length > 0, 8000, 'it leads, open');
  await until(() => seen.at(-1)[1] === 'open', 5000, 'open again');
  assert.equal(seen[0][0], 'open', JSON.stringify(seen));
  for (let i = 1; i < seen.length; i++) assert.equal(seen[i][0], seen[i - 1][1], JSON.stringify(seen));
  next.close();
  await s.kill();
});

test('share where it cannot work keeps an own connection and says why', async () => {
  const saved = globalThis.BroadcastChannel;
  globalThis.BroadcastChannel = undefined;
  try {
    const relay = await Relay.create();
    const s = await serve(relay);
    const t = new Socket(s.url, { ...FAST, share: true });
    await until(() => t.readyState === 1, 5000, 'open');
    assert.deepEqual(t.stats().share, { role: 'own', key: s.url, reason: 'no-broadcast-channel', tabs: 1 });
    t.close();
    await s.kill();
  } finally {
    globalThis.BroadcastChannel = saved;
  }
});
