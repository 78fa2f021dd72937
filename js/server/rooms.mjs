// Rooms: each room is one ordered log with offsets (1, 2, 3, ...) and an
// epoch (a random id drawn when the log starts). Every message published to
// a room is appended to its log once, whatever the number of subscribers:
// memory is O(room history), not O(sessions x history). A subscriber's
// position is the last offset it was handed; a session that comes back
// (resume) or a client that subscribes again with {epoch, offset} is handed
// what it missed from the log, or told it was not recovered when that part
// of the log is gone (trimmed, or another epoch: the relay restarted without
// a durable store). docs/relay.md, "Rooms".
import { randomBytes } from 'node:crypto';
import { SwitchboardError } from '../errors.js';
import { bytesOf } from '../session.js';
import { RoomMirrors } from './mirrors.mjs';
import { E_QUEUE_FULL, E_TOO_LARGE, CLOSE_TRY_AGAIN, SESSION_SYSTEM_CHANNEL } from '../constants.js';

/** The relay's channel: presence, notices, subscription requests. */
export const SYSTEM_CHANNEL = SESSION_SYSTEM_CHANNEL;
/** What the relay says on channel 1 about a subscription (presence, refusals, recovery). */
const notice = (o) => bytesOf(JSON.stringify(o));

export const LOG_DEFAULTS = {
  roomHistory: 10000,          // messages kept per room
  roomHistoryBytes: 16 << 20,  // their payload bytes per room
  roomHistoryMs: 10 * 60e3,    // and no older than this
};

/** One logged message: what the fan-out and a replay need. */
// { offset, sid (the sender's session id), from (its user), channel (the app
//   channel it was sent on, for the hello's room), flags, payload, at }

export class RoomLog {
  constructor(room, limits, epoch = randomBytes(9).toString('base64url'), next = 1) {
    this.room = room;
    this.epoch = epoch;
    this.limits = limits;
    this.entries = [];
    this.head = 0;       // entries[head] is the oldest kept
    this.first = next;   // its offset (= next when empty)
    this.next = next;    // the offset the next message gets
    this.bytes = 0;
  }

  get size() { return this.entries.length - this.head; }

  /** Append; returns the entry (with its offset). Trims to the limits. */
  append(e, now) {
    e.offset = this.next++;
    e.at = now;
    this.entries.push(e);
    this.bytes += e.payload.length;
    this.trim(now);
    return e;
  }

  /** An entry that already has its offset (a shared engine gave it): appended in order. */
  put(e, now) {
    this.next = e.offset + 1;
    this.entries.push(e);
    this.bytes += e.payload.length;
    this.trim(now);
    return e;
  }

  /** A log read back from a store: entries in offset order, all below next. */
  static restore(room, limits, epoch, next, entries, now) {
    const log = new RoomLog(room, limits, epoch, next);
    if (entries.length) log.first = entries[0].offset;
    for (const e of entries) {
      log.entries.push(e);
      log.bytes += e.payload.length;
    }
    log.trim(now);
    return log;
  }

  /** Drop from the front past the count, bytes or age limits. Returns the new first offset. */
  trim(now) {
    const { roomHistory, roomHistoryBytes, roomHistoryMs } = this.limits;
    while (this.size && (this.size > roomHistory || this.bytes > roomHistoryBytes || now - this.entries[this.head].at > roomHistoryMs)) {
      this.bytes -= this.entries[this.head].payload.length;
      this.entries[this.head++] = undefined;
    }
    this.first = this.size ? this.entries[this.head].offset : this.next;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return this.first;
  }

  /**
   * What comes after offset `after` in this epoch: the entries, or null when
   * some of it is gone (trimmed, or `epoch` is another log's).
   */
  since(after, epoch = this.epoch) {
    if (epoch !== this.epoch || !Number.isInteger(after) || after < 0 || after >= this.next || after + 1 < this.first) return null;
    return this.entries.slice(this.head + (after + 1 - this.first));
  }
}

/** A session's subscription to a room, on one of its channels. */
export class Sub {
  constructor(room, channel, offset, canPublish) {
    this.room = room;
    this.channel = channel;
    this.offset = offset;         // the last offset handed to the session
    this.canPublish = canPublish; // authorize({action: 'publish'})
    this.behind = false;          // its session's window is full: it catches up from the log
  }

  toJSON() { return [this.channel, this.room, this.offset, this.canPublish ? 1 : 0]; }

  static from(a) {
    if (!Array.isArray(a) || !(a[0] >= 0) || typeof a[1] !== 'string' || !(a[2] >= 0)) return null;
    return new Sub(a[1], a[0] >>> 0, a[2], a[3] === 1);
  }
}

/** A room name: 1..128 characters. */
export const roomName = (r) => (typeof r === 'string' && r.length > 0 && r.length <= 128 ? r : null);

/**
 * The relay's rooms: their logs, who subscribes where, fan-out, presence,
 * catching up, and the subscription requests. Calls back into its Relay for
 * what a turn touches (r._touched, r._dirty), failures (r._fail) and its
 * options, Bus, store, core and stats.
 */
export class Rooms extends RoomMirrors {
  constructor(relay) {
    super();
    this.r = relay;
    /** room -> RoomLog; an in-process store keeps them (a new Relay on it finds them) */
    this.logs = relay.store.logs instanceof Map ? relay.store.logs : new Map();
    /** room -> { slots: Set<Slot> (its subscribers here), unsubscribe (from the Bus) } */
    this.map = new Map();
    this.appends = []; // [room, entry] of this turn, for a store that is not in process
    this.behind = new Set(); // slots with a subscription behind its room's log
    this.later = new Set(); // slots with presence queued, flushed together (presenceDelay)
    this.laterTimer = null;
    // A shared engine (Redis) keeps the logs and fans out: this.logs are
    // then this process's mirrors of them, each read once (prepare) and kept
    // up to date by the engine's deliveries, in order.
    this.shared = !!relay.store.shared;
    this.preparing = new Map(); // room -> Promise of its mirror
    this.names = new Map(); // sender -> its stamp's UTF-8, for the next messages of the same senders
    this.idle = new Map(); // room -> timer: its mirror is dropped when no session here is in it
  }

  close() {
    clearTimeout(this.laterTimer);
    for (const r of this.map.values()) r.unsubscribe();
    this.map.clear();
    for (const t of this.idle.values()) clearTimeout(t);
    this.idle.clear();
  }

  /** A log as a store or an engine gives it back. */
  restoreLog(room, epoch, next, entries, now) {
    return RoomLog.restore(room, this.r.o, epoch, next, entries, now);
  }

  /** The room's log, started on first use. */
  logOf(room) {
    let log = this.logs.get(room);
    if (!log) this.logs.set(room, (log = new RoomLog(room, this.r.o)));
    return log;
  }

  /** slot subscribes to sub.room on sub.channel. */
  join(slot, sub) {
    let r = this.map.get(sub.room);
    if (!r) {
      r = { slots: new Set(), unsubscribe: null };
      this.map.set(sub.room, r);
      r.unsubscribe = this.shared ? () => this.unused(sub.room)
        : this.r.bus.subscribe(sub.room, (e) => this.r._turn(null, () => this.fanout(sub.room, e)));
    }
    r.slots.add(slot);
    slot.subs.set(sub.channel, sub);
  }

  leave(slot, sub) {
    slot.subs.delete(sub.channel);
    const r = this.map.get(sub.room);
    if (!r || slot.subOf(sub.room)) return;
    r.slots.delete(slot);
    if (!r.slots.size) {
      r.unsubscribe();
      this.map.delete(sub.room);
    }
  }

  leaveAll(slot) {
    for (const sub of [...slot.subs.values()]) this.leave(slot, sub);
  }

  users(room) {
    const r = this.map.get(room);
    const users = [];
    if (r) for (const slot of r.slots) if (slot.conn) users.push(slot.name);
    if (this.shared) for (const m of this.r.store.members(room)) users.push(m.name);
    return users.sort();
  }

  /**
   * A notice on channel 1 to one session (presence, refusals, recovery).
   * later: queued now, written with the others at most presenceDelay ms on
   * (a join storm in a big room is then one write per member per delay,
   * not one per member per join).
   */
  notice(slot, o, later = false) {
    if (!slot.s.h || slot.closed) return;
    try {
      slot.s.send(SYSTEM_CHANNEL, false, notice(o), Date.now());
    } catch (e) {
      if (e.code !== 'TOO_LARGE') this.r._fail(slot.conn, e, slot);
    }
    if (!later || !(this.r.o.presenceDelay > 0)) {
      this.r._touched.add(slot);
      return;
    }
    this.later.add(slot);
    this.laterTimer ||= setTimeout(() => this.r._turn(null, () => {
      this.laterTimer = null;
      for (const x of this.later) this.r._touched.add(x);
      this.later.clear();
    }), this.r.o.presenceDelay);
    this.laterTimer.unref?.();
  }

  /**
   * A join or leave of slot in sub's room, to the room's attached members,
   * with the whole user list while the room is small (presenceList); past
   * that only the joiner gets the list and the others who came or went (a
   * join then costs n small messages, not n lists).
   */
  presence(slot, type, sub) {
    if (this.shared && slot.id) this.r.store.presence(type, sub.room, slot.id, slot.name);
    const r = this.map.get(sub.room);
    if (!r) return;
    const user = slot.name;
    const users = this.users(sub.room);
    const all = users.length <= this.r.o.presenceList;
    for (const other of r.slots) {
      if (!other.conn || (other === slot && type === 'leave')) continue;
      const theirs = other.subOf(sub.room);
      if (!theirs) continue;
      const o = { type, room: sub.room, channel: theirs.channel, user };
      if (all || other === slot) o.users = users;
      this.notice(other, o, other !== slot);
    }
  }

  /** A message from slot on channel: appended to the room's log and published. */
  publish(slot, channel, flags, payload) {
    const sub = slot.subs.get(channel);
    if (!sub || !sub.canPublish) {
      this.r.stats.refused++;
      this.notice(slot, sub
        ? { type: 'refused', room: sub.room, channel, code: 'FORBIDDEN', message: `not allowed to publish to ${JSON.stringify(sub.room.slice(0, 60))}` }
        : { type: 'refused', channel, code: 'NOT_FOUND', message: `channel ${channel} is not subscribed to a room` });
      return;
    }
    if (this.shared) { // the engine gives it its offset and fans it out, once it is stored
      this.appends.push([sub.room, { sid: slot.id, from: slot.name, flags, payload, at: Date.now() }]);
      return;
    }
    const e = this.logOf(sub.room).append({ sid: slot.id, from: slot.name, flags, payload, offset: 0, at: 0 }, Date.now());
    if (!this.r.store.inProcess) this.appends.push([sub.room, e]);
    this.r.bus.publish(sub.room, e);
  }

  /** Bus delivery: the entry into every attached subscriber's outbox, stamped. */
  fanout(room, e) {
    const r = this.map.get(room);
    if (!r) return;
    const w = this.stamped(e);
    for (const slot of r.slots) this.hand(slot, slot.subOf(room), e, w);
  }

  /** [from][payload] of e in the heap, once for every recipient. */
  stamped(e) {
    const c = this.r.core;
    let from = this.names.get(e.from);
    if (!from) {
      if (this.names.size >= 4096) this.names.clear(); // a bound, not an LRU: a miss costs one encode
      this.names.set(e.from, from = bytesOf(e.from.length > 64 ? e.from.slice(0, 64) : e.from || '?'));
    }
    const w = { p: 0, nfrom: from.length, put() {
      w.p = c.scratch(from.length + e.payload.length);
      c.heap().set(from, w.p);
      c.heap().set(e.payload, w.p + from.length);
    } };
    w.put();
    return w;
  }

  /**
   * e to one subscriber, unless it has it, sent it (without echo) or is
   * away. A session holding its whole window unconfirmed (maxHistory,
   * maxHistoryBytes) is handed nothing more: the subscription falls behind
   * and catches up from the log as its client confirms (_catchUp).
   */
  hand(slot, sub, e, w) {
    if (!sub || !slot.conn || !slot.s.h || slot.closed || sub.offset >= e.offset) return;
    if (e.sid === slot.id && !slot.echo) {
      if (!sub.behind) sub.offset = e.offset;
      return;
    }
    if (sub.behind) return;
    // One call: the session itself refuses what its window has no room for (QUEUE_FULL, nothing taken).
    const rc = this.r.core.fn.sb_session_relay(slot.s.h, sub.channel, e.flags, e.offset, w.p, w.nfrom, w.p + w.nfrom, e.payload.length, Date.now());
    if (rc === E_QUEUE_FULL) {
      sub.behind = true;
      this.behind.add(slot);
      return;
    }
    this.r._touched.add(slot);
    if (rc >= 0 || rc === E_TOO_LARGE) { // too large for this client: a DROP, counted by its session
      sub.offset = e.offset;
      this.r.stats.messagesOut++;
    } else {
      this.r._fail(slot.conn, this.r.core.error(rc, 'relay'), slot);
      w.put(); // failing wrote its reason into the scratch
    }
  }

  /**
   * Hand slot what its subscription missed since sub.offset, from the log
   * (a session coming back, a client subscribing again with a position), or
   * move it to the log's end when that part is gone. Returns whether it was
   * recovered.
   */
  replay(slot, sub, epoch, tell = true) {
    const log = this.logOf(sub.room);
    let recovered = true;
    if (!log.since(sub.offset, epoch)) {
      // Gone: it is told so (a notice on channel 1, or the answer to its
      // subscribe), and goes on from the oldest message the log still has.
      this.r.stats.unrecovered++;
      recovered = false;
      if (tell) this.notice(slot, { type: 'unrecovered', room: sub.room, channel: sub.channel });
      sub.offset = log.first - 1;
    }
    sub.behind = true; // handed from the log, as much as its window takes
    this.behind.add(slot);
    this.catchUp(slot);
    return recovered;
  }

  /** Subscriptions that fell behind: hand them what follows from the log while their window has room. */
  catchUp(slot) {
    let still = false;
    for (const sub of slot.subs.values()) {
      if (!sub.behind) continue;
      if (!slot.conn || !slot.s.h || slot.closed) return;
      const log = this.logOf(sub.room);
      let missed = log.since(sub.offset);
      if (!missed) { // trimmed while it was behind
        this.r.stats.unrecovered++;
        this.notice(slot, { type: 'unrecovered', room: sub.room, channel: sub.channel });
        sub.offset = log.first - 1;
        missed = log.since(sub.offset) || [];
      }
      sub.behind = false;
      for (const e of missed) {
        this.r.stats.replayed++;
        this.hand(slot, sub, e, this.stamped(e));
        if (sub.behind) break;
      }
      still ||= sub.behind;
    }
    if (!still) this.behind.delete(slot);
  }

  /**
   * A request on channel 1, to the relay itself:
   *   {op: 'subscribe', room, channel (>= 2), since?: {epoch, offset}}
   *     -> {room, channel, epoch, offset, recovered, users, publish}
   *   {op: 'unsubscribe', channel} -> {}
   * authorize({action: 'join'}) admits to the room, ({action: 'publish'})
   * to sending there. A refusal is an error answer (FORBIDDEN), not a close.
   */
  control(slot, id, text) {
    const answer = (isError, v) => {
      if (!slot.s.h || slot.closed) return;
      this.r._touched.add(slot);
      try {
        slot.s.respond(id, isError, false, JSON.stringify(v), Date.now());
      } catch (e) {
        this.r._fail(slot.conn, e, slot);
      }
    };
    const fail = (code, message) => answer(true, { code, message });
    let q;
    try { q = JSON.parse(text); } catch { q = null; }
    if (!q || typeof q !== 'object') return fail('INVALID', 'not a JSON object');
    const channel = q.channel;
    if (!Number.isInteger(channel) || channel < 2 || channel > 0xffffffff) return fail('INVALID', 'channel must be an integer >= 2');
    if (q.op === 'unsubscribe') {
      const sub = slot.subs.get(channel);
      if (sub) {
        if (slot.conn) this.presence(slot, 'leave', sub);
        this.leave(slot, sub);
        this.r._dirty.add(slot);
      }
      return answer(false, {});
    }
    if (q.op !== 'subscribe') return fail('INVALID', `unknown op ${JSON.stringify(String(q.op).slice(0, 30))}`);
    const room = roomName(q.room);
    if (!room) return fail('INVALID', 'room must be a string of 1 to 128 characters');
    const since = q.since && typeof q.since === 'object' && typeof q.since.epoch === 'string' && Number.isInteger(q.since.offset) ? q.since : null;
    const done = (canPublish) => {
      if (!slot.s.h || slot.closed || !slot.id) return;
      const ready = this.prepare([room]); // a shared engine: the room's mirror first
      if (ready) {
        // The store away: the connection is closed with 1013, and the Socket
        // subscribes again when it is back (an error answer would end the Channel).
        ready.then(() => this.r._turn(null, () => done(canPublish)), (e) => this.r._turn(slot.conn, () => {
          if (!slot.s.h || slot.closed || !slot.conn) return;
          throw Object.assign(new SwitchboardError('UNAVAILABLE', `the relay's store: ${String(e?.message || e).slice(0, 80)}`), { closeCode: CLOSE_TRY_AGAIN });
        }, slot));
        return;
      }
      let sub = slot.subs.get(channel);
      const log = this.logOf(room);
      let recovered = true;
      if (sub && sub.room === room) { // already (a session that came back re-subscribes)
        sub.canPublish = canPublish;
      } else {
        if (sub) return fail('INVALID', `channel ${channel} is subscribed to another room`);
        const other = slot.subOf(room);
        if (other && other.channel !== 0) { // the same room asked on another channel: it moves
          this.leave(slot, other);
          sub = new Sub(room, channel, other.offset, canPublish);
          this.join(slot, sub);
        } else {
          if (slot.subs.size >= this.r.o.maxSubscriptions) return fail('QUEUE_FULL', `over ${this.r.o.maxSubscriptions} subscriptions`);
          sub = new Sub(room, channel, since ? since.offset : log.next - 1, canPublish);
          this.join(slot, sub);
          if (since) recovered = this.replay(slot, sub, since.epoch, false);
          if (slot.conn) this.presence(slot, 'join', sub);
        }
      }
      this.r._dirty.add(slot);
      answer(false, { room, channel, epoch: log.epoch, offset: sub.offset, recovered, users: this.users(room), publish: canPublish });
    };
    if (!this.r.authorize) return done(true);
    // (the upgrade request and the hello are not kept past the hello: null here)
    const ctx = { request: null, hello: null, user: slot.owner ? { id: slot.owner, name: slot.user } : null, room };
    const ask = (action) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new SwitchboardError('TIMEOUT', `authorize took over ${this.r.o.helloTimeoutMs} ms`)), this.r.o.helloTimeoutMs);
      t.unref?.();
      Promise.resolve().then(() => this.r.authorize({ ...ctx, action })).then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
    });
    ask('join').then((ok) => (ok ? ask('publish').then((pub) => ({ ok, pub })) : { ok })).then(({ ok, pub }) => this.r._turn(null, () => {
      if (!ok) {
        this.r.stats.refused++;
        return fail('FORBIDDEN', `room ${JSON.stringify(room.slice(0, 60))} refused`);
      }
      done(!!pub);
    }), (e) => this.r._turn(null, () => {
      this.r.log(`relay: authorize: ${e?.stack || e}`);
      fail(e?.code === 'TIMEOUT' ? 'TIMEOUT' : 'FORBIDDEN', String(e?.message || e).slice(0, 100));
    })).catch((e) => this.r.log(`relay: subscribing: ${e?.stack || e}`));
  }

}
