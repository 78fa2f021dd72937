// The reference relay: a Node WebSocket server (on `ws`) that speaks
// switchboard.v1 with the same wasm core as the browser Socket.
//
//   rooms      every session is in one room (hello.room); a message from a
//              session goes to every other session of that room (and back to
//              the sender with hello.echo), through the Bus (bus.mjs)
//   acks       every client message carries a seq; the relay acks the highest
//              seq it has accepted, after the store committed it
//   resume     each session keeps a bounded history of what it was sent; a
//              client that comes back with hello.rx = last seq it got is
//              replayed the rest; re-sent client messages (seq <= accepted)
//              are dropped; so nothing is lost and nothing arrives twice
//   presence   joins and leaves are messages on channel 1, JSON
//              {type:'join'|'leave', user, users}
//   requests   REQUEST frames go to opts.onRequest (default: echo)
//   caps       frame payload, transport message, frames per batch, history
//              per session, sessions, send buffer: hitting one closes the
//              connection with a code and a reason naming the error code
import { WebSocketServer } from 'ws';
import { randomBytes } from 'node:crypto';
import { init } from '../core.js';
import { SwitchboardError } from '../errors.js';
import { Wire, Kind, Flag, PROTOCOL, WIRE_DEFAULTS, jsonOf, utf8 } from '../socket-wire.js';
import { LocalBus } from './bus.mjs';
import { MemoryStore } from './store.mjs';

export const SYSTEM_CHANNEL = 1;
export const CloseCode = Object.freeze({
  PROTOCOL_ERROR: 1002, POLICY: 1008, TOO_BIG: 1009, TRY_AGAIN: 1013, REPLACED: 4000,
});

const SESSION_RE = /^[A-Za-z0-9_-]{8,64}$/;

const DEFAULTS = {
  maxPayload: WIRE_DEFAULTS.maxPayload,
  maxMessage: WIRE_DEFAULTS.maxMessage,
  maxFrames: WIRE_DEFAULTS.maxFrames,
  maxHistory: 20000,
  maxHistoryBytes: 32 << 20,
  maxSessions: 10000,
  maxBuffered: 16 << 20,
  sessionTtlMs: 5 * 60e3,
  pingIntervalMs: 30e3,
  compress: true,
};

function b64(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function unb64(s) {
  return new Uint8Array(Buffer.from(s, 'base64'));
}

function newId() {
  return randomBytes(12).toString('base64url');
}

export class Relay {
  /**
   * Use `await Relay.create(opts)`.
   * @param {object} opts see DEFAULTS; plus bus (Bus), store (MemoryStore |
   *   JournalStore), onRequest(ctx) => value | Promise, log(msg)
   */
  constructor(opts = {}) {
    this.o = { ...DEFAULTS, ...opts };
    this.bus = opts.bus || new LocalBus();
    this.store = opts.store || new MemoryStore();
    this.onRequest = opts.onRequest || ((ctx) => ctx.data);
    this.log = opts.log || (() => {});
    /** @type {Map<string, object>} */
    this.sessions = new Map();
    /** room -> { sessions: Set, unsubscribe } */
    this.rooms = new Map();
    this.conns = new Set();
    this._capture = null;
    this.stats = { connections: 0, messagesIn: 0, duplicatesIn: 0, messagesOut: 0, requests: 0, protocolErrors: 0 };
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.o.maxMessage,
      perMessageDeflate: false, // switchboard compresses itself, with a shared window
      handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
    });
    this.wss.on('connection', (ws, req) => this._connection(ws, req));
    this._sweep = setInterval(() => this._expire(), Math.min(10e3, this.o.sessionTtlMs)).unref();
    this._pinger = setInterval(() => this._ping(), this.o.pingIntervalMs).unref();
  }

  static async create(opts = {}) {
    await init(opts.wasm || {});
    const r = new Relay(opts);
    r._load();
    return r;
  }

  /** For an http server's 'upgrade' event (the dev server's ctx.upgrade). */
  handleUpgrade(req, socket, head) {
    // Refuse clients that do not offer the subprotocol at the handshake, so a
    // Socket probing for a plain server sees a failed attempt, not an open
    // connection that swallows its queue.
    const offered = String(req.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim());
    if (!offered.includes(PROTOCOL)) {
      socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nsubprotocol ${PROTOCOL} required\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  close() {
    clearInterval(this._sweep);
    clearInterval(this._pinger);
    for (const c of this.conns) c.ws.terminate();
    for (const r of this.rooms.values()) r.unsubscribe();
    this.rooms.clear();
    this.store.close();
    this.wss.close();
  }

  // ---- sessions and rooms --------------------------------------------------

  _session(id, room) {
    let s = this.sessions.get(id);
    if (!s) {
      s = { id, epoch: newId(), room, user: '', echo: false, inSeq: 0, outSeq: 0,
        hist: [], histBytes: 0, conn: null, lastSeen: Date.now() };
      this.sessions.set(id, s);
      this._join(s, room);
    }
    return s;
  }

  _join(s, room) {
    let r = this.rooms.get(room);
    if (!r) {
      r = { sessions: new Set(), unsubscribe: null };
      this.rooms.set(room, r);
      r.unsubscribe = this.bus.subscribe(room, (msg) => this._fanout(room, msg));
    }
    r.sessions.add(s);
    s.room = room;
  }

  _leaveRoom(s) {
    const r = this.rooms.get(s.room);
    if (!r) return;
    r.sessions.delete(s);
    if (!r.sessions.size) {
      r.unsubscribe();
      this.rooms.delete(s.room);
    }
  }

  _users(room) {
    const r = this.rooms.get(room);
    if (!r) return [];
    const users = [];
    for (const s of r.sessions) if (s.conn) users.push(s.user || s.id.slice(0, 6));
    return users.sort();
  }

  /** Bus delivery: give the message a seq in every recipient's stream. */
  _fanout(room, msg) {
    const r = this.rooms.get(room);
    if (!r) return;
    const to = [];
    for (const s of r.sessions) {
      if (msg.from === s.id && (!s.echo || msg.channel === SYSTEM_CHANNEL)) continue;
      const seq = this._deliver(s, msg.channel, msg.flags, msg.payload);
      to.push([s.id, seq]);
    }
    if (this._capture) this._capture.push(...to);
    else if (to.length) this.store.record({ t: 'm', from: null, to, ch: msg.channel, f: msg.flags, p: b64(msg.payload) });
  }

  _deliver(s, ch, flags, payload) {
    const seq = ++s.outSeq;
    s.hist.push({ seq, ch, f: flags, p: payload });
    s.histBytes += payload.length + 16;
    this._trim(s);
    if (s.conn) s.conn.sendMessage(seq, ch, flags, payload);
    this.stats.messagesOut++;
    return seq;
  }

  /** History is bounded: the oldest entries go first (resume then reports a gap). */
  _trim(s) {
    let k = 0;
    while (s.hist.length - k > this.o.maxHistory || (s.histBytes > this.o.maxHistoryBytes && k < s.hist.length)) {
      s.histBytes -= s.hist[k].p.length + 16;
      k++;
    }
    if (k) s.hist.splice(0, k);
  }

  _ackedByClient(s, seq) {
    let k = 0;
    while (k < s.hist.length && s.hist[k].seq <= seq) {
      s.histBytes -= s.hist[k].p.length + 16;
      k++;
    }
    if (k) {
      s.hist.splice(0, k);
      this.store.record({ t: 'a', id: s.id, seq });
    }
  }

  /** A client message accepted: fan out and journal it as one record. */
  _publish(s, ch, flags, payload, inSeq) {
    this._capture = [];
    try {
      this.bus.publish(s.room, { from: s.id, channel: ch, flags, payload });
    } finally {
      const to = this._capture;
      this._capture = null;
      this.store.record({ t: 'm', from: s.id, in: inSeq, to, ch, f: flags, p: b64(payload) });
    }
  }

  _presence(s, type) {
    const payload = new TextEncoder().encode(JSON.stringify({ type, user: s.user || s.id.slice(0, 6), users: this._users(s.room) }));
    // A join goes to the joiner too (it learns the user list); a leave does not.
    this.bus.publish(s.room, { from: type === 'join' ? null : s.id, channel: SYSTEM_CHANNEL, flags: 0, payload });
    this._commit();
  }

  _commit() {
    this.store.commit();
    if (this.store.wantsCompaction) this.store.compact(this._snapshot());
  }

  _snapshot() {
    const recs = [];
    for (const s of this.sessions.values()) {
      recs.push({ t: 's', id: s.id, epoch: s.epoch, room: s.room, user: s.user, echo: s.echo, in: s.inSeq, out: s.outSeq });
      for (const h of s.hist) recs.push({ t: 'm', from: null, to: [[s.id, h.seq]], ch: h.ch, f: h.f, p: b64(h.p) });
    }
    return recs;
  }

  _load() {
    const recs = this.store.load();
    for (const r of recs) {
      if (r.t === 's') {
        const s = this._session(r.id, r.room);
        s.epoch = r.epoch; s.user = r.user || ''; s.echo = !!r.echo;
        s.inSeq = Math.max(s.inSeq, r.in || 0);
        s.outSeq = Math.max(s.outSeq, r.out || 0);
        if (s.room !== r.room) { this._leaveRoom(s); this._join(s, r.room); }
      } else if (r.t === 'm') {
        if (r.from) {
          const from = this.sessions.get(r.from);
          if (from) from.inSeq = Math.max(from.inSeq, r.in);
        }
        const p = unb64(r.p);
        for (const [id, seq] of r.to) {
          const s = this.sessions.get(id);
          if (!s) continue;
          s.hist.push({ seq, ch: r.ch, f: r.f, p });
          s.histBytes += p.length + 16;
          s.outSeq = Math.max(s.outSeq, seq);
        }
      } else if (r.t === 'a') {
        const s = this.sessions.get(r.id);
        if (s) {
          let k = 0;
          while (k < s.hist.length && s.hist[k].seq <= r.seq) { s.histBytes -= s.hist[k].p.length + 16; k++; }
          s.hist.splice(0, k);
        }
      } else if (r.t === 'x') {
        const s = this.sessions.get(r.id);
        if (s) { this._leaveRoom(s); this.sessions.delete(r.id); }
      }
    }
    for (const s of this.sessions.values()) this._trim(s);
    if (recs.length) this.log(`relay: restored ${this.sessions.size} sessions from the journal`);
  }

  _expire() {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (!s.conn && now - s.lastSeen > this.o.sessionTtlMs) {
        this._leaveRoom(s);
        this.sessions.delete(s.id);
        this.store.record({ t: 'x', id: s.id });
      }
    }
    this._commit();
  }

  _ping() {
    for (const c of this.conns) {
      if (!c.alive) { c.ws.terminate(); continue; }
      c.alive = false;
      c.ws.ping();
    }
  }

  _connection(ws, req) {
    this.stats.connections++;
    if (ws.protocol !== PROTOCOL) {
      ws.close(CloseCode.PROTOCOL_ERROR, `subprotocol ${PROTOCOL} required`);
      return;
    }
    const c = new Conn(this, ws, req);
    this.conns.add(c);
  }

  /** Hello from a connection: bind it to its session and start the resume. */
  _hello(c, h) {
    if (typeof h !== 'object' || !h || h.v !== 1) throw new SwitchboardError('BAD_VERSION', 'hello.v must be 1');
    const room = typeof h.room === 'string' && h.room.length <= 128 ? h.room : 'lobby';
    let id = typeof h.session === 'string' && SESSION_RE.test(h.session) ? h.session : null;
    let s = id ? this.sessions.get(id) : null;
    if (!s) {
      if (this.sessions.size >= this.o.maxSessions) {
        this._expire();
        if (this.sessions.size >= this.o.maxSessions) throw Object.assign(new SwitchboardError('TOO_LARGE', 'relay has too many sessions'), { closeCode: CloseCode.TRY_AGAIN });
      }
      s = this._session(id || newId(), room);
      // A client that kept its queue while our state was lost: continue its numbering.
      s.inSeq = Number.isInteger(h.acked) && h.acked > 0 ? h.acked >>> 0 : 0;
    } else if (s.room !== room) {
      this._leaveRoom(s);
      this._join(s, room);
    }
    s.user = typeof h.user === 'string' ? h.user.slice(0, 64) : s.user;
    s.echo = !!h.echo;
    if (s.conn && s.conn !== c) s.conn.ws.close(CloseCode.REPLACED, 'replaced by a newer connection');
    s.conn = c;
    s.lastSeen = Date.now();
    c.session = s;
    c.wire.compress = this.o.compress && h.compress === true;
    this.store.record({ t: 's', id: s.id, epoch: s.epoch, room: s.room, user: s.user, echo: s.echo, in: s.inSeq, out: s.outSeq });

    // What the client already has: everything up to rx, if it talks about
    // this epoch of the session; otherwise it starts from scratch.
    const rx = h.epoch === s.epoch && Number.isInteger(h.rx) && h.rx >= 0 ? Math.min(h.rx, s.outSeq) : 0;
    const first = s.hist.length ? s.hist[0].seq : s.outSeq + 1;
    const gap = rx + 1 < first;
    c.sendFrame(Kind.HELLO, {
      payload: JSON.stringify({
        v: 1, session: s.id, epoch: s.epoch, rx: s.inSeq, tx: s.outSeq, gap,
        compress: c.wire.compress, maxPayload: this.o.maxPayload, maxMessage: this.o.maxMessage, maxFrames: this.o.maxFrames,
      }),
    });
    this._ackedByClient(s, rx);
    for (const m of s.hist) if (m.seq > rx) c.sendMessage(m.seq, m.ch, m.f, m.p);
    this._commit();
    this._presence(s, 'join');
  }

  _closed(c) {
    this.conns.delete(c);
    const s = c.session;
    c.wire.close();
    if (s && s.conn === c) {
      s.conn = null;
      s.lastSeen = Date.now();
      this._presence(s, 'leave');
    }
  }
}

/** One WebSocket connection of the relay. */
class Conn {
  constructor(relay, ws, req) {
    this.relay = relay;
    this.ws = ws;
    this.remote = req?.socket?.remoteAddress;
    this.session = null;
    this.alive = true;
    this.out = [];
    this.outBytes = 0;
    this.scheduled = false;
    const o = relay.o;
    this.wire = new Wire({ maxPayload: o.maxPayload, maxMessage: o.maxMessage, maxFrames: o.maxFrames, compress: false });
    ws.on('pong', () => { this.alive = true; });
    ws.on('message', (data, isBinary) => this._message(data, isBinary));
    ws.on('close', () => relay._closed(this));
    ws.on('error', () => {});
  }

  fail(err) {
    const r = this.relay;
    r.stats.protocolErrors++;
    const code = err.closeCode || (err.code === 'TOO_LARGE' ? CloseCode.TOO_BIG : CloseCode.PROTOCOL_ERROR);
    const reason = `${err.code || 'INTERNAL'}: ${err.message}`.slice(0, 120);
    r.log(`relay: closing ${this.remote}: ${reason}`);
    if (!(err instanceof SwitchboardError)) r.log(err.stack);
    this.ws.close(code, reason);
  }

  _message(data, isBinary) {
    if (this.ws.readyState !== 1) return;
    const r = this.relay;
    this.alive = true;
    try {
      if (!isBinary) throw new SwitchboardError('BAD_FRAME', `${PROTOCOL} carries binary frames only`);
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const frames = this.wire.unpack(bytes);
      let ack = false;
      for (const f of frames) {
        if (!this.session) {
          if (f.kind !== Kind.HELLO) throw new SwitchboardError('BAD_STATE', 'the first frame must be hello');
          r._hello(this, jsonOf(f.payload));
          continue;
        }
        const s = this.session;
        // A newer connection of this session took over: whatever still
        // arrives here is stale, and taking its seqs would make the new
        // connection's re-sent messages look like duplicates.
        if (s.conn !== this) return;
        switch (f.kind) {
          case Kind.MESSAGE:
            if (f.channel === SYSTEM_CHANNEL) throw new SwitchboardError('BAD_FRAME', 'channel 1 is the relay\'s');
            r.stats.messagesIn++;
            if (f.seq === 0) {
              r._publish(s, f.channel, f.flags & Flag.BINARY, f.payload, s.inSeq);
            } else if (f.seq <= s.inSeq) {
              r.stats.duplicatesIn++;
              ack = true;
            } else {
              s.inSeq = f.seq;
              r._publish(s, f.channel, f.flags & Flag.BINARY, f.payload, f.seq);
              ack = true;
            }
            break;
          case Kind.REQUEST:
            this._request(f);
            break;
          case Kind.ACK:
            if (f.seq > s.outSeq) throw new SwitchboardError('BAD_FRAME', `ack of ${f.seq}, only ${s.outSeq} sent`);
            r._ackedByClient(s, f.seq);
            break;
          case Kind.PING:
            this.sendFrame(Kind.PONG, { corr: f.id });
            break;
          case Kind.PONG:
            break;
          case Kind.HELLO:
            throw new SwitchboardError('BAD_STATE', 'second hello');
          default:
            throw new SwitchboardError('BAD_FRAME', `unexpected frame kind ${f.kind}`);
        }
      }
      // Commit before anything that depends on it leaves the process.
      r._commit();
      if (ack && this.session) this.sendFrame(Kind.ACK, { seq: this.session.inSeq });
    } catch (e) {
      r._commit();
      this.fail(e);
    }
  }

  _request(f) {
    const r = this.relay;
    r.stats.requests++;
    const binary = (f.flags & Flag.BINARY) !== 0;
    const s = this.session;
    const reply = (v) => {
      if (this.ws.readyState !== 1) return;
      if (v instanceof Uint8Array) this.sendFrame(Kind.RESPONSE, { corr: f.id, flags: Flag.BINARY, payload: v });
      else this.sendFrame(Kind.RESPONSE, { corr: f.id, payload: typeof v === 'string' ? v : JSON.stringify(v ?? null) });
    };
    const fail = (e) => {
      if (this.ws.readyState !== 1) return;
      this.sendFrame(Kind.ERROR, { corr: f.id, payload: JSON.stringify({ code: e?.code || 'INTERNAL', message: String(e?.message || e) }) });
    };
    try {
      let data = f.payload;
      if (!binary) data = utf8(data);
      const v = r.onRequest({ session: { id: s.id, user: s.user, room: s.room }, data, binary, relay: r });
      if (v && typeof v.then === 'function') v.then(reply, fail);
      else reply(v);
    } catch (e) {
      fail(e);
    }
  }

  sendMessage(seq, ch, flags, payload) {
    this.sendFrame(Kind.MESSAGE, { seq, channel: ch, flags, payload });
  }

  sendFrame(kind, fields) {
    const bytes = this.wire.frame(kind, fields);
    this.out.push(bytes);
    this.outBytes += bytes.length;
    this.outKind = kind;
    if (!this.scheduled) {
      this.scheduled = true;
      // After the current handler (which commits first), before any I/O:
      // everything one incoming message caused leaves together.
      queueMicrotask(() => this.flush());
    }
  }

  /** Everything queued this turn leaves as few transport messages as the caps allow. */
  flush() {
    this.scheduled = false;
    // A lone response/pong is latency-bound: it skips deflate.
    const urgent = this.out.length === 1 && this.outKind !== Kind.MESSAGE;
    if (this.ws.readyState !== 1) { this.out = []; this.outBytes = 0; return; }
    const o = this.relay.o;
    const limit = Math.min(o.maxMessage, 1 << 20);
    let i = 0;
    while (i < this.out.length) {
      let j = i, bytes = 0;
      while (j < this.out.length && j - i < o.maxFrames && (j === i || bytes + this.out[j].length <= limit)) {
        bytes += this.out[j].length;
        j++;
      }
      this.ws.send(this.wire.pack(this.out.slice(i, j), { urgent }));
      i = j;
    }
    this.out = [];
    this.outBytes = 0;
    // A client that does not read: drop the connection rather than the
    // memory bound; its history is still here when it resumes.
    if (this.ws.bufferedAmount > o.maxBuffered) this.ws.close(CloseCode.TRY_AGAIN, 'TOO_LARGE: client is not reading');
  }
}
