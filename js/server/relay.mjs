// The reference relay: a Node WebSocket server (on `ws`) whose connections
// are server-role sessions of the same C core as the browser Socket
// (src/session.h via js/session.js). The relay keeps rooms, fan-out through
// the Bus, the store and onRequest; the protocol (handshake, acks, dedup,
// resume, batching, compression, caps, heartbeat) is the session's.
//
//   rooms      every session is in one room (hello.room); a message from a
//              session goes to every other session of that room (and back to
//              the sender with hello.echo), through the Bus (bus.mjs)
//   presence   joins and leaves on channel 1, JSON {type, user, users}
//   requests   go to opts.onRequest (default: echo), answered once
//   state      each session's serialized state is committed to the store
//              before anything it caused is written, so an ack never runs
//              ahead of what survives a restart
//   errors     anything thrown while handling one connection closes that
//              connection with a code and a reason naming the error code
import { WebSocketServer } from 'ws';
import { randomBytes } from 'node:crypto';
import { init } from '../core.js';
import { SwitchboardError } from '../errors.js';
import { Session, utf8, bytesOf } from '../session.js';
import {
  SESSION_SERVER, SESSION_PROTOCOL, SESSION_CLOSED, SESSION_OPEN, FRAME_F_BINARY,
  SEV_WRITE, SEV_DISCONNECT, SEV_MESSAGE, SEV_REQUEST, SEV_HELLO, SEV_CLOSED, SEV_DIRTY, SEV_STATE, SEV_ERROR, errorName,
  SO_MAX_PAYLOAD, SO_MAX_MESSAGE, SO_MAX_FRAMES, SO_QUEUE_MAX_COUNT, SO_QUEUE_MAX_BYTES, SO_SESSION_TTL,
  SO_HELLO_TIMEOUT, SO_IDLE_TIMEOUT, SO_COMPRESS, SO_HIGH_WATER, CLOSE_PROTOCOL, CLOSE_TRY_AGAIN, CLOSE_TOO_BIG,
} from '../constants.js';
import { LocalBus } from './bus.mjs';
import { MemoryStore } from './store.mjs';

export const SYSTEM_CHANNEL = 1;

const DEFAULTS = {
  maxPayload: undefined, maxMessage: undefined, maxFrames: undefined, // the core's defaults
  maxQueue: 20000, maxQueueBytes: 32 << 20, // per session: what a client may be behind by
  maxSessions: 10000, sessionTtlMs: 5 * 60e3, helloTimeoutMs: undefined, idleTimeoutMs: undefined,
  maxBuffered: 16 << 20, compress: true,
};

const newId = () => randomBytes(16).toString('base64url'); // 128 random bits
const ROOM_RE = /^[\w.:-]{1,128}$/;

export class Relay {
  /**
   * Use `await Relay.create(opts)`.
   * @param {object} opts see DEFAULTS; plus bus, store, onRequest(ctx), log(msg)
   */
  constructor(opts = {}) {
    this.o = { ...DEFAULTS, ...opts };
    this.bus = opts.bus || new LocalBus();
    this.store = opts.store || new MemoryStore();
    this.onRequest = opts.onRequest || ((ctx) => ctx.data);
    this.log = opts.log || (() => {});
    /** id -> session record {id, s: Session, room, user, echo, ws, timer} */
    this.sessions = new Map();
    this.rooms = new Map(); // room -> {members: Set, unsubscribe}
    this.dirty = new Set();
    this.touched = new Set();
    this.joined = [];
    this.stats = { connections: 0, messagesIn: 0, messagesOut: 0, requests: 0, protocolErrors: 0 };
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: (opts.maxMessage || 8 << 20) + 1024,
      perMessageDeflate: false, // the session compresses, with a shared window
      handleProtocols: (protocols) => (protocols.has(SESSION_PROTOCOL) ? SESSION_PROTOCOL : false),
    });
    this.wss.on('connection', (ws) => this.#guard(null, () => this.#connection(ws)));
  }

  static async create(opts = {}) {
    await init(opts.wasm || {});
    const r = new Relay(opts);
    r.#load();
    return r;
  }

  /** For an http server's 'upgrade' event. */
  handleUpgrade(req, socket, head) {
    // A client that does not offer the subprotocol is refused at the
    // handshake: a Socket probing for a plain server sees a failed attempt.
    const offered = String(req.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim());
    if (!offered.includes(SESSION_PROTOCOL)) {
      socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nsubprotocol ${SESSION_PROTOCOL} required\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  close() {
    for (const rec of this.sessions.values()) {
      clearTimeout(rec.timer);
      rec.ws?.terminate();
      rec.s.destroy();
    }
    this.sessions.clear();
    for (const r of this.rooms.values()) r.unsubscribe();
    this.rooms.clear();
    try { this.store.close(); } catch (e) { this.log(`relay: store close: ${e.message}`); }
    this.wss.close();
  }

  #options() {
    const o = this.o;
    return [
      [SO_MAX_PAYLOAD, o.maxPayload], [SO_MAX_MESSAGE, o.maxMessage], [SO_MAX_FRAMES, o.maxFrames],
      [SO_QUEUE_MAX_COUNT, o.maxQueue], [SO_QUEUE_MAX_BYTES, o.maxQueueBytes], [SO_SESSION_TTL, o.sessionTtlMs],
      [SO_HELLO_TIMEOUT, o.helloTimeoutMs], [SO_IDLE_TIMEOUT, o.idleTimeoutMs], [SO_COMPRESS, o.compress ? 1 : 0],
      [SO_HIGH_WATER, o.maxBuffered],
    ];
  }

  // ---- connections -----------------------------------------------------------

  #connection(ws) {
    this.stats.connections++;
    if (ws.protocol !== SESSION_PROTOCOL) { ws.close(CLOSE_PROTOCOL, `subprotocol ${SESSION_PROTOCOL} required`); return; }
    const rec = { id: null, s: new Session(SESSION_SERVER, this.#options()), room: null, user: '', echo: false, ws, timer: null };
    ws.on('message', (data, isBinary) => this.#guard(rec, () => {
      if (rec.ws !== ws) return; // a transport this session no longer uses
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      rec.s.recv(bytes, !isBinary, Date.now());
      this.#settle(rec);
    }));
    ws.on('close', (code) => this.#guard(rec, () => {
      if (rec.ws !== ws) return;
      rec.ws = null;
      rec.s.fn.sb_session_transport_closed(rec.s.h, Date.now(), code || 1006);
      this.#settle(rec);
    }));
    ws.on('error', (e) => this.log(`relay: socket error: ${e.message}`));
    rec.s.check(rec.s.fn.sb_session_transport_open(rec.s.h, Date.now(), 1), 'transport');
    this.#settle(rec);
  }

  /** Run fn; an error closes this connection only, never the process. */
  #guard(rec, fn) {
    try {
      fn();
    } catch (e) {
      this.stats.protocolErrors++;
      const code = e?.code === 'TOO_LARGE' ? CLOSE_TOO_BIG : e instanceof SwitchboardError ? CLOSE_PROTOCOL : CLOSE_TRY_AGAIN;
      const reason = `${e?.code || 'INTERNAL'}: ${e?.message || e}`.slice(0, 120);
      this.log(`relay: closing a connection: ${reason}`);
      if (!(e instanceof SwitchboardError)) this.log(e?.stack || String(e));
      try { rec?.ws?.close(code, reason); } catch { /* already gone */ }
    }
  }

  /** Events of rec (and of every session they touched), commit, then write. */
  #settle(rec) {
    this.touched.add(rec);
    for (const r of this.touched) this.#events(r);
    try {
      this.#commit();
    } catch (e) {
      // Nothing may be acked that did not survive: drop the writes, close.
      this.log(`relay: store commit failed: ${e.message}`);
      for (const r of this.touched) r.ws?.close(CLOSE_TRY_AGAIN, `INTERNAL: store: ${e.message}`.slice(0, 120));
      this.touched.clear();
      return;
    }
    const now = Date.now();
    for (const r of this.touched) {
      if (!r.s.h) continue;
      r.s.fn.sb_session_set_buffered(r.s.h, r.ws ? r.ws.bufferedAmount : 0);
      r.s.fn.sb_session_flush(r.s.h, now);
      this.#events(r);
    }
    this.touched.clear();
    if (this.joined.length) {
      const joined = this.joined.splice(0);
      for (const r of joined) if (r.s.h) this.#presence(r, 'join');
      this.#settle(joined[0]);
      return;
    }
    for (const r of [...this.sessions.values(), rec]) this.#arm(r);
  }

  #arm(rec) {
    if (!rec.s.h) return;
    const d = rec.s.deadline();
    if (rec.timer && rec.armedAt <= d && d >= 0) return;
    clearTimeout(rec.timer);
    rec.timer = null;
    if (d < 0) return;
    rec.armedAt = d;
    rec.timer = setTimeout(() => this.#guard(rec, () => { rec.timer = null; this.#settle(rec); }), Math.max(0, d - Date.now()));
    rec.timer.unref?.();
  }

  #events(rec) {
    if (!rec.s.h) return;
    rec.s.drain((t, e) => {
      switch (t) {
        case SEV_WRITE: if (rec.ws && rec.ws.readyState === 1) rec.ws.send(e.data); break;
        case SEV_DISCONNECT: {
          const ws = rec.ws;
          rec.ws = null;
          ws?.close(e.code, utf8(e.data).slice(0, 120));
          break;
        }
        case SEV_HELLO: this.#hello(rec, e.data); break;
        case SEV_ERROR:
          this.stats.protocolErrors++;
          this.log(`relay: ${rec.id || 'new connection'}: ${this.#errName(e.code)}: ${utf8(e.data)}`);
          break;
        case SEV_MESSAGE:
          this.stats.messagesIn++;
          this.#publish(rec, e.channel, e.flags & FRAME_F_BINARY, e.data);
          break;
        case SEV_REQUEST: this.#request(rec, e); break;
        case SEV_STATE: if (rec.id && rec.s.state !== SESSION_OPEN) this.#presence(rec, 'leave'); break;
        case SEV_DIRTY: if (rec.id) this.dirty.add(rec); break;
        case SEV_CLOSED: this.#forget(rec); break;
        default: break;
      }
    });
  }

  #errName(code) { return errorName[code] || 'ERROR'; }

  // ---- sessions and rooms ------------------------------------------------------

  #hello(pending, data) {
    let h = {};
    try { h = JSON.parse(utf8(data)); } catch { /* no application fields */ }
    if (!h || typeof h !== 'object') h = {};
    const asked = pending.s.id();
    const known = asked && this.sessions.get(asked);
    if (known) {
      // Resume: the known session moves to this transport.
      known.s.check(known.s.fn.sb_session_takeover(known.s.h, pending.s.h, Date.now()), 'resume');
      this.#events(known); // the old transport's DISCONNECT, before the new one is attached
      known.ws = pending.ws;
      pending.s.destroy();
      const ws = known.ws;
      ws.removeAllListeners('message');
      ws.removeAllListeners('close');
      ws.on('message', (d, isBinary) => this.#guard(known, () => {
        if (known.ws !== ws) return;
        known.s.recv(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), !isBinary, Date.now());
        this.#settle(known);
      }));
      ws.on('close', (code) => this.#guard(known, () => {
        if (known.ws !== ws) return;
        known.ws = null;
        known.s.fn.sb_session_transport_closed(known.s.h, Date.now(), code || 1006);
        this.#settle(known);
      }));
      known.echo = !!h.echo;
      this.touched.add(known);
      this.dirty.add(known);
      // Announced once what it missed is on its way, so the presence
      // message cannot push a missed one out of its bounded queue.
      this.joined.push(known);
      return;
    }
    if (this.sessions.size >= this.o.maxSessions) {
      const reason = bytesOf('TOO_LARGE: relay has too many sessions');
      pending.s.fn.sb_session_refuse(pending.s.h, CLOSE_TRY_AGAIN, ...pending.s.put(reason), Date.now());
      return;
    }
    const room = typeof h.room === 'string' && ROOM_RE.test(h.room) ? h.room : 'lobby';
    pending.id = newId();
    pending.user = typeof h.user === 'string' ? h.user.slice(0, 64) : '';
    pending.echo = !!h.echo;
    pending.s.setId(pending.id);
    pending.s.check(pending.s.fn.sb_session_accept(pending.s.h, Date.now()), 'accept');
    this.sessions.set(pending.id, pending);
    this.#join(pending, room);
    this.dirty.add(pending);
    this.#presence(pending, 'join');
  }

  #join(rec, room) {
    let r = this.rooms.get(room);
    if (!r) {
      r = { members: new Set(), unsubscribe: null };
      this.rooms.set(room, r);
      r.unsubscribe = this.bus.subscribe(room, (msg) => this.#fanout(room, msg));
    }
    r.members.add(rec);
    rec.room = room;
  }

  #forget(rec) {
    clearTimeout(rec.timer);
    const r = this.rooms.get(rec.room);
    if (r) {
      r.members.delete(rec);
      if (!r.members.size) { r.unsubscribe(); this.rooms.delete(rec.room); }
    }
    if (rec.id && this.sessions.get(rec.id) === rec) {
      this.sessions.delete(rec.id);
      this.store.delete(rec.id);
    }
    this.dirty.delete(rec);
    rec.s.destroy();
  }

  #publish(rec, channel, binary, payload) {
    if (!rec.room) return;
    this.bus.publish(rec.room, { from: rec.id, channel, flags: binary ? FRAME_F_BINARY : 0, payload });
  }

  /** Bus delivery: into the outbox of every recipient session of the room. */
  #fanout(room, msg) {
    const r = this.rooms.get(room);
    if (!r) return;
    const now = Date.now();
    for (const rec of r.members) {
      if (!rec.s.h || rec.s.state === SESSION_CLOSED) continue;
      if (msg.from === rec.id && (!rec.echo || msg.channel === SYSTEM_CHANNEL)) continue;
      try {
        rec.s.send(msg.channel, msg.flags & FRAME_F_BINARY, msg.payload, now);
        this.stats.messagesOut++;
      } catch (e) {
        // This recipient's queue is full: the session reports the loss when
        // the client comes back; the others are not held up.
        this.log(`relay: ${rec.id}: ${e.code || e.message}`);
      }
      this.touched.add(rec);
    }
  }

  #users(room) {
    const r = this.rooms.get(room);
    const users = [];
    if (r) for (const rec of r.members) if (rec.ws) users.push(rec.user || rec.id.slice(0, 6));
    return users.sort();
  }

  #presence(rec, type) {
    if (!rec.room) return;
    const payload = bytesOf(JSON.stringify({ type, user: rec.user || rec.id.slice(0, 6), users: this.#users(rec.room) }));
    // A join goes to the joiner too (it learns the user list); a leave does not.
    this.bus.publish(rec.room, { from: type === 'join' ? null : rec.id, channel: SYSTEM_CHANNEL, flags: 0, payload });
  }

  #request(rec, e) {
    this.stats.requests++;
    const id = e.id, binary = (e.flags & FRAME_F_BINARY) !== 0;
    const data = binary ? e.data : utf8(e.data);
    const answer = (isError, v) => this.#guard(rec, () => {
      if (!rec.s.h || rec.s.state === SESSION_CLOSED) return;
      if (isError) rec.s.respond(id, true, false, JSON.stringify({ code: v?.code || 'INTERNAL', message: String(v?.message || v) }), Date.now());
      else if (v instanceof Uint8Array) rec.s.respond(id, false, true, v, Date.now());
      else rec.s.respond(id, false, false, typeof v === 'string' ? v : JSON.stringify(v ?? null), Date.now());
      this.#settle(rec);
    });
    let v;
    try {
      v = this.onRequest({ session: { id: rec.id, user: rec.user, room: rec.room }, data, binary, relay: this });
    } catch (err) {
      queueMicrotask(() => answer(true, err));
      return;
    }
    Promise.resolve(v).then((x) => answer(false, x), (err) => answer(true, err));
  }

  // ---- store -----------------------------------------------------------------------

  #commit() {
    for (const rec of this.dirty) {
      if (rec.s.h && rec.id) this.store.put(rec.id, { room: rec.room, user: rec.user, echo: rec.echo }, rec.s.serialize());
    }
    this.dirty.clear();
    this.store.commit();
  }

  #load() {
    const now = Date.now();
    for (const { id, meta, state } of this.store.load()) {
      const rec = { id, s: new Session(SESSION_SERVER, this.#options()), room: null, user: meta.user || '', echo: !!meta.echo, ws: null, timer: null };
      try {
        rec.s.restore(state, now); // detached: it waits for its client's takeover
      } catch (e) {
        this.log(`relay: cannot restore session ${id}: ${e.message}`);
        rec.s.destroy();
        continue;
      }
      this.sessions.set(id, rec);
      this.#join(rec, typeof meta.room === 'string' ? meta.room : 'lobby');
      rec.s.drain(() => {});
      this.#arm(rec);
    }
    if (this.sessions.size) this.log(`relay: restored ${this.sessions.size} sessions from the store`);
  }
}
