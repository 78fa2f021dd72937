// Shared by the queue job's classes (js/batcher.js, js/outbox.js,
// js/inbox.js, js/message-queue.js): the clock, events only for types that
// have a listener, views over the core's stat structs, option checks, and
// one timer per object at the core's next deadline.
import { SwitchboardError } from './core.js';
import { dataEvent } from './glue.js';
import {
  QUEUE_REJECT, QUEUE_DROP_OLDEST, QUEUE_DROP_NEWEST, BATCH_PLAIN, BATCH_DEFLATE, BATCH_SHARED, OUTBOX_EV_ACK,
  OUTBOX_EV_DROP, OUTBOX_EV_EXPIRED, OUTBOX_EV_TIMEOUT, OUTBOX_EV_DEADLETTER,
} from './constants.js';

export const now = () => performance.timeOrigin + performance.now();
export const POLICIES = { reject: QUEUE_REJECT, 'drop-oldest': QUEUE_DROP_OLDEST, 'drop-newest': QUEUE_DROP_NEWEST };
export const COMPRESSION = { none: BATCH_PLAIN, deflate: BATCH_DEFLATE, shared: BATCH_SHARED };
// Outbox event type -> the event's name.
export const EV_TYPES = {
  [OUTBOX_EV_ACK]: 'ack', [OUTBOX_EV_DROP]: 'drop', [OUTBOX_EV_EXPIRED]: 'expired',
  [OUTBOX_EV_TIMEOUT]: 'timeout', [OUTBOX_EV_DEADLETTER]: 'deadletter',
};
export const EV_CODES = { drop: 'QUEUE_FULL', expired: 'EXPIRED', deadletter: 'TIMEOUT' };

export function emit(target, type, data) {
  // Building events nobody listens to is most of the per-message cost.
  if (target._listened.has(type)) target.dispatchEvent(dataEvent(type, data));
}

/** EventTarget that knows which event types have ever had a listener. */
export class Emitter extends EventTarget {
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
export class StructView {
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

export function positive(v, dflt, name, { min = 0, int = false, max = Number.MAX_SAFE_INTEGER } = {}) {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max || (int && !Number.isInteger(v))) {
    throw new SwitchboardError('INVALID', `${name} must be a${int ? 'n integer' : ' number'} in ${min}..${max}`);
  }
  return v;
}


/** One timer per object, re-armed at the core's next deadline. */
export class Timer {
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
