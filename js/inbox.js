// The Inbox (docs/protocol.md §9): thin glue over the receiving side of
// src/queue.c (reorder, dedup, acks). The glue owns the timer and the
// transport; the core decides everything else.
import { core, toBytes, SwitchboardError } from './core.js';
import { BatchReader, frameFromView } from './frame.js';
import {
  INBOX_STAT_DELIVERED, INBOX_STAT_DUPLICATES, INBOX_STAT_HELD, INBOX_STAT_REFUSED, INBOX_STAT_SKIPPED,
  INBOX_STAT_ACKS, FRAME_VIEW_FLAGS, FRAME_VIEW_DEADLINE, FRAME_F_BINARY, FRAME_VERSION, FRAME_VERSION_SHIFT,
  FRAME_KIND_MASK, FRAME_ACK, FRAME_BATCH,
} from './constants.js';
import { now, emit, Emitter, StructView, positive, Timer } from './queue-base.js';

/**
 * Receiving side: per-channel reorder and dedup (exactly once, in order) and
 * acks back to the sender's Outbox.
 * Events: `message` (the frame {kind, flags, channel, id, seq, corr,
 * deadline, payload}).
 */
export class Inbox extends Emitter {
  #c; #sendAck; #onMessage; #outbox; #text; #view; #ackScheduled; #reader; #timer;
  /**
   * @param {Partial<import('./queue.d.ts').InboxOptions>} [opts]
   */
  constructor(opts = {}) {
    super();
    if (typeof opts.sendAck !== 'function') throw new SwitchboardError('INVALID', 'Inbox needs a sendAck(bytes) function');
    this.#c = core();
    const fn = this.#c.fn;
    this._h = fn.sb_inbox_create(
      positive(opts.window, 1024, 'window', { min: 1, int: true, max: 0xffffffff }),
      positive(opts.maxBytes, 8 << 20, 'maxBytes', { min: 1 }),
      positive(opts.maxChannels, 256, 'maxChannels', { min: 1, int: true, max: 1 << 20 }),
      positive(opts.ackDelay, 0, 'ackDelay'));
    if (!this._h) throw new SwitchboardError('INVALID', 'bad Inbox options');
    this.#sendAck = opts.sendAck;
    this.#onMessage = opts.onMessage;
    this.#outbox = opts.outbox;
    this.#text = opts.text === true;
    this.#view = new StructView(this.#c, fn.sb_inbox_view(this._h), FRAME_VIEW_DEADLINE);
    this.#ackScheduled = false;
    this.#reader = new BatchReader({ maxPayload: Math.min(0x7fffffff, opts.maxBytes ?? 8 << 20) });
    this.#timer = new Timer(() => this.#acks());
    if (opts.state) {
      const b = toBytes(opts.state);
      this.#c.check(fn.sb_inbox_restore(this._h, this.#c.writeBytes(b), b.length), 'Inbox restore');
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
    // the C side still decodes it strictly (byte 0: version and kind).
    if (b.length > 0 && b[0] >> FRAME_VERSION_SHIFT === FRAME_VERSION && (b[0] & FRAME_KIND_MASK) !== FRAME_BATCH) {
      if ((b[0] & FRAME_KIND_MASK) !== FRAME_ACK) return this.push(b);
      if (this.#outbox) this.#outbox.receiveAck(b);
      return 0;
    }
    let delivered = 0;
    let firstError = null;
    for (const f of this.#reader.read(b)) {
      // One bad frame (e.g. a malformed ack) must not strand the good ones
      // after it: process them all, then report the first error.
      try {
        if (f.kind === 'ack') {
          if (this.#outbox) this.#outbox.receiveAck(f.bytes);
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
    const c = this.#c;
    const fn = c.fn;
    const b = toBytes(frameBytes);
    c.check(fn.sb_inbox_push(this._h, c.writeBytes(b), b.length, now()), 'Inbox.push');
    let n = 0;
    while (fn.sb_inbox_next(this._h) === 1) {
      const bytes = c.readBytes(fn.sb_inbox_frame(this._h), fn.sb_inbox_frame_len(this._h));
      const v = this.#view.get();
      const f = frameFromView(v.u32, v.f64, bytes, this.#text && !(v.u32[FRAME_VIEW_FLAGS >> 2] & FRAME_F_BINARY));
      n++;
      if (this.#onMessage) this.#onMessage(f);
      emit(this, 'message', f);
      if (!this._h) return n;
    }
    if (!this.#ackScheduled) {
      this.#ackScheduled = true;
      queueMicrotask(() => { this.#ackScheduled = false; this.#acks(); });
    }
    return n;
  }

  /** The peer restarted without its state (new session): forget dedup state. */
  reset() {
    if (this._h) this.#c.fn.sb_inbox_reset(this._h);
    this.#reader.resetStream();
  }

  /** Dedup state, held and undelivered frames, for persistence (restore with `new Inbox({state})`). */
  serialize() {
    const c = this.#c;
    const n = c.check(c.fn.sb_inbox_serialize(this._h), 'Inbox.serialize');
    return c.readBytes(c.fn.sb_inbox_out(this._h), n);
  }

  stats() {
    const s = (i) => (this._h ? this.#c.fn.sb_inbox_stat(this._h, i) : 0);
    return {
      delivered: s(INBOX_STAT_DELIVERED), duplicates: s(INBOX_STAT_DUPLICATES), held: s(INBOX_STAT_HELD),
      refused: s(INBOX_STAT_REFUSED), skipped: s(INBOX_STAT_SKIPPED), acks: s(INBOX_STAT_ACKS),
    };
  }

  close() {
    if (!this._h) return;
    this.#timer.clear();
    this.#c.fn.sb_inbox_destroy(this._h);
    this._h = 0;
    this.#reader.close();
  }

  #acks() {
    if (!this._h) return;
    const c = this.#c;
    const fn = c.fn;
    let n;
    while ((n = c.check(fn.sb_inbox_take_ack(this._h, now()), 'Inbox')) > 0) {
      this.#sendAck(c.readBytes(fn.sb_inbox_out(this._h), n));
      if (!this._h) return;
    }
    this.#timer.arm(fn.sb_inbox_deadline(this._h));
  }
}
