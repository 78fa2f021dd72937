// The relay's HTTP transport (docs/protocol.md §13): the same switchboard.v1
// session as over WebSocket, for clients whose proxy blocks the upgrade.
// `POST <path>?sb_http=open` is the stream: one long response of records
// (the server's transport messages); `POST <path>?sb_http=<id>&sb_n=<n>`
// carries the client's records, one POST at a time, in order. An HttpStream
// looks to the relay like a `ws` WebSocket (send, close, terminate, pause,
// resume, bufferedAmount, 'message' and 'close'), so each one is a relay
// connection like any other: the same session, Origin check, hello with
// authenticate, rate limits, caps and close codes. What only HTTP needs is
// here: the id that names a stream (128 random bits, the capability its
// POSTs need), a cap on a POST's body and a deadline for it, order of the
// POSTs, and a keepalive record so that no proxy times a quiet stream out.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import {
  SESSION_PROTOCOL, HTTP_PARAM, HTTP_SEQ, HTTP_OPEN, HTTP_HEADER, HTTP_BINARY, HTTP_TEXT, HTTP_CLOSE, HTTP_READY,
  HTTP_KEEPALIVE, CLOSE_PROTOCOL, CLOSE_TOO_BIG, CLOSE_TRY_AGAIN, CLOSE_NORMAL,
} from '../constants.js';

export const HTTP_DEFAULTS = {
  httpPostTimeoutMs: 30e3, // a POST's body must have arrived by then (408; its stream is closed 1013)
  httpKeepaliveMs: 20e3,   // a record on a stream silent this long (nginx's proxy_read_timeout is 60 s)
};

const record = (type, body) => {
  const h = Buffer.allocUnsafe(HTTP_HEADER + body.length);
  h[0] = type;
  h.writeUInt32BE(body.length, 1);
  h.set(body, HTTP_HEADER);
  return h;
};

/** Headers that let an allowed page of another origin read the answer. */
function cors(req) {
  const o = req.headers.origin;
  return typeof o === 'string' ? { 'access-control-allow-origin': o, 'access-control-allow-credentials': 'true', vary: 'Origin' } : {};
}

/** An answer that is not a stream; an origin refused gets no CORS headers (its page reads nothing). */
function refuse(req, res, status, text, extra = {}) {
  if (res.headersSent) { res.destroy(); return; }
  res.writeHead(status, { 'content-type': 'text/plain', 'cache-control': 'no-store', connection: 'close', ...(status === 403 ? {} : cors(req)), ...extra });
  res.end(`${text}\n`);
}

/** One HTTP stream, shaped like the `ws` WebSocket the relay drives. */
export class HttpStream extends EventEmitter {
  constructor(owner, id, req, res) {
    super();
    this.owner = owner;
    this.id = id;
    this.res = res;
    this.protocol = SESSION_PROTOCOL;
    this.readyState = 1;
    this.nextPost = 1;
    this.posting = false;
    this.paused = false;
    this.held = null;        // records of a POST not delivered yet (paused), and what finishes it
    this.wrote = Date.now();
    this.keepalive = setInterval(() => {
      if (this.readyState === 1 && Date.now() - this.wrote >= owner.o.httpKeepaliveMs) this.write(HTTP_KEEPALIVE, Buffer.alloc(0));
    }, Math.max(100, owner.o.httpKeepaliveMs / 2));
    this.keepalive.unref?.();
    res.on('close', () => this.#gone(1006));
    res.on('error', (e) => this.emit('error', e));
  }

  /** Bytes the response holds unsent (the session's backpressure). */
  get bufferedAmount() { return this.res.writableLength; }

  write(type, body) {
    this.wrote = Date.now();
    this.res.write(record(type, body));
  }

  send(data) {
    if (this.readyState === 1) this.write(HTTP_BINARY, data);
  }

  close(code = CLOSE_NORMAL, reason = '') {
    if (this.readyState !== 1) return;
    const r = Buffer.from(String(reason));
    const body = Buffer.allocUnsafe(2 + r.length);
    body.writeUInt16BE(code & 0xffff, 0);
    r.copy(body, 2);
    this.write(HTTP_CLOSE, body);
    this.readyState = 2;
    this.res.end(() => this.#gone(code));
  }

  terminate() {
    this.res.destroy();
    this.#gone(1006);
  }

  pause() { this.paused = true; }
  resume() {
    this.paused = false;
    if (this.held) this.deliver(...this.held);
  }

  /** Hand records [type, bytes] to the relay from i on; done() once all went (or the stream ended). */
  deliver(records, i, done) {
    this.held = null;
    for (; i < records.length; i++) {
      if (this.readyState !== 1) break; // the session closed it: the rest is not read
      if (this.paused) { this.held = [records, i, done]; return; }
      const [type, bytes] = records[i];
      if (type === HTTP_CLOSE) {
        const code = bytes.length >= 2 ? bytes.readUInt16BE(0) : 1005;
        this.readyState = 2;
        this.res.end(() => this.#gone(code));
        break;
      }
      this.emit('message', bytes, type === HTTP_BINARY);
    }
    done();
  }

  #gone(code) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    clearInterval(this.keepalive);
    this.owner.streams.delete(this.id);
    if (this.held) this.held[2]();
    this.held = null;
    // After the turn that closed it, as ws reports a close.
    setImmediate(() => this.emit('close', code));
  }
}

/** The HTTP side of one relay: its streams by id, and the two requests. */
export class HttpTransport {
  constructor(relay) {
    this.relay = relay;
    this.o = { ...HTTP_DEFAULTS, ...relay.o };
    /** @type {Map<string, HttpStream>} */
    this.streams = new Map();
    // A POST carries what the session may write in one transport message, and framing.
    this.maxPost = relay.o.maxMessage + 65536;
  }

  /** True when req was for the HTTP transport (it is answered then). */
  handle(req, res) {
    let u;
    try { u = new URL(req.url, 'http://relay'); } catch { return false; }
    const t = u.searchParams.get(HTTP_PARAM);
    if (t === null) return false;
    res.on('error', () => {});
    req.on('error', () => {});
    if (req.method !== 'POST') {
      refuse(req, res, 405, 'POST only', { allow: 'POST' });
      return true;
    }
    // A page of another origin may not send in its user's name (as at the upgrade).
    if (!this.relay.origins.allows(req)) {
      this.relay.stats.refused++;
      this.relay.log(`relay: 403 for ${req.socket?.remoteAddress}: origin ${JSON.stringify(String(req.headers.origin).slice(0, 100))} not allowed (http)`);
      refuse(req, res, 403, 'origin not allowed');
      return true;
    }
    if (this.relay.closed) {
      refuse(req, res, 503, 'closing', { 'retry-after': '5' });
      return true;
    }
    if (t === HTTP_OPEN) this.#open(req, res);
    else this.#post(req, res, t, u.searchParams.get(HTTP_SEQ));
    return true;
  }

  #open(req, res) {
    const addr = req.socket?.remoteAddress || '';
    const why = this.relay._admission(addr);
    if (why) {
      refuse(req, res, 503, why, { 'retry-after': '5' });
      return;
    }
    req.resume(); // an open carries no body: whatever comes is not read
    const id = randomBytes(16).toString('base64url');
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'cache-control': 'no-store, no-transform',
      'x-accel-buffering': 'no', // nginx: pass each record on at once (its proxy_buffering is on by default)
      'x-content-type-options': 'nosniff',
      ...cors(req),
    });
    req.socket?.setNoDelay?.(true);
    const stream = new HttpStream(this, id, req, res);
    this.relay._hold(addr, stream);
    this.streams.set(id, stream);
    // First the id that its POSTs name and their cap, then the session (its greeting).
    stream.write(HTTP_READY, Buffer.from(JSON.stringify({ id, maxPost: this.maxPost })));
    this.relay.wss.emit('connection', stream, req);
  }

  #post(req, res, id, n) {
    const stream = this.streams.get(id);
    if (!stream || stream.readyState !== 1) {
      req.resume();
      this.relay.log(`relay: 404 for ${req.socket?.remoteAddress}: POST for ${stream ? 'a closing' : 'no such'} stream (http)`);
      refuse(req, res, 404, 'no such stream');
      return;
    }
    const fail = (status, text, code) => {
      this.relay.log(`relay: ${status} for ${req.socket?.remoteAddress}: ${text}; closing its stream with ${code} (http)`);
      refuse(req, res, status, text);
      req.destroy();
      stream.close(code, `${code === CLOSE_TOO_BIG ? 'TOO_LARGE' : code === CLOSE_TRY_AGAIN ? 'TIMEOUT' : 'BAD_FRAME'}: ${text}`);
    };
    // One at a time and in order: the shared deflate window needs every byte once, in order.
    if (stream.posting || n !== String(stream.nextPost)) {
      fail(409, `POST ${String(n).slice(0, 12)} out of order (want ${stream.nextPost})`, CLOSE_PROTOCOL);
      return;
    }
    const length = Number(req.headers['content-length'] ?? -1);
    if (length > this.maxPost) {
      fail(413, `body over ${this.maxPost} bytes`, CLOSE_TOO_BIG);
      return;
    }
    stream.posting = true;
    stream.nextPost++;
    const chunks = [];
    let size = 0, over = false;
    const timer = setTimeout(() => {
      over = true;
      stream.posting = false;
      fail(408, 'body not in time', CLOSE_TRY_AGAIN);
    }, this.o.httpPostTimeoutMs);
    timer.unref?.();
    req.on('data', (c) => {
      if (over) return;
      size += c.length;
      if (size > this.maxPost) {
        over = true;
        clearTimeout(timer);
        stream.posting = false;
        fail(413, `body over ${this.maxPost} bytes`, CLOSE_TOO_BIG);
        return;
      }
      chunks.push(c);
    });
    req.on('close', () => { if (!over && !req.complete) { over = true; clearTimeout(timer); stream.posting = false; } });
    req.on('end', () => {
      if (over) return;
      clearTimeout(timer);
      const records = parse(Buffer.concat(chunks, size));
      if (!records) {
        stream.posting = false;
        fail(400, 'malformed records', CLOSE_PROTOCOL);
        return;
      }
      stream.deliver(records, 0, () => {
        stream.posting = false;
        if (res.headersSent) return;
        res.writeHead(204, { 'cache-control': 'no-store', ...cors(req) });
        res.end();
      });
    });
  }

}

/** A POST body's records, or null if it is not a whole number of client records. */
export function parse(buf) {
  const out = [];
  for (let i = 0; i < buf.length;) {
    if (buf.length - i < HTTP_HEADER) return null;
    const type = buf[i], len = buf.readUInt32BE(i + 1);
    if ((type !== HTTP_BINARY && type !== HTTP_TEXT && type !== HTTP_CLOSE) || len > buf.length - i - HTTP_HEADER) return null;
    out.push([type, buf.subarray(i + HTTP_HEADER, i + HTTP_HEADER + len)]);
    i += HTTP_HEADER + len;
  }
  return out;
}

