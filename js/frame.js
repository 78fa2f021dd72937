// Frames: the one binary envelope (docs/protocol.md), encoded and decoded by
// the C codec (src/frame.c) through wasm. Foreign bytes are never parsed here.
import { core, toBytes, SwitchboardError } from './core.js';
import {
  FrameKind as KIND, FRAME_VIEW_KIND, FRAME_VIEW_FLAGS, FRAME_VIEW_CHANNEL, FRAME_VIEW_ID, FRAME_VIEW_SEQ,
  FRAME_VIEW_CORR, FRAME_VIEW_PAYLOAD_OFF, FRAME_VIEW_PAYLOAD_LEN, FRAME_VIEW_DEADLINE,
} from './constants.js';

/** Frame kinds by name (docs/protocol.md §2): enum sb_frame_kind's names in
 * lower case, '_' as '-', as the C core's sb_frame_kind_name spells them. */
export const FrameKind = /** @type {typeof import('./frame.d.ts').FrameKind} */ (Object.freeze(Object.fromEntries(
  Object.entries(KIND).map(([k, v]) => [k.toLowerCase().replaceAll('_', '-'), v]))));
const KIND_NAMES = Object.keys(FrameKind);

/** Flag bits (docs/protocol.md §3): enum sb_frame_flag. */
export { FrameFlag } from './constants.js';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Kind name or number → number (throws INVALID). */
export function kindId(kind) {
  if (kind === undefined) return 0;
  const k = typeof kind === 'number' ? kind : FrameKind[kind];
  if (!Number.isInteger(k) || k < 0 || k >= KIND_NAMES.length) {
    throw new SwitchboardError('INVALID', `unknown frame kind ${JSON.stringify(kind)}`);
  }
  return k;
}

/**
 * Number → kind name.
 * @returns {import('./frame.d.ts').Frame['kind']}
 */
export function kindName(k) {
  return /** @type {any} */ (KIND_NAMES[k]) ?? 'unknown';
}

// Per loaded core: one codec object and typed views over its fixed-layout
// sb_frame_view (uint32 words, then a float64: js/constants.js).
class CodecState {
  constructor(c, maxPayload) {
    this.c = c;
    this.h = c.fn.sb_frame_codec_create(maxPayload);
    if (!this.h) throw new SwitchboardError('NO_MEMORY', 'cannot create frame codec');
    this.viewPtr = c.fn.sb_frame_codec_view(this.h);
    this.u8 = new Uint8Array(0);
    this.u32 = new Uint32Array(0);
  }

  // Heap views are rebuilt only after memory grew: growth detaches the old
  // buffer, which reads as length 0 (cheaper than memory.buffer each call).
  heap() {
    if (this.u8.length === 0) this.u8 = new Uint8Array(this.c.memory.buffer);
    return this.u8;
  }

  fields() {
    if (this.u32.length === 0) {
      const buf = this.c.memory.buffer;
      this.u32 = new Uint32Array(buf, this.viewPtr, FRAME_VIEW_DEADLINE >> 2);
      this.f64 = new Float64Array(buf, this.viewPtr + FRAME_VIEW_DEADLINE, 1);
    }
    return this;
  }

  /** Copy bytes into the core's scratch area; returns the pointer. */
  put(bytes) {
    const p = this.c.scratch(bytes.length);
    this.heap().set(bytes, p);
    return p;
  }

  /** UTF-8 encode into scratch; returns [ptr, length]. */
  putString(str) {
    const max = str.length * 3;
    const p = this.c.scratch(max);
    const { written } = encoder.encodeInto(str, this.heap().subarray(p, p + max));
    return [p, written];
  }
}

let shared = null;
const capped = new Map(); // maxPayload -> CodecState (a handful at most)
function state(maxPayload) {
  const c = core();
  if (maxPayload) {
    let s = capped.get(maxPayload);
    if (!s || s.c !== c) {
      if (!Number.isInteger(maxPayload) || maxPayload < 1 || maxPayload > 0x7fffffff) {
        throw new SwitchboardError('INVALID', 'maxPayload must be an integer 1..2^31-1');
      }
      if (capped.size >= 8) capped.clear(); // leaks nothing: codecs are tiny and reused
      s = new CodecState(c, maxPayload);
      capped.set(maxPayload, s);
    }
    return s;
  }
  if (!shared || shared.c !== c) shared = new CodecState(c, 0);
  return shared;
}

function u32(v, name) {
  if (v === undefined || v === null) return 0;
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new SwitchboardError('INVALID', `${name} must be an integer 0..2^32-1`);
  }
  return v;
}

/**
 * Encode one frame. Missing numeric fields are 0, a missing deadline is -1
 * (none); payload is a string (UTF-8) or bytes.
 * @returns {Uint8Array} a new array
 */
export function encodeFrame(frame) {
  const s = state();
  const c = s.c;
  const payload = frame.payload ?? '';
  let p;
  let n;
  if (typeof payload === 'string') {
    [p, n] = s.putString(payload);
  } else {
    const b = toBytes(payload);
    p = s.put(b);
    n = b.length;
  }
  const deadline = frame.deadline === undefined || frame.deadline === null ? -1 : frame.deadline;
  const len = c.fn.sb_frame_codec_encode(s.h, kindId(frame.kind), frame.flags ?? 0,
    u32(frame.channel, 'channel'), u32(frame.id, 'id'), u32(frame.seq, 'seq'), u32(frame.corr, 'corr'),
    deadline, p, n);
  if (len < 0) throw c.error(len, 'encodeFrame');
  // The codec's buffer only moves when it grows, i.e. after a bigger frame.
  const out = c.fn.sb_frame_codec_out(s.h);
  return s.heap().slice(out, out + len);
}

/** Build the frame object from a decoded view whose payload lies in `bytes`. */
export function frameFromView(u32v, f64v, bytes, text) {
  const off = u32v[FRAME_VIEW_PAYLOAD_OFF >> 2];
  const payload = bytes.subarray(off, off + u32v[FRAME_VIEW_PAYLOAD_LEN >> 2]);
  return {
    kind: kindName(u32v[FRAME_VIEW_KIND >> 2]),
    flags: u32v[FRAME_VIEW_FLAGS >> 2],
    channel: u32v[FRAME_VIEW_CHANNEL >> 2],
    id: u32v[FRAME_VIEW_ID >> 2],
    seq: u32v[FRAME_VIEW_SEQ >> 2],
    corr: u32v[FRAME_VIEW_CORR >> 2],
    deadline: f64v[0],
    payload: text ? decoder.decode(payload) : payload,
  };
}

/**
 * Decode exactly one frame (strict: TRUNCATED, BAD_VERSION, BAD_FRAME,
 * TOO_LARGE, TRAILING_DATA). payload is a subarray of `bytes` (no copy)
 * unless `{text: true}` asks for a decoded string. maxPayload caps the
 * payload (default 16 MiB).
 * @param {ArrayBuffer|ArrayBufferView} bytes
 * @param {{text?: boolean, maxPayload?: number}} [opts]
 * @returns {any} a Frame (frame.d.ts: its payload's type follows opts.text)
 */
export function decodeFrame(bytes, opts) {
  const s = state(opts?.maxPayload);
  const c = s.c;
  const b = bytes instanceof Uint8Array ? bytes : toBytes(bytes);
  const p = s.put(b);
  const rc = c.fn.sb_frame_codec_decode(s.h, p, b.length);
  if (rc < 0) throw c.error(rc, 'decodeFrame');
  s.fields();
  return frameFromView(s.u32, s.f64, b, opts?.text === true);
}

/**
 * Reads transport messages (a frame or a batch, maybe deflated) into frames.
 * Holds the shared inflate window of one link: use one per connection and
 * close() it.
 */
export class BatchReader {
  #c; #viewPtr;
  /**
   * @param {{maxPayload?: number, maxInflated?: number, maxDepth?: number}} [opts]
   */
  constructor(opts = {}) {
    this.#c = core();
    this._h = this.#c.fn.sb_unbatch_create(opts.maxPayload ?? 0, opts.maxInflated ?? 0, opts.maxDepth ?? 0);
    if (!this._h) throw new SwitchboardError('INVALID', 'bad BatchReader options');
    this.#viewPtr = this.#c.fn.sb_unbatch_view(this._h);
  }

  /**
   * All frames of one transport message. Each frame object also carries
   * `bytes`: its own encoding (a copy), to hand on to an Outbox or Inbox.
   * @returns {Array<object>}
   */
  read(message, opts) {
    const c = this.#c;
    const fn = c.fn;
    if (!this._h) throw new SwitchboardError('CLOSED', 'BatchReader is closed');
    const b = toBytes(message);
    const n = fn.sb_unbatch_feed(this._h, c.writeBytes(b), b.length);
    if (n < 0) throw c.error(n, 'BatchReader.read');
    const out = [];
    const text = opts?.text === true;
    while (fn.sb_unbatch_next(this._h) === 1) {
      const len = fn.sb_unbatch_frame_len(this._h);
      const bytes = c.readBytes(fn.sb_unbatch_frame(this._h), len);
      const buf = c.memory.buffer;
      const f = frameFromView(new Uint32Array(buf, this.#viewPtr, FRAME_VIEW_DEADLINE >> 2), new Float64Array(buf, this.#viewPtr + FRAME_VIEW_DEADLINE, 1), bytes, text);
      f.bytes = bytes;
      out.push(f);
    }
    return out;
  }

  /** New connection: forget the shared window. */
  resetStream() {
    if (this._h) this.#c.fn.sb_unbatch_reset_stream(this._h);
  }

  close() {
    if (this._h) {
      this.#c.fn.sb_unbatch_destroy(this._h);
      this._h = 0;
    }
  }
}
