// The reference relay: a Node WebSocket server (on `ws`) where every
// connection is a server-role sb_session (src/session.h, through
// js/session.js) on the same wasm core as the browser Socket. The session
// does the protocol: greeting, hello, resume, acks, dedup, order, batching,
// compression, caps, the idle timeout. The relay keeps what is not protocol:
//
//   rooms      every session is in one room (hello.room); a message from a
//              session goes to every other session of that room (and back
//              to the sender with hello.echo), through the Bus (bus.mjs)
//   identity   a client that asks to resume a session the relay knows takes
//              it over (its previous transport is closed with 4000); any
//              other client gets a new id drawn here (128 random bits)
//   access     the upgrade's Origin must be the relay's own or allowed
//              (opts.allowedOrigins, else HTTP 403); opts.authenticate
//              names the user of a hello (else 4401), and a session stays
//              bound to that user (anyone else asking for it: 4403);
//              opts.authorize admits a user to a room (else 4403). guard.mjs
//   presence   joins and leaves are messages on channel 1, JSON
//              {type:'join'|'leave', user, users}
//   requests   REQUEST events go to opts.onRequest (default: echo)
//   store      the sessions that changed are committed (serialize() blobs)
//              before anything that depends on them is sent: an ack leaves
//              only once what it confirms is stored
//   timers     one timer per session, at session.deadline(), re-armed after
//              every call into it
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
import { randomBytes } from 'node:crypto';
import { createCore } from '../core.js';
import { WHOLE_CORE } from './core-path.mjs';

const PAGE = 65536; // bytes in a wasm memory page
import { SwitchboardError } from '../errors.js';
import { Session, utf8, bytesOf } from '../session.js';
import {
  SESSION_SERVER, SESSION_PROTOCOL, SESSION_CLOSED,
  SEV_WRITE, SEV_DISCONNECT, SEV_MESSAGE, SEV_REQUEST, SEV_CLOSED, SEV_DIRTY, SEV_HELLO, SEV_ERROR, SEV_DROP,
  SEV_PAUSE,
  SO_HELLO_TIMEOUT, SO_IDLE_TIMEOUT, SO_SESSION_TTL, SO_QUEUE_MAX_COUNT, SO_QUEUE_MAX_BYTES,
  SO_BATCH_DELAY, SO_COMPRESS, SO_COMPRESS_LEVEL, SO_MAX_PAYLOAD, SO_MAX_MESSAGE, SO_MAX_FRAMES, SO_HIGH_WATER,
  SO_RATE_MSGS, SO_RATE_MSGS_BURST, SO_RATE_BYTES, SO_RATE_BYTES_BURST, SO_RATE_TOLERANCE, SO_STALL_TIMEOUT,
  SS_DUPLICATES, FRAME_F_BINARY,
  CLOSE_PROTOCOL, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TRY_AGAIN, CLOSE_REPLACED, CLOSE_AUTH, CLOSE_FORBIDDEN,
} from '../constants.js';
import { LocalBus } from './bus.mjs';
import { MemoryStore } from './store.mjs';
import { OriginPolicy, identityOf, refusal, step } from './guard.mjs';

export const SYSTEM_CHANNEL = 1;

const DEFAULTS = {
  maxPayload: 1 << 20,      // largest frame payload accepted (and announced)
  maxMessage: 8 << 20,      // largest WebSocket message, also after inflating
  maxFrames: 4096,          // frames in one WebSocket message
  maxHistory: 20000,        // messages per session not yet confirmed by its client
  maxHistoryBytes: 32 << 20, // their payload bytes (oldest dropped first: resume reports a gap)
  maxSessions: 10000,
  maxHelloBytes: 8192,      // the hello's application JSON
  highWater: 4 << 20,       // nothing more is written while a socket buffers this much
  sessionTtlMs: 5 * 60e3,   // a detached session is forgotten after this
  helloTimeoutMs: 10e3,
  idleTimeoutMs: 60e3,      // a connection silent this long is dropped (clients ping every 25 s)
  batchDelayMs: 0,
  compress: true,
  // zlib level of what the relay sends. Every recipient's copy of a room
  // message is deflated on its own window, so this is paid once per
  // delivery: level 1 costs ~1/3.5 of level 6 for ~25% more bytes on a chat
  // message (docs/relay.md, "Benchmark").
  compressLevel: 1,
  // Limits (docs/socket.md, "Limits"); a rate of 0 is no limit.
  rateMessages: 1000,       // frames a second a connection may send (a batch counts its frames)
  rateMessagesBurst: 10000, // at once (a client's whole default queue, resent on a resume)
  rateBytes: 8 << 20,       // frame bytes a second, counted after inflating
  rateBytesBurst: 16 << 20,
  rateToleranceMs: 10e3,    // over a rate the socket is not read (paused); further in debt: closed 4008
  stallTimeoutMs: 30e3,     // a socket holding highWater unsent this long: closed 1013 (it resumes)
  maxConnections: 10000,    // sockets at once, upgrades included: over it HTTP 503
  maxConnectionsPerAddress: 100,
  maxMemory: 1 << 30,       // the core's memory; past it an allocation fails (1013 for that connection)
  memoryHeadroom: 64 << 20, // less than this free within maxMemory: new connections get 503
};

const OPTION_KEYS = [
  ['maxPayload', SO_MAX_PAYLOAD], ['maxMessage', SO_MAX_MESSAGE], ['maxFrames', SO_MAX_FRAMES],
  ['maxHistory', SO_QUEUE_MAX_COUNT], ['maxHistoryBytes', SO_QUEUE_MAX_BYTES], ['highWater', SO_HIGH_WATER],
  ['sessionTtlMs', SO_SESSION_TTL], ['helloTimeoutMs', SO_HELLO_TIMEOUT], ['idleTimeoutMs', SO_IDLE_TIMEOUT],
  ['batchDelayMs', SO_BATCH_DELAY], ['compress', SO_COMPRESS], ['compressLevel', SO_COMPRESS_LEVEL],
  ['rateMessages', SO_RATE_MSGS], ['rateMessagesBurst', SO_RATE_MSGS_BURST], ['rateBytes', SO_RATE_BYTES],
  ['rateBytesBurst', SO_RATE_BYTES_BURST], ['rateToleranceMs', SO_RATE_TOLERANCE], ['stallTimeoutMs', SO_STALL_TIMEOUT],
];

const newId = () => randomBytes(16).toString('base64url');

/** At most 123 bytes of UTF-8 (a WebSocket close reason). */
function closeReason(text) {
  let s = String(text);
  while (Buffer.byteLength(s) > 123) s = s.slice(0, -1);
  return s;
}

/** The close code for an error caught in a turn. */
function closeCodeOf(err) {
  switch (err?.code) {
    case 'TOO_LARGE': return CLOSE_TOO_BIG;
    case 'INVALID': return CLOSE_POLICY;
    case 'BAD_FRAME': case 'BAD_VERSION': case 'TRUNCATED': case 'TRAILING_DATA': case 'CORRUPT':
    case 'TOO_DEEP': case 'BAD_STATE':
      return CLOSE_PROTOCOL;
    default: return CLOSE_TRY_AGAIN; // ours (store, memory, a bug): come back and resume
  }
}

/** The hello's application JSON: {room?, user?, echo?}, bounded. */
function parseHello(bytes, max) {
  if (bytes.length > max) throw new SwitchboardError('TOO_LARGE', `hello over ${max} bytes`);
  if (!bytes.length) return {};
  let h;
  try {
    h = JSON.parse(utf8(bytes));
  } catch {
    throw new SwitchboardError('INVALID', 'hello is not JSON');
  }
  if (!h || typeof h !== 'object' || Array.isArray(h)) throw new SwitchboardError('INVALID', 'hello is not a JSON object');
  return h;
}

const roomOf = (h) => (typeof h.room === 'string' && h.room.length > 0 && h.room.length <= 128 ? h.room : 'lobby');

/** The fields of an sb_session object the relay keeps beside it. */
class Slot {
  constructor(s) {
    this.s = s;          // Session (js/session.js), server role
    this.id = null;      // null while pending (no hello accepted yet)
    this.conn = null;    // the Conn attached, or null while detached
    this.room = 'lobby';
    this.user = '';
    this.owner = null;   // the authenticated user id that created it (authenticate), or null
    this.echo = false;
    this.timer = null;
    this.due = -1;
    this.hello = null;   // pending: the client's hello, until decided
    this.closed = false; // SEV_CLOSED seen
  }
}

/** One WebSocket. */
class Conn {
  constructor(ws, req) {
    this.ws = ws;
    this.req = req;      // the upgrade request (authenticate reads its URL, headers)
    this.remote = req?.socket?.remoteAddress;
    this.slot = null;
    this.pausedUntil = 0; // over a rate limit: not read until then
    this.resume = null;
  }
}

export class Relay {
  /**
   * Use `await Relay.create(opts)`.
   * @param {object} opts see DEFAULTS; plus bus (Bus), store (MemoryStore |
   *   SqliteStore), onRequest(ctx) => value | Promise, log(msg),
   *   sessionOptions ([[SO_*, value]…] for the sessions, after the above),
   *   allowedOrigins (string[]), authenticate({request, hello}) and
   *   authorize({request, hello, user, room}) (docs/relay.md)
   */
  constructor(opts = {}, c) {
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
    this.options = [...OPTION_KEYS.map(([k, so]) => [so, typeof this.o[k] === 'boolean' ? Number(this.o[k]) : this.o[k]]),
      ...(opts.sessionOptions || [])];
    /** @type {Map<string, Slot>} sessions by id */
    this.sessions = new Map();
    /** room -> { slots: Set<Slot>, unsubscribe } */
    this.rooms = new Map();
    this.conns = new Set();
    this.stats = { connections: 0, sessions: 0, messagesIn: 0, duplicatesIn: 0, messagesOut: 0, requests: 0, protocolErrors: 0, errors: 0, commits: 0, refused: 0, pauses: 0 };
    this._sockets = 0; // admitted and not yet closed (upgrades included)
    this._perAddress = new Map();
    this.closed = false;
    // One turn at a time (everything is synchronous inside it).
    this._inTurn = false;
    this._quiet = false;
    this._touched = new Set();
    this._dirty = new Set();
    this._later = new Map(); // in-process store: id -> slot, serialized at close()
    this._deleted = new Set();
    this._out = [];
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

  /**
   * The connection caps and the memory budget, before the upgrade allocates
   * anything: over them the socket gets HTTP 503 and is closed.
   */
  _admitSocket(socket) {
    const addr = socket.remoteAddress || '';
    const n = this._perAddress.get(addr) || 0;
    const why = this._sockets >= this.o.maxConnections ? 'too many connections'
      : n >= this.o.maxConnectionsPerAddress ? 'too many connections from this address'
        : this.memoryFree() < this.o.memoryHeadroom ? 'out of memory' : null;
    if (why) {
      this.stats.refused++;
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n\r\n${why}\n`);
      return false;
    }
    this._sockets++;
    this._perAddress.set(addr, n + 1);
    socket.once('close', () => {
      this._sockets--;
      const k = this._perAddress.get(addr) - 1;
      if (k > 0) this._perAddress.set(addr, k);
      else this._perAddress.delete(addr);
    });
    return true;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    for (const slot of this._later.values()) this._dirty.add(slot);
    this._later.clear();
    try { this._commit(); } catch (e) { this.log(`relay: the last commit: ${e.message}`); }
    for (const c of this.conns) {
      if (c.slot && !c.slot.id) this._drop(c.slot); // pending
      c.ws.terminate();
    }
    this.conns.clear();
    for (const slot of this.sessions.values()) this._drop(slot);
    this.sessions.clear();
    for (const r of this.rooms.values()) r.unsubscribe();
    this.rooms.clear();
    try { this.store.close(); } catch (e) { this.log(`relay: closing the store: ${e.message}`); }
    this.origins.destroy();
    this.wss.close();
  }

  // ---- sessions ------------------------------------------------------------

  _session() {
    return new Session(SESSION_SERVER, this.options, undefined, this.core);
  }

  /** Load the stored sessions, each detached until its client takes it over. */
  async _load() {
    const rows = await this.store.load();
    const now = Date.now();
    for (const row of rows) {
      const slot = new Slot(this._session());
      try {
        slot.s.restore(row.blob, now);
        slot.id = slot.s.id();
        if (slot.id !== row.id) throw new SwitchboardError('CORRUPT', `stored as ${row.id}, holds ${slot.id}`);
      } catch (e) {
        this.log(`relay: stored session ${row.id} not restored: ${e.code || ''} ${e.message}`);
        slot.s.destroy();
        this._deleted.add(row.id);
        continue;
      }
      slot.user = typeof row.user === 'string' ? row.user : '';
      slot.owner = typeof row.owner === 'string' ? row.owner : null;
      slot.echo = !!row.echo;
      this.sessions.set(slot.id, slot);
      this._join(slot, typeof row.room === 'string' ? row.room : 'lobby');
      this._arm(slot);
    }
    if (this._deleted.size) this._commit();
    if (this.sessions.size) this.log(`relay: restored ${this.sessions.size} sessions`);
    this.stats.sessions = this.sessions.size;
  }

  _join(slot, room) {
    let r = this.rooms.get(room);
    if (!r) {
      r = { slots: new Set(), unsubscribe: null };
      this.rooms.set(room, r);
      r.unsubscribe = this.bus.subscribe(room, (msg) => this._turn(null, () => this._fanout(room, msg)));
    }
    r.slots.add(slot);
    slot.room = room;
  }

  _leaveRoom(slot) {
    const r = this.rooms.get(slot.room);
    if (!r) return;
    r.slots.delete(slot);
    if (!r.slots.size) {
      r.unsubscribe();
      this.rooms.delete(slot.room);
    }
  }

  _users(room) {
    const r = this.rooms.get(room);
    const users = [];
    if (r) for (const slot of r.slots) if (slot.conn) users.push(slot.user || slot.id.slice(0, 6));
    return users.sort();
  }

  _presence(slot, type) {
    const payload = bytesOf(JSON.stringify({ type, user: slot.user || slot.id.slice(0, 6), users: this._users(slot.room) }));
    // A join goes to the joiner too (it learns the user list); a leave does not.
    this.bus.publish(slot.room, { from: type === 'join' ? null : slot.id, channel: SYSTEM_CHANNEL, flags: 0, payload });
  }

  /** Bus delivery: the message into every recipient session's outbox. */
  _fanout(room, msg) {
    const r = this.rooms.get(room);
    if (!r) return;
    const flags = msg.flags & FRAME_F_BINARY;
    const now = Date.now();
    // The payload goes into the core's scratch area once; every recipient's
    // session copies it from there into its outbox (sb_session_send does
    // not touch the scratch area, and nothing else writes it in between).
    const n = msg.payload.length;
    let p = this.core.writeBytes(msg.payload);
    for (const slot of [...r.slots]) {
      if (msg.from === slot.id && (!slot.echo || msg.channel === SYSTEM_CHANNEL)) continue;
      if (!slot.s.h || slot.closed) continue;
      try {
        this._call(slot, 'send', slot.s.fn.sb_session_send(slot.s.h, msg.channel >>> 0, flags, p, n, now));
        this.stats.messagesOut++;
      } catch (e) {
        // TOO_LARGE for this client (a DROP event says so); anything else is
        // this recipient's problem, not the sender's.
        if (e.code !== 'TOO_LARGE') {
          this._fail(slot.conn, e, slot);
          p = this.core.writeBytes(msg.payload); // _fail wrote its close reason there
        }
      }
      this._touched.add(slot);
    }
  }

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
    if (!this.authenticate && !this.authorize) return this._admit(pending, h, null);
    const ctx = { request: conn.req, hello: h };
    const how = (code) => ({
      code, ms: this.o.helloTimeoutMs, log: this.log, turn: (fn) => this._turn(conn, fn),
      alive: () => !!pending.s.h && !pending.closed && pending.conn === conn && conn.slot === pending,
    });
    return step(() => this.authenticate?.(ctx), (v) => {
      const user = this.authenticate ? identityOf(v) : null;
      if (this.authenticate && !user) throw refusal(CLOSE_AUTH, 'credentials refused');
      if (!this.authorize) return this._admit(pending, h, user);
      return step(() => this.authorize({ ...ctx, user, room: roomOf(h) }), (ok) => {
        if (!ok) throw refusal(CLOSE_FORBIDDEN, `room ${JSON.stringify(roomOf(h).slice(0, 60))} refused`);
        this._admit(pending, h, user);
      }, how(CLOSE_FORBIDDEN));
    }, how(CLOSE_AUTH));
  }

  /** Take over the session the hello names, or a new one; user: {id, name} from authenticate, or null. */
  _admit(pending, h, user) {
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
      this._join(slot, room);
    }
    if (slot.room !== room) {
      this._leaveRoom(slot);
      this._join(slot, room);
    }
    // Who authenticate says, not who the hello claims to be.
    slot.user = user ? user.name : typeof h.user === 'string' ? h.user.slice(0, 64) : slot.user;
    slot.echo = h.echo === true;
    slot.conn = conn;
    conn.slot = slot;
    conn.req = null; // the hooks have seen it: not kept for the connection's life (headers, URL: ~1 KiB)
    this._dirty.add(slot); // room, user, echo
    this._touched.add(slot);
    this._drain(slot);
    this._presence(slot, 'join');
  }

  _forgetPending(pending) {
    if (pending.conn && pending.conn.slot === pending) pending.conn.slot = null;
    pending.conn = null;
    this._drop(pending);
  }

  /** Free a slot's session and timer (no store change). */
  _drop(slot) {
    clearTimeout(slot.timer);
    slot.timer = null;
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
      this._leaveRoom(slot);
      this._deleted.add(slot.id);
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
    if (!quiet && !this._quiet && slot.id && this.sessions.get(slot.id) === slot && !this.closed) this._presence(slot, 'leave');
  }

  _request(slot, id, binary, payload) {
    this.stats.requests++;
    const errorOf = (e) => JSON.stringify({ code: String(e?.code || 'INTERNAL'), message: String(e?.message ?? e) });
    const answer = (isError, v) => this._turn(null, () => {
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
    let v;
    try {
      v = this.onRequest({ session: { id: slot.id, user: slot.user, userId: slot.owner, room: slot.room }, data: binary ? payload : utf8(payload), binary, relay: this });
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
          this.bus.publish(slot.room, { from: slot.id, channel: ev.channel, flags: ev.flags & FRAME_F_BINARY, payload: ev.data });
          break;
        case SEV_REQUEST:
          this._request(slot, ev.id, (ev.flags & FRAME_F_BINARY) !== 0, ev.data);
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
      this._settle();
    } catch (e) {
      this.stats.errors++;
      this.log(`relay: ${e?.stack || e}`);
    } finally {
      this._inTurn = false;
    }
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
    for (const slot of flushed) if (slot.s.h) this._arm(slot);
  }

  _commit() {
    if (!this._dirty.size && !this._deleted.size) return;
    // A store that lives in this process only needs the state when the
    // relay goes (close() commits everything then): no serializing per turn.
    if (this.store.inProcess && !this.closed) {
      for (const id of this._deleted) this._later.delete(id);
      for (const slot of this._dirty) if (slot.id) this._later.set(slot.id, slot);
      this.store.commit([], [...this._deleted]);
      this._dirty.clear();
      this._deleted.clear();
      return;
    }
    const upserts = [];
    for (const slot of this._dirty) {
      if (!slot.s.h || !slot.id || this.sessions.get(slot.id) !== slot) continue;
      upserts.push({ id: slot.id, room: slot.room, user: slot.user, owner: slot.owner, echo: slot.echo, blob: slot.s.serialize() });
    }
    const deletes = [...this._deleted];
    this.store.commit(upserts, deletes);
    this.stats.commits++;
    this._dirty.clear();
    this._deleted.clear();
  }

  /**
   * The slot's one timer, at its session's next deadline. A deadline that
   * moved later (the idle timeout, after every message received) keeps the
   * timer already set: it fires early, the tick does nothing, and it is
   * re-armed then; so a busy connection does not reset a timer per message.
   */
  _arm(slot) {
    const d = slot.s.deadline();
    if (slot.timer && d >= slot.due) return;
    clearTimeout(slot.timer);
    slot.timer = null;
    slot.due = d;
    if (d < 0) return;
    slot.timer = setTimeout(() => {
      slot.timer = null;
      slot.due = -1;
      this._turn(slot.conn, () => {
        if (!slot.s.h) return;
        if (slot.conn) slot.s.fn.sb_session_set_buffered(slot.s.h, slot.conn.ws.bufferedAmount);
        this._call(slot, 'tick', slot.s.fn.sb_session_tick(slot.s.h, Date.now()));
        this._drain(slot);
        if (slot.s.h) this._touched.add(slot); // re-armed (and flushed) in _settle
      }, slot);
    }, Math.max(1, Math.min(d - Date.now(), 0x7fffffff)));
    slot.timer.unref?.();
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
    ws.on('error', (e) => this.log(`relay: ${conn.remote}: ${e.message}`));
    if (ws.protocol !== SESSION_PROTOCOL) {
      ws.close(CLOSE_PROTOCOL, `BAD_STATE: subprotocol ${SESSION_PROTOCOL} required`);
      return;
    }
    this.conns.add(conn);
    ws.on('message', (data, isBinary) => this._turn(conn, () => this._message(conn, data, isBinary)));
    ws.on('close', (code) => {
      this.conns.delete(conn);
      clearTimeout(conn.resume);
      this._turn(conn, () => this._closed(conn, code));
    });
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
