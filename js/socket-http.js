// The Socket's transports (docs/socket.md, "When WebSocket is blocked"):
// HttpTransport carries the same switchboard.v1 session over plain HTTP
// (docs/protocol.md §13) behind the WebSocket shape socket.js drives;
// Transports chooses, for each connection attempt of the session, which one
// to open, and probes WebSocket in the background while on HTTP. Neither
// knows the session: the bytes are the C core's either way, and a move is
// a new transport of the same session (resume: nothing lost, nothing twice).
import {
  SESSION_PROTOCOL, HTTP_PARAM, HTTP_SEQ, HTTP_OPEN, HTTP_HEADER, HTTP_MAX_RECORD, HTTP_BINARY, HTTP_TEXT,
  HTTP_CLOSE, HTTP_READY, HTTP_POST_BYTES, CLOSE_NORMAL,
} from './constants.js';

const encoder = new TextEncoder(), decoder = new TextDecoder();

/** ws(s)://… as http(s)://…, with the transport's parameters. */
function httpUrl(url, params) {
  const u = new URL(url);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  else if (u.protocol === 'wss:') u.protocol = 'https:';
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}

function record(type, body) {
  const r = new Uint8Array(HTTP_HEADER + body.length);
  r[0] = type;
  new DataView(r.buffer).setUint32(1, body.length);
  r.set(body, HTTP_HEADER);
  return r;
}

/** The session over HTTP, with the part of the WebSocket interface socket.js uses. */
export class HttpTransport {
  constructor(url, fetchFn = globalThis.fetch) {
    this.url = url;
    this.protocol = this.extensions = '';
    this.readyState = 0;
    this.binaryType = 'arraybuffer';
    this.onopen = this.onmessage = this.onerror = this.onclose = null;
    this.fetch = fetchFn;
    this.abort = new AbortController();
    this.id = null;
    this.maxPost = 0;
    this.n = 0;
    this.pending = []; // records not yet POSTed
    this.pendingBytes = 0;
    this.inFlight = 0;
    this.#read().catch(() => this.#end(1006, '', false));
  }

  get bufferedAmount() { return this.pendingBytes + this.inFlight; }

  async #read() {
    const res = await this.fetch.call(globalThis, httpUrl(this.url, { [HTTP_PARAM]: HTTP_OPEN }), {
      method: 'POST', cache: 'no-store', credentials: 'include', signal: this.abort.signal,
    });
    if (res.status !== 200 || !res.body) throw new Error(`HTTP ${res.status}`);
    const reader = res.body.getReader();
    let buf = new Uint8Array(65536), start = 0, end = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (end + value.length > buf.length) { // compact, then grow
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
        if (end + value.length > buf.length) {
          const b = new Uint8Array(Math.max(buf.length * 2, end + value.length));
          b.set(buf.subarray(0, end));
          buf = b;
        }
      }
      buf.set(value, end);
      end += value.length;
      while (end - start >= HTTP_HEADER) {
        const len = new DataView(buf.buffer, buf.byteOffset + start + 1, 4).getUint32(0);
        if (len > HTTP_MAX_RECORD) throw new Error('record too long');
        if (end - start < HTTP_HEADER + len) break;
        const body = buf.slice(start + HTTP_HEADER, start + HTTP_HEADER + len);
        start += HTTP_HEADER + len;
        if (!this.#record(buf[start - HTTP_HEADER - len], body)) return;
      }
    }
    this.#end(1006, '', false);
  }

  /** One record of the stream; false once it was the last. */
  #record(type, body) {
    if (this.readyState === 3) return false;
    if (this.readyState === 0) { // the first must be READY: a server that speaks this
      if (type !== HTTP_READY) throw new Error('not a switchboard HTTP stream');
      const r = JSON.parse(decoder.decode(body));
      if (typeof r.id !== 'string' || !(r.maxPost > HTTP_HEADER)) throw new Error('bad READY');
      this.id = r.id;
      this.maxPost = r.maxPost;
      this.readyState = 1;
      this.protocol = SESSION_PROTOCOL;
      this.onopen?.({});
      return true;
    }
    if (type === HTTP_BINARY) this.onmessage?.({ data: body.buffer });
    else if (type === HTTP_TEXT) this.onmessage?.({ data: decoder.decode(body) });
    else if (type === HTTP_CLOSE) {
      const code = body.length >= 2 ? (body[0] << 8) | body[1] : 1005;
      this.#end(code, decoder.decode(body.subarray(2)), true);
      return false;
    }
    return true; // KEEPALIVE, or a type of a later version
  }

  /** Copies data (the caller may hand a view of the wasm heap). */
  send(data) {
    if (this.readyState !== 1) return;
    const text = typeof data === 'string';
    const r = record(text ? HTTP_TEXT : HTTP_BINARY, text ? encoder.encode(data) : new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength));
    this.pending.push(r);
    this.pendingBytes += r.length;
    if (!this.inFlight && this.pending.length === 1) queueMicrotask(() => this.#post());
  }

  /** One POST at a time, in order: what queued meanwhile goes in the next. */
  async #post() {
    if (this.inFlight || !this.pending.length || this.readyState === 3) return;
    const parts = [];
    let size = 0;
    const cap = Math.min(this.maxPost, HTTP_POST_BYTES);
    while (this.pending.length && (!parts.length || size + this.pending[0].length <= cap)) {
      const r = this.pending.shift();
      parts.push(r);
      size += r.length;
    }
    this.pendingBytes -= size;
    this.inFlight = size;
    const body = new Uint8Array(size);
    let o = 0;
    for (const p of parts) { body.set(p, o); o += p.length; }
    try {
      const res = await this.fetch.call(globalThis, httpUrl(this.url, { [HTTP_PARAM]: this.id, [HTTP_SEQ]: String(++this.n) }), {
        method: 'POST', body, cache: 'no-store', credentials: 'include', signal: this.abort.signal,
        keepalive: this.readyState === 2 && size < 65536, // a close outlives the page
      });
      if (res.status !== 204) throw new Error(`HTTP ${res.status}`);
    } catch {
      // Lost or refused: the transport is over (the session resumes on a new one).
      this.#end(1006, '', false);
      return;
    }
    this.inFlight = 0;
    if (this.readyState === 2 && !this.pending.length) this.#end(this.closing[0], this.closing[1], true);
    else this.#post();
  }

  close(code = CLOSE_NORMAL, reason = '') {
    if (this.readyState >= 2) return;
    if (this.readyState === 0) { this.#end(code, reason, false); return; }
    this.readyState = 2;
    this.closing = [code, reason];
    const r = encoder.encode(reason);
    const body = new Uint8Array(2 + r.length);
    body[0] = code >> 8;
    body[1] = code & 0xff;
    body.set(r, 2);
    this.pending.push(record(HTTP_CLOSE, body));
    if (!this.inFlight) this.#post();
  }

  #end(code, reason, wasClean) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.abort.abort();
    this.pending = [];
    this.pendingBytes = this.inFlight = 0;
    this.onclose?.({ code, reason, wasClean });
  }
}

/**
 * Which transport each attempt opens: WebSocket, until its upgrade has
 * failed `fallbackAfter` times in a row; then one attempt over HTTP. If
 * that opens, a WebSocket probe runs at once: a probe that fails while
 * HTTP works means blocked (stay, `statechange` reason 'blocked'), one that
 * works means it was an outage, not a proxy (back to WebSocket), and one
 * that fails after HTTP went too says nothing (an outage again). A server
 * that answers nothing fails the HTTP attempt too: no move. While on HTTP
 * a probe runs every probeInterval (doubling to 16 times it while it
 * fails); once one works, the session moves back ('upgrade').
 */
export class Transports {
  /**
   * @param {object} o {transports, fallbackAfter, probeInterval, WebSocket, fetch}
   * @param {{moved(kind: string, reason: string): void, probeUrl(): string}} host
   */
  constructor(o, host) {
    const list = o.transports ?? ['websocket', 'http'];
    if (!Array.isArray(list) || !list.length || list.some((t) => t !== 'websocket' && t !== 'http')) {
      throw new TypeError("transports: a list of 'websocket' and 'http'");
    }
    this.ws = list.includes('websocket');
    this.http = list.includes('http') && typeof (o.fetch || globalThis.fetch) === 'function';
    if (!this.ws && !this.http) throw new TypeError('transports: no fetch here for http');
    this.after = Math.max(1, o.fallbackAfter ?? 2);
    this.interval = o.probeInterval ?? 15000;
    this.WS = o.WebSocket;
    this.fetch = o.fetch || globalThis.fetch;
    this.host = host;
    this.current = this.ws ? 'websocket' : 'http'; // of the last transport that opened
    this.onHttp = !this.ws; // sticky: attempts go over HTTP
    this.fails = 0;
    this.trying = null; // the kind the attempt in progress opened
    this.probe = null;
    this.last = null; // the last HttpTransport opened
    this.timer = null;
    this.delay = this.interval;
  }

  /** A transport for the next attempt, shaped like WebSocket. */
  open(url, protocols) {
    const http = this.http && (this.onHttp || (this.ws && this.fails >= this.after));
    this.trying = http ? 'http' : 'websocket';
    if (!http) return new this.WS(url, protocols);
    this.last = new HttpTransport(url, this.fetch);
    return this.last;
  }

  /** The attempt's transport opened. */
  opened() {
    const kind = this.trying;
    this.current = kind;
    if (kind === 'websocket') {
      this.fails = 0;
      return;
    }
    if (!this.onHttp && this.ws) this.#probe(true); // blocked, or was it an outage?
  }

  /** The attempt's transport closed before it opened. */
  failed() {
    if (this.trying === 'websocket') this.fails++;
    else if (!this.onHttp) this.fails = 0; // HTTP fails as well: down, not blocked
  }

  #probe(confirm) {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.probe || !this.WS) return;
    let ws;
    try {
      ws = new this.WS(this.host.probeUrl(), [SESSION_PROTOCOL]);
    } catch {
      this.#verdict(false, confirm);
      return;
    }
    this.probe = ws;
    ws.binaryType = 'arraybuffer';
    const end = (ok) => {
      if (this.probe !== ws) return;
      this.probe = null;
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(CLOSE_NORMAL); } catch { /* closed */ }
      this.#verdict(ok, confirm);
    };
    // It works once the relay's first message (its greeting) came through.
    ws.onmessage = () => end(ws.protocol === SESSION_PROTOCOL);
    ws.onclose = () => end(false);
    ws.onerror = () => {}; // its close says it (and `ws` in Node throws an error nobody listens to)
  }

  #verdict(ok, confirm) {
    if (ok) {
      this.onHttp = false;
      this.fails = 0;
      this.delay = this.interval;
      if (!confirm) this.host.moved('websocket', 'upgrade');
      else this.host.moved('websocket', null); // an outage: back at once, quietly
      return;
    }
    if (confirm && this.last?.readyState !== 1) {
      this.fails = 0; // HTTP went as well: an outage, no verdict
      return;
    }
    if (confirm) {
      this.onHttp = true;
      this.host.moved('http', 'blocked');
    } else {
      this.delay = Math.min(this.delay * 2, this.interval * 16);
    }
    if (this.interval > 0) {
      this.timer = setTimeout(() => this.#probe(false), this.delay);
      /** @type {any} */ (this.timer).unref?.();
    }
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.probe) {
      const ws = this.probe;
      this.probe = null;
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(CLOSE_NORMAL); } catch { /* closed */ }
    }
  }
}
