// The Batcher (docs/protocol.md §8): thin glue over src/batch.c. The glue
// owns the timer and the transport; the core decides everything else.
import { core, toBytes, SwitchboardError } from './core.js';
import { encodeFrame } from './frame.js';
import {
  BATCH_OUT, BATCH_DUE, BATCH_STAT_FRAMES, BATCH_STAT_BATCHES, BATCH_STAT_RAW_BYTES, BATCH_STAT_OUT_BYTES,
  BATCH_STAT_COMPRESSED, BATCH_STAT_SKIPPED, FRAME_F_COMPRESSED, FRAME_FLAGS_BYTE,
} from './constants.js';
import { now, COMPRESSION, emit, Emitter, positive, Timer } from './queue-base.js';

/**
 * Collects frames and flushes them as one transport message on max count,
 * max bytes or max delay, whichever comes first; compresses a batch only
 * above `compressAbove` bytes and only when that is smaller.
 * Events: `flush` with {bytes, frames, compressed}.
 */
export class Batcher extends Emitter {
  #c; #onFlush; #timer;
  /**
   * @param {import('./queue.d.ts').BatcherOptions} [opts]
   * @param {(bytes: Uint8Array, info: import('./queue.d.ts').FlushInfo) => void} [onFlush]
   */
  constructor(opts = {}, onFlush) {
    super();
    this.#c = core();
    const mode = COMPRESSION[opts.compression ?? 'shared'];
    if (mode === undefined) throw new SwitchboardError('INVALID', 'compression must be shared, deflate or none');
    this._h = this.#c.fn.sb_batch_create(
      positive(opts.maxMessages, 100, 'maxMessages', { min: 1, int: true, max: 0xffffffff }),
      positive(opts.maxBytes, 64 * 1024, 'maxBytes', { min: 1, int: true, max: 0x7fffffff }),
      positive(opts.maxDelay, 10, 'maxDelay'),
      positive(opts.compressAbove, 1024, 'compressAbove', { int: true, max: 0xffffffff }),
      mode, positive(opts.level, 6, 'level', { int: true, max: 9 }));
    if (!this._h) throw new SwitchboardError('INVALID', 'bad Batcher options');
    this.#onFlush = onFlush;
    this.#timer = new Timer(() => this.#poll());
  }

  /**
   * Add one frame: encoded bytes, or a frame object for encodeFrame().
   * @param {Uint8Array|object} frame
   */
  add(frame) {
    const c = this.#c;
    if (!this._h) throw new SwitchboardError('CLOSED', 'Batcher is closed');
    const bytes = frame instanceof Uint8Array || ArrayBuffer.isView(frame) || frame instanceof ArrayBuffer
      ? toBytes(frame) : encodeFrame(frame);
    const pending = c.fn.sb_batch_pending(this._h);
    const rc = c.check(c.fn.sb_batch_add(this._h, c.writeBytes(bytes), bytes.length, now()), 'Batcher.add');
    if (rc & BATCH_OUT) this.#deliver(c.fn.sb_batch_out_len(this._h), pending);
    if (rc & BATCH_DUE) this.#flushNow();
    else this.#timer.arm(c.fn.sb_batch_deadline(this._h));
  }

  /** Flush whatever is pending now (also done by close()). */
  flush() {
    if (!this._h) return;
    this.#flushNow();
  }

  /** The link was re-established: the next compressed batch starts a fresh window. */
  resetStream() {
    if (this._h) this.#c.fn.sb_batch_reset_stream(this._h);
  }

  get pending() {
    return this._h ? this.#c.fn.sb_batch_pending(this._h) : 0;
  }

  stats() {
    const s = (i) => (this._h ? this.#c.fn.sb_batch_stat(this._h, i) : 0);
    const raw = s(BATCH_STAT_RAW_BYTES);
    const out = s(BATCH_STAT_OUT_BYTES);
    return {
      frames: s(BATCH_STAT_FRAMES), batches: s(BATCH_STAT_BATCHES), rawBytes: raw, outBytes: out,
      compressed: s(BATCH_STAT_COMPRESSED), compressionSkipped: s(BATCH_STAT_SKIPPED),
      pending: this.pending, pendingBytes: this._h ? this.#c.fn.sb_batch_pending_bytes(this._h) : 0,
      ratio: out ? raw / out : 1,
    };
  }

  /** Flush, then free the core object. */
  close() {
    if (!this._h) return;
    this.#flushNow();
    this.#timer.clear();
    this.#c.fn.sb_batch_destroy(this._h);
    this._h = 0;
  }

  #poll() {
    if (!this._h) return;
    const frames = this.#c.fn.sb_batch_pending(this._h);
    const n = this.#c.check(this.#c.fn.sb_batch_poll(this._h, now()), 'Batcher');
    if (n > 0) this.#deliver(n, frames);
    this.#timer.arm(this.#c.fn.sb_batch_deadline(this._h));
  }

  #flushNow() {
    const frames = this.#c.fn.sb_batch_pending(this._h);
    const n = this.#c.check(this.#c.fn.sb_batch_flush(this._h), 'Batcher.flush');
    this.#timer.clear();
    if (n > 0) this.#deliver(n, frames);
  }

  #deliver(n, frames) {
    const c = this.#c;
    const bytes = c.readBytes(c.fn.sb_batch_out(this._h), n);
    const compressed = (bytes[FRAME_FLAGS_BYTE] & FRAME_F_COMPRESSED) !== 0;
    const info = { bytes, frames, compressed };
    if (this.#onFlush) this.#onFlush(bytes, info);
    emit(this, 'flush', info);
  }
}
