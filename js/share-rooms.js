// Rooms on a shared Socket (docs/socket.md, "Sharing"): sock.subscribe(room)
// in any tab. Each tab keeps Channels of js/channel.js (TabRooms, by room);
// their subscription requests go to the leading tab instead of the relay.
// The leader (LeaderRooms) holds one real subscription per room on its own
// Socket, for every tab that asked for it (reference-counted: unsubscribed
// on the relay when the last tab lets go or is gone from the group), and
// hands each message of a room to the tabs that hold it, in the order its
// session delivered them. The rooms, their channel numbers, offsets and
// tabs ride in every snapshot: a new leader subscribes them again on the
// same channels of the same session from where they were, so the session's
// own resume (per-channel sequence numbers) hands over what was in flight,
// once. docs/decisions.md, "Rooms on a shared Socket".
import { SwitchboardError } from './errors.js';
import { Channel, AT } from './channel.js';
import { event } from './glue.js';

const bad = (code, message) => new SwitchboardError(code, message);
const roomOf = (room) => {
  if (typeof room !== 'string' || !room.length || room.length > 128) throw bad('INVALID', 'room must be a string of 1 to 128 characters');
  return room;
};
const sinceOf = (s) => (s && typeof s.epoch === 'string' && Number.isInteger(s.offset) ? { epoch: s.epoch, offset: s.offset } : null);

/** A tab's Channels of a shared Socket, by room. */
export class TabRooms extends Map {
  #share; #rid = 0; #asked = new Map(); // rid -> {room, op, resolve, reject, m}

  constructor(share) {
    super();
    this.#share = share;
  }

  /** sock.subscribe(room, {since}) */
  add(room, opts = {}) {
    const c = this.get(roomOf(room));
    if (c) return c;
    const ch = new Channel(this.#share.sock, this, room, 0, sinceOf(opts.since));
    this.set(room, ch);
    if (this.#framed()) ch._subscribe();
    return ch;
  }

  #framed() { const st = this.#share.st; return st.readyState === 1 && st.mode === 'framed'; }

  /** The Channel's subscribe / unsubscribe, to the leader: answered with the relay's JSON. */
  control(q, c) {
    return new Promise((resolve, reject) => {
      const m = { t: q.op === 'subscribe' ? 'sub' : 'unsub', room: c.room, ch: q.channel, since: q.since, rid: ++this.#rid };
      this.#asked.set(m.rid, { room: c.room, op: m.t, resolve, reject, m });
      this.#share.toLeader(m);
    });
  }

  drop(c) { if (this.get(c.room) === c) this.delete(c.room); }

  /** The shared Socket opened (a reconnect, a new leader): every channel asks for its room again. */
  open(framed) {
    for (const [rid, w] of this.#asked) {
      if (w.op === 'unsub') { this.#share.toLeader(w.m); continue; } // the new leader lets go of it
      this.#asked.delete(rid);
      w.reject(bad('CONNECTION_LOST', 'asked again'));
    }
    for (const c of this.values()) {
      if (framed) c._subscribe();
      else c.dispatchEvent(event('error', { error: bad('BAD_STATE', 'rooms need the switchboard relay (framed mode)') }));
    }
  }

  /** A snapshot's rooms: ask again for a room the leader does not hold for this tab, let go of one it holds for nothing. */
  check(rooms, me) {
    if (!Array.isArray(rooms) || !this.#framed()) return;
    const held = new Set();
    for (const r of rooms) if (r.tabs.includes(me)) held.add(r.room);
    const asking = new Set([...this.#asked.values()].map((w) => w.room));
    for (const [room, c] of this) if (!held.has(room) && !asking.has(room)) c._subscribe();
    for (const room of held) if (!this.has(room) && !asking.has(room)) this.#share.toLeader({ t: 'unsub', room });
  }

  answer(a) {
    const w = this.#asked.get(a.rid);
    if (!w) return;
    this.#asked.delete(a.rid);
    if (a.ok) w.resolve(a.v); else w.reject(bad(a.v.code, a.v.message));
  }

  /** A message of a room from the leader. */
  deliver(m, data) { this.get(m.room)?._message(data, { from: m.from, offset: m.offset }); }

  /** A notice about a room (presence, unrecovered, a refused publish, the room refused). */
  note(m) {
    const c = this.get(m.room);
    if (!c) return;
    if (m.n.type === 'failed') c._fail(bad(m.n.code, m.n.message));
    else c._notice(m.n);
  }

  /** This tab's Socket closes: the leader lets go of its rooms. */
  leave() { for (const room of this.keys()) this.#share.toLeader({ t: 'unsub', room }); }
}

/** The leader's rooms: one subscription each on its Socket, and the tabs that hold it. */
export class LeaderRooms {
  #share; #seen = new Set();

  constructor(share) {
    this.#share = share;
    this.map = new Map(); // room -> r
    this.byCh = new Map(); // channel -> r
  }

  /** The last snapshot's rooms, for the tabs that hold them (but the leader that is gone). */
  restore(list, gone) {
    for (const t of this.#share.group.tabs) this.#seen.add(t.id);
    for (const x of Array.isArray(list) ? list : []) {
      const r = this.#open(x.room, x.epoch ? { epoch: x.epoch, offset: x.offset } : x.since, x.channel, x.tabs.filter((t) => t !== gone));
      r.was = true; // asked again: its tabs have all of it so far
      r.offset = x.offset;
      if (!r.tabs.size) this.#close(r);
    }
  }

  #open(room, since, channel, tabs = []) {
    const c = this.#share.inner.subscribe(room, { since, [AT]: channel });
    const r = { room, c, since, tabs: new Set(tabs), offset: since ? since.offset : 0, waiting: [], fifo: [], lost: false, was: false };
    this.map.set(room, r);
    this.byCh.set(c.channel, r);
    c.addEventListener('presence', (e) => this.#note(r, { type: e.change, user: e.user, users: e.users }));
    // From the relay's answer to the first subscription: each tab's answer says it; later: a notice.
    c.addEventListener('unrecovered', (e) => { if (e.since && !r.was) r.lost = true; else this.#note(r, { type: 'unrecovered' }); });
    c.addEventListener('error', (e) => {
      if (c.state !== 'subscribed' || this.#share.inner.mode !== 'framed') return; // a first subscription's refusal: the answers say it
      // A refused publish goes to the tab whose send it was (in order, while the room refuses), else to all;
      // the room refused when asked again (the channel ends now) goes to all.
      queueMicrotask(() => {
        const failed = c.state === 'unsubscribed';
        if (failed) this.#forget(r);
        const t = failed ? 0 : r.fifo.shift();
        this.#note(r, { type: failed ? 'failed' : 'refused', code: e.error.code, message: e.error.message }, t ? [t] : null);
      });
    });
    c.ready.then(() => {
      for (const w of r.waiting.splice(0)) this.#answer(r, w);
      r.was = true;
    }, (err) => {
      this.#forget(r);
      for (const w of r.waiting.splice(0)) this.#reply(w, false, { code: err.code || 'INTERNAL', message: String(err.message || err) });
    });
    return r;
  }

  #forget(r) {
    if (this.map.get(r.room) !== r) return;
    this.map.delete(r.room);
    this.byCh.delete(r.c.channel);
    this.#share.dirty();
  }

  /** No tab holds it any more: unsubscribed on the relay. */
  #close(r) {
    this.#forget(r);
    return r.c.unsubscribe().catch(() => {});
  }

  /** A tab's subscribe (or unsubscribe) of a room. */
  take(m) {
    if (m.t === 'unsub') {
      const r = this.map.get(m.room);
      if (r?.tabs.delete(m.tab)) this.#share.dirty();
      const done = r && !r.tabs.size ? this.#close(r) : null;
      if (m.rid) Promise.resolve(done).then(() => this.#reply(m, true, '{}'));
      return;
    }
    let r = this.map.get(m.room);
    const w = { tab: m.tab, rid: m.rid, since: sinceOf(m.since), known: !!r?.tabs.has(m.tab), first: !r, offset: r ? r.offset : 0 };
    if (!r) r = this.#open(m.room, w.since, this.byCh.has(m.ch) ? 0 : m.ch);
    r.tabs.add(m.tab); // it gets the room's messages from here on
    this.#share.dirty();
    if (r.c.state === 'subscribed') this.#answer(r, w); else r.waiting.push(w);
  }

  /** The relay's answer, as this tab's own: from where it joined, recovered if it lost nothing. */
  #answer(r, w) {
    const c = r.c, s = w.since;
    const recovered = w.known || (w.first ? !r.lost : !s || (s.epoch === c.epoch && s.offset >= w.offset));
    const offset = w.first ? c.offset : w.known || (recovered && s) ? r.offset : w.offset;
    this.#reply(w, true, JSON.stringify({ room: r.room, channel: c.channel, epoch: c.epoch, offset, recovered, users: c.users, publish: c.publish }));
  }

  #reply(w, ok, v) { if (w.rid) this.#share.toTab({ t: 'sans', tab: w.tab, rid: w.rid, ok, v }); }

  /** A message of the session on a room's channel (the tap, before the leader's Socket has it): to its tabs. */
  message(r, m) {
    if (m.offset > r.offset) r.offset = m.offset;
    Object.assign(m, { t: 'rmsg', room: r.room, to: [...r.tabs] });
  }

  #note(r, n, to = null) { this.#share.toTabs({ t: 'note', room: r.room, to: to || [...r.tabs], n }); }

  /** A tab's send on channel ch: while the room refuses publishing, its refusal is this tab's. */
  sent(ch, tab) {
    const r = this.byCh.get(ch);
    if (r && r.c.publish === false) r.fifo.push(tab);
  }

  /** The group's tabs now: a tab gone from it holds no room. */
  presence(tabs) {
    const live = new Set(tabs.map((t) => t.id));
    for (const id of live) this.#seen.add(id);
    for (const r of [...this.map.values()]) {
      for (const t of r.tabs) if (this.#seen.has(t) && !live.has(t)) { r.tabs.delete(t); this.#share.dirty(); }
      if (!r.tabs.size) this.#close(r);
    }
  }

  /** What a snapshot carries of them. */
  list() {
    return [...this.map.values()].map((r) => ({ room: r.room, channel: r.c.channel, epoch: r.c.epoch, offset: r.offset, since: r.since, tabs: [...r.tabs] }));
  }
}
