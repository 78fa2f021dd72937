// The relay's sessions, from the client's hello on: who it is (authenticate)
// and whether it may use its room (authorize), then a new session or the
// takeover of the one it names (bound to its user), and later its detach,
// its end, its requests (onRequest) and the events each call into it
// causes. The base of Relay (relay.mjs), which owns the transports and the
// turns these run in.
import { SwitchboardError } from '../errors.js';
import { utf8 } from '../session.js';
import {
  SESSION_CLOSED, SEV_WRITE, SEV_DISCONNECT, SEV_MESSAGE, SEV_REQUEST, SEV_CLOSED, SEV_DIRTY, SEV_HELLO, SEV_ERROR,
  SEV_DROP, SEV_PAUSE, FRAME_F_BINARY, CLOSE_TRY_AGAIN, CLOSE_REPLACED, CLOSE_AUTH, CLOSE_FORBIDDEN,
} from '../constants.js';
import { Sub, SYSTEM_CHANNEL, roomName } from './rooms.mjs';
import { identityOf, refusal, step } from './guard.mjs';
import { newId, parseHello, roomOf } from './slot.mjs';


export class RelaySessions {
  /**
   * The client's hello on a pending slot: who it is (authenticate, else
   * 4401) and whether it may use its room (authorize, else 4403), then its
   * session (_admit). Each hook may answer later (a promise): the slot
   * waits, and the rest runs in a turn of its own.
   */
  _hello(pending) {
    const conn = pending.conn;
    const h = parseHello(pending.hello, this.o.maxHelloBytes);
    pending.hello = null;
    if (!this.authenticate && !this.authorize) return this._admit(pending, h, null, true);
    const ctx = { request: conn.req, hello: h };
    const how = (code) => ({
      code, ms: this.o.helloTimeoutMs, log: this.log, turn: (fn) => this._turn(conn, fn),
      alive: () => !!pending.s.h && !pending.closed && pending.conn === conn && conn.slot === pending,
    });
    return step(() => this.authenticate?.(ctx), (v) => {
      const user = this.authenticate ? identityOf(v) : null;
      if (this.authenticate && !user) throw refusal(CLOSE_AUTH, 'credentials refused');
      if (!this.authorize) return this._admit(pending, h, user, true);
      const room = roomOf(h);
      return step(() => this.authorize({ ...ctx, user, room, action: 'join' }), (ok) => {
        if (!ok) throw refusal(CLOSE_FORBIDDEN, `room ${JSON.stringify(room.slice(0, 60))} refused`);
        // May it publish there too? No is not a refusal: it reads.
        return step(() => this.authorize({ ...ctx, user, room, action: 'publish' }), (pub) => this._admit(pending, h, user, !!pub), how(CLOSE_FORBIDDEN));
      }, how(CLOSE_FORBIDDEN));
    }, how(CLOSE_AUTH));
  }

  /**
   * With a shared engine (Redis) a session this process does not have may be
   * in the store, stored by another process: claimed first (its generation
   * goes up, so the other process can no longer store it), and the mirrors
   * of its rooms read; then _admitNow in a turn of its own. The store away:
   * 1013, the client comes back with backoff.
   */
  _admit(pending, h, user, canPublish) {
    if (!this.shared) return this._admitNow(pending, h, user, canPublish);
    const conn = pending.conn;
    const asked = pending.s.id();
    const known = asked ? this.sessions.get(asked) : null;
    const alive = () => !!pending.s.h && !pending.closed && pending.conn === conn && conn.slot === pending;
    const rooms = [roomOf(h)];
    // Asked even when this process has it: another may have claimed it since
    // (a notice of that lost while Redis was away), and then its copy here is stale.
    const mine = known && !known.closed ? known.gen : 0;
    const claim = asked ? this.store.claim(asked, this.authenticate ? user.id : undefined, mine) : Promise.resolve(null);
    claim.then((row) => {
      if (row && typeof row === 'object') {
        rooms.push(roomName(row.room) || 'lobby');
        for (const x of row.subs || []) if (Array.isArray(x) && roomName(x[1])) rooms.push(x[1]);
      }
      return Promise.resolve(this.rooms.prepare(rooms)).then(() => row);
    }).then((row) => this._turn(conn, () => {
      if (row === 'forbidden') throw refusal(CLOSE_FORBIDDEN, 'the session belongs to another user');
      if (row && typeof row === 'object') {
        const stale = this.sessions.get(row.id);
        if (stale) this._evict(stale, CLOSE_REPLACED, 'REPLACED: taken over on another relay process');
        this._restore(row);
      }
      if (!alive()) return; // claimed, and detached here until its client comes back
      this._admitNow(pending, h, user, canPublish);
    }), (e) => this._turn(conn, () => {
      if (!alive()) return;
      throw Object.assign(new SwitchboardError('UNAVAILABLE', `the relay's store: ${e?.message || e}`), { closeCode: CLOSE_TRY_AGAIN });
    })).catch((e) => this.log(`relay: admitting: ${e?.stack || e}`));
  }

  /**
   * Take over the session the hello names, or a new one; user: {id, name}
   * from authenticate, or null; canPublish: to the hello's room.
   */
  _admitNow(pending, h, user, canPublish) {
    const conn = pending.conn;
    const room = roomOf(h);
    const now = Date.now();
    const asked = pending.s.id();
    const known = asked ? this.sessions.get(asked) : null;
    let slot;
    if (known && !known.closed && known.s.state !== SESSION_CLOSED) {
      // A session is its creator's: anyone else naming it is refused before
      // the takeover, so the owner's transport is not disturbed.
      if (this.authenticate && known.owner !== user.id) throw refusal(CLOSE_FORBIDDEN, 'the session belongs to another user');
      slot = known;
      const old = slot.conn;
      this._call(slot, 'takeover', slot.s.fn.sb_session_takeover(slot.s.h, pending.s.h, now));
      // The previous transport's DISCONNECT (4000) comes out now, for `old`;
      // the user does not leave the room in between.
      this._quiet = true;
      try {
        this._drain(slot);
      } finally {
        this._quiet = false;
      }
      if (old && slot.conn === old) this._detach(slot, true);
      this._forgetPending(pending);
    } else {
      if (this.sessions.size >= this.o.maxSessions) {
        throw Object.assign(new SwitchboardError('QUEUE_FULL', 'the relay has too many sessions'), { closeCode: CLOSE_TRY_AGAIN });
      }
      slot = pending;
      // Never the client's choice. (Until accepted, s.id() is the id asked for.)
      slot.id = newId();
      slot.owner = user ? user.id : null;
      slot.s.setId(slot.id);
      this._call(slot, 'accept', slot.s.fn.sb_session_accept(slot.s.h, now));
      this.sessions.set(slot.id, slot);
      this.stats.sessions = this.sessions.size;
    }
    let main = slot.subs.get(0), recovered = null;
    if (main && main.room !== room) this.rooms.leave(slot, main);
    if (!main || main.room !== room) {
      // From now on, or from where the hello says it was ({epoch, offset}: a
      // client whose session the relay no longer has).
      const log = this.rooms.logOf(room), since = h.since;
      main = new Sub(room, 0, log.next - 1, canPublish);
      if (since && typeof since === 'object' && typeof since.epoch === 'string' && Number.isInteger(since.offset)) {
        main.offset = since.offset;
        recovered = since.epoch;
      }
      this.rooms.join(slot, main);
    }
    main.canPublish = canPublish;
    // Who authenticate says, not who the hello claims to be.
    slot.user = user ? user.name : typeof h.user === 'string' ? h.user.slice(0, 64) : slot.user;
    slot.echo = h.echo === true;
    slot.conn = conn;
    conn.slot = slot;
    conn.req = null; // the hooks have seen it: not kept for the connection's life (headers, URL: ~1 KiB)
    this._dirty.add(slot); // room, user, echo
    this._touched.add(slot);
    this._drain(slot);
    // What it missed while away, per room, from the logs.
    for (const sub of slot.subs.values()) this.rooms.replay(slot, sub, sub === main && recovered !== null ? recovered : this.rooms.logOf(sub.room).epoch);
    for (const sub of slot.subs.values()) this.rooms.presence(slot, 'join', sub);
  }

  _forgetPending(pending) {
    if (pending.conn && pending.conn.slot === pending) pending.conn.slot = null;
    pending.conn = null;
    this._drop(pending);
  }

  /** Free a slot's session and timer (no store change). */
  _drop(slot) {
    this.rooms.behind.delete(slot);
    this.timers.clear(slot);
    slot.closed = true;
    slot.s.destroy();
    this._touched.delete(slot);
    this._dirty.delete(slot);
  }

  /** SEV_CLOSED of a known session (its TTL ran out): forget it, here and in the store. */
  _forget(slot) {
    if (slot.conn) this._detach(slot);
    if (slot.id && this.sessions.get(slot.id) === slot) {
      this.sessions.delete(slot.id);
      this.rooms.leaveAll(slot);
      this._deleted.set(slot.id, slot.gen);
      this.stats.sessions = this.sessions.size;
    }
    this._drop(slot);
  }

  /** The slot lets go of its transport (the session already did). */
  _detach(slot, quiet = false) {
    const conn = slot.conn;
    if (!conn) return;
    slot.conn = null;
    if (conn.slot === slot) conn.slot = null;
    if (!quiet && !this._quiet && slot.id && this.sessions.get(slot.id) === slot && !this.closed) {
      for (const sub of slot.subs.values()) this.rooms.presence(slot, 'leave', sub);
    }
  }

  /** payload: the bytes of a binary request, else its text. */
  _request(slot, id, binary, payload, channel) {
    this.stats.requests++;
    // A handler's error reaches the client only when it names a code (the
    // handler chose to tell); any other throw is INTERNAL without its message,
    // which may hold server internals (it is logged above, not sent).
    const errorOf = (e) => JSON.stringify(typeof e?.code === 'string' && e.code
      ? { code: e.code, message: String(e.message ?? '') }
      : { code: 'INTERNAL', message: 'the request handler failed' });
    const answer = (isError, v) => this._turn(null, () => {
      slot.pending--;
      if (!slot.s.h || slot.closed) return; // the session is gone: nobody waits
      const now = Date.now();
      this._touched.add(slot);
      try {
        if (isError) slot.s.respond(id, true, false, errorOf(v), now);
        else if (v instanceof Uint8Array) slot.s.respond(id, false, true, v, now);
        else slot.s.respond(id, false, false, typeof v === 'string' ? v : JSON.stringify(v ?? null), now);
      } catch (e) {
        // An answer that cannot be sent (over the client's cap, not JSON) is an error answer.
        this.log(`relay: answering request ${id}: ${e?.message || e}`);
        try {
          slot.s.respond(id, true, false, errorOf(e), now);
        } catch (e2) {
          this._fail(slot.conn, e2, slot);
        }
      }
    });
    // A client may not pile up work in onRequest: past the bound it is told
    // so at once (its Socket's request rejects QUEUE_FULL), onRequest is not called.
    slot.pending++;
    if (slot.pending > this.o.maxPendingRequests) {
      answer(true, { code: 'QUEUE_FULL', message: `over ${this.o.maxPendingRequests} requests in progress` });
      return;
    }
    let v;
    try {
      const room = slot.subs.get(channel)?.room ?? slot.room;
      v = this.onRequest({ session: { id: slot.id, user: slot.user, userId: slot.owner, room: slot.room }, room, channel, data: payload, binary, relay: this });
    } catch (e) {
      this.log(`relay: onRequest threw: ${e?.stack || e}`);
      answer(true, e);
      return;
    }
    if (v && typeof v.then === 'function') {
      Promise.resolve(v).then((x) => answer(false, x), (e) => {
        this.log(`relay: onRequest rejected: ${e?.stack || e}`);
        answer(true, e);
      }).catch((e) => this.log(`relay: answering a request: ${e?.stack || e}`));
    } else {
      answer(false, v);
    }
  }

  // ---- events --------------------------------------------------------------

  _call(slot, what, rc) {
    if (rc < 0) throw slot.s.c.error(rc, what);
    return rc;
  }

  /** The bytes of an event, copied out of the core's heap. */
  _copy(ev) {
    const b = Buffer.allocUnsafe(ev.len);
    if (ev.len) b.set(this.core.view(ev.ptr, ev.len));
    return b;
  }

  /** Every pending event of slot's session. Writes and closes are held (see _settle). */
  _drain(slot) {
    let closed = false;
    slot.s.drain((t, ev) => {
      switch (t) {
        case SEV_WRITE:
          // A Buffer from Node's pool (one slab for many small writes), not a
          // new ArrayBuffer per write: under fan-out that was most of the GC.
          if (slot.conn) this._out.push([slot.conn, this._copy(ev)]);
          break;
        case SEV_DISCONNECT: {
          const conn = slot.conn;
          if (conn) {
            const reason = utf8(ev.data);
            if (ev.code !== CLOSE_REPLACED) this.log(`relay: closing ${conn.remote} ${slot.id ?? '(pending)'}: ${ev.code} ${reason}`);
            this._out.push([conn, null, ev.code, reason]);
            this._detach(slot);
          }
          break;
        }
        case SEV_HELLO:
          slot.hello = ev.data;
          break;
        case SEV_MESSAGE:
          this.stats.messagesIn++;
          this.rooms.publish(slot, ev.channel, ev.flags & FRAME_F_BINARY, ev.data);
          break;
        case SEV_REQUEST:
          if (ev.channel === SYSTEM_CHANNEL) this.rooms.control(slot, ev.id, ev.text());
          else if (ev.flags & FRAME_F_BINARY) this._request(slot, ev.id, true, ev.data, ev.channel);
          else this._request(slot, ev.id, false, ev.text(), ev.channel); // decoded from the heap, no copy
          break;
        case SEV_DIRTY:
          if (slot.id) this._dirty.add(slot);
          break;
        case SEV_CLOSED:
          closed = true;
          break;
        case SEV_ERROR:
          if (slot.conn) this.stats.protocolErrors++;
          this.log(`relay: ${slot.conn?.remote ?? ''} ${slot.id ?? '(pending)'}: ${this.core.cstr(this.core.fn.sb_errname(ev.code))}: ${utf8(ev.data)}`);
          break;
        case SEV_DROP:
          break; // counted by the session (SS_DROPPED); the client hears of it at resume
        case SEV_PAUSE:
          if (slot.conn) this._pause(slot.conn, ev.value);
          break;
        default:
          break;
      }
    });
    if (closed) {
      if (slot.id && this.sessions.get(slot.id) === slot) this._forget(slot);
      else this._forgetPending(slot);
    }
  }

  /** Commit what changed (sessions, deletions, the rooms' new messages) before anything that depends on it is sent. */
  _commit() {
    if (!this._dirty.size && !this._deleted.size && !this.rooms.appends.length) return;
    // A store that lives in this process only needs the state when the
    // relay goes (close() commits everything then): no serializing per turn.
    if (this.store.inProcess && !this.closed) {
      for (const id of this._deleted.keys()) this._later.delete(id);
      for (const slot of this._dirty) if (slot.id) this._later.set(slot.id, slot);
      this.store.commit([], [...this._deleted.keys()]);
      this._dirty.clear();
      this._deleted.clear();
      return;
    }
    const upserts = [];
    for (const slot of this._dirty) {
      if (!slot.s.h || !slot.id || this.sessions.get(slot.id) !== slot) continue;
      upserts.push({ id: slot.id, room: slot.room, user: slot.user, owner: slot.owner, echo: slot.echo, subs: [...slot.subs.values()].map((x) => x.toJSON()), blob: slot.s.serialize() });
    }
    const deletes = [...this._deleted.keys()];
    const logs = new Map();
    for (const [room, e] of this.rooms.appends) {
      const log = this.rooms.logOf(room);
      if (!logs.has(room)) logs.set(room, { room, epoch: log.epoch, first: log.first, next: log.next, entries: [] });
      logs.get(room).entries.push(e);
    }
    this.rooms.appends = [];
    this.store.commit(upserts, deletes, [...logs.values()]);
    this.stats.commits++;
    this._dirty.clear();
    this._deleted.clear();
  }
}
