// One switchboard.v1 session of the C core (src/session.h), for the hosts
// that carry it: the browser Socket (client role, this class) and the relay
// (server role, ServerSession in js/server/session.mjs, which names the
// server's exports so that no browser core links them). Bytes and options
// go in, events come out; every decision is the core's. Nothing here knows
// the protocol.
import { core } from './core.js';
import { SwitchboardError } from './errors.js';
import { randomSeed } from './glue.js';
import {
  SESSION_EVENT_CHANNEL, SESSION_EVENT_SEQ, SESSION_EVENT_ID, SESSION_EVENT_FLAGS,
  SESSION_EVENT_CODE, SESSION_EVENT_LEN, SESSION_EVENT_AUX, SESSION_EVENT_VALUE, FRAME_F_BINARY,
} from './constants.js';

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);


const decoder = new TextDecoder();

/** One drained event: numeric fields, and its bytes on demand. */
class SessionEvent {
  constructor(c) {
    this.c = c; this.copy = null; this.len = 0; this.ptr = 0; this.aux = 0;
    this.channel = 0; this.seq = 0; this.id = 0; this.flags = 0; this.code = 0; this.value = 0;
  }
  /** The bytes, copied out of the heap (kept by the caller if it wants). */
  get data() { return this.copy || (this.copy = this.len ? this.c.readBytes(this.ptr, this.len) : EMPTY); }
  /** The bytes as UTF-8, without an intermediate copy. */
  text() { return this.len ? decoder.decode(this.c.view(this.ptr, this.len)) : ''; }
  /** A relayed message's sender, as the server stamped it ('' if none). */
  from() { return this.aux ? decoder.decode(this.c.view(this.ptr + this.len, this.aux)) : ''; }
  /** The bytes as a view into the heap: for a consumer that copies them at once. */
  view() { return this.len ? this.c.view(this.ptr, this.len) : EMPTY; }
}

/**
 * What drain() reads events with, one per core, not per session (a relay
 * holds thousands): a DataView over the heap, and an event per nesting
 * level, since a handler may drain another session (a relay's fan-out).
 */
const readers = new WeakMap();
function readerOf(c) {
  let r = readers.get(c);
  if (!r) readers.set(c, (r = { dv: null, evs: [], depth: 0 }));
  return r;
}

export class Session {
  /**
   * @param {Iterable<[number, number]>} options [SO_* key, value] pairs
   * @param {number} [seed]
   * @param {object} [c] the core to run on (default: the one init() loaded)
   */
  constructor(options = [], seed = randomSeed(), c = core()) {
    this.c = c;
    this.fn = this.c.fn;
    this.h = this.create(seed >>> 0);
    if (!this.h) throw new SwitchboardError('NO_MEMORY', 'cannot create a session');
    for (const [k, v] of options) {
      if (v === undefined) continue;
      const rc = this.fn.sb_session_set(this.h, k, Number(v));
      if (rc < 0) { this.destroy(); throw this.c.error(rc, `session option ${k} = ${v}`); }
    }
  }

  /** The C session behind it: a client. */
  create(seed) { return this.fn.sb_session_create_client(seed); }

  /** Bytes (or a string, as UTF-8) into the scratch area: [ptr, len]. */
  put(data) {
    if (typeof data === 'string') return this.c.writeString(data);
    const bytes = data || EMPTY;
    return [this.c.writeBytes(bytes), bytes.length];
  }

  check(rc, what) {
    if (rc < 0) throw this.c.error(rc, what);
    return rc;
  }

  send(channel, binary, data, now) {
    const [p, n] = this.put(data);
    return this.check(this.fn.sb_session_send(this.h, channel >>> 0, binary ? FRAME_F_BINARY : 0, p, n, now), 'send');
  }

  request(channel, binary, data, timeout, now) {
    const [p, n] = this.put(data);
    return this.check(this.fn.sb_session_request(this.h, channel >>> 0, binary ? FRAME_F_BINARY : 0, p, n, timeout, now), 'request');
  }

  recv(data, text, now) {
    const [p, n] = this.put(data);
    return this.check(this.fn.sb_session_recv(this.h, p, n, text ? 1 : 0, now), 'recv');
  }

  /** Bytes at sb_session_out after a call that returned their length. */
  out(len) {
    return len > 0 ? this.c.readBytes(this.fn.sb_session_out(this.h), len) : EMPTY;
  }

  serialize() {
    return this.out(this.check(this.fn.sb_session_serialize(this.h), 'serialize'));
  }

  restore(blob, now) {
    const [p, n] = this.put(blob);
    return this.check(this.fn.sb_session_restore(this.h, p, n, now), 'restore');
  }

  id() {
    return decoder.decode(this.out(this.check(this.fn.sb_session_get_id(this.h), 'id')));
  }

  /** fn(h, bytes, len) for one of the sb_session_set_* taking bytes. */
  setBytes(fn, data) {
    const [p, n] = this.put(data);
    return this.check(this.fn[fn](this.h, p, n), fn);
  }

  setId(id) { return this.setBytes('sb_session_set_id', id); }

  stat(k) { return this.fn.sb_session_stat(this.h, k); }
  get state() { return this.fn.sb_session_state(this.h); }
  get mode() { return this.fn.sb_session_mode(this.h); }
  deadline() { return this.fn.sb_session_next_deadline(this.h); }

  /**
   * Hand every pending event to fn(type, ev). ev is reused: ev.data (a copy)
   * and ev.text() (decoded from the heap) are for use inside fn.
   */
  drain(fn) {
    const f = this.fn, c = this.c, r = readerOf(c);
    const ev = r.evs[r.depth] || (r.evs[r.depth] = new SessionEvent(c));
    let t, h;
    r.depth++;
    try {
      // fn may destroy the session (a final close): look at this.h each time.
      while ((h = this.h) && (t = f.sb_session_next_event(h))) {
        const v = f.sb_session_event_view(h);
        const heap = c.heap();
        const dv = r.dv && r.dv.buffer === heap.buffer ? r.dv : (r.dv = new DataView(heap.buffer));
        ev.channel = dv.getUint32(v + SESSION_EVENT_CHANNEL, true);
        ev.seq = dv.getUint32(v + SESSION_EVENT_SEQ, true);
        ev.id = dv.getUint32(v + SESSION_EVENT_ID, true);
        ev.flags = dv.getUint32(v + SESSION_EVENT_FLAGS, true);
        ev.code = dv.getInt32(v + SESSION_EVENT_CODE, true);
        ev.value = dv.getFloat64(v + SESSION_EVENT_VALUE, true);
        ev.len = dv.getUint32(v + SESSION_EVENT_LEN, true);
        ev.aux = dv.getUint32(v + SESSION_EVENT_AUX, true);
        ev.ptr = ev.len || ev.aux ? f.sb_session_event_data(h) : 0;
        ev.copy = null;
        fn(t, ev);
      }
    } finally {
      r.depth--;
    }
  }

  destroy() {
    if (this.h) this.fn.sb_session_destroy(this.h);
    this.h = 0;
  }
}

export const utf8 = (bytes) => decoder.decode(bytes);
export const bytesOf = (s) => encoder.encode(s);
