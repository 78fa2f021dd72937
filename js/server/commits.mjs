// The relay's side of its store: stored sessions restored (a SqliteStore
// at start, a RedisEngine when a client comes back to this process), and,
// for a shared engine whose commits are asynchronous (Redis), the group
// commit: each turn's changes and writes join a batch, one commit is in
// flight, and a batch's writes leave only once the commit that stored it has
// returned, in order. A commit that fails (Redis away) forgets its sessions
// here and closes their transports with 1013; a session another process
// claimed is closed with 4000. And when the turns settle: once per pass of
// the event loop (_settleSoon). The base of Relay (relay.mjs), above the
// sessions (sessions.mjs). docs/relay.md, "Engines".
import { SwitchboardError } from '../errors.js';
import { CLOSE_TRY_AGAIN, CLOSE_REPLACED } from '../constants.js';
import { Sub, roomName } from './rooms.mjs';
import { Slot, closeReason } from './slot.mjs';
import { RelaySessions } from './sessions.mjs';

/** What the turns since the last commit changed and wrote. */
export const newBatch = () => ({ dirty: new Set(), deleted: new Map(), appends: [], out: [] });

export class RelayCommits extends RelaySessions {
  /**
   * A shared engine (Redis): sessions and logs in it, commits async. What
   * the turns since the last commit changed and wrote is one batch; at most
   * one commit is in flight, and a batch's writes leave only once the commit
   * that stored it has returned (group commit, in order).
   */
  _engine() {
    this.shared = !!this.store.shared;
    this._batch = newBatch();
    this._inFlight = null; // the commit's promise
    if (!this.shared) return;
    this.store.attach?.(this.o);
    this.store.sessionIds = () => this.sessions.keys();
    this.store.onClaimed = (id, gen) => this._turn(null, () => {
      const slot = this.sessions.get(id);
      if (slot && slot.gen < gen) this._evict(slot, CLOSE_REPLACED, 'REPLACED: taken over on another relay process');
    });
  }

  /**
   * One settle for every turn of this pass of the event loop: once the
   * WebSocket messages that were ready together have all been fed in
   * (setImmediate runs after the poll phase), each session they touched is
   * flushed once, so a recipient of several room messages gets them in one
   * batch, one write, one deflate, instead of one of each per message. An
   * idle relay settles right after the one message; a loaded one batches
   * more the more it has to do (docs/decisions.md, "Fan-out in batches").
   */
  _settleSoon() {
    if (this._settling || this.closed) return;
    this._settling = setImmediate(() => {
      if (!this.closed) this._settleNow();
    });
  }

  _settleNow() {
    this._settling = null;
    this._inTurn = true; // what a flush causes (a Bus delivery) runs inside it
    try {
      this._settle();
    } catch (e) {
      this.stats.errors++;
      this.log(`relay: ${e?.stack || e}`);
    } finally {
      this._inTurn = false;
    }
  }

  /** A stored session, detached until its client takes it over. Returns its slot, or null. */
  _restore(row, now = Date.now()) {
    const slot = new Slot(this._session());
    try {
      slot.s.restore(row.blob, now);
      slot.id = slot.s.id();
      if (slot.id !== row.id) throw new SwitchboardError('CORRUPT', `stored as ${row.id}, holds ${slot.id}`);
    } catch (e) {
      this.log(`relay: stored session ${row.id} not restored: ${e.code || ''} ${e.message}`);
      slot.s.destroy();
      this._deleted.set(row.id, row.gen ?? 0);
      return null;
    }
    slot.user = typeof row.user === 'string' ? row.user : '';
    slot.owner = typeof row.owner === 'string' ? row.owner : null;
    slot.echo = !!row.echo;
    if (row.gen) slot.gen = row.gen;
    this.sessions.set(slot.id, slot);
    this.stats.sessions = this.sessions.size;
    const subs = Array.isArray(row.subs) ? row.subs.map(Sub.from).filter(Boolean) : [];
    if (!subs.some((x) => x.channel === 0)) subs.push(new Sub(roomName(row.room) || 'lobby', 0, this.rooms.logOf(roomName(row.room) || 'lobby').next - 1, true));
    for (const sub of subs.slice(0, this.o.maxSubscriptions)) this.rooms.join(slot, sub);
    this._arm(slot);
    return slot;
  }

  /**
   * Forget a session here without touching the store (a shared engine has
   * it): its commit failed, or another process claimed it. Its transport is
   * closed with code; its client resumes from what the store has.
   */
  _evict(slot, code, reason) {
    const conn = slot.conn;
    this.log(`relay: ${conn?.remote ?? ''} ${slot.id}: ${code} ${reason}`);
    if (slot.id && this.sessions.get(slot.id) === slot) {
      if (conn && this.shared) for (const sub of slot.subs.values()) this.store.presence('leave', sub.room, slot.id, slot.name);
      this.sessions.delete(slot.id);
      this.stats.sessions = this.sessions.size;
    }
    this.rooms.leaveAll(slot);
    slot.conn = null;
    if (conn && conn.slot === slot) conn.slot = null;
    this._drop(slot);
    if (conn) try { conn.ws.close(code, closeReason(reason)); } catch { conn.ws.terminate(); }
  }

  /** A shared engine: this turn's changes and writes join the batch; a commit starts unless one is in flight. */
  _queue(out) {
    const b = this._batch;
    for (const slot of this._dirty) b.dirty.add(slot);
    for (const [id, gen] of this._deleted) b.deleted.set(id, gen);
    for (const a of this.rooms.appends) b.appends.push(a);
    for (const o of out) b.out.push(o);
    this._dirty.clear();
    this._deleted.clear();
    this.rooms.appends = [];
    this._pump();
  }

  _row(slot) {
    return { id: slot.id, gen: slot.gen, room: slot.room, user: slot.user, owner: slot.owner, echo: slot.echo, subs: [...slot.subs.values()].map((x) => x.toJSON()), blob: slot.s.serialize() };
  }

  /**
   * Commit the batch (one at a time); its writes go once it has returned.
   * Not while turns of this pass wait for their settle: their sessions have
   * taken in messages whose appends are not in the batch yet, and a row
   * serialized now would store a session that counts them received (its
   * client would never resend them) in a commit without them. The settle
   * queues them and pumps.
   */
  _pump() {
    if (this._inFlight || this.closed || this._settling) return;
    const b = this._batch;
    if (!b.dirty.size && !b.deleted.size && !b.appends.length) {
      if (b.out.length) {
        this._batch = newBatch();
        this._send(b.out); // nothing to store, nothing before it unsent
      }
      return;
    }
    this._batch = newBatch();
    const upserts = [];
    for (const slot of b.dirty) if (slot.s.h && slot.id && this.sessions.get(slot.id) === slot) upserts.push(this._row(slot));
    const appends = b.appends.map(([room, e]) => ({ room, epoch: this.rooms.logOf(room).epoch, ...e }));
    let p;
    try {
      p = Promise.resolve(this.store.commit(upserts, [...b.deleted], appends));
    } catch (e) {
      p = Promise.reject(e);
    }
    this._inFlight = p.then((fenced) => {
      this._inFlight = null;
      this.stats.commits++;
      if (this.closed) return;
      // Sessions another process claimed meanwhile: not stored, not ours.
      for (const id of fenced || []) {
        const slot = this.sessions.get(id);
        if (slot) this._evict(slot, CLOSE_REPLACED, 'REPLACED: taken over on another relay process');
      }
      this._send(b.out);
      this._pump();
    }, (e) => {
      this._inFlight = null;
      if (this.closed) return;
      this._failed(b, e);
      this._pump();
    }).catch((e) => {
      this.stats.errors++;
      this.log(`relay: after a commit: ${e?.stack || e}`);
    });
  }

  /**
   * A commit failed (Redis away): nothing of it may be acked. Its sessions
   * are forgotten here and their transports closed with 1013: their clients
   * come back with backoff and resume from what the store has, resending
   * what it does not. What later turns built on them goes too.
   */
  _failed(b, err) {
    this.stats.errors++;
    this.log(`relay: store commit failed: ${err?.message || err}`);
    const reason = `UNAVAILABLE: the relay's store: ${err?.message || err}`;
    const gone = new Set();
    for (const slot of b.dirty) if (slot.id) gone.add(slot);
    for (const [, e] of b.appends) { const s = this.sessions.get(e.sid); if (s) gone.add(s); }
    const ids = new Set([...gone].map((s) => s.id));
    const conns = new Set([...gone].map((s) => s.conn).filter(Boolean));
    const next = this._batch;
    for (const s of gone) next.dirty.delete(s);
    next.appends = next.appends.filter(([, e]) => !ids.has(e.sid));
    const keep = (o) => !conns.has(o[0]);
    next.out = next.out.filter(keep);
    for (const s of gone) this._evict(s, CLOSE_TRY_AGAIN, reason);
    this._send(b.out.filter(keep));
  }
}
