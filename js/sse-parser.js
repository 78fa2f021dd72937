// The WHATWG event-stream parser on its own (sans-I/O): bytes in, events out,
// over src/sse.c. EventStream (js/sse.js) drives the same C object, whose
// reconnect state machine it also uses.
import { core, toBytes, SwitchboardError } from './core.js';
import {
  SSE_REC_WORDS as REC, SSE_SAME as SAME, SSE_RECORD_DATA_UNITS, SSE_RECORD_TYPE_BYTES, SSE_RECORD_TYPE_UNITS,
  SSE_RECORD_ID_BYTES, SSE_RECORD_ID_UNITS,
} from './constants.js';
import { randomSeed } from './glue.js';

// ignoreBOM: the C side already skipped the stream's BOM; a U+FEFF inside
// data is data and must survive.
const textDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
const SLICE = 1 << 20; // bytes handed to the core per call

export function num(v, dflt, name, lo, hi) {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v >= lo) || !(v <= hi)) throw new SwitchboardError('INVALID', `${name} must be a number in ${lo}..${hi}`);
  return v;
}

/**
 * The bare event-stream parser: feed bytes in any chunks, get events.
 * Sans-I/O; what EventStream uses, exported for custom transports
 * (WebTransport, a Response you already hold, a worker).
 */
export class SseParser {
  #c; #busy; #rec;
  /**
   * @param {{maxLineBytes?: number, maxEventBytes?: number, _minDelay?: number, _maxDelay?: number, _factor?: number,
   *   _maxAttempts?: number, _seed?: number}} [opts] the `_` ones: EventStream's reconnect policy
   */
  constructor(opts = {}) {
    this.#c = core();
    this._h = this.#c.fn.sb_sse_create(
      num(opts.maxLineBytes, 65536, 'maxLineBytes', 1, 2 ** 28),
      num(opts.maxEventBytes, 1 << 20, 'maxEventBytes', 1, 2 ** 28),
      num(opts._minDelay, 1000, 'reconnect.minDelay', 0, 1e12),
      num(opts._maxDelay, 30000, 'reconnect.maxDelay', 0, 1e12),
      num(opts._factor, 2, 'reconnect.factor', 1, 1e6),
      num(opts._maxAttempts, 0, 'reconnect.maxAttempts', 0, 2 ** 31 - 1),
      opts._seed ?? randomSeed(),
    );
    if (!this._h) throw new SwitchboardError('NO_MEMORY', 'cannot create the SSE parser');
  }

  #handle() {
    if (!this._h) throw new SwitchboardError('CLOSED', 'parser is closed');
    return this._h;
  }

  /**
   * Parse more bytes; calls onEvent(type, data, lastEventId) for every event
   * they complete, in order. Returns how many. Throws TOO_LARGE (after
   * delivering the events before the offending line) when a cap is hit; the
   * parser then refuses input until end().
   * @param {Uint8Array|ArrayBuffer|ArrayBufferView|string} chunk
   * @param {(type: string, data: string, lastEventId: string) => void} onEvent
   */
  feed(chunk, onEvent) {
    const h = this.#handle();
    if (this.#busy) throw new SwitchboardError('BAD_STATE', 'feed() called from inside its own event handler');
    this.#busy = true;
    try {
      return this.#feed(h, chunk, onEvent);
    } finally {
      this.#busy = false;
    }
  }

  #feed(h, chunk, onEvent) {
    const c = this.#c;
    const fn = c.fn;
    const bytes = chunk instanceof Uint8Array ? chunk : toBytes(chunk);
    let total = 0;
    let off = 0;
    do {
      const n = Math.min(bytes.length - off, SLICE);
      const p = c.writeBytes(n === bytes.length ? bytes : bytes.subarray(off, off + n));
      const rc = fn.sb_sse_feed(h, p, n);
      const count = rc < 0 ? fn.sb_sse_count(h) : rc;
      if (count) total += this.#deliver(h, count, onEvent);
      if (rc < 0) throw c.error(rc, 'event stream');
      off += n;
    } while (off < bytes.length);
    return total;
  }

  #deliver(h, count, onEvent) {
    const c = this.#c;
    const fn = c.fn;
    const heap = c.heap();
    const tp = fn.sb_sse_text(h);
    // One decode per feed; the records give UTF-16 lengths, so slicing is exact.
    const text = textDecoder.decode(heap.subarray(tp, tp + fn.sb_sse_text_len(h)));
    // The records are copied out (one view + one set per feed, into a reused
    // array): handlers may grow, and so detach, the heap.
    const words = count * REC;
    if (!this.#rec || this.#rec.length < words) this.#rec = new Uint32Array(Math.max(words, 1024));
    const rec = this.#rec;
    rec.set(new Uint32Array(heap.buffer, fn.sb_sse_records(h), words));
    let pos = 0;
    let id = '';
    let named = 'message';
    // One sb_sse_record per event: its UTF-16 lengths slice the text.
    for (let r = 0, i = 1; r < words; r += REC, i++) {
      const data = text.slice(pos, (pos += rec[r + (SSE_RECORD_DATA_UNITS >> 2)]));
      const tb = rec[r + (SSE_RECORD_TYPE_BYTES >> 2)];
      const type = tb === SAME ? named : tb ? (named = text.slice(pos, (pos += rec[r + (SSE_RECORD_TYPE_UNITS >> 2)]))) : 'message';
      if (rec[r + (SSE_RECORD_ID_BYTES >> 2)] !== SAME) id = text.slice(pos, (pos += rec[r + (SSE_RECORD_ID_UNITS >> 2)]));
      if (onEvent(type, data, id) === false) return i; // the caller stopped
    }
    return count;
  }

  /** End of one stream: drop a partial line/event; the next byte starts a new stream. */
  end() {
    this.#c.fn.sb_sse_end(this.#handle());
  }

  /** Last event ID as of the last dispatch (what a reconnect resumes from). */
  get lastEventId() {
    const h = this.#handle();
    const c = this.#c;
    const n = c.fn.sb_sse_last_id_len(h);
    return n ? c.readString(c.fn.sb_sse_last_id(h), n) : '';
  }

  set lastEventId(id) {
    const c = this.#c;
    const h = this.#handle();
    const [p, n] = c.writeString(String(id));
    c.check(c.fn.sb_sse_set_last_id(h, p, n), 'lastEventId');
  }

  /** The server's `retry:` in ms, or null if it sent none. */
  get retry() {
    const r = this.#c.fn.sb_sse_retry(this.#handle());
    return r < 0 ? null : r;
  }

  /** Free the core memory. Idempotent. */
  close() {
    if (this._h) this.#c.fn.sb_sse_destroy(this._h);
    this._h = 0;
  }
}
