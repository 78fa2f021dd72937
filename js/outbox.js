// Batching and queues: thin glue over the C state machines in src/batch.c and
// src/queue.c (docs/protocol.md §8–§9). The glue owns the timers and the
// transport; the core decides everything else.
import { core, toBytes, SwitchboardError } from './core.js';
import { encodeFrame, kindId, BatchReader, frameFromView } from './frame.js';
import {
  QUEUE_REJECT, QUEUE_DROP_OLDEST, QUEUE_DROP_NEWEST, BATCH_PLAIN, BATCH_DEFLATE, BATCH_SHARED, BATCH_OUT, BATCH_DUE,
  BATCH_STAT_FRAMES, BATCH_STAT_BATCHES, BATCH_STAT_RAW_BYTES, BATCH_STAT_OUT_BYTES, BATCH_STAT_COMPRESSED, BATCH_STAT_SKIPPED,
  OUTBOX_EV_ACK, OUTBOX_EV_DROP, OUTBOX_EV_EXPIRED, OUTBOX_EV_TIMEOUT, OUTBOX_EV_DEADLETTER,
  OUTBOX_STAT_DEPTH, OUTBOX_STAT_BYTES, OUTBOX_STAT_IN_FLIGHT, OUTBOX_STAT_SENT, OUTBOX_STAT_RETRIES, OUTBOX_STAT_ACKED,
  OUTBOX_STAT_DROPS, OUTBOX_STAT_EXPIRED, OUTBOX_STAT_DEADLETTERS, OUTBOX_STAT_RTT, OUTBOX_STAT_RTT_LAST,
  INBOX_STAT_DELIVERED, INBOX_STAT_DUPLICATES, INBOX_STAT_HELD, INBOX_STAT_REFUSED, INBOX_STAT_SKIPPED, INBOX_STAT_ACKS,
  OUTBOX_EVENT_ID, OUTBOX_EVENT_CHANNEL, OUTBOX_EVENT_SEQ, OUTBOX_EVENT_ATTEMPTS, OUTBOX_EVENT_VALUE,
  FRAME_VIEW_FLAGS, FRAME_VIEW_DEADLINE, FRAME_F_COMPRESSED, FRAME_F_LAST, FRAME_F_BINARY, FRAME_VERSION, FRAME_ACK, FRAME_BATCH,
} from './constants.js';
import { randomSeed } from './glue.js';

const now = () => performance.timeOrigin + performance.now();
const POLICIES = { reject: QUEUE_REJECT, 'drop-oldest': QUEUE_DROP_OLDEST, 'drop-newest': QUEUE_DROP_NEWEST };
const COMPRESSION = { none: BATCH_PLAIN, deflate: BATCH_DEFLATE, shared: BATCH_SHARED };
// Outbox event type -> the event's name.
const EV_TYPES = {
  [OUTBOX_EV_ACK]: 'ack', [OUTBOX_EV_DROP]: 'drop', [OUTBOX_EV_EXPIRED]: 'expired',
  [OUTBOX_EV_TIMEOUT]: 'timeout', [OUTBOX_EV_DEADLETTER]: 'deadletter',
};
const EV_CODES = { drop: 'QUEUE_FULL', expired: 'EXPIRED', deadletter: 'TIMEOUT' };

function emit(target, type, detail) {
  // Building events nobody listens to is most of the per-message cost.
  if (target._listened.has(type)) target.dispatchEvent(new CustomEvent(type, { detail }));
}

/** EventTarget that knows which event types have ever had a listener. */
class Emitter extends EventTarget {
  constructor() {
    super();
    this._listened = new Set();
  }

  addEventListener(type, listener, options) {
    this._listened.add(type);
    super.addEventListener(type, listener, options);
  }
}

/** Typed views over a fixed-layout C struct (uint32 words, then one float64 at
 * f64Off), refreshed when memory grows. */
class StructView {
  constructor(c, ptr, f64Off) {
    this.c = c;
    this.ptr = ptr;
    this.f64Off = f64Off;
    this.buf = null;
  }

  get() {
    const buf = this.c.memory.buffer;
    if (buf !== this.buf) {
      this.buf = buf;
      this.u32 = new Uint32Array(buf, this.ptr, this.f64Off >> 2);
      this.f64 = new Float64Array(buf, this.ptr + this.f64Off, 1);
    }
    return this;
  }
}

function positive(v, dflt, name, { min = 0, int = false, max = Number.MAX_SAFE_INTEGER } = {}) {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max || (int && !Number.isInteger(v))) {
    throw new SwitchboardError('INVALID', `${name} must be a${int ? 'n integer' : ' number'} in ${min}..${max}`);
  }
  return v;
}


/** One timer per object, re-armed at the core's next deadline. */
class Timer {
  constructor(fn) { this.fn = fn; this.id = null; this.at = -1; }
  arm(at) {
    if (at < 0) return this.clear();
    if (this.id !== null && this.at === at) return;
    this.clear();
    this.at = at;
    this.id = setTimeout(() => { this.id = null; this.at = -1; this.fn(); }, Math.max(0, at - now()));
  }
  clear() {
    if (this.id !== null) clearTimeout(this.id);
    this.id = null;
    this.at = -1;
  }
}

// ---------------------------------------------------------------------------

/**
 * Collects frames and flushes them as one transport message on max count,
 * max bytes or max delay, whichever comes first; compresses a batch only
 * above `compressAbove` bytes and only when that is smaller.
 * Events: `flush` (detail: {bytes, frames, compressed}).
 */
export class Batcher extends Emitter {
  /**
   * @param {{maxMessages?: number, maxBytes?: number, maxDelayMs?: number,
   *   compressAbove?: number, compression?: 'shared'|'deflate'|'none', level?: number}} [opts]
   * @param {(bytes: Uint8Array, info: {frames: number, compressed: boolean}) => void} [onFlush]
   */
  constructor(opts = {}, onFlush) {
    super();
    this._c = core();
    const mode = COMPRESSION[opts.compression ?? 'shared'];
    if (mode === undefined) throw new SwitchboardError('INVALID', 'compression must be shared, deflate or none');
    this._h = this._c.fn.sb_batch_create(
      positive(opts.maxMessages, 100, 'maxMessages', { min: 1, int: true, max: 0xffffffff }),
      positive(opts.maxBytes, 64 * 1024, 'maxBytes', { min: 1, int: true, max: 0x7fffffff }),
      positive(opts.maxDelayMs, 10, 'maxDelayMs'),
      positive(opts.compressAbove, 1024, 'compressAbove', { int: true, max: 0xffffffff }),
      mode, positive(opts.level, 6, 'level', { int: true, max: 9 }));
    if (!this._h) throw new SwitchboardError('INVALID', 'bad Batcher options');
    this._onFlush = onFlush;
    this._timer = new Timer(() => this._poll());
  }

  /**
   * Add one frame: encoded bytes, or a frame object for encodeFrame().
   * @param {Uint8Array|object} frame
   */
  add(frame) {
    const c = this._c;
    if (!this._h) throw new SwitchboardError('CLOSED', 'Batcher is closed');
    const bytes = frame instanceof Uint8Array || ArrayBuffer.isView(frame) || frame instanceof ArrayBuffer
      ? toBytes(frame) : encodeFrame(frame);
    const pending = c.fn.sb_batch_pending(this._h);
    const rc = c.check(c.fn.sb_batch_add(this._h, c.writeBytes(bytes), bytes.length, now()), 'Batcher.add');
    if (rc & BATCH_OUT) this._deliver(c.fn.sb_batch_out_len(this._h), pending);
    if (rc & BATCH_DUE) this._flushNow();
    else this._timer.arm(c.fn.sb_batch_deadline(this._h));
  }

  /** Flush whatever is pending now (also done by close()). */
  flush() {
    if (!this._h) return;
    this._flushNow();
  }

  /** The link was re-established: the next compressed batch starts a fresh window. */
  resetStream() {
    if (this._h) this._c.fn.sb_batch_reset_stream(this._h);
  }

  get pending() {
    return this._h ? this._c.fn.sb_batch_pending(this._h) : 0;
  }

  stats() {
    const s = (i) => (this._h ? this._c.fn.sb_batch_stat(this._h, i) : 0);
    const raw = s(BATCH_STAT_RAW_BYTES);
    const out = s(BATCH_STAT_OUT_BYTES);
    return {
      frames: s(BATCH_STAT_FRAMES), batches: s(BATCH_STAT_BATCHES), rawBytes: raw, outBytes: out,
      compressed: s(BATCH_STAT_COMPRESSED), compressionSkipped: s(BATCH_STAT_SKIPPED),
      pending: this.pending, pendingBytes: this._h ? this._c.fn.sb_batch_pending_bytes(this._h) : 0,
      ratio: out ? raw / out : 1,
    };
  }

  /** Flush, then free the core object. */
  close() {
    if (!this._h) return;
    this._flushNow();
    this._timer.clear();
    this._c.fn.sb_batch_destroy(this._h);
    this._h = 0;
  }

  _poll() {
    if (!this._h) return;
    const frames = this._c.fn.sb_batch_pending(this._h);
    const n = this._c.check(this._c.fn.sb_batch_poll(this._h, now()), 'Batcher');
    if (n > 0) this._deliver(n, frames);
    this._timer.arm(this._c.fn.sb_batch_deadline(this._h));
  }

  _flushNow() {
    const frames = this._c.fn.sb_batch_pending(this._h);
    const n = this._c.check(this._c.fn.sb_batch_flush(this._h), 'Batcher.flush');
    this._timer.clear();
    if (n > 0) this._deliver(n, frames);
  }

  _deliver(n, frames) {
    const c = this._c;
    const bytes = c.readBytes(c.fn.sb_batch_out(this._h), n);
    const compressed = (bytes[1] & FRAME_F_COMPRESSED) !== 0;
    const info = { bytes, frames, compressed };
    if (this._onFlush) this._onFlush(bytes, info);
    emit(this, 'flush', info);
  }
}

// ---------------------------------------------------------------------------

/**
 * Outbound queue with acks: bounded (count and bytes), priorities, overflow
 * policy, TTL, a window of frames in flight, ack timeouts with retries
 * (exponential backoff, full jitter), cumulative + selective acks,
 * serialize/restore.
 * Events: `ack`, `drop`, `expired`, `timeout`, `deadletter` (detail:
 * {id, channel, seq, attempts, rtt?, retryInMs?, error?}).
 */
export class Outbox extends Emitter {
  /**
   * @param {{transmit: (bytes: Uint8Array) => void, maxMessages?: number, maxBytes?: number,
   *   overflow?: 'reject'|'drop-oldest'|'drop-newest', window?: number, ackTimeoutMs?: number,
   *   retryMinMs?: number, retryMaxMs?: number, maxRetries?: number, maxChannels?: number,
   *   seed?: number, online?: boolean, state?: Uint8Array}} opts
   */
  constructor(opts = {}) {
    super();
    if (typeof opts.transmit !== 'function') throw new SwitchboardError('INVALID', 'Outbox needs a transmit(bytes) function');
    const policy = POLICIES[opts.overflow ?? 'reject'];
    if (policy === undefined) throw new SwitchboardError('INVALID', 'overflow must be reject, drop-oldest or drop-newest');
    this._c = core();
    const fn = this._c.fn;
    const retryMin = positive(opts.retryMinMs, 100, 'retryMinMs', { min: 0.001 });
    this._h = fn.sb_outbox_create(
      positive(opts.maxMessages, 1000, 'maxMessages', { min: 1, int: true, max: 1 << 24 }),
      positive(opts.maxBytes, 8 << 20, 'maxBytes', { min: 1 }),
      policy,
      positive(opts.window, 64, 'window', { min: 1, int: true, max: 0xffffffff }),
      positive(opts.ackTimeoutMs, 5000, 'ackTimeoutMs', { min: 0.001 }),
      retryMin,
      positive(opts.retryMaxMs, Math.max(30000, retryMin), 'retryMaxMs', { min: retryMin }),
      positive(opts.maxRetries, 0, 'maxRetries', { int: true, max: 0x7fffffff }),
      positive(opts.maxChannels, 256, 'maxChannels', { min: 1, int: true, max: 1 << 20 }),
      opts.seed === undefined ? randomSeed() : opts.seed >>> 0);
    if (!this._h) throw new SwitchboardError('INVALID', 'bad Outbox options');
    this._transmit = opts.transmit;
    this._ev = new StructView(this._c, fn.sb_outbox_event_view(this._h), OUTBOX_EVENT_VALUE);
    this._waiters = new Map(); // id -> {resolve, reject}
    this._timer = new Timer(() => this.pump());
    this._pumping = false;
    this._scheduled = false;
    if (opts.state) {
      const b = toBytes(opts.state);
      this._c.check(fn.sb_outbox_restore(this._h, this._c.writeBytes(b), b.length, now()), 'Outbox restore');
    }
    if (opts.online === false) fn.sb_outbox_set_online(this._h, 0, now());
    this._schedule();
  }

  /**
   * Queue a message; returns its id. Throws QUEUE_FULL (reject policy),
   * TOO_LARGE, INVALID, CLOSED. Transmission happens in a microtask, so a
   * burst of sends fills the window together.
   * @param {string|ArrayBuffer|ArrayBufferView} payload
   * @param {{channel?: number, kind?: string|number, priority?: number, ttlMs?: number,
   *   corr?: number, binary?: boolean, last?: boolean}} [opts]
   */
  enqueue(payload, opts = {}) {
    const c = this._c;
    if (!this._h) throw new SwitchboardError('CLOSED', 'Outbox is closed');
    let p;
    let n;
    if (typeof payload === 'string') [p, n] = c.writeString(payload);
    else {
      const b = toBytes(payload);
      p = c.writeBytes(b);
      n = b.length;
    }
    const binary = opts.binary ?? typeof payload !== 'string';
    const flags = (binary ? FRAME_F_BINARY : 0) | (opts.last ? FRAME_F_LAST : 0);
    const id = c.check(c.fn.sb_outbox_send(this._h, kindId(opts.kind), (opts.channel ?? 0) >>> 0,
      opts.priority ?? 0, flags, (opts.corr ?? 0) >>> 0, opts.ttlMs ?? 0, p, n, now()), 'Outbox.send');
    this._drainEvents();
    this._schedule();
    return id;
  }

  /**
   * Queue a message and wait for its ack. Resolves {id, rtt}; rejects with
   * SwitchboardError QUEUE_FULL (dropped), EXPIRED, TIMEOUT (dead letter)
   * or CLOSED.
   */
  send(payload, opts) {
    let id;
    try {
      id = this.enqueue(payload, opts);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this._settled?.has(id)) {
      // dropped synchronously (drop-newest)
      const r = this._settled.get(id);
      this._settled.delete(id);
      return Promise.reject(r);
    }
    return new Promise((resolve, reject) => this._waiters.set(id, { resolve, reject }));
  }

  /** Feed an ack frame (encoded) from the peer. */
  receiveAck(frameBytes) {
    if (!this._h) return 0;
    const c = this._c;
    const b = toBytes(frameBytes);
    const n = c.check(c.fn.sb_outbox_on_ack(this._h, c.writeBytes(b), b.length, now()), 'Outbox.receiveAck');
    this._drainEvents();
    this._schedule();
    return n;
  }

  /** Link state: offline stops transmissions and ack timers; online resends every unacked frame. */
  setOnline(online) {
    if (!this._h) return;
    this._c.fn.sb_outbox_set_online(this._h, online ? 1 : 0, now());
    this._schedule();
  }

  /** Transmit everything that is due now, fire events, re-arm the timer. */
  pump() {
    if (!this._h || this._pumping) return;
    const c = this._c;
    const fn = c.fn;
    this._pumping = true;
    try {
      for (;;) {
        const n = c.check(fn.sb_outbox_next_frame(this._h, now()), 'Outbox');
        this._drainEvents();
        if (n === 0) break;
        this._transmit(c.readBytes(fn.sb_outbox_out(this._h), n));
        if (!this._h) return; // closed by the transport callback
      }
      const d = fn.sb_outbox_deadline(this._h);
      this._timer.arm(d);
    } finally {
      this._pumping = false;
    }
  }

  /** Whole queue state for persistence (IndexedDB…); restore with `new Outbox({state})`. */
  serialize() {
    const c = this._c;
    if (!this._h) throw new SwitchboardError('CLOSED', 'Outbox is closed');
    const n = c.check(c.fn.sb_outbox_serialize(this._h), 'Outbox.serialize');
    return c.readBytes(c.fn.sb_outbox_out(this._h), n);
  }

  stats() {
    const s = (i) => (this._h ? this._c.fn.sb_outbox_stat(this._h, i) : 0);
    return {
      depth: s(OUTBOX_STAT_DEPTH), bytes: s(OUTBOX_STAT_BYTES), inFlight: s(OUTBOX_STAT_IN_FLIGHT),
      sent: s(OUTBOX_STAT_SENT), retries: s(OUTBOX_STAT_RETRIES), acked: s(OUTBOX_STAT_ACKED),
      drops: s(OUTBOX_STAT_DROPS), expired: s(OUTBOX_STAT_EXPIRED), deadLetters: s(OUTBOX_STAT_DEADLETTERS),
      rtt: s(OUTBOX_STAT_RTT), rttLast: s(OUTBOX_STAT_RTT_LAST),
    };
  }

  /** Free the core object; pending send() promises reject with CLOSED. */
  close() {
    if (!this._h) return;
    this._timer.clear();
    this._c.fn.sb_outbox_destroy(this._h);
    this._h = 0;
    for (const w of this._waiters.values()) w.reject(new SwitchboardError('CLOSED', 'Outbox closed'));
    this._waiters.clear();
  }

  _schedule() {
    if (this._scheduled || !this._h) return;
    this._scheduled = true;
    queueMicrotask(() => {
      this._scheduled = false;
      this.pump();
    });
  }

  _drainEvents() {
    const fn = this._c.fn;
    let t;
    while ((t = fn.sb_outbox_next_event(this._h)) !== 0) {
      const ev = this._ev.get();
      const u = ev.u32;
      const value = ev.f64[0];
      const type = EV_TYPES[t];
      const detail = {
        id: u[OUTBOX_EVENT_ID >> 2], channel: u[OUTBOX_EVENT_CHANNEL >> 2],
        seq: u[OUTBOX_EVENT_SEQ >> 2], attempts: u[OUTBOX_EVENT_ATTEMPTS >> 2],
      };
      if (type === 'ack') detail.rtt = value;
      if (type === 'timeout') detail.retryInMs = value;
      const code = EV_CODES[type];
      if (code) detail.error = new SwitchboardError(code, `message ${detail.id} ${type === 'drop' ? 'dropped: queue full' : type === 'expired' ? 'expired before its ack' : 'got no ack after its retries'}`);
      const w = this._waiters.get(detail.id);
      if (type === 'ack' && w) {
        this._waiters.delete(detail.id);
        w.resolve({ id: detail.id, rtt: detail.rtt });
      } else if (code) {
        if (w) {
          this._waiters.delete(detail.id);
          w.reject(detail.error);
        } else {
          (this._settled ??= new Map()).set(detail.id, detail.error);
          if (this._settled.size > 64) this._settled.delete(this._settled.keys().next().value);
        }
      }
      emit(this, type, detail);
    }
  }
}

// ---------------------------------------------------------------------------

/**
 * Receiving side: per-channel reorder and dedup (exactly once, in order) and
 * acks back to the sender's Outbox.
 * Events: `message` (detail: the frame {kind, flags, channel, id, seq, corr,
 * deadline, payload}).
 */
export class Inbox extends Emitter {
  /**
   * @param {{sendAck: (bytes: Uint8Array) => void, window?: number, maxBytes?: number,
   *   maxChannels?: number, ackDelayMs?: number, text?: boolean, outbox?: Outbox,
   *   state?: Uint8Array, onMessage?: (frame: object) => void}} opts
   */
  constructor(opts = {}) {
    super();
    if (typeof opts.sendAck !== 'function') throw new SwitchboardError('INVALID', 'Inbox needs a sendAck(bytes) function');
    this._c = core();
    const fn = this._c.fn;
    this._h = fn.sb_inbox_create(
      positive(opts.window, 1024, 'window', { min: 1, int: true, max: 0xffffffff }),
      positive(opts.maxBytes, 8 << 20, 'maxBytes', { min: 1 }),
      positive(opts.maxChannels, 256, 'maxChannels', { min: 1, int: true, max: 1 << 20 }),
      positive(opts.ackDelayMs, 0, 'ackDelayMs'));
    if (!this._h) throw new SwitchboardError('INVALID', 'bad Inbox options');
    this._sendAck = opts.sendAck;
    this._onMessage = opts.onMessage;
    this._outbox = opts.outbox;
    this._text = opts.text === true;
    this._view = new StructView(this._c, fn.sb_inbox_view(this._h), FRAME_VIEW_DEADLINE);
    this._ackScheduled = false;
    this._reader = new BatchReader({ maxPayload: Math.min(0x7fffffff, opts.maxBytes ?? 8 << 20) });
    this._timer = new Timer(() => this._acks());
    if (opts.state) {
      const b = toBytes(opts.state);
      this._c.check(fn.sb_inbox_restore(this._h, this._c.writeBytes(b), b.length), 'Inbox restore');
    }
  }

  /**
   * Feed one transport message (a frame or a batch). Ack frames go to the
   * `outbox` given at construction; the rest is delivered in order, once.
   * Returns the number of frames delivered.
   */
  receive(message) {
    if (!this._h) throw new SwitchboardError('CLOSED', 'Inbox is closed');
    const b = toBytes(message);
    // A lone frame (the common case on a quiet link) skips the batch reader;
    // the C side still decodes it strictly. Byte 0 is version << 4 | kind.
    if (b.length > 0 && (b[0] & 0xf0) === FRAME_VERSION << 4 && (b[0] & 0x0f) !== FRAME_BATCH) {
      if ((b[0] & 0x0f) !== FRAME_ACK) return this.push(b);
      if (this._outbox) this._outbox.receiveAck(b);
      return 0;
    }
    let delivered = 0;
    let firstError = null;
    for (const f of this._reader.read(b)) {
      // One bad frame (e.g. a malformed ack) must not strand the good ones
      // after it: process them all, then report the first error.
      try {
        if (f.kind === 'ack') {
          if (this._outbox) this._outbox.receiveAck(f.bytes);
        } else {
          delivered += this.push(f.bytes);
        }
      } catch (e) {
        firstError ??= e;
      }
      if (!this._h) break;
    }
    if (firstError) throw firstError;
    return delivered;
  }

  /**
   * Feed one encoded frame (not a batch). Returns the number delivered. Acks
   * go out in a microtask, so frames received in one task share one ack.
   */
  push(frameBytes) {
    const c = this._c;
    const fn = c.fn;
    const b = toBytes(frameBytes);
    c.check(fn.sb_inbox_push(this._h, c.writeBytes(b), b.length, now()), 'Inbox.push');
    let n = 0;
    while (fn.sb_inbox_next(this._h) === 1) {
      const bytes = c.readBytes(fn.sb_inbox_frame(this._h), fn.sb_inbox_frame_len(this._h));
      const v = this._view.get();
      const f = frameFromView(v.u32, v.f64, bytes, 0, this._text && !(v.u32[FRAME_VIEW_FLAGS >> 2] & FRAME_F_BINARY));
      n++;
      if (this._onMessage) this._onMessage(f);
      emit(this, 'message', f);
      if (!this._h) return n;
    }
    if (!this._ackScheduled) {
      this._ackScheduled = true;
      queueMicrotask(() => { this._ackScheduled = false; this._acks(); });
    }
    return n;
  }

  /** The peer restarted without its state (new session): forget dedup state. */
  reset() {
    if (this._h) this._c.fn.sb_inbox_reset(this._h);
    this._reader.resetStream();
  }

  /** Dedup state, held and undelivered frames, for persistence (restore with `new Inbox({state})`). */
  serialize() {
    const c = this._c;
    const n = c.check(c.fn.sb_inbox_serialize(this._h), 'Inbox.serialize');
    return c.readBytes(c.fn.sb_inbox_out(this._h), n);
  }

  stats() {
    const s = (i) => (this._h ? this._c.fn.sb_inbox_stat(this._h, i) : 0);
    return {
      delivered: s(INBOX_STAT_DELIVERED), duplicates: s(INBOX_STAT_DUPLICATES), held: s(INBOX_STAT_HELD),
      refused: s(INBOX_STAT_REFUSED), skipped: s(INBOX_STAT_SKIPPED), acks: s(INBOX_STAT_ACKS),
    };
  }

  close() {
    if (!this._h) return;
    this._timer.clear();
    this._c.fn.sb_inbox_destroy(this._h);
    this._h = 0;
    this._reader.close();
  }

  _acks() {
    if (!this._h) return;
    const c = this._c;
    const fn = c.fn;
    let n;
    while ((n = c.check(fn.sb_inbox_take_ack(this._h, now()), 'Inbox')) > 0) {
      this._sendAck(c.readBytes(fn.sb_inbox_out(this._h), n));
      if (!this._h) return;
    }
    this._timer.arm(fn.sb_inbox_deadline(this._h));
  }
}

// ---------------------------------------------------------------------------

/**
 * Ordered asynchronous processing of received messages: items start in
 * arrival order, at most `concurrency` at once; a failing handler is retried
 * with exponential backoff and full jitter, then moved to a dead-letter list
 * the app can inspect and replay. With concurrency 1 order is strict: a
 * failing item holds the line until it succeeds or is dead-lettered.
 * Events: `done` {item, attempts}, `retry` {item, attempts, error, delayMs},
 * `deadletter` {item, attempts, error}, `idle`.
 */
export class MessageQueue extends Emitter {
  /**
   * @param {(item: any, info: {attempt: number, signal: AbortSignal}) => any} handler
   * @param {{concurrency?: number, retries?: number, retryMinMs?: number, retryMaxMs?: number,
   *   maxQueued?: number, maxDeadLetters?: number, seed?: number}} [opts]
   */
  constructor(handler, opts = {}) {
    super();
    if (typeof handler !== 'function') throw new SwitchboardError('INVALID', 'MessageQueue needs a handler function');
    this._handler = handler;
    this._concurrency = positive(opts.concurrency, 1, 'concurrency', { min: 1, int: true });
    this._retries = positive(opts.retries, 3, 'retries', { int: true });
    this._min = positive(opts.retryMinMs, 100, 'retryMinMs', { min: 0.001 });
    this._max = positive(opts.retryMaxMs, Math.max(10000, this._min), 'retryMaxMs', { min: this._min });
    this._maxQueued = positive(opts.maxQueued, 10000, 'maxQueued', { min: 1, int: true });
    this._maxDead = positive(opts.maxDeadLetters, 1000, 'maxDeadLetters', { min: 1, int: true });
    // xorshift32, as sb_rng in src/switchboard.h: seeded, so tests replay.
    this._rng = (opts.seed === undefined ? randomSeed() : opts.seed >>> 0) || 0x9e3779b9;
    this._queue = [];   // {item, attempts}
    this._running = 0;
    this._waiting = 0;  // items sleeping before a retry
    this._dead = [];
    this._stats = { done: 0, failed: 0, retries: 0, deadLetters: 0 };
    this._paused = false;
    this._closed = false;
    this._abort = new AbortController();
    this._idleWaiters = [];
  }

  /** Queue an item; throws QUEUE_FULL past maxQueued, CLOSED after close(). */
  push(item) {
    if (this._closed) throw new SwitchboardError('CLOSED', 'MessageQueue is closed');
    if (this._queue.length >= this._maxQueued) throw new SwitchboardError('QUEUE_FULL', 'MessageQueue is full');
    this._queue.push({ item, attempts: 0 });
    this._next();
  }

  /** Dead letters: [{item, attempts, error}], oldest first (a copy). */
  get deadLetters() {
    return this._dead.slice();
  }

  /** Put dead letters (all, or those `filter` accepts) back at the end of the queue. */
  replay(filter) {
    const keep = [];
    let n = 0;
    for (const d of this._dead) {
      if (!filter || filter(d)) {
        this._queue.push({ item: d.item, attempts: 0 });
        n++;
      } else keep.push(d);
    }
    this._dead = keep;
    this._next();
    return n;
  }

  pause() { this._paused = true; }
  resume() { this._paused = false; this._next(); }

  /** Resolves when nothing is queued, running or waiting to retry. */
  idle() {
    if (this._isIdle()) return Promise.resolve();
    return new Promise((resolve) => this._idleWaiters.push(resolve));
  }

  stats() {
    return { queued: this._queue.length, running: this._running, waiting: this._waiting, deadLetterCount: this._dead.length, ...this._stats };
  }

  /** Stop: running handlers see their AbortSignal fire; nothing new starts. */
  close() {
    this._closed = true;
    this._queue.length = 0;
    this._abort.abort(new SwitchboardError('CLOSED', 'MessageQueue closed'));
    for (const t of this._timers ?? []) clearTimeout(t);
    this._timers?.clear();
    this._waiting = 0;
    this._checkIdle();
  }

  _isIdle() {
    return this._queue.length === 0 && this._running === 0 && this._waiting === 0;
  }

  _checkIdle() {
    if (!this._isIdle()) return;
    const w = this._idleWaiters;
    this._idleWaiters = [];
    for (const r of w) r();
    emit(this, 'idle', {});
  }

  _rand() {
    let x = this._rng;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this._rng = x;
    return ((Math.imul(x, 0x2545f491) >>> 0) >>> 8) / 16777216;
  }

  _delay(attempt) {
    let ceil = this._min;
    for (let i = 1; i < attempt && ceil < this._max; i++) ceil *= 2;
    ceil = Math.min(ceil, this._max);
    return this._min / 2 + (ceil - this._min / 2) * this._rand();
  }

  _next() {
    // Strict order with concurrency 1: a retrying item blocks the line.
    while (!this._paused && !this._closed && this._queue.length && this._running + (this._concurrency === 1 ? this._waiting : 0) < this._concurrency) {
      const job = this._queue.shift();
      this._run(job);
    }
  }

  async _run(job) {
    this._running++;
    job.attempts++;
    let error = null;
    try {
      await this._handler(job.item, { attempt: job.attempts, signal: this._abort.signal });
    } catch (e) {
      error = e ?? new Error('handler failed');
    }
    this._running--;
    if (this._closed) return this._checkIdle();
    if (!error) {
      this._stats.done++;
      emit(this, 'done', { item: job.item, attempts: job.attempts });
    } else if (job.attempts <= this._retries) {
      const delayMs = this._delay(job.attempts);
      this._stats.retries++;
      this._waiting++;
      emit(this, 'retry', { item: job.item, attempts: job.attempts, error, delayMs });
      this._timers ??= new Set();
      const t = setTimeout(() => {
        this._timers.delete(t);
        this._waiting--;
        if (this._closed) return;
        // Back to the front: it was first in line.
        this._queue.unshift(job);
        this._next();
      }, delayMs);
      this._timers.add(t);
    } else {
      this._stats.failed++;
      this._stats.deadLetters++;
      this._dead.push({ item: job.item, attempts: job.attempts, error });
      if (this._dead.length > this._maxDead) this._dead.shift();
      emit(this, 'deadletter', { item: job.item, attempts: job.attempts, error });
    }
    this._next();
    this._checkIdle();
  }
}
