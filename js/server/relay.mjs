// The reference relay: a Node WebSocket server (on `ws`) where every
// connection is a server-role sb_session (src/session.h, through
// js/session.js) on the same wasm core as the browser Socket. The session
// does the protocol: greeting, hello, resume, acks, dedup, order, batching,
// compression, caps, the idle timeout. The relay keeps what is not protocol:
//
//   rooms      the hello's room on channel 0, more by subscription on their
//              own channels; each room one log with offsets, fanned out
//              stamped with the sender (rooms.mjs)
//   sessions   hello, authenticate, authorize, takeover (sessions.mjs)
//   identity   a client that asks to resume a session the relay knows takes
//              it over (its previous transport is closed with 4000); any
//              other client gets a new id drawn here (128 random bits)
//   access     the upgrade's Origin must be the relay's own or allowed
//              (opts.allowedOrigins, else HTTP 403); opts.authenticate
//              names the user of a hello (else 4401), and a session stays
//              bound to that user (anyone else asking for it: 4403);
//              opts.authorize admits a user to a room (else 4403). guard.mjs
//   presence   joins and leaves are messages on channel 1, JSON
//              {type:'join'|'leave', room, channel, user, users?}
//   requests   REQUEST events go to opts.onRequest (default: echo); on
//              channel 1, to the relay itself (subscriptions)
//   store      the sessions that changed are committed (serialize() blobs)
//              before anything that depends on them is sent: an ack leaves
//              only once what it confirms is stored; on a shared engine
//              (Redis, redis.mjs) asynchronously, by group commit (commits.mjs)
//   timers     every session's deadline (session.deadline(), re-read after
//              every call into it) on one timer for the relay (timers.mjs)
//   limits     the session rate-limits what each connection sends (PAUSE:
//              the socket is not read for that long; past the tolerance it
//              closes with 4008) and closes a socket that stalls over the
//              high-water mark (1013, the session waits for the client);
//              the relay caps sockets in total and per address and keeps
//              the core within its memory budget (HTTP 503 at the upgrade,
//              before anything is allocated). docs/socket.md, "Limits"
//
// Each turn (a WebSocket message or close, a timer, an answered request, a
// Bus delivery) calls into the sessions, then flushes every session it
// touched; the WRITE and DISCONNECT events that come out are held until the
// store has committed every session that reported DIRTY, and sent after.
// An error in a turn closes the connection it came from (with a code and a
// reason naming the error code) and is logged; nothing is thrown out of a
// ws handler, a timer, a promise or a Bus callback.
import { WebSocketServer } from 'ws';
import { createCore } from '../core.js';
import { WHOLE_CORE } from './core-path.mjs';
import { SwitchboardError } from '../errors.js';
import { ServerSession } from './session.mjs';
import { SESSION_PROTOCOL, SS_DUPLICATES, CLOSE_TRY_AGAIN } from '../constants.js';
import { LocalBus } from './bus.mjs';
import { Rooms, RoomLog } from './rooms.mjs';
export { SYSTEM_CHANNEL } from './rooms.mjs';
import { MemoryStore } from './store.mjs';
import { OriginPolicy } from './guard.mjs';
import { DEFAULTS, OPTION_KEYS, Slot, Conn, CONN, socketListeners, closeReason, closeCodeOf } from './slot.mjs';
import { RelayCommits } from './commits.mjs';
import { HttpTransport } from './http.mjs';
import { Timers } from './timers.mjs';

const PAGE = 65536; // bytes in a wasm memory page

export class Relay extends RelayCommits {
  /**
   * Use `await Relay.create(opts)`.
   * @param {object} opts see DEFAULTS; plus bus (Bus), store (MemoryStore |
   *   SqliteStore | RedisEngine), redis (a redis:// URL, or {url, prefix,
   *   presenceTtlMs}: Relay.create connects a RedisEngine, the store and the
   *   bus of every relay process on it), onRequest(ctx) => value | Promise, log(msg),
   *   sessionOptions ([[SO_*, value]…] for the sessions, after the above),
   *   allowedOrigins (string[]), authenticate({request, hello}) and
   *   authorize({request, hello, user, room}) (docs/relay.md)
   */
  constructor(opts = {}, c) {
    super();
    this.core = c;
    this.o = { ...DEFAULTS, ...opts };
    this.bus = opts.bus || new LocalBus();
    this.store = opts.store || new MemoryStore();
    this.onRequest = opts.onRequest || ((ctx) => ctx.data);
    this.log = opts.log || (() => {});
    for (const k of ['authenticate', 'authorize']) {
      if (opts[k] != null && typeof opts[k] !== 'function') throw new SwitchboardError('INVALID', `${k} must be a function`);
    }
    this.authenticate = opts.authenticate || null;
    this.authorize = opts.authorize || null;
    this.origins = new OriginPolicy(c, opts.allowedOrigins || []);
    this.http = new HttpTransport(this); // the same sessions over HTTP (http.mjs)
    this.options = [...OPTION_KEYS.map(([k, so]) => [so, typeof this.o[k] === 'boolean' ? Number(this.o[k]) : this.o[k]]),
      ...(opts.sessionOptions || [])];
    /** @type {Map<string, Slot>} sessions by id */
    this.sessions = new Map();
    /** The rooms' logs, subscriptions, fan-out and presence (rooms.mjs). */
    this.rooms = new Rooms(this);
    this.conns = new Set();
    this.stats = { connections: 0, sessions: 0, messagesIn: 0, duplicatesIn: 0, messagesOut: 0, requests: 0, protocolErrors: 0, errors: 0, commits: 0, refused: 0, pauses: 0, replayed: 0, unrecovered: 0 };
    this._sockets = 0; // admitted and not yet closed (upgrades included)
    this._perAddress = new Map();
    this.closed = false;
    // One turn at a time (everything is synchronous inside it).
    this._inTurn = false;
    this._settling = null; // the pending setImmediate of _settleSoon
    this._quiet = false;
    this._touched = new Set();
    this._dirty = new Set();
    this._later = new Map(); // in-process store: id -> slot, serialized at close()
    this._deleted = new Map(); // id -> its generation (a shared engine deletes only its own)
    this._out = [];
    this.timers = new Timers((slot) => this._tick(slot));
    this.listen = socketListeners(this);
    this._engine(); // a shared engine (Redis): group commit (commits.mjs)
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.o.maxMessage,
      perMessageDeflate: false, // the session compresses, with a shared window
      handleProtocols: (protocols) => (protocols.has(SESSION_PROTOCOL) ? SESSION_PROTOCOL : false),
    });
    this._session().destroy(); // the options are valid (INVALID otherwise)
    this.wss.on('connection', (ws, req) => {
      try {
        this._connection(ws, req);
      } catch (e) {
        this.stats.errors++;
        this.log(`relay: ${e?.stack || e}`);
        ws.terminate();
      }
    });
    this.wss.on('error', (e) => this.log(`relay: ${e.message}`));
  }

  static async create(opts = {}) {
    if (opts.redis && !opts.store) {
      const { RedisEngine } = await import('./redis.mjs');
      const r = typeof opts.redis === 'string' ? { url: opts.redis } : opts.redis;
      opts = { ...opts, store: await RedisEngine.connect(r.url, { ...r, log: opts.log }) };
    }
    // Its own instance of the whole core (both roles, its own heap), never a
    // job's core that the glue in the same process may have loaded.
    const w = opts.wasm || {};
    const max = opts.maxMemory ?? DEFAULTS.maxMemory;
    if (!(max >= 16 << 20 && max <= 2 ** 31)) throw new SwitchboardError('INVALID', 'maxMemory: 16 MiB to 2 GiB');
    // The budget is the memory's maximum (a core that imports it; another keeps its own).
    const memory = new WebAssembly.Memory({ initial: 16, maximum: Math.floor(max / PAGE) });
    const c = await createCore({ ...(w.wasmModule || w.wasmBinary || w.wasmURL ? w : { wasmURL: WHOLE_CORE }), memory });
    const r = new Relay(opts, c);
    await r._load();
    return r;
  }

  /** For an http server's 'upgrade' event (the dev server's ctx.upgrade). */
  handleUpgrade(req, socket, head) {
    // Node's http server lets go of an upgrading socket's errors: a client
    // that resets while it is refused below (403, 400, 503) would otherwise
    // throw ECONNRESET/EPIPE out of the process. ws adds its own once it
    // takes the socket.
    const onError = (e) => this.log(`relay: ${socket.remoteAddress ?? ''}: ${e.code || e.message}`);
    socket.on('error', onError);
    // A page of another origin may not open a connection in its user's name
    // (cross-site WebSocket hijacking): 403 before the upgrade.
    if (!this.origins.allows(req)) {
      this.stats.refused++;
      this.log(`relay: 403 for ${req.socket?.remoteAddress}: origin ${JSON.stringify(String(req.headers.origin).slice(0, 100))} not allowed`);
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\norigin not allowed\n');
      return;
    }
    // Refuse clients that do not offer the subprotocol at the handshake, so a
    // Socket probing for a plain server sees a failed attempt, not an open
    // connection that swallows its queue.
    const offered = String(req.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim());
    if (!offered.includes(SESSION_PROTOCOL) || this.closed) {
      socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nsubprotocol ${SESSION_PROTOCOL} required\n`);
      return;
    }
    if (!this._admitSocket(socket)) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', onError); // the WebSocket's own from here
      this.wss.emit('connection', ws, req);
    });
  }

  /** For an http server's 'request' event: true if req was the HTTP transport's (answered, http.mjs). */
  handleRequest(req, res) { return this.http.handle(req, res); }

  /** Bytes the core can still allocate within maxMemory. */
  memoryFree() {
    const room = this.o.maxMemory - this.core.memory.buffer.byteLength;
    // Only near the budget is the allocator asked what it has free inside (a walk of its free lists).
    if (room >= this.o.memoryHeadroom || !this.core.fn.emmalloc_free_dynamic_memory) return room;
    return room + (this.core.fn.emmalloc_free_dynamic_memory() >>> 0);
  }

  /** What the relay holds now: sockets (upgrades included), sessions, the core's memory. */
  usage() {
    return { sockets: this._sockets, addresses: this._perAddress.size, sessions: this.sessions.size, memory: this.core.memory.buffer.byteLength, memoryFree: this.memoryFree() };
  }

  /** The connection caps and the memory budget, before the upgrade allocates anything (else HTTP 503). */
  _admitSocket(socket) {
    const addr = socket.remoteAddress || '', why = this._admission(addr);
    if (why) socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n\r\n${why}\n`);
    else this._hold(addr, socket);
    return !why;
  }

  /** Why a new transport from addr is refused (a cap, the memory budget), or null. */
  _admission(addr) {
    const why = this._sockets >= this.o.maxConnections ? 'too many connections'
      : (this._perAddress.get(addr) || 0) >= this.o.maxConnectionsPerAddress ? 'too many connections from this address'
        : this.memoryFree() < this.o.memoryHeadroom ? 'out of memory' : null;
    if (why) this.stats.refused++;
    return why;
  }

  /** Count a transport of addr (an upgrading socket, an HTTP stream) until it emits 'close'. */
  _hold(addr, emitter) {
    this._sockets++;
    this._perAddress.set(addr, (this._perAddress.get(addr) || 0) + 1);
    emitter.once('close', () => {
      this._sockets--;
      const k = this._perAddress.get(addr) - 1;
      if (k > 0) this._perAddress.set(addr, k);
      else this._perAddress.delete(addr);
    });
  }

  /** Stops; a shared engine is closed once its last commit has returned (the promise). */
  close() {
    if (this.closed) return this._closing;
    if (this._settling) { // the turns of this pass end as they would have: flushed, committed, written
      clearImmediate(this._settling);
      this._settleNow();
    }
    this.closed = true;
    for (const slot of this._later.values()) this._dirty.add(slot);
    this._later.clear();
    // A shared engine has everything that anyone was told about: what is
    // still unstored was not acked, and its clients resend it.
    if (!this.shared) try { this._commit(); } catch (e) { this.log(`relay: the last commit: ${e.message}`); }
    for (const c of this.conns) {
      if (c.slot && !c.slot.id) this._drop(c.slot); // pending
      c.ws.terminate();
    }
    this.conns.clear();
    for (const slot of this.sessions.values()) this._drop(slot);
    this.sessions.clear();
    this.rooms.close();
    this.timers.close();
    const closeStore = () => {
      try {
        return Promise.resolve(this.store.close()).catch((e) => this.log(`relay: closing the store: ${e.message}`));
      } catch (e) {
        this.log(`relay: closing the store: ${e.message}`);
      }
      return undefined;
    };
    this._closing = this._inFlight ? this._inFlight.then(closeStore, closeStore) : closeStore();
    this.origins.destroy();
    this.wss.close();
    return this._closing;
  }

  // ---- sessions ------------------------------------------------------------

  _session() {
    return new ServerSession(this.options, undefined, this.core);
  }

  /** Load the stored sessions, each detached until its client takes it over. */
  async _load() {
    for (const r of (await this.store.loadRooms?.()) || []) {
      this.rooms.logs.set(r.room, RoomLog.restore(r.room, this.o, r.epoch, r.next, r.entries, Date.now()));
    }
    const rows = await this.store.load();
    const now = Date.now();
    for (const row of rows) this._restore(row, now);
    if (this._deleted.size) this._commit();
    if (this.sessions.size) this.log(`relay: restored ${this.sessions.size} sessions`);
    this.stats.sessions = this.sessions.size;
  }

  // ---- turns -----------------------------------------------------------------

  /**
   * Run fn (calls into sessions), then settle: flush what it touched, commit,
   * send. An error is charged to conn (closed) and never escapes.
   */
  _turn(conn, fn, slot = conn?.slot) {
    if (this._inTurn) { // a synchronous Bus delivers inside the sender's turn
      fn();
      return;
    }
    if (this.closed) return;
    this._inTurn = true;
    try {
      try {
        fn();
      } catch (e) {
        this._fail(conn, e, slot); // the slot too: a detached one must still be re-armed
      }
    } finally {
      this._inTurn = false;
    }
    this._settleSoon();
  }

  /** Flush every touched session, commit the dirty ones, then send. */
  _settle(depth = 0) {
    const flushed = new Set();
    for (let round = 0; this._touched.size && round < 8; round++) {
      const list = [...this._touched];
      this._touched.clear();
      const now = Date.now();
      for (const slot of list) {
        if (!slot.s.h) continue;
        try {
          if (slot.conn) slot.s.fn.sb_session_set_buffered(slot.s.h, slot.conn.ws.bufferedAmount);
          this._call(slot, 'flush', slot.s.fn.sb_session_flush(slot.s.h, now));
          this._drain(slot);
        } catch (e) {
          this._fail(slot.conn, e, slot);
        }
        flushed.add(slot);
      }
    }
    const out = this._out;
    this._out = [];
    if (this.shared) {
      this._queue(out);
      for (const slot of flushed) if (slot.s.h) this._arm(slot);
      return;
    }
    try {
      this._commit();
    } catch (e) {
      // Nothing that depends on this turn may leave: drop its writes and
      // close the connections they were for (their sessions resume later,
      // resending what the store does not have).
      this.stats.errors++;
      this.log(`relay: store commit failed: ${e?.stack || e}`);
      const reason = closeReason(`INTERNAL: store: ${e?.message || e}`);
      const conns = new Set(out.map((o) => o[0]));
      for (const conn of conns) {
        // One connection's trouble must not leave the others open with
        // writes they believe went out.
        try {
          const slot = conn.slot;
          if (slot?.s.h && slot.conn === conn) {
            slot.s.fn.sb_session_transport_closed(slot.s.h, Date.now(), CLOSE_TRY_AGAIN);
            this._detach(slot);
            this._drain(slot);
          }
        } catch (e2) {
          this.log(`relay: ${conn.remote}: ${e2?.message || e2}`);
        }
        try { conn.ws.close(CLOSE_TRY_AGAIN, reason); } catch { conn.ws.terminate(); }
      }
      this._out = [];
      for (const slot of flushed) if (slot.s.h) this._arm(slot);
      // What that caused (presence to the others) goes out once a commit works.
      if (depth < 3) this._settle(depth + 1);
      else this._touched.clear();
      return;
    }
    this._send(out);
    for (const slot of flushed) if (slot.s.h) this._arm(slot);
  }

  /** The writes and closes of turns whose state is stored. */
  _send(out) {
    for (const [conn, data, code, reason] of out) {
      const ws = conn.ws;
      try {
        if (data) {
          if (ws.readyState === 1) ws.send(data);
        } else if (ws.readyState <= 1) {
          ws.close(code, closeReason(reason));
        }
      } catch (e) {
        this.log(`relay: ${conn.remote}: ${e.message}`);
        ws.terminate();
      }
    }
  }

  /**
   * The slot's session's next deadline, on the relay's one timer
   * (timers.mjs). A deadline that moved later (the idle timeout and the
   * trim, after every message) keeps the earlier one: the tick then does
   * nothing and re-arms, so a busy connection does not move in the heap at
   * every message.
   */
  _arm(slot) {
    const d = slot.s.deadline();
    if (slot.due >= 0 && d >= slot.due) return;
    this.timers.set(slot, d);
  }

  /** A slot's deadline came: tick its session. */
  _tick(slot) {
    this._turn(slot.conn, () => {
      if (!slot.s.h) return;
      if (slot.conn) slot.s.fn.sb_session_set_buffered(slot.s.h, slot.conn.ws.bufferedAmount);
      this._call(slot, 'tick', slot.s.fn.sb_session_tick(slot.s.h, Date.now()));
      this._drain(slot);
      if (slot.s.h) this._touched.add(slot); // re-armed (and flushed) in _settle
    }, slot);
  }

  /**
   * An error in a turn: log it and close the connection it belongs to
   * (through its session when there is one, so the session knows).
   */
  _fail(conn, err, slot = conn?.slot) {
    if (err?.refusal) this.stats.refused++;
    else this.stats.errors++;
    const code = err?.closeCode || closeCodeOf(err);
    const name = err instanceof SwitchboardError || err?.name === 'SwitchboardError' ? err.code : 'INTERNAL';
    const reason = closeReason(`${name}: ${err?.message || err}`);
    this.log(`relay: closing ${conn?.remote ?? ''} ${slot?.id ?? '(pending)'}: ${reason}`);
    if (name === 'INTERNAL') this.log(err?.stack || String(err));
    if (slot?.s.h) this._touched.add(slot); // flushed and re-armed by _settle
    if (!conn) return;
    try {
      if (slot?.s.h && slot.conn === conn) {
        const [p, n] = slot.s.put(reason);
        this._call(slot, 'refuse', slot.s.fn.sb_session_refuse(slot.s.h, code, p, n, Date.now()));
        this._drain(slot);
        if (slot.conn !== conn) return; // DISCONNECT held: sent after the commit
      }
    } catch (e) {
      this.log(`relay: refusing: ${e?.message || e}`);
    }
    if (slot && slot.conn === conn) this._detach(slot);
    try { conn.ws.close(code, reason); } catch { conn.ws.terminate(); }
  }

  // ---- connections -------------------------------------------------------------

  _connection(ws, req) {
    this.stats.connections++;
    const conn = new Conn(ws, req);
    ws[CONN] = conn;
    ws.on('error', this.listen.error);
    if (ws.protocol !== SESSION_PROTOCOL) {
      ws.close(CLOSE_PROTOCOL, `BAD_STATE: subprotocol ${SESSION_PROTOCOL} required`);
      return;
    }
    this.conns.add(conn);
    ws.on('message', this.listen.message);
    ws.on('close', this.listen.close);
    this._turn(conn, () => {
      const slot = new Slot(this._session());
      slot.conn = conn;
      conn.slot = slot;
      this._touched.add(slot);
      // The server speaks first: the greeting is written at the flush.
      this._call(slot, 'transport_open', slot.s.fn.sb_session_transport_open(slot.s.h, Date.now(), 1));
      this._drain(slot);
    });
  }

  /** Read nothing more from conn's socket for ms (its client is over a rate limit). */
  _pause(conn, ms) {
    const until = Date.now() + ms;
    if (until <= conn.pausedUntil) return;
    this.stats.pauses++;
    conn.pausedUntil = until;
    clearTimeout(conn.resume);
    conn.ws.pause();
    conn.resume = setTimeout(() => {
      conn.resume = null;
      conn.pausedUntil = 0;
      conn.ws.resume();
    }, ms);
    conn.resume.unref?.();
  }

  _message(conn, data, isBinary) {
    const slot = conn.slot;
    if (!slot || !slot.s.h) return; // a transport the session let go of
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data;
    const dup = slot.s.stat(SS_DUPLICATES);
    slot.s.recv(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), !isBinary, Date.now());
    this.stats.duplicatesIn += slot.s.stat(SS_DUPLICATES) - dup;
    this._touched.add(slot);
    this._drain(slot);
    if (this.rooms.behind.has(slot)) this.rooms.catchUp(slot);
    if (slot.hello && slot.s.h) this._hello(slot);
  }

  _closed(conn, code) {
    const slot = conn.slot;
    if (!slot || !slot.s.h || slot.conn !== conn) return;
    this._call(slot, 'transport_closed', slot.s.fn.sb_session_transport_closed(slot.s.h, Date.now(), code || 1006));
    this._touched.add(slot);
    this._detach(slot);
    this._drain(slot);
  }
}
