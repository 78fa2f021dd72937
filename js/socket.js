// Socket: a WebSocket that loses nothing (docs/socket.md). Shaped like
// WebSocket, plus reconnect, heartbeat, a bounded outbox that survives
// disconnects (and reloads, with queue.persist), request(), stats(), rooms.
// Every decision is the C session's (src/session.h, client role): the
// handshake and the framed/plain verdict, outbox and overflow, acks, resume,
// batching and compression, request deadlines, heartbeat and reconnect. This
// file owns the browser objects: the WebSocket, one timer, the online /
// offline / visibilitychange / pagehide listeners and IndexedDB.
import { init, core, toBytes } from './core.js';
import { SwitchboardError } from './errors.js';
import { Session } from './session.js';
import { Channels } from './channel.js';
import { Transports } from './socket-http.js';
import { SHARE, Share } from './socket-share.js';
import { shareBlocker } from './tab-group.js';
import { now, event, obj, kebabNames, camelEntries, onProperties, listen, idb, remoteError } from './glue.js';
import {
  SESSION_PROTOCOL, SessionState, ConnReason, QueuePolicy, SessionDropReason, SessionStat,
  SEV_WRITE, SEV_CONNECT, SEV_DISCONNECT, SEV_STATE, SEV_OPEN, SEV_MESSAGE, SEV_RESPONSE, SEV_REQUEST_FAILED,
  SEV_REQUEST_MOVED, SEV_DROP, SEV_ERROR, SEV_RECONNECTING, SEV_CLOSED, SEV_DIRTY, SEV_F_TEXT, SEV_F_OFFER_FRAMED, SEV_F_REMOTE,
  SESSION_OPEN, SESSION_CLOSING, SESSION_CLOSED, SESSION_CONNECTING, SESSION_MODE_FRAMED, SESSION_MODE_PLAIN, FRAME_F_BINARY,
  SO_CONNECT_TIMEOUT, SO_HELLO_TIMEOUT, SO_PING_INTERVAL, SO_PING_TIMEOUT, SO_RECONNECT, SO_BACKOFF_MIN,
  SO_BACKOFF_MAX, SO_BACKOFF_FACTOR, SO_MAX_ATTEMPTS, SO_QUEUE_MAX_COUNT, SO_QUEUE_MAX_BYTES, SO_QUEUE_POLICY,
  SO_BATCH_MAX_FRAMES, SO_BATCH_MAX_BYTES, SO_BATCH_DELAY, SO_COMPRESS, SO_COMPRESS_ABOVE, SO_COMPRESS_LEVEL,
  SO_FRAMED, SO_REFRESH_AUTH, SO_ACK_RIDE, SO_EARLY_BATCH, CLOSE_NORMAL, CLOSE_REPLACING,
} from './constants.js';

const isLoaded = () => { try { return !!core(); } catch { return false; } };

const STATES = kebabNames(SessionState);
const REASONS = kebabNames(ConnReason);
const DROPS = kebabNames(SessionDropReason);
const POLICIES = Object.fromEntries(kebabNames(QueuePolicy).map((k, v) => [k, v]));
const STATS = camelEntries(SessionStat);
const MODES = { [SESSION_MODE_FRAMED]: 'framed', [SESSION_MODE_PLAIN]: 'plain', 0: null };

/** User options -> session options (the defaults are the core's). @returns {[number, number][]} */
function sessionOptions(opts, url) {
  const r = opts.reconnect === false ? false : obj(opts.reconnect);
  const hb = opts.heartbeat === false ? false : obj(opts.heartbeat);
  const q = obj(opts.queue), b = opts.batch === false ? { maxMessages: 1 } : obj(opts.batch);
  const z = opts.compress === false ? false : obj(opts.compress);
  if (q.overflow !== undefined && !(q.overflow in POLICIES)) {
    throw new SwitchboardError('INVALID', 'queue.overflow must be reject, drop-oldest or drop-newest');
  }
  const g = (o, k) => (o ? o[k] : undefined);
  return [
    [SO_RECONNECT, r === false ? 0 : 1], [SO_CONNECT_TIMEOUT, g(r, 'connectTimeout')], [SO_HELLO_TIMEOUT, g(r, 'helloTimeout')],
    [SO_BACKOFF_MIN, g(r, 'minDelay')], [SO_BACKOFF_MAX, g(r, 'maxDelay')], [SO_BACKOFF_FACTOR, g(r, 'factor')],
    [SO_MAX_ATTEMPTS, g(r, 'maxAttempts')],
    [SO_PING_INTERVAL, hb === false ? 0 : hb.interval], [SO_PING_TIMEOUT, g(hb, 'timeout')],
    [SO_QUEUE_MAX_COUNT, q.maxMessages], [SO_QUEUE_MAX_BYTES, q.maxBytes], [SO_QUEUE_POLICY, POLICIES[q.overflow]],
    [SO_BATCH_MAX_FRAMES, b.maxMessages], [SO_BATCH_MAX_BYTES, b.maxBytes], [SO_BATCH_DELAY, b.maxDelay],
    [SO_COMPRESS, z === false ? 0 : 1], [SO_COMPRESS_ABOVE, g(z, 'threshold')], [SO_COMPRESS_LEVEL, g(z, 'level')],
    [SO_FRAMED, opts.framed === false ? 0 : 1],
    // Providers are asked again before each attempt: a refused token (4401) is worth retrying.
    [SO_REFRESH_AUTH, typeof url === 'function' || typeof opts.hello === 'function' ? 1 : 0],
    // A shared Socket's leading tab: an ack that rode out at once could leave a dying renderer
    // before its posts of those messages to the other tabs (js/socket-share.js).
    [SO_ACK_RIDE, opts[SHARE] ? 0 : 1],
    // ... and it snapshots before each write: a burst's batches leave at the end of the task, not as they fill.
    [SO_EARLY_BATCH, opts[SHARE] ? 0 : 1],
  ];
}

/**
 * Make `sock` (just constructed with opts.share) a shared Socket: its methods
 * and state become own properties served by a Share. Returns false when
 * sharing cannot work here; sock then runs its own connection and says why
 * in stats().share.
 */
function shareSocket(sock, url, opts, Socket) {
  const key = typeof opts.share === 'string' ? opts.share : String(typeof url === 'function' ? 'default' : url);
  const reason = shareBlocker();
  if (reason) {
    const base = Socket.prototype.stats;
    Object.defineProperty(sock, 'stats', { value: () => ({ ...base.call(sock), share: { role: 'own', key, reason, tabs: 1 } }) });
    return false;
  }
  const share = new Share(sock, url, opts, Socket, key);
  const get = (fn) => ({ get: fn, configurable: true });
  Object.defineProperties(sock, {
    send: { value: (d, o) => share.send(d, o) }, request: { value: (d, o) => share.request(d, o) },
    close: { value: (c, r) => share.close(c, r) }, stats: { value: () => share.stats() },
    persisted: { value: async () => {} }, ready: { value: share.ready, writable: true },
    subscribe: { value: (room, o) => share.tr.add(room, o) },
    readyState: get(() => share.st.readyState), state: get(() => share.st.state), mode: get(() => share.st.mode),
    bufferedAmount: get(() => (share.inner ? share.inner.bufferedAmount : share.info.queuedBytes || 0)),
    binaryType: { get: () => share.binaryType, set: (v) => { if (v === 'blob' || v === 'arraybuffer') share.binaryType = v; } },
  });
  return true;
}

const idbDo = (mode, fn) => idb('switchboard-socket', 'outbox', mode, fn);

export class Socket extends EventTarget {
  static CONNECTING = /** @type {0} */ (0); static OPEN = /** @type {1} */ (1); static CLOSING = /** @type {2} */ (2); static CLOSED = /** @type {3} */ (3);

  #WS; #url; #protocols; #opts; #s = null; #ws = null; #timer = null; #armedAt = 0; #attempt = 0;
  #flushQueued = false; #requests = new Map(); #listeners = []; #closeInfo = { code: 1006, reason: '', wasClean: false };
  #closed = false; #finished = false; #persist; #saving = null; #saveQueued = false; #binaryType; #rooms = null; #t; #tap; #held = null; #shown = STATES[0]; #early;

  /** @param {string|URL|((attempt:number)=>any)} url @param {object} [opts] see socket.d.ts */
  constructor(url, opts = {}) {
    super();
    const httpOnly = Array.isArray(opts.transports) && !opts.transports.includes('websocket');
    if (opts.WebSocket === undefined && typeof globalThis.WebSocket !== 'function' && !httpOnly) {
      throw new SwitchboardError('INVALID', 'no WebSocket here: pass opts.WebSocket (e.g. the `ws` package in Node)');
    }
    this.#WS = opts.WebSocket || globalThis.WebSocket;
    // Which transport each attempt opens, and the moves between them (socket-http.js).
    this.#t = new Transports({ ...obj(opts.http), transports: opts.framed === false ? ['websocket'] : opts.transports, WebSocket: this.#WS },
      { moved: (kind, reason) => this.#moved(kind, reason), probeUrl: () => this.url });
    this.#url = url;
    this.url = typeof url === 'function' ? '' : String(url);
    this.#protocols = Array.isArray(opts.protocols) ? opts.protocols : opts.protocols ? [opts.protocols] : [];
    this.#opts = opts;
    this.#binaryType = opts.binaryType === 'arraybuffer' ? 'arraybuffer' : 'blob';
    this.#persist = obj(opts.queue).persist || null;
    sessionOptions(opts, url); // validate now, throw in the constructor
    this.protocol = this.extensions = '';
    this.session = opts.session || null;
    // share: one connection for the tabs (js/socket-share.js); a leader's own Socket has a tap instead.
    if (opts.share && !opts[SHARE] && shareSocket(this, url, opts, Socket)) return;
    this.#tap = opts[SHARE] || null;
    // With the core loaded and nothing to restore, the session exists at
    // once, so send() right after the constructor applies the queue's rules.
    if (!this.#persist && isLoaded()) this.#create();
    this.ready = init(opts.wasm || {}).then(() => this.#boot()).catch((e) => this.#fatal(e));
  }

  get readyState() {
    const s = this.#state();
    return s === SESSION_OPEN ? 1 : s === SESSION_CLOSING ? 2 : s === SESSION_CLOSED ? 3 : 0;
  }

  /** 'idle' | 'connecting' | 'open' | 'closing' | 'closed' | 'reconnecting' */
  get state() { return STATES[this.#state()]; }
  /** 'framed' | 'plain' once connected, else null. */
  get mode() { return MODES[this.#s ? this.#s.mode : 0]; }

  get binaryType() { return /** @type {'blob' | 'arraybuffer'} */ (this.#binaryType); }
  set binaryType(v) { if (v === 'blob' || v === 'arraybuffer') this.#binaryType = v; }
  /** Bytes queued and not yet confirmed (framed: acked; plain: written). */
  get bufferedAmount() { return this.#s ? this.#s.stat(SessionStat.QUEUED_BYTES) : 0; }

  /** Queue a message; throws QUEUE_FULL (overflow 'reject'), TOO_LARGE, CLOSED. */
  send(data, opts = {}) {
    if (this.#closed) throw new SwitchboardError('CLOSED', 'socket is closed');
    if (typeof Blob !== 'undefined' && data instanceof Blob) {
      data.arrayBuffer().then((b) => this.send(b, opts)).catch((e) => this.dispatchEvent(event('error', { error: e })));
      return;
    }
    const text = typeof data === 'string';
    if (!text) data = toBytes(data);
    if (!this.#s) { // before the core loaded: keep it in order for boot
      (this.#early ||= []).push([opts.channel >>> 0, !text, text ? data : data.slice()]);
      return;
    }
    try {
      this.#report(); // a full batch leaves at once
      this.#s.send(opts.channel >>> 0, !text, data, now());
    } finally {
      this.#run();
    }
    this.#flushSoon();
  }

  /** A request answered by the server; see socket.d.ts. */
  request(data, opts = {}) {
    if (this.#closed) return Promise.reject(new SwitchboardError('CLOSED', 'socket is closed'));
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason || new SwitchboardError('ABORTED', 'request aborted'));
    const go = () => new Promise((resolve, reject) => {
      if (!this.#s) { reject(new SwitchboardError('CLOSED', 'socket is closed')); return; }
      this.#report(); // the core writes a request at once
      const id = this.#s.request(opts.channel >>> 0, typeof data !== 'string', typeof data === 'string' ? data : toBytes(data), opts.timeout ?? 30000, now());
      opts[SHARE]?.(id);
      const onAbort = () => {
        if (this.#s) this.#s.fn.sb_session_cancel(this.#s.h, r.id);
        done(); reject(opts.signal.reason || new SwitchboardError('ABORTED', 'request aborted'));
      };
      const done = () => { this.#requests.delete(r.id); opts.signal?.removeEventListener('abort', onAbort); };
      const r = { id, resolve: (v) => { done(); resolve(v); }, reject: (e) => { done(); reject(e); } };
      this.#requests.set(id, r);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.#run();
    });
    return this.#s && !this.#early ? go() : this.ready.then(go);
  }

  /** A room of the relay on a channel of its own: a Channel (js/channel.js). */
  subscribe(room, opts) { return (this.#rooms ||= new Channels(this)).add(room, opts); }

  /** Stop reconnecting and close (after writing what is already queued). */
  close(code = CLOSE_NORMAL, reason = '') {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeInfo = { code, reason, wasClean: true };
    if (!this.#s) { this.#finish(); return; }
    this.#s.fn.sb_session_close(this.#s.h, now(), code);
    this.#run();
  }

  /** @returns {import('./socket.d.ts').SocketStats} */
  stats() {
    const s = this.#s, st = /** @type {Record<string, number>} */ ({});
    for (const [k, v] of STATS) st[k] = s ? s.stat(v) : 0;
    const { txSeq, ackedSeq, rxSeq, ...rest } = st;
    return /** @type {any} */ ({
      state: this.state, mode: this.mode, transport: this.#t.current, ...rest,
      reconnects: Math.max(0, st.opens - 1),
      compressionSaved: Math.max(0, st.payloadBytesOut - st.bytesOut) + Math.max(0, st.payloadBytesIn - st.bytesIn),
      lastSeq: s ? { tx: txSeq, acked: ackedSeq, rx: rxSeq } : null,
    });
  }

  /** Resolves when the session state has been written to IndexedDB (queue.persist). */
  async persisted() {
    while (this.#saving) await this.#saving;
  }

  // ---- life cycle ----

  #state() { return this.#s ? this.#s.state : this.#closed ? SESSION_CLOSED : 0; }

  #create() {
    const s = new Session(sessionOptions(this.#opts, this.#url));
    this.#s = s;
    const o = this.#opts;
    if (o.heartbeat?.plainPing != null) s.setBytes('sb_session_set_plain_ping', String(o.heartbeat.plainPing));
    if (typeof o.hello !== 'function') s.setBytes('sb_session_set_hello', JSON.stringify(obj(o.hello)));
  }

  async #boot() {
    if (!this.#s) this.#create();
    const s = this.#s;
    if (this.#persist && typeof indexedDB !== 'undefined') {
      try {
        const saved = await idbDo('readonly', (st) => st.get(this.#persist));
        if (saved && saved.v === 2 && saved.state instanceof Uint8Array && !this.#closed) s.restore(saved.state, now());
      } catch (e) {
        this.dispatchEvent(event('error', { error: e }));
      }
    }
    if (this.#tap) { if (this.#tap.snapshot) s.restore(this.#tap.snapshot, now()); this.#tap.booted(s, () => this.#release()); }
    if (this.session && !s.id()) s.setId(this.session);
    if (this.#closed) { this.#finish(); return; }
    for (const [ch, bin, d] of this.#early || []) {
      try { s.send(ch, bin, d, now()); } catch (e) { this.dispatchEvent(event('error', { error: e })); } // a drop event says which
    }
    this.#early = null;
    this.#listen();
    s.check(s.fn.sb_session_start(s.h, now()), 'start');
    this.#flush();
  }

  #fatal(e) { this.#closed = true; this.dispatchEvent(event('error', { error: e })); this.#finish(); }

  #listen() {
    const on = (target, type, fn) => listen(this.#listeners, target, type, fn);
    const call = (f, v) => { if (this.#s) { this.#s.fn[f](this.#s.h, now(), v); this.#flush(); } };
    const win = typeof window !== 'undefined' ? window : null, doc = typeof document !== 'undefined' ? document : null;
    on(win, 'online', () => call('sb_session_network', 1));
    on(win, 'offline', () => call('sb_session_network', 0));
    on(win, 'pagehide', () => this.#save());
    on(doc, 'visibilitychange', () => call('sb_session_visibility', doc.visibilityState === 'visible' ? 1 : 0));
  }

  #flushSoon() { if (!this.#flushQueued) queueMicrotask(() => { this.#flushQueued = false; this.#flush(); }); this.#flushQueued = true; }

  /** Write what is due, act on every event, re-arm the one timer. */
  #flush() {
    if (!this.#s) return;
    this.#report();
    this.#s.fn.sb_session_flush(this.#s.h, now());
    this.#run();
  }

  // Before a call that may write: what the transport holds unsent (a socket that is not open takes nothing).
  #report() { const ws = this.#ws; this.#s.fn.sb_session_set_buffered(this.#s.h, !ws ? 0 : ws.readyState === 1 ? ws.bufferedAmount : 1e15); }

  #run() {
    const s = this.#s;
    if (!s) return;
    s.drain((t, e) => this.#event(t, e));
    if (!this.#s) return;
    const d = s.deadline();
    // A timer set for no later than d can stay: an early tick is harmless.
    if (this.#timer !== null && d >= 0 && this.#armedAt <= d) return;
    clearTimeout(this.#timer);
    this.#timer = null;
    if (d < 0) return;
    this.#armedAt = d;
    // (setTimeout fires at once past 2^31 - 1 ms: clamp, an early tick is harmless)
    this.#timer = setTimeout(() => { this.#timer = null; this.#flush(); }, Math.min(0x7fffffff, Math.max(0, d - now())));
  }

  #event(t, e) {
    if (!this.#s) return; // closed while draining
    const hold = this.#tap?.event(t, e, this.#s);
    switch (t) {
      case SEV_WRITE: { // the browser's WebSocket and HttpTransport copy in send(): they can have the heap's bytes
        const ws = this.#ws;
        if (!ws || ws.readyState !== 1) break;
        if (this.#held && this.#held.ws !== ws) this.#held = null; // for a transport that is gone
        // A shared Socket's leader holds a write until a tab has the snapshot that counts it.
        if (hold || this.#held) (this.#held ||= { ws, q: [] }).q.push(e.flags & SEV_F_TEXT ? e.text() : e.data);
        else ws.send(e.flags & SEV_F_TEXT ? e.text() : this.#WS === globalThis.WebSocket || this.#t.trying === 'http' ? e.view() : e.data);
        break;
      }
      case SEV_CONNECT: this.#connect(!!(e.flags & SEV_F_OFFER_FRAMED), e.value); break;
      case SEV_DISCONNECT: this.#drop(e.code, e.text()); break;
      case SEV_STATE: {
        const previous = this.#shown;
        this.#shown = STATES[e.value];
        this.dispatchEvent(event('statechange', { state: this.#shown, previous, reason: REASONS[e.code] || 'none' }));
        break;
      }
      case SEV_OPEN:
        if (e.value === SESSION_MODE_FRAMED) this.session = this.#s.id();
        this.dispatchEvent(event('open', {}));
        (this.#rooms ||= new Channels(this)).open(e.value === SESSION_MODE_FRAMED);
        break;
      case SEV_MESSAGE: this.#message(e); break;
      case SEV_REQUEST_MOVED: { // (a resumed state's id, which a lost one had also given out)
        const r = this.#requests.get(e.value);
        if (r) this.#requests.set(r.id = e.id, r).delete(e.value);
        break;
      }
      case SEV_RESPONSE: this.#requests.get(e.id)?.resolve(e.flags & FRAME_F_BINARY ? e.data : e.text()); break;
      case SEV_REQUEST_FAILED: {
        const r = this.#requests.get(e.id);
        if (!r) break;
        r.reject(e.flags & SEV_F_REMOTE ? remoteError(e.data, this.#s.c) : this.#s.c.error(e.code, 'request'));
        break;
      }
      case SEV_DROP:
        this.dispatchEvent(event('drop', { data: e.flags & FRAME_F_BINARY ? e.data : e.text(), reason: DROPS[e.seq], id: e.id }));
        break;
      case SEV_ERROR: this.dispatchEvent(event('error', { error: this.#s.c.error(e.code, e.text()) })); break;
      case SEV_RECONNECTING:
        this.dispatchEvent(event('reconnecting', { attempt: e.seq, delay: e.value, reason: REASONS[e.code] || 'none' }));
        break;
      case SEV_CLOSED:
        if (!this.#closeInfo.wasClean) this.#closeInfo = { ...this.#closeInfo, reason: this.#closeInfo.reason || REASONS[e.code] };
        this.#finish();
        break;
      case SEV_DIRTY: this.#saveSoon(); break;
      default: break;
    }
  }

  #message(e) {
    const data = !(e.flags & FRAME_F_BINARY) ? e.text() : this.#binaryType === 'blob' && typeof Blob !== 'undefined' ? new Blob([e.data]) : e.data.buffer;
    const from = e.aux ? e.from() : undefined;
    if (this.#rooms?.route(data, { channel: e.channel, from, offset: e.value })) return;
    this.dispatchEvent( // the hot path: a MessageEvent, like WebSocket's, plus channel, seq and the relay's stamp
      Object.assign(new MessageEvent('message', { data, lastEventId: e.seq ? String(e.seq) : '' }), { channel: e.channel, seq: e.seq, from, offset: e.value || undefined }));
  }

  async #connect(offerFramed, attempt) {
    const token = ++this.#attempt;
    let url = this.#url, protocols = this.#protocols;
    const hello = this.#opts.hello;
    try {
      const [v, h] = await Promise.all([typeof url === 'function' ? url(attempt) : url, typeof hello === 'function' ? hello(attempt) : null]);
      if (v && typeof v === 'object' && !(v instanceof URL)) ({ url, protocols = this.#protocols } = v);
      else url = v;
      if (token !== this.#attempt || !this.#s || this.#s.state !== SESSION_CONNECTING) return; // timed out meanwhile
      if (typeof hello === 'function') this.#s.setBytes('sb_session_set_hello', JSON.stringify(obj(h)));
      this.url = String(url);
      const offered = offerFramed ? [SESSION_PROTOCOL, ...protocols.filter((p) => p !== SESSION_PROTOCOL)] : protocols;
      const ws = this.#t.open(this.url, offered);
      ws.binaryType = 'arraybuffer';
      this.#ws = ws;
      const mine = (f) => (ev) => { if (this.#ws === ws && this.#s) { f(ev); this.#flush(); } };
      let opened = false;
      ws.onopen = mine(() => {
        opened = true;
        this.#t.opened();
        this.protocol = ws.protocol || '';
        this.extensions = ws.extensions || '';
        this.#s.fn.sb_session_transport_open(this.#s.h, now(), this.protocol === SESSION_PROTOCOL ? 1 : 0);
      });
      ws.onmessage = mine((ev) => {
        const text = typeof ev.data === 'string';
        this.#s.recv(text ? ev.data : new Uint8Array(ev.data), text, now());
      });
      ws.onerror = mine(() => this.dispatchEvent(event('error', { error: new SwitchboardError('CONNECTION_LOST', `WebSocket error on ${this.url}`) })));
      ws.onclose = mine((ev) => {
        this.#ws = null;
        if (!opened) this.#t.failed();
        if (!this.#closed) this.#closeInfo = { code: ev.code, reason: ev.reason || '', wasClean: !!ev.wasClean };
        this.#s.fn.sb_session_transport_closed(this.#s.h, now(), ev.code || 1006);
      });
    } catch (err) {
      if (token !== this.#attempt || !this.#s) return;
      this.dispatchEvent(event('error', { error: err }));
      this.#s.fn.sb_session_transport_closed(this.#s.h, now(), 1006);
      this.#flush();
    }
  }

  /** The writes a tap held (above), in order, on the transport they were for. */
  #release() {
    const h = this.#held;
    this.#held = null;
    if (h && h.ws === this.#ws && h.ws.readyState === 1) for (const d of h.q) h.ws.send(d);
  }

  /** The core let this transport go: close it (a closing one still reports its close). */
  #drop(code, reason) {
    this.#attempt++; // an attempt still asking its URL provider is void
    const ws = this.#ws;
    if (!ws) return;
    const closing = this.#s && this.#s.state === SESSION_CLOSING;
    if (!closing) {
      this.#ws = null;
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = () => {}; // `ws` in Node reports closing a connecting socket as an error: not ours any more
    }
    try { ws.close(closing ? this.#closeInfo.code : code, (closing ? this.#closeInfo.reason : reason).slice(0, 120)); } catch { /* closed */ }
  }

  /** Transports says: blocked (reason 'blocked', on HTTP) or a move back to WebSocket, as a new transport of the session. */
  #moved(kind, reason) {
    if (reason) this.dispatchEvent(event('statechange', { state: this.state, previous: this.state, reason, transport: kind }));
    if (kind !== 'websocket' || !this.#ws || this.#t.trying !== 'http' || this.#s?.state !== SESSION_OPEN) return;
    this.#drop(CLOSE_REPLACING, 'switchboard: moving to WebSocket');
    this.#s.fn.sb_session_transport_closed(this.#s.h, now(), CLOSE_REPLACING);
    this.#s.fn.sb_session_network(this.#s.h, now(), 1); // the next attempt at once
    this.#flush();
  }

  #finish() {
    if (this.#finished) return;
    this.#finished = true;
    this.#closed = true;
    this.#t.stop();
    if (this.#ws) this.#drop(CLOSE_NORMAL, '');
    clearTimeout(this.#timer);
    for (const off of this.#listeners) off();
    this.#listeners = [];
    for (const r of [...this.#requests.values()]) r.reject(new SwitchboardError('CLOSED', 'socket closed'));
    if (this.#persist) this.#save();
    this.#s?.destroy(); // after the save above took its snapshot
    this.#s = null;
    this.dispatchEvent(event('close', this.#closeInfo));
  }

  // ---- persistence (queue.persist) ----

  /** Write the session to IndexedDB after this task (one write for many
   * changes); persisted() waits for it from the moment it is asked for. */
  #saveSoon() {
    if (!this.#persist || this.#saveQueued || typeof indexedDB === 'undefined') return;
    this.#saveQueued = true;
    const p = (this.#saving || Promise.resolve()).then(() => new Promise((r) => setTimeout(r, 0)))
      .then(() => { this.#saveQueued = false; return this.#write(); })
      .catch((e) => this.dispatchEvent(event('error', { error: e })))
      .finally(() => { if (this.#saving === p) this.#saving = null; });
    this.#saving = p;
  }

  /** Now (pagehide, close): the snapshot is taken synchronously. */
  #save() {
    if (!this.#persist || typeof indexedDB === 'undefined' || !this.#s?.h) return;
    const w = this.#write();
    const p = Promise.all([this.#saving, w]).catch((e) => this.dispatchEvent(event('error', { error: e })))
      .finally(() => { if (this.#saving === p) this.#saving = null; });
    this.#saving = p;
  }

  #write() {
    const s = this.#s;
    if (!s?.h) return Promise.resolve();
    const state = s.serialize();
    return idbDo('readwrite', (st) => st.put({ v: 2, state }, this.#persist));
  }
}

onProperties(Socket, ['open', 'message', 'close', 'error']);

/** The subprotocol Socket offers first. */
export const SOCKET_PROTOCOL = SESSION_PROTOCOL;
