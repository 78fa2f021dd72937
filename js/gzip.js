// gzip / deflate / deflate-raw on the wasm zlib, with output caps.
// Format names follow CompressionStream: 'gzip', 'deflate' (zlib-wrapped),
// 'deflate-raw'.
import { core, toBytes, SwitchboardError } from './core.js';
import { Z_GZIP, Z_ZLIB, Z_RAW, Z_DEFLATE, Z_INFLATE, Z_NO_FLUSH, Z_FINISH } from './constants.js';

const FORMATS = { gzip: Z_GZIP, deflate: Z_ZLIB, 'deflate-raw': Z_RAW };
const DEFAULT_MAX_OUT = 64 * 1024 * 1024;

function formatId(format = 'gzip') {
  const id = FORMATS[format];
  if (id === undefined) throw new SwitchboardError('INVALID', `unknown format ${JSON.stringify(format)}; use gzip, deflate or deflate-raw`);
  return id;
}

function levelOf(level = 6) {
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new SwitchboardError('INVALID', 'level must be an integer 0..9');
  return level;
}

function optsOf(opts) {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object') throw new SwitchboardError('INVALID', 'options must be an object, e.g. { level: 9 }');
  return opts;
}

// `new GzipStream('deflate-raw', { level })` as CompressionStream takes its
// format, or `new GzipStream({ format, level })`.
function streamOpts(formatOrOpts, opts) {
  if (typeof formatOrOpts === 'string') return { ...optsOf(opts), format: formatOrOpts };
  return optsOf(formatOrOpts);
}

function capOf(max) {
  if (max === undefined) return DEFAULT_MAX_OUT;
  if (!(max > 0) || max > 2 ** 30) throw new SwitchboardError('INVALID', 'maxOutputBytes must be in 1..2^30');
  return max;
}

// One cached one-shot codec per loaded core: zlib's set-up cost is paid once,
// which is what makes small messages cheap.
let oneShot = null;
function shared(c) {
  if (!oneShot || oneShot.core !== c) oneShot = { core: c, g: c.fn.sb_gzip_create() };
  if (!oneShot.g) throw new SwitchboardError('NO_MEMORY', 'cannot create codec');
  return oneShot.g;
}

function input(c, data) {
  if (typeof data === 'string') return c.writeString(data);
  const bytes = toBytes(data);
  return [c.writeBytes(bytes), bytes.length];
}

/**
 * Compress in one call. Returns a new Uint8Array.
 * @param {string|ArrayBuffer|ArrayBufferView} data
 * @param {{level?: number, format?: 'gzip'|'deflate'|'deflate-raw'}} [opts]
 */
export function gzip(data, opts) {
  opts = optsOf(opts);
  const c = core();
  const g = shared(c);
  const [p, n] = input(c, data);
  const len = c.check(c.fn.sb_gzip_compress(g, p, n, levelOf(opts.level), formatId(opts.format)), 'gzip');
  return c.readBytes(c.fn.sb_gzip_out(g), len);
}

/**
 * Decompress in one call; reads every member of a multi-member gzip.
 * Throws TOO_LARGE past maxOutputBytes (default 64 MiB), TRUNCATED, CORRUPT,
 * BAD_CHECKSUM or TRAILING_DATA.
 * @param {ArrayBuffer|ArrayBufferView} data
 * @param {{maxOutputBytes?: number, format?: 'gzip'|'deflate'|'deflate-raw'}} [opts]
 */
export function gunzip(data, opts) {
  opts = optsOf(opts);
  const c = core();
  const g = shared(c);
  const [p, n] = input(c, data);
  const len = c.check(c.fn.sb_gzip_decompress(g, p, n, formatId(opts.format), capOf(opts.maxOutputBytes)), 'gunzip');
  return c.readBytes(c.fn.sb_gzip_out(g), len);
}

/** zlib-wrapped deflate (RFC 1950), as CompressionStream('deflate'). */
export function deflate(data, opts) {
  return gzip(data, { format: 'deflate', ...optsOf(opts) });
}

/** Inverse of deflate(). */
export function inflate(data, opts) {
  return gunzip(data, { format: 'deflate', ...optsOf(opts) });
}

// Frees a stream's core memory if its owner is dropped without finishing.
const leaks = typeof FinalizationRegistry !== 'undefined'
  ? new FinalizationRegistry(({ c, z }) => c.fn.sb_z_destroy(z))
  : null;

class ZStream {
  constructor(mode, format, level, windowBits, maxOut) {
    this.c = core();
    this.z = this.c.fn.sb_z_create(mode, format, level, windowBits, maxOut);
    if (!this.z) throw new SwitchboardError('INVALID', 'cannot create stream (bad options or no memory)');
    this.token = {};
    leaks?.register(this, { c: this.c, z: this.z }, this.token);
  }

  open() {
    if (!this.z) throw new SwitchboardError('CLOSED', 'closed');
    return this.c;
  }

  push(data, flush) {
    const c = this.open();
    const [p, n] = data ? input(c, data) : [0, 0];
    const len = c.check(c.fn.sb_z_push(this.z, p, n, flush));
    return len ? c.readBytes(c.fn.sb_z_out(this.z), len) : null;
  }

  message(data) {
    const c = this.open();
    const [p, n] = input(c, data);
    const len = c.check(c.fn.sb_z_message(this.z, p, n));
    return c.readBytes(c.fn.sb_z_out(this.z), len);
  }

  totals() {
    return this.z
      ? { bytesIn: this.c.fn.sb_z_total_in(this.z), bytesOut: this.c.fn.sb_z_total_out(this.z) }
      : { bytesIn: 0, bytesOut: 0 };
  }

  destroy() {
    if (!this.z) return;
    leaks?.unregister(this.token);
    this.c.fn.sb_z_destroy(this.z);
    this.z = 0;
  }
}

function transformer(stream) {
  return {
    transform(chunk, controller) {
      let out;
      try {
        out = stream.push(chunk, Z_NO_FLUSH);
      } catch (e) {
        stream.destroy();
        throw e;
      }
      if (out) controller.enqueue(out);
    },
    flush(controller) {
      try {
        const out = stream.push(null, Z_FINISH);
        if (out) controller.enqueue(out);
      } finally {
        stream.destroy();
      }
    },
    cancel() {
      stream.destroy();
    },
  };
}

/** Drop-in for `new CompressionStream(format)` with a level. */
export class GzipStream extends TransformStream {
  /**
   * @param {'gzip'|'deflate'|'deflate-raw'|{level?: number, format?: string}} [format]
   * @param {{level?: number}} [opts]
   */
  constructor(format, opts) {
    const o = streamOpts(format, opts);
    const s = new ZStream(Z_DEFLATE, formatId(o.format), levelOf(o.level), 15, 0);
    super(transformer(s));
  }
}

/** Drop-in for `new DecompressionStream(format)` with an output cap (for the whole stream). */
export class GunzipStream extends TransformStream {
  /**
   * @param {'gzip'|'deflate'|'deflate-raw'|{maxOutputBytes?: number, format?: string}} [format]
   * @param {{maxOutputBytes?: number}} [opts]
   */
  constructor(format, opts) {
    const o = streamOpts(format, opts);
    const s = new ZStream(Z_INFLATE, formatId(o.format), 0, 15, capOf(o.maxOutputBytes));
    super(transformer(s));
  }
}

/**
 * Per-message compression over one shared window (RFC 7692 style): each
 * message is sync-flushed and its 00 00 ff ff tail dropped. Messages must be
 * decompressed in order by one InflateContext.
 */
export class DeflateContext {
  #s;
  /** @param {{level?: number, windowBits?: number}} [opts] */
  constructor(opts) {
    opts = optsOf(opts);
    const wb = opts.windowBits ?? 15;
    if (!Number.isInteger(wb) || wb < 9 || wb > 15) throw new SwitchboardError('INVALID', 'windowBits must be 9..15');
    this.#s = new ZStream(Z_DEFLATE, Z_RAW, levelOf(opts.level), wb, 0);
  }

  /** @param {string|ArrayBuffer|ArrayBufferView} message @returns {Uint8Array} */
  compress(message) {
    return this.#s.message(message);
  }

  /** Bytes in and out so far. */
  stats() {
    return this.#s.totals();
  }

  close() {
    this.#s.destroy();
  }
}

/** The receiving twin of DeflateContext. */
export class InflateContext {
  #s;
  /** @param {{maxMessageBytes?: number}} [opts] */
  constructor(opts) {
    opts = optsOf(opts);
    this.#s = new ZStream(Z_INFLATE, Z_RAW, 0, 15, capOf(opts.maxMessageBytes ?? 16 * 1024 * 1024));
  }

  /** @param {ArrayBuffer|ArrayBufferView} data @returns {Uint8Array} */
  decompress(data) {
    return this.#s.message(data);
  }

  /** Decompress and decode as UTF-8. */
  decompressText(data) {
    return new TextDecoder().decode(this.decompress(data));
  }

  stats() {
    return this.#s.totals();
  }

  close() {
    this.#s.destroy();
  }
}
