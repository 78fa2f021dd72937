// What the relay keeps beside each session (Slot) and each WebSocket (Conn),
// its options with their defaults (docs/relay.md, "Options"), and the small
// pure helpers of a turn: close codes and reasons, the hello's JSON.
import { randomBytes } from 'node:crypto';
import { SwitchboardError } from '../errors.js';
import { utf8 } from '../session.js';
import {
  SO_HELLO_TIMEOUT, SO_IDLE_TIMEOUT, SO_SESSION_TTL, SO_QUEUE_MAX_COUNT, SO_QUEUE_MAX_BYTES,
  SO_BATCH_DELAY, SO_COMPRESS, SO_COMPRESS_LEVEL, SO_MAX_PAYLOAD, SO_MAX_MESSAGE, SO_MAX_FRAMES, SO_HIGH_WATER,
  SO_RATE_MSGS, SO_RATE_MSGS_BURST, SO_RATE_BYTES, SO_RATE_BYTES_BURST, SO_RATE_TOLERANCE, SO_STALL_TIMEOUT,
  CLOSE_PROTOCOL, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TRY_AGAIN,
} from '../constants.js';
import { LOG_DEFAULTS, roomName } from './rooms.mjs';

export const DEFAULTS = {
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
  // zlib level of what the relay sends, as the client's: every recipient's
  // copy of a room message is deflated on its own window, so this is paid
  // once per delivery; 1 costs ~1/3.5 of 6 for ~25% more bytes on a chat
  // message (docs/relay.md, "What the relay keeps").
  compressLevel: 6,
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
  maxPendingRequests: 64,   // requests of one session in onRequest at once; past it: QUEUE_FULL
  maxSubscriptions: 64,     // rooms one session may be in (its hello's room included)
  presenceList: 100,        // presence carries the room's whole user list up to this many members
  presenceDelay: 50,        // ms: the others' presence notices are written together this often (0: at once)
  ...LOG_DEFAULTS,          // each room's log: roomHistory, roomHistoryBytes, roomHistoryMs
};

export const OPTION_KEYS = [
  ['maxPayload', SO_MAX_PAYLOAD], ['maxMessage', SO_MAX_MESSAGE], ['maxFrames', SO_MAX_FRAMES],
  ['maxHistory', SO_QUEUE_MAX_COUNT], ['maxHistoryBytes', SO_QUEUE_MAX_BYTES], ['highWater', SO_HIGH_WATER],
  ['sessionTtlMs', SO_SESSION_TTL], ['helloTimeoutMs', SO_HELLO_TIMEOUT], ['idleTimeoutMs', SO_IDLE_TIMEOUT],
  ['batchDelayMs', SO_BATCH_DELAY], ['compress', SO_COMPRESS], ['compressLevel', SO_COMPRESS_LEVEL],
  ['rateMessages', SO_RATE_MSGS], ['rateMessagesBurst', SO_RATE_MSGS_BURST], ['rateBytes', SO_RATE_BYTES],
  ['rateBytesBurst', SO_RATE_BYTES_BURST], ['rateToleranceMs', SO_RATE_TOLERANCE], ['stallTimeoutMs', SO_STALL_TIMEOUT],
];

export const newId = () => randomBytes(16).toString('base64url');

/** At most 123 bytes of UTF-8 (a WebSocket close reason). */
export function closeReason(text) {
  let s = String(text);
  while (Buffer.byteLength(s) > 123) s = s.slice(0, -1);
  return s;
}

/** The close code for an error caught in a turn. */
export function closeCodeOf(err) {
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
export function parseHello(bytes, max) {
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

export const roomOf = (h) => roomName(h.room) || 'lobby';

/**
 * A session's subscriptions by channel: the part of Map's API the relay
 * uses, on an array (most sessions have one, at most maxSubscriptions: a
 * Map's hash table cost ~150 B more per idle connection).
 */
export class Subs {
  constructor() { this.a = []; }
  get size() { return this.a.length; }
  get(channel) { for (const s of this.a) if (s.channel === channel) return s; return undefined; }
  set(channel, sub) {
    const i = this.a.findIndex((s) => s.channel === channel);
    if (i >= 0) this.a[i] = sub;
    else this.a.push(sub);
    return this;
  }
  delete(channel) {
    const i = this.a.findIndex((s) => s.channel === channel);
    if (i >= 0) this.a.splice(i, 1);
    return i >= 0;
  }
  values() { return this.a.values(); }
}

/** The fields of an sb_session object the relay keeps beside it. */
export class Slot {
  constructor(s) {
    this.s = s;          // ServerSession (js/server/session.mjs)
    this.id = null;      // null while pending (no hello accepted yet)
    this.conn = null;    // the Conn attached, or null while detached
    /** channel -> subscription (0: the hello's room) */
    this.subs = new Subs();
    this.user = '';
    this.owner = null;   // the authenticated user id that created it (authenticate), or null
    this.echo = false;
    this.due = -1;       // its session's next deadline, on the relay's Timers
    this.at = -1;        // its place there
    this.hello = null;   // pending: the client's hello, until decided
    this.closed = false; // SEV_CLOSED seen
    this.pending = 0;    // its requests in onRequest
    this.gen = 1;        // a shared engine's generation of it: another process's claim raises it
  }

  get room() { return this.subs.get(0)?.room ?? 'lobby'; }
  /** Its subscription to room, if any. */
  subOf(room) {
    for (const sub of this.subs.values()) if (sub.room === room) return sub;
    return null;
  }
  /** What it is called in presence and on what it sends. */
  get name() { return this.user || this.id.slice(0, 6); }
}

/** A WebSocket's Conn, for the listeners all sockets share. */
export const CONN = Symbol('conn');

/**
 * One listener of each kind for every socket of a relay (`this` is the
 * socket), not three closures per connection: 10,000 idle ones each kept them.
 */
export function socketListeners(relay) {
  return {
    message(data, isBinary) {
      const conn = this[CONN];
      relay._turn(conn, () => relay._message(conn, data, isBinary));
    },
    close(code) {
      const conn = this[CONN];
      relay.conns.delete(conn);
      clearTimeout(conn.resume);
      relay._turn(conn, () => relay._closed(conn, code));
    },
    error(e) { relay.log(`relay: ${this[CONN].remote}: ${e.message}`); },
  };
}

/** One WebSocket. */
export class Conn {
  constructor(ws, req) {
    this.ws = ws;
    this.req = req;      // the upgrade request (authenticate reads its URL, headers)
    this.remote = req?.socket?.remoteAddress;
    this.slot = null;
    this.pausedUntil = 0; // over a rate limit: not read until then
    this.resume = null;
  }
}
