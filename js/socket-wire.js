// The switchboard.v1 wire for one WebSocket connection, shared by the browser
// Socket and the Node relay: frames (src/frame.h) packed into one transport
// message per flush, as a single frame or a batch frame whose payload may be
// deflated with a per-connection shared window (src/gzip.h sb_z_message).
// Every foreign byte is decoded by the bounded C codec; nothing here parses
// frames itself. One Wire = one connection: create a fresh one per socket,
// because the shared deflate windows must start empty on both sides.
import { core, SwitchboardError } from './core.js';

export const PROTOCOL = 'switchboard.v1';
export const Kind = Object.freeze({
  MESSAGE: 0, REQUEST: 1, RESPONSE: 2, ERROR: 3, ACK: 4, PING: 5, PONG: 6, HELLO: 7, BATCH: 9,
});
export const Flag = Object.freeze({
  COMPRESSED: 0x01, SHARED: 0x02, LAST: 0x04, ACK_REQ: 0x08, BINARY: 0x10, RETRY: 0x20,
});

const Z_DEFLATE = 0;
const Z_INFLATE = 1;
const Z_RAW = 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Defaults shared by both ends (the relay advertises its own in hello). */
export const WIRE_DEFAULTS = Object.freeze({
  maxPayload: 1 << 20,        // one frame's payload
  maxMessage: 8 << 20,        // one transport message, after inflating
  maxFrames: 4096,            // frames in one batch
  compressAbove: 96,          // smaller batches are sent as they are
  level: 6,
});

export class Wire {
  /**
   * @param {{maxPayload?: number, maxMessage?: number, maxFrames?: number,
   *          compress?: boolean, compressAbove?: number, level?: number}} [opts]
   */
  constructor(opts = {}) {
    const o = { ...WIRE_DEFAULTS, ...opts };
    this.c = core();
    this.maxPayload = o.maxPayload;
    this.maxMessage = o.maxMessage;
    this.maxFrames = o.maxFrames;
    this.compress = opts.compress !== false;
    this.compressAbove = o.compressAbove;
    this.level = o.level;
    this.codec = this.c.fn.sb_frame_codec_create(this.maxPayload);
    if (!this.codec) throw new SwitchboardError('NO_MEMORY', 'cannot create frame codec');
    this.def = 0;
    this.inf = 0;
    /** bytes before / after compression, for stats */
    this.rawOut = 0; this.wireOut = 0; this.rawIn = 0; this.wireIn = 0;
  }

  /** Encode one frame; payload is a string (UTF-8) or bytes. Returns a copy. */
  frame(kind, { flags = 0, channel = 0, id = 0, seq = 0, corr = 0, payload } = {}) {
    const c = this.c;
    let p = 0, n = 0;
    if (payload !== undefined && payload !== null) {
      if (typeof payload === 'string') [p, n] = c.writeString(payload);
      else { n = payload.length; p = c.writeBytes(payload); }
    }
    if (n > this.maxPayload) throw new SwitchboardError('TOO_LARGE', `payload of ${n} bytes over the ${this.maxPayload} cap`);
    const len = c.check(c.fn.sb_frame_codec_encode(this.codec, kind, flags, channel >>> 0, id >>> 0,
      seq >>> 0, corr >>> 0, -1, p, n), 'encode frame');
    return c.readBytes(c.fn.sb_frame_codec_out(this.codec), len);
  }

  /**
   * Pack encoded frames into one transport message: a lone small frame as it
   * is, otherwise a batch frame, deflated on the shared window when enabled.
   * @param {Uint8Array[]} frames
   */
  pack(frames, { urgent = false } = {}) {
    let total = 0;
    for (const f of frames) total += f.length;
    this.rawOut += total;
    let out;
    // Latency-bound traffic (a lone request, response, ping) skips deflate.
    const compress = this.compress && total >= this.compressAbove && !urgent;
    if (frames.length === 1 && !compress) {
      out = frames[0];
    } else {
      const body = new Uint8Array(total);
      let o = 0;
      for (const f of frames) { body.set(f, o); o += f.length; }
      if (compress) {
        // Once a message goes through the shared window it must be sent
        // compressed, or the peer's window would fall out of step.
        out = this.frame(Kind.BATCH, { flags: Flag.COMPRESSED | Flag.SHARED, payload: this._deflate(body) });
      } else {
        out = this.frame(Kind.BATCH, { payload: body });
      }
    }
    this.wireOut += out.length;
    return out;
  }

  _deflate(bytes) {
    const c = this.c;
    if (!this.def) {
      this.def = c.fn.sb_z_create(Z_DEFLATE, Z_RAW, this.level, 15, this.maxMessage * 2);
      if (!this.def) throw new SwitchboardError('NO_MEMORY', 'cannot create deflate stream');
    }
    const p = c.writeBytes(bytes);
    const len = c.check(c.fn.sb_z_message(this.def, p, bytes.length), 'deflate');
    return c.readBytes(c.fn.sb_z_out(this.def), len);
  }

  _inflate(bytes) {
    const c = this.c;
    if (!this.inf) {
      this.inf = c.fn.sb_z_create(Z_INFLATE, Z_RAW, -1, 15, this.maxMessage);
      if (!this.inf) throw new SwitchboardError('NO_MEMORY', 'cannot create inflate stream');
    }
    const p = c.writeBytes(bytes);
    const len = c.check(c.fn.sb_z_message(this.inf, p, bytes.length), 'inflate');
    return c.readBytes(c.fn.sb_z_out(this.inf), len);
  }

  _view() {
    const c = this.c;
    const v = c.fn.sb_frame_codec_view(this.codec);
    const h = c.heap();
    const u32 = new Uint32Array(h.buffer, v, 8);
    return { kind: u32[0], flags: u32[1], channel: u32[2], id: u32[3], seq: u32[4], corr: u32[5], off: u32[6], len: u32[7] };
  }

  /**
   * Decode one transport message into frames. Throws SwitchboardError
   * (BAD_VERSION, BAD_FRAME, TRUNCATED, TRAILING_DATA, TOO_LARGE, CORRUPT,
   * TOO_DEEP) on anything malformed; the caller closes the connection.
   * @param {Uint8Array} bytes
   * @returns {{kind:number, flags:number, channel:number, id:number, seq:number, corr:number, payload:Uint8Array}[]}
   */
  unpack(bytes) {
    const c = this.c;
    if (bytes.length > this.maxMessage) throw new SwitchboardError('TOO_LARGE', `message of ${bytes.length} bytes over the ${this.maxMessage} cap`);
    this.wireIn += bytes.length;
    const p = c.writeBytes(bytes);
    c.check(c.fn.sb_frame_codec_decode(this.codec, p, bytes.length), 'frame');
    const top = this._view();
    if (top.kind !== Kind.BATCH) {
      this.rawIn += bytes.length;
      return [{ kind: top.kind, flags: top.flags, channel: top.channel, id: top.id, seq: top.seq, corr: top.corr,
        payload: bytes.slice(top.off, top.off + top.len) }];
    }
    let body = bytes.subarray(top.off, top.off + top.len);
    if (top.flags & Flag.COMPRESSED) {
      if (!(top.flags & Flag.SHARED)) throw new SwitchboardError('BAD_FRAME', 'a compressed batch must use the shared window');
      body = this._inflate(body);
    }
    this.rawIn += body.length;
    const frames = [];
    const bp = c.writeBytes(body);
    let off = 0;
    while (off < body.length) {
      if (frames.length >= this.maxFrames) throw new SwitchboardError('TOO_LARGE', `more than ${this.maxFrames} frames in a batch`);
      const used = c.check(c.fn.sb_frame_codec_parse(this.codec, bp + off, body.length - off), 'batched frame');
      const v = this._view();
      if (v.kind === Kind.BATCH) throw new SwitchboardError('TOO_DEEP', 'nested batch');
      frames.push({ kind: v.kind, flags: v.flags, channel: v.channel, id: v.id, seq: v.seq, corr: v.corr,
        payload: body.slice(off + v.off, off + v.off + v.len) });
      off += used;
    }
    return frames;
  }

  close() {
    const fn = this.c.fn;
    if (this.codec) fn.sb_frame_codec_destroy(this.codec);
    if (this.def) fn.sb_z_destroy(this.def);
    if (this.inf) fn.sb_z_destroy(this.inf);
    this.codec = this.def = this.inf = 0;
  }
}

export function utf8(bytes) {
  return decoder.decode(bytes);
}

export function bytesOf(str) {
  return encoder.encode(str);
}

/** Parse a JSON payload strictly; throws BAD_FRAME. */
export function jsonOf(bytes) {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw new SwitchboardError('BAD_FRAME', 'payload is not UTF-8 JSON', { cause: e });
  }
}
