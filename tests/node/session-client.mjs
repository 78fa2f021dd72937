// A raw switchboard.v1 client for the relay tests: one client-role Session
// (js/session.js) over one `ws` WebSocket at a time, events collected.
// CONNECT opens a WebSocket offering SESSION_PROTOCOL, WRITE sends, DISCONNECT
// closes; messages, responses, errors and close codes are recorded. hijack()
// stops the session from touching the socket so a test can send its own bytes.
import WebSocket from 'ws';
import { Session, utf8 } from '../../js/session.js';
import {
  SESSION_PROTOCOL, SESSION_OPEN,
  SEV_WRITE, SEV_CONNECT, SEV_DISCONNECT, SEV_OPEN, SEV_MESSAGE, SEV_RESPONSE, SEV_REQUEST_FAILED,
  SEV_ERROR, SEV_CLOSED, SEV_F_TEXT, SEV_F_REMOTE, SEV_F_OFFER_FRAMED, FRAME_F_BINARY,
  SO_BACKOFF_MIN, SO_BACKOFF_MAX, SO_CONNECT_TIMEOUT, SO_COMPRESS,
} from '../../js/constants.js';

export const FAST = [[SO_BACKOFF_MIN, 20], [SO_BACKOFF_MAX, 200], [SO_CONNECT_TIMEOUT, 3000]];

export class SessionClient {
  /**
   * @param {string|(() => string)} url
   * @param {{hello?: object, options?: Array<[number, number]>, id?: string, blob?: Uint8Array}} [o]
   */
  constructor(url, o = {}) {
    this.url = url;
    this.s = new Session([...FAST, ...(o.options || [])]);
    const [p, n] = this.s.put(JSON.stringify(o.hello || {}));
    this.s.check(this.s.fn.sb_session_set_hello(this.s.h, p, n), 'hello');
    if (o.blob) this.s.restore(o.blob, Date.now());
    if (o.id) this.s.setId(o.id);
    this.messages = [];   // {channel, seq, data (string|Uint8Array)}
    this.errors = [];     // {code, text}
    this.closes = [];     // {code, reason} of every WebSocket that closed
    this.opens = 0;
    this.requests = new Map();
    this.ws = null;
    this.hijacked = false;
    this.raw = [];        // hijacked: bytes the server sent
    this.closed = false;
    this.timer = null;
    this.waiters = new Set();
    this._run((now) => this.s.check(this.s.fn.sb_session_start(this.s.h, now), 'start'));
  }

  get id() { return this.s.h ? this.s.id() : ''; }
  get open() { return this.s.h && this.s.state === SESSION_OPEN; }
  /** Application messages on channel 0 (or ch) as strings. */
  texts(ch = 0) { return this.messages.filter((m) => m.channel === ch).map((m) => (typeof m.data === 'string' ? m.data : `<${m.data.length} bytes>`)); }
  presence() { return this.messages.filter((m) => m.channel === 1).map((m) => JSON.parse(m.data)); }

  send(data, channel = 0) {
    return this._run((now) => this.s.send(channel, typeof data !== 'string', data, now));
  }

  request(data, timeout = 5000) {
    return new Promise((resolve, reject) => {
      const id = this._run((now) => this.s.request(0, typeof data !== 'string', data, timeout, now));
      this.requests.set(id, { resolve, reject });
    });
  }

  /** The session's state as bytes (for a second client that resumes it). */
  serialize() { return this.s.serialize(); }

  /** From now on the socket is the test's: the session neither reads nor writes it. */
  hijack() {
    this.hijacked = true;
    clearTimeout(this.timer);
    return this.ws;
  }

  /** Resolves when pred() holds, checked after every event (and every 20 ms). */
  until(pred, ms = 5000, what = 'condition') {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { check: () => { if (pred()) { done(); resolve(); } } };
      const poll = setInterval(() => w.check(), 20);
      const t = setTimeout(() => { done(); reject(new Error(`${what} not met within ${ms} ms`)); }, ms);
      const done = () => { clearInterval(poll); clearTimeout(t); this.waiters.delete(w); };
      this.waiters.add(w);
    });
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.terminate();
    this.s.destroy();
  }

  // ---- host ------------------------------------------------------------------

  /** Call into the session; flush at the end of the task (one batch per task, as the Socket). */
  _run(fn) {
    if (this.closed || !this.s.h) return undefined;
    const v = fn(Date.now());
    this._drain();
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        if (this.closed || !this.s.h) return;
        if (!this.hijacked) {
          this.s.fn.sb_session_set_buffered(this.s.h, this.ws ? this.ws.bufferedAmount : 0);
          this.s.fn.sb_session_flush(this.s.h, Date.now());
        }
        this._drain();
        this._arm();
      });
    }
    return v;
  }

  _arm() {
    clearTimeout(this.timer);
    if (this.closed || this.hijacked || !this.s.h) return;
    const d = this.s.deadline();
    if (d < 0) return;
    this.timer = setTimeout(() => this._run((now) => this.s.fn.sb_session_tick(this.s.h, now)), Math.max(1, d - Date.now()));
    this.timer.unref();
  }

  _drain() {
    this.s.drain((t, ev) => {
      switch (t) {
        case SEV_WRITE:
          if (!this.hijacked && this.ws && this.ws.readyState === 1) this.ws.send(ev.data, { binary: !(ev.flags & SEV_F_TEXT) });
          break;
        case SEV_CONNECT:
          this._connect((ev.flags & SEV_F_OFFER_FRAMED) !== 0);
          break;
        case SEV_DISCONNECT:
          if (this.ws && !this.hijacked) {
            const ws = this.ws;
            this.ws = null;
            ws.close(ev.code, utf8(ev.data));
          }
          break;
        case SEV_OPEN:
          this.opens++;
          break;
        case SEV_MESSAGE:
          this.messages.push({ channel: ev.channel, seq: ev.seq, data: ev.flags & FRAME_F_BINARY ? ev.data : utf8(ev.data) });
          break;
        case SEV_RESPONSE: {
          const r = this.requests.get(ev.id);
          this.requests.delete(ev.id);
          r?.resolve(ev.flags & FRAME_F_BINARY ? ev.data : utf8(ev.data));
          break;
        }
        case SEV_REQUEST_FAILED: {
          const r = this.requests.get(ev.id);
          this.requests.delete(ev.id);
          const remote = ev.flags & SEV_F_REMOTE ? JSON.parse(utf8(ev.data)) : null;
          const e = new Error(remote ? remote.message : `request failed: ${ev.code}`);
          e.code = remote ? remote.code : this.s.c.cstr(this.s.fn.sb_errname(ev.code));
          r?.reject(e);
          break;
        }
        case SEV_ERROR:
          this.errors.push({ code: this.s.c.cstr(this.s.fn.sb_errname(ev.code)), text: utf8(ev.data) });
          break;
        case SEV_CLOSED:
          break;
        default:
          break;
      }
    });
    for (const w of [...this.waiters]) w.check();
  }

  _connect(offerFramed) {
    const url = typeof this.url === 'function' ? this.url() : this.url;
    const ws = new WebSocket(url, offerFramed ? [SESSION_PROTOCOL] : []);
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      if (this.ws !== ws || this.hijacked) return;
      this._run((now) => this.s.fn.sb_session_transport_open(this.s.h, now, ws.protocol === SESSION_PROTOCOL ? 1 : 0));
    });
    ws.on('message', (data, isBinary) => {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (this.hijacked && this.ws === ws) { this.raw.push(bytes.slice()); this._drain(); return; }
      if (this.ws !== ws) return;
      this._run((now) => this.s.recv(bytes, !isBinary, now));
    });
    ws.on('close', (code, reason) => {
      this.closes.push({ code, reason: String(reason) });
      if (this.ws === ws) {
        this.ws = null;
        if (!this.hijacked) this._run((now) => this.s.fn.sb_session_transport_closed(this.s.h, now, code || 1006));
      }
      for (const w of [...this.waiters]) w.check();
    });
    ws.on('error', () => {});
  }
}

/**
 * A connected client (no compression, so the server's bytes can be read back)
 * whose socket the test then drives by hand; ws.closed resolves its close.
 */
export async function hijacked(url, room) {
  const c = new SessionClient(url, { hello: { room, user: 'evil' }, options: [[SO_COMPRESS, 0]] });
  await c.until(() => c.open, 10000, 'hostile client open');
  const ws = c.hijack();
  ws.closed = new Promise((resolve) => {
    if (c.closes.length) resolve(c.closes[0]);
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) }));
  });
  return { c, ws };
}
