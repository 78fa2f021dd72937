// The Outbox (docs/protocol.md §9): thin glue over the outbound queue of
// src/queue.c. The glue owns the timer and the transport; the core decides
// what is sent, retried, acknowledged, dropped or expired.
import { core, toBytes, SwitchboardError } from './core.js';
import { kindId } from './frame.js';
import {
  OUTBOX_STAT_DEPTH, OUTBOX_STAT_BYTES, OUTBOX_STAT_IN_FLIGHT, OUTBOX_STAT_SENT, OUTBOX_STAT_RETRIES,
  OUTBOX_STAT_ACKED, OUTBOX_STAT_DROPS, OUTBOX_STAT_EXPIRED, OUTBOX_STAT_DEADLETTERS, OUTBOX_STAT_RTT,
  OUTBOX_STAT_RTT_LAST, OUTBOX_EVENT_ID, OUTBOX_EVENT_CHANNEL, OUTBOX_EVENT_SEQ, OUTBOX_EVENT_ATTEMPTS,
  OUTBOX_EVENT_VALUE, FRAME_F_LAST, FRAME_F_BINARY,
} from './constants.js';
import { randomSeed } from './glue.js';
import { now, POLICIES, EV_TYPES, EV_CODES, emit, Emitter, StructView, positive, Timer } from './queue-base.js';

/**
 * Outbound queue with acks: bounded (count and bytes), priorities, overflow
 * policy, TTL, a window of frames in flight, ack timeouts with retries
 * (exponential backoff, full jitter), cumulative + selective acks,
 * serialize/restore.
 * Events: `ack`, `drop`, `expired`, `timeout`, `deadletter`, with
 * {id, channel, seq, attempts, rtt?, delay?, error?}.
 */
export class Outbox extends Emitter {
  #c; #settled; #transmit; #ev; #waiters; #timer; #pumping; #scheduled;
  /**
   * @param {Partial<import('./queue.d.ts').OutboxOptions>} [opts]
   */
  constructor(opts = {}) {
    super();
    if (typeof opts.transmit !== 'function') throw new SwitchboardError('INVALID', 'Outbox needs a transmit(bytes) function');
    const policy = POLICIES[opts.overflow ?? 'reject'];
    if (policy === undefined) throw new SwitchboardError('INVALID', 'overflow must be reject, drop-oldest or drop-newest');
    this.#c = core();
    this.#settled = new Map(); // id -> error of a failed message nobody waits for yet (64 at most)
    const fn = this.#c.fn;
    const retryMin = positive(opts.retryMinDelay, 100, 'retryMinDelay', { min: 0.001 });
    this._h = fn.sb_outbox_create(
      positive(opts.maxMessages, 1000, 'maxMessages', { min: 1, int: true, max: 1 << 24 }),
      positive(opts.maxBytes, 8 << 20, 'maxBytes', { min: 1 }),
      policy,
      positive(opts.window, 64, 'window', { min: 1, int: true, max: 0xffffffff }),
      positive(opts.ackTimeout, 5000, 'ackTimeout', { min: 0.001 }),
      retryMin,
      positive(opts.retryMaxDelay, Math.max(30000, retryMin), 'retryMaxDelay', { min: retryMin }),
      positive(opts.maxRetries, 0, 'maxRetries', { int: true, max: 0x7fffffff }),
      positive(opts.maxChannels, 256, 'maxChannels', { min: 1, int: true, max: 1 << 20 }),
      opts.seed === undefined ? randomSeed() : opts.seed >>> 0);
    if (!this._h) throw new SwitchboardError('INVALID', 'bad Outbox options');
    this.#transmit = opts.transmit;
    this.#ev = new StructView(this.#c, fn.sb_outbox_event_view(this._h), OUTBOX_EVENT_VALUE);
    this.#waiters = new Map(); // id -> {resolve, reject}
    this.#timer = new Timer(() => this.pump());
    this.#pumping = false;
    this.#scheduled = false;
    if (opts.state) {
      const b = toBytes(opts.state);
      this.#c.check(fn.sb_outbox_restore(this._h, this.#c.writeBytes(b), b.length, now()), 'Outbox restore');
    }
    if (opts.online === false) fn.sb_outbox_set_online(this._h, 0, now());
    this.#schedule();
  }

  /**
   * Queue a message; returns its id. Throws QUEUE_FULL (reject policy),
   * TOO_LARGE, INVALID, CLOSED. Transmission happens in a microtask, so a
   * burst of sends fills the window together.
   * @param {string|ArrayBuffer|ArrayBufferView} payload
   * @param {import('./queue.d.ts').SendOptions} [opts]
   */
  enqueue(payload, opts = {}) {
    const c = this.#c;
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
      opts.priority ?? 0, flags, (opts.corr ?? 0) >>> 0, opts.ttl ?? 0, p, n, now()), 'Outbox.send');
    this.#drainEvents();
    this.#schedule();
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
    if (this.#settled.has(id)) {
      // dropped synchronously (drop-newest)
      const r = this.#settled.get(id);
      this.#settled.delete(id);
      return Promise.reject(r);
    }
    return new Promise((resolve, reject) => this.#waiters.set(id, { resolve, reject }));
  }

  /** Feed an ack frame (encoded) from the peer. */
  receiveAck(frameBytes) {
    if (!this._h) return 0;
    const c = this.#c;
    const b = toBytes(frameBytes);
    const n = c.check(c.fn.sb_outbox_on_ack(this._h, c.writeBytes(b), b.length, now()), 'Outbox.receiveAck');
    this.#drainEvents();
    this.#schedule();
    return n;
  }

  /** Link state: offline stops transmissions and ack timers; online resends every unacked frame. */
  setOnline(online) {
    if (!this._h) return;
    this.#c.fn.sb_outbox_set_online(this._h, online ? 1 : 0, now());
    this.#schedule();
  }

  /** Transmit everything that is due now, fire events, re-arm the timer. */
  pump() {
    if (!this._h || this.#pumping) return;
    const c = this.#c;
    const fn = c.fn;
    this.#pumping = true;
    try {
      for (;;) {
        const n = c.check(fn.sb_outbox_next_frame(this._h, now()), 'Outbox');
        this.#drainEvents();
        if (n === 0) break;
        this.#transmit(c.readBytes(fn.sb_outbox_out(this._h), n));
        if (!this._h) return; // closed by the transport callback
      }
      const d = fn.sb_outbox_deadline(this._h);
      this.#timer.arm(d);
    } finally {
      this.#pumping = false;
    }
  }

  /** Whole queue state for persistence (IndexedDB…); restore with `new Outbox({state})`. */
  serialize() {
    const c = this.#c;
    if (!this._h) throw new SwitchboardError('CLOSED', 'Outbox is closed');
    const n = c.check(c.fn.sb_outbox_serialize(this._h), 'Outbox.serialize');
    return c.readBytes(c.fn.sb_outbox_out(this._h), n);
  }

  stats() {
    const s = (i) => (this._h ? this.#c.fn.sb_outbox_stat(this._h, i) : 0);
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
    this.#timer.clear();
    this.#c.fn.sb_outbox_destroy(this._h);
    this._h = 0;
    for (const w of this.#waiters.values()) w.reject(new SwitchboardError('CLOSED', 'Outbox is closed'));
    this.#waiters.clear();
  }

  #schedule() {
    if (this.#scheduled || !this._h) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.pump();
    });
  }

  #drainEvents() {
    const fn = this.#c.fn;
    let t;
    while ((t = fn.sb_outbox_next_event(this._h)) !== 0) {
      const ev = this.#ev.get();
      const u = ev.u32;
      const value = ev.f64[0];
      const type = EV_TYPES[t];
      const detail = {
        id: u[OUTBOX_EVENT_ID >> 2], channel: u[OUTBOX_EVENT_CHANNEL >> 2],
        seq: u[OUTBOX_EVENT_SEQ >> 2], attempts: u[OUTBOX_EVENT_ATTEMPTS >> 2],
      };
      if (type === 'ack') detail.rtt = value;
      if (type === 'timeout') detail.delay = value;
      const code = EV_CODES[type];
      if (code) detail.error = new SwitchboardError(code, `message ${detail.id} ${type === 'drop' ? 'dropped: queue full' : type === 'expired' ? 'expired before its ack' : 'got no ack after its retries'}`);
      const w = this.#waiters.get(detail.id);
      if (type === 'ack' && w) {
        this.#waiters.delete(detail.id);
        w.resolve({ id: detail.id, rtt: detail.rtt });
      } else if (code) {
        if (w) {
          this.#waiters.delete(detail.id);
          w.reject(detail.error);
        } else {
          this.#settled.set(detail.id, detail.error);
          if (this.#settled.size > 64) this.#settled.delete(this.#settled.keys().next().value);
        }
      }
      emit(this, type, detail);
    }
  }
}
