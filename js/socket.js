// Socket: a WebSocket that loses nothing. Shaped like WebSocket (an
// EventTarget with open/message/close/error and on* properties, send(),
// close(), readyState), plus reconnect with jittered backoff, heartbeat,
// a bounded outbox that survives disconnects (and reloads, with
// queue.persist), request()/response, and stats().
//
// The decisions live in the C core (src/conn.c via wasm): state machine,
// connect timeout, heartbeat verdict, backoff, sequence numbers. This file
// owns the browser objects: the WebSocket, one timer, online/visibility
// listeners, IndexedDB.
//
// With a switchboard server (it accepts subprotocol switchboard.v1) messages
// travel as frames: batched, compressed on a shared deflate window, acked,
// numbered, and resumed after a reconnect. With any other server, plain
// text/binary messages, at-least-once for what was queued.
import { init, core, toBytes } from './core.js';
import { SwitchboardError } from './errors.js';
import { Wire, Kind, Flag, PROTOCOL, jsonOf, utf8 } from './socket-wire.js';

const STATE_NAMES = ['idle', 'connecting', 'open', 'closing', 'closed', 'reconnecting'];
const REASON_NAMES = ['none', 'start', 'opened', 'connect-timeout', 'heartbeat-timeout', 'peer-closed',
  'user-close', 'retry', 'online', 'visible', 'gave-up', 'protocol-error', 'server-close'];
const S = { IDLE: 0, CONNECTING: 1, OPEN: 2, CLOSING: 3, CLOSED: 4, RECONNECTING: 5 };
const DO = { CONNECT: 1, CLOSE: 2, PING: 4, ACK: 8, CHANGED: 16 };
const RX = { DUP: 0, NEW: 1, GAP: 2 };
const SYSTEM_CHANNEL = 1;
const textEncoder = new TextEncoder();
// Close codes after which coming back would be wrong: policy violation, and
// "replaced" (another tab took over this session).
const NO_RETRY_CODES = new Set([1008, 4000]);

const DEFAULTS = {
  reconnect: { minDelay: 250, maxDelay: 30000, factor: 2, maxAttempts: 0, connectTimeout: 10000 },
  heartbeat: { interval: 25000, timeout: 10000 },
  queue: { maxMessages: 10000, maxBytes: 16 << 20, overflow: 'reject', persist: null },
  batch: { maxMessages: 512, maxBytes: 256 << 10, maxDelay: 0 },
  compress: { threshold: 96, level: 6 },
};

function now() {
  // Wall-clock ms: it keeps running while the machine sleeps, which is what
  // lets the heartbeat notice a sleep. Never let it run backwards.
  const t = Date.now();
  if (t > now.last) now.last = t;
  return now.last;
}
now.last = 0;

function randomSeed() {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return a[0] || 1;
}

function randomSession() {
  const a = new Uint8Array(16);
  globalThis.crypto.getRandomValues(a);
  let s = '';
  for (const b of a) s += 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[b & 63];
  return s;
}

function event(type, props) {
  const e = new Event(type);
  for (const k in props) Object.defineProperty(e, k, { value: props[k], enumerable: true });
  return e;
}

function merge(def, v) {
  if (v === false) return false;
  return { ...def, ...(v && typeof v === 'object' ? v : {}) };
}

// ---- IndexedDB persistence ------------------------------------------------

const IDB_NAME = 'switchboard-socket';
const IDB_STORE = 'outbox';

function idbOpen() {
  return new Promise((resolve, reject) => {
    const rq = indexedDB.open(IDB_NAME, 1);
    rq.onupgradeneeded = () => rq.result.createObjectStore(IDB_STORE);
    rq.onsuccess = () => resolve(rq.result);
    rq.onerror = () => reject(rq.error);
  });
}

async function idbDo(mode, fn) {
  const db = await idbOpen();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(IDB_STORE, mode);
      const rq = fn(tx.objectStore(IDB_STORE));
      tx.oncomplete = () => resolve(rq.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// ---- Socket ----------------------------------------------------------------

export class Socket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  /**
   * @param {string|URL|((attempt:number)=>string|URL|{url:string|URL, protocols?:string[]}|Promise<any>)} url
   * @param {object} [opts] see socket.d.ts
   */
  constructor(url, opts = {}) {
    super();
    if (opts.WebSocket === undefined && typeof globalThis.WebSocket !== 'function') {
      throw new SwitchboardError('INVALID', 'no WebSocket here: pass opts.WebSocket (e.g. the `ws` package in Node)');
    }
    this._WS = opts.WebSocket || globalThis.WebSocket;
    this._url = url;
    this.url = typeof url === 'function' ? '' : String(url);
    this._protocols = Array.isArray(opts.protocols) ? opts.protocols : opts.protocols ? [opts.protocols] : [];
    this._framed = opts.framed !== false;
    this._reconnect = merge(DEFAULTS.reconnect, opts.reconnect);
    this._heartbeat = merge(DEFAULTS.heartbeat, opts.heartbeat);
    this._q = merge(DEFAULTS.queue, opts.queue) || { ...DEFAULTS.queue };
    this._batch = merge(DEFAULTS.batch, opts.batch) || { maxMessages: 1, maxBytes: 0, maxDelay: 0 };
    this._compress = merge(DEFAULTS.compress, opts.compress);
    this._hello = opts.hello && typeof opts.hello === 'object' ? opts.hello : {};
    this._binaryType = opts.binaryType === 'arraybuffer' ? 'arraybuffer' : 'blob';
    if (!['reject', 'drop-oldest', 'drop-newest'].includes(this._q.overflow)) {
      throw new SwitchboardError('INVALID', 'queue.overflow must be reject, drop-oldest or drop-newest');
    }
    this.protocol = '';
    this.extensions = '';
    this.mode = null; // 'framed' | 'plain' once connected
    this.session = opts.session || null;
    this._epoch = null;

    this._conn = 0;
    this._ws = null;
    this._attempt = 0;
    this._timer = null;
    this._items = [];       // outbox: {seq, data: Uint8Array, binary, text?}
    this._queuedBytes = 0;
    this._sentUpTo = 0;     // items[0.._sentUpTo) went out on this connection
    this._ctl = [];         // control frames for the next flush (acks, pongs)
    this._flushScheduled = false;
    this._plainWaiting = 0; // plain mode: items handed to ws, waiting to drain
    this._requests = new Map();
    this._nextId = 1;
    this._closeInfo = { code: 1006, reason: '', wasClean: false };
    this._listeners = [];
    this._savePending = null;
    this._handlers = {};
    this._s = {
      sent: 0, received: 0, duplicates: 0, dropped: 0, retransmits: 0, acked: 0, opens: 0,
      bytesOut: 0, bytesIn: 0, rawBytesOut: 0, rawBytesIn: 0, requests: 0, gaps: 0,
    };
    this._wireTotals = { rawOut: 0, wireOut: 0, rawIn: 0, wireIn: 0 };
    this._wire = null;
    this._closedByUser = false;
    this._startTime = now();

    this.ready = init(opts.wasm || {}).then(() => this._boot()).catch((e) => {
      this._fatal(e);
    });
  }

  // ---- WebSocket-compatible surface ----

  get readyState() {
    const s = this._state();
    if (s === S.OPEN) return 1;
    if (s === S.CLOSING) return 2;
    if (s === S.CLOSED) return 3;
    return 0;
  }

  /** 'idle' | 'connecting' | 'open' | 'closing' | 'closed' | 'reconnecting' */
  get state() {
    return STATE_NAMES[this._state()];
  }

  get binaryType() { return this._binaryType; }
  set binaryType(v) { if (v === 'blob' || v === 'arraybuffer') this._binaryType = v; }

  /** Bytes queued and not yet confirmed (framed: acked; plain: written). */
  get bufferedAmount() { return this._queuedBytes; }

  /**
   * Queue a message. Sent at once when open, kept while offline, re-sent
   * after a reconnect until the server acks it. Throws QUEUE_FULL (overflow
   * 'reject'), TOO_LARGE, CLOSED.
   * @param {string|ArrayBuffer|ArrayBufferView|Blob} data
   */
  send(data, opts = {}) {
    if (this._closedByUser || this._state() === S.CLOSED) throw new SwitchboardError('CLOSED', 'socket is closed');
    if (typeof Blob !== 'undefined' && data instanceof Blob) {
      const p = data.arrayBuffer().then((b) => this.send(b, opts));
      p.catch((e) => this.dispatchEvent(event('error', { error: e })));
      return;
    }
    const text = typeof data === 'string';
    const bytes = text ? textEncoder.encode(data) : toBytes(data).slice();
    const max = this._maxPayload || (1 << 20);
    if (bytes.length > max) throw new SwitchboardError('TOO_LARGE', `message of ${bytes.length} bytes over the ${max} cap`);
    const channel = opts.channel >>> 0;
    if (channel === SYSTEM_CHANNEL) throw new SwitchboardError('INVALID', 'channel 1 is reserved for the server');
    const item = { seq: 0, data: bytes, binary: !text, channel };
    if (!this._admit(item)) return;
    this._items.push(item);
    this._queuedBytes += bytes.length;
    this._persistSoon();
    this._flushSoon();
  }

  /**
   * Send a request; resolves with the server's response (string, or
   * Uint8Array for binary), rejects with the server's error, TIMEOUT,
   * CLOSED or ABORTED. Many may be in flight; unanswered ones are sent again
   * after a reconnect. Needs a switchboard server.
   */
  request(data, opts = {}) {
    if (this._closedByUser || this._state() === S.CLOSED) return Promise.reject(new SwitchboardError('CLOSED', 'socket is closed'));
    if (this.mode === 'plain') return Promise.reject(new SwitchboardError('BAD_STATE', `request() needs a ${PROTOCOL} server`));
    const text = typeof data === 'string';
    const bytes = text ? textEncoder.encode(data) : toBytes(data).slice();
    const id = this._newId();
    const timeout = opts.timeout ?? 30000;
    return new Promise((resolve, reject) => {
      const r = { id, bytes, binary: !text, resolve, reject, deadline: undefined, timeout: 0, sent: false };
      const done = () => {
        this._requests.delete(id);
        if (opts.signal) opts.signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => { done(); reject(opts.signal.reason || new SwitchboardError('ABORTED', 'request aborted')); };
      r.resolve = (v) => { done(); resolve(v); };
      r.reject = (e) => { done(); reject(e); };
      if (opts.signal) {
        if (opts.signal.aborted) { reject(opts.signal.reason || new SwitchboardError('ABORTED', 'request aborted')); return; }
        opts.signal.addEventListener('abort', onAbort, { once: true });
      }
      if (timeout > 0) {
        r.deadline = performance.now() + timeout;
        r.timeout = timeout;
        this._armRequests(r.deadline);
      }
      this._requests.set(id, r);
      this._s.requests++;
      if (this._state() === S.OPEN && this.mode === 'framed') {
        r.sent = true;
        this._ctl.push(this._wire.frame(Kind.REQUEST, { id, flags: r.binary ? Flag.BINARY : 0, payload: bytes }));
        // A request is latency-bound: it does not wait for a batch delay.
        this._flushNow();
      }
    });
  }

  /** Request/ping ids: u32, never 0, wrapping. */
  _newId() {
    const id = this._nextId;
    this._nextId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  /** One timer for every request deadline: armed for the earliest, never
   * cleared on an answer (firing early finds nothing due and re-arms). */
  _armRequests(deadline) {
    if (this._reqTimer && this._reqTimerAt <= deadline) return;
    clearTimeout(this._reqTimer);
    this._reqTimerAt = deadline;
    this._reqTimer = setTimeout(() => {
      this._reqTimer = null;
      const t = performance.now();
      let next = Infinity;
      for (const r of [...this._requests.values()]) {
        if (r.deadline === undefined) continue;
        if (r.deadline <= t) r.reject(new SwitchboardError('TIMEOUT', `no answer within ${r.timeout} ms`));
        else next = Math.min(next, r.deadline);
      }
      if (next !== Infinity) this._armRequests(next);
    }, Math.max(0, deadline - performance.now()));
    // Node: a deadline alone must not keep the process alive (the socket does).
    this._reqTimer?.unref?.();
  }

  /** Stop reconnecting and close (after writing what is already queued). */
  close(code = 1000, reason = '') {
    if (this._closedByUser) return;
    this._closedByUser = true;
    this._closeInfo = { code, reason, wasClean: true };
    if (!this._conn) { this._finalClose(); return; }
    if (this._state() === S.OPEN) this._flush(true);
    this._apply(core().fn.sb_conn_close(this._conn, now()));
  }

  /** Live figures for dashboards. */
  stats() {
    const w = this._wire;
    const t = this._wireTotals;
    const c = this._conn ? core().fn : null;
    const rawOut = t.rawOut + (w ? w.rawOut : 0);
    const wireOut = t.wireOut + (w ? w.wireOut : 0);
    const rawIn = t.rawIn + (w ? w.rawIn : 0);
    const wireIn = t.wireIn + (w ? w.wireIn : 0);
    return {
      state: this.state,
      mode: this.mode,
      queued: this._items.length,
      queuedBytes: this._queuedBytes,
      inFlight: this.mode === 'framed' ? this._sentUpTo : this._plainWaiting,
      requestsPending: this._requests.size,
      sent: this._s.sent,
      received: this._s.received,
      duplicates: this._s.duplicates,
      retransmits: this._s.retransmits,
      dropped: this._s.dropped,
      gaps: this._s.gaps,
      opens: this._s.opens,
      reconnects: Math.max(0, this._s.opens - 1),
      attempt: c ? c.sb_conn_attempt(this._conn) : 0,
      rtt: c ? c.sb_conn_rtt(this._conn) : -1,
      bytesOut: this.mode === 'plain' ? this._s.bytesOut : wireOut,
      bytesIn: this.mode === 'plain' ? this._s.bytesIn : wireIn,
      payloadBytesOut: rawOut,
      payloadBytesIn: rawIn,
      compressionSaved: Math.max(0, rawOut - wireOut) + Math.max(0, rawIn - wireIn),
      lastSeq: c ? { tx: c.sb_conn_tx_seq(this._conn) >>> 0, acked: c.sb_conn_acked_seq(this._conn) >>> 0, rx: c.sb_conn_rx_last(this._conn) >>> 0 } : null,
    };
  }

  /** Resolves when the outbox state has been written to IndexedDB (queue.persist). */
  async persisted() {
    while (this._savePending) await this._savePending;
  }

  // on* properties, like WebSocket
  get onopen() { return this._handlers.open || null; }
  set onopen(f) { this._setHandler('open', f); }
  get onmessage() { return this._handlers.message || null; }
  set onmessage(f) { this._setHandler('message', f); }
  get onclose() { return this._handlers.close || null; }
  set onclose(f) { this._setHandler('close', f); }
  get onerror() { return this._handlers.error || null; }
  set onerror(f) { this._setHandler('error', f); }

  _setHandler(type, f) {
    if (this._handlers[type]) this.removeEventListener(type, this._handlers[type]);
    this._handlers[type] = typeof f === 'function' ? f : null;
    if (this._handlers[type]) this.addEventListener(type, this._handlers[type]);
  }

  // ---- life cycle ----

  _state() {
    if (!this._conn) return this._closedByUser || this._dead ? S.CLOSED : S.IDLE;
    return core().fn.sb_conn_state(this._conn);
  }

  async _boot() {
    const c = core();
    if (this._q.persist) await this._restore();
    if (this._closedByUser) { this._finalClose(); return; }
    const r = this._reconnect || { minDelay: 1, maxDelay: 1, factor: 1, maxAttempts: 1, connectTimeout: 10000 };
    const hb = this._heartbeat;
    this._conn = c.fn.sb_conn_create(r.connectTimeout, hb ? hb.interval : 0, hb ? hb.timeout : 0,
      20, 64, r.minDelay, r.maxDelay, r.factor, r.maxAttempts, randomSeed());
    if (!this._conn) throw new SwitchboardError('INVALID', 'bad reconnect/heartbeat options');
    if (this._restored) {
      const p = this._restored;
      c.check(c.fn.sb_conn_restore(this._conn, p.tx >>> 0, p.acked >>> 0, p.rx >>> 0), 'restore');
    }
    if (!this.session) this.session = randomSession();
    this._listen();
    this._apply(c.fn.sb_conn_start(this._conn, now()));
  }

  _fatal(e) {
    this._dead = true;
    this.dispatchEvent(event('error', { error: e }));
    this._finalClose();
  }

  _listen() {
    const on = (target, type, fn) => {
      if (!target || typeof target.addEventListener !== 'function') return;
      target.addEventListener(type, fn);
      this._listeners.push(() => target.removeEventListener(type, fn));
    };
    if (typeof window !== 'undefined') {
      on(window, 'online', () => this._call('sb_conn_network', 1));
      on(window, 'offline', () => this._call('sb_conn_network', 0));
      on(window, 'pagehide', () => this._saveNow());
    }
    if (typeof document !== 'undefined') {
      on(document, 'visibilitychange', () => this._call('sb_conn_visibility', document.visibilityState === 'visible' ? 1 : 0));
    }
  }

  _call(fn, arg) {
    if (!this._conn) return;
    this._apply(core().fn[fn](this._conn, now(), arg));
  }

  /** Act on what the core decided. */
  _apply(a) {
    if (!this._conn) return;
    const c = core();
    if (a < 0) throw c.error(a, 'socket');
    if (a & DO.CLOSE) this._dropSocket();
    if (a & DO.CHANGED) this._changed();
    if (!this._conn) return;
    if (a & DO.CONNECT) this._connect();
    if (a & DO.PING) this._ping();
    if (a & DO.ACK) this._ack();
    this._arm();
  }

  _arm() {
    if (!this._conn) { clearTimeout(this._timer); this._timer = null; return; }
    const d = core().fn.sb_conn_next_deadline(this._conn);
    // A timer already set for no later than d can stay: firing early is
    // harmless (the tick finds nothing due and re-arms). Saves a timer per message.
    if (this._timer !== null && d >= 0 && this._armedAt <= d) return;
    clearTimeout(this._timer);
    this._timer = null;
    if (d < 0) return;
    this._armedAt = d;
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this._conn) this._apply(core().fn.sb_conn_tick(this._conn, now()));
    }, Math.max(0, d - now()));
  }

  _changed() {
    const fn = core().fn;
    const st = fn.sb_conn_state(this._conn);
    const reason = REASON_NAMES[fn.sb_conn_reason(this._conn)] || 'none';
    this.dispatchEvent(event('statechange', { state: STATE_NAMES[st], reason }));
    if (st === S.OPEN) {
      this._s.opens++;
      this.dispatchEvent(event('open', {}));
      this._flush(false);
    } else if (st === S.RECONNECTING) {
      this._endConnection();
      if (!this._reconnect) {
        // reconnect: false — one connection only.
        this._apply(fn.sb_conn_close(this._conn, now()));
        return;
      }
      this.dispatchEvent(event('reconnecting', {
        attempt: fn.sb_conn_attempt(this._conn), delay: fn.sb_conn_retry_delay(this._conn), reason,
      }));
    } else if (st === S.CONNECTING) {
      this._endConnection(); // a fresh socket gets a fresh wire
    } else if (st === S.CLOSED) {
      if (!this._closedByUser) this._closeInfo = { ...this._closeInfo, reason: this._closeInfo.reason || reason, wasClean: false };
      this._finalClose();
    }
  }

  _finalClose() {
    if (this._finished) return;
    this._finished = true;
    this._closedByUser = true;
    this._dropSocket();
    this._endConnection();
    clearTimeout(this._timer);
    clearTimeout(this._reqTimer);
    for (const off of this._listeners) off();
    this._listeners = [];
    for (const r of [...this._requests.values()]) r.reject(new SwitchboardError('CLOSED', 'socket closed'));
    if (this._conn) { core().fn.sb_conn_destroy(this._conn); this._conn = 0; }
    if (this._q.persist) this._persistSoon();
    this.dispatchEvent(event('close', this._closeInfo));
  }

  /** Socket gone: keep the wire totals, forget per-connection state. */
  _endConnection() {
    if (this._wire) {
      const w = this._wire, t = this._wireTotals;
      t.rawOut += w.rawOut; t.wireOut += w.wireOut; t.rawIn += w.rawIn; t.wireIn += w.wireIn;
      w.close();
      this._wire = null;
    }
    this._sentUpTo = 0;
    this._ctl = [];
    this._plainWaiting = 0;
    for (const r of this._requests.values()) r.sent = false;
  }

  async _connect() {
    const token = ++this._attempt;
    let url = this._url, protocols = this._protocols;
    try {
      if (typeof url === 'function') {
        const v = await url(core().fn.sb_conn_attempt(this._conn));
        if (v && typeof v === 'object' && !(v instanceof URL)) {
          url = v.url;
          if (v.protocols) protocols = v.protocols;
        } else {
          url = v;
        }
      }
      if (token !== this._attempt || !this._conn) return;
      this.url = String(url);
      this._offeredFramed = this._framed && this._offerFramed !== false;
      this._attemptOpened = false;
      const offered = this._offeredFramed ? [PROTOCOL, ...protocols.filter((p) => p !== PROTOCOL)] : protocols;
      const ws = new this._WS(this.url, offered);
      ws.binaryType = 'arraybuffer';
      this._ws = ws;
      ws.onopen = () => { if (this._ws === ws) this._onOpen(); };
      ws.onmessage = (e) => { if (this._ws === ws) this._onMessage(e.data); };
      ws.onerror = (e) => {
        // Browsers accept a server that picks no subprotocol; strict clients
        // (Node's ws) fail the handshake instead. Offer plain next time.
        if (/no subprotocol/i.test(String(e?.message || e?.error?.message || ''))) this._offerFramed = false;
        if (this._ws === ws) this.dispatchEvent(event('error', { error: new SwitchboardError('CONNECTION_LOST', `WebSocket error on ${this.url}`) }));
      };
      ws.onclose = (e) => { if (this._ws === ws) this._onClose(e); };
    } catch (e) {
      if (token !== this._attempt || !this._conn) return;
      this.dispatchEvent(event('error', { error: e }));
      this._apply(core().fn.sb_conn_closed(this._conn, now(), 0));
    }
  }

  _dropSocket() {
    const ws = this._ws;
    if (!ws) return;
    const closing = this._conn && core().fn.sb_conn_state(this._conn) === S.CLOSING;
    if (!closing) {
      this._ws = null;
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    }
    try {
      ws.close(closing ? this._closeInfo.code : 4001, closing ? this._closeInfo.reason : 'switchboard: replacing connection');
    } catch {
      try { ws.close(); } catch { /* already closed */ }
    }
  }

  _onOpen() {
    const ws = this._ws;
    this._attemptOpened = true;
    this.protocol = ws.protocol || '';
    this.extensions = ws.extensions || '';
    if (this.protocol === PROTOCOL) {
      this.mode = 'framed';
      const c = this._compress;
      this._wire = new Wire({ compress: false, compressAbove: c ? c.threshold : Infinity, level: c ? c.level : 6 });
      const fn = core().fn;
      const hello = {
        ...this._hello, v: 1, session: this.session, epoch: this._epoch,
        rx: (fn.sb_conn_rx_last(this._conn) >>> 0), acked: (fn.sb_conn_acked_seq(this._conn) >>> 0), compress: !!c,
      };
      this._sendRaw(this._wire.pack([this._wire.frame(Kind.HELLO, { payload: JSON.stringify(hello) })]));
      // "open" waits for the server's hello.
    } else {
      this.mode = 'plain';
      this._workedPlain = true;
      this._apply(core().fn.sb_conn_opened(this._conn, now()));
    }
  }

  _onClose(e) {
    this._ws = null;
    if (this._framed && !this._attemptOpened) {
      // Chromium fails the handshake when a server picks no subprotocol;
      // until one mode has worked, alternate what we offer.
      if (this._offeredFramed && !this._workedFramed) this._offerFramed = false;
      else if (!this._offeredFramed && !this._workedPlain) this._offerFramed = true;
    }
    if (!this._closedByUser) this._closeInfo = { code: e.code, reason: e.reason || '', wasClean: !!e.wasClean };
    if (!this._conn) return;
    this._apply(core().fn.sb_conn_closed(this._conn, now(), NO_RETRY_CODES.has(e.code) ? 1 : 0));
  }

  _protocolError(err) {
    this.dispatchEvent(event('error', { error: err }));
    const ws = this._ws;
    if (ws) {
      try { ws.close(4002, `${err.code || 'ERROR'}`.slice(0, 100)); } catch { /* ignore */ }
    }
    this._apply(core().fn.sb_conn_fail(this._conn, now()));
  }

  _onMessage(data) {
    if (!this._conn) return;
    const fn = core().fn;
    fn.sb_conn_received(this._conn, now());
    if (this.mode !== 'framed') {
      this._s.received++;
      this._s.bytesIn += typeof data === 'string' ? data.length : data.byteLength;
      this._deliver(typeof data === 'string' ? data : new Uint8Array(data), typeof data !== 'string', 0, 0);
      return;
    }
    let frames;
    try {
      if (typeof data === 'string') throw new SwitchboardError('BAD_FRAME', `${PROTOCOL} carries binary frames only`);
      frames = this._wire.unpack(new Uint8Array(data));
      if (fn.sb_conn_state(this._conn) === S.CONNECTING && !this._isServerHello(frames[0])) {
        throw new SwitchboardError('BAD_VERSION', 'no server hello');
      }
    } catch (e) {
      if (fn.sb_conn_state(this._conn) === S.CONNECTING) {
        // The server accepted the subprotocol but does not speak it (many
        // servers echo the first protocol offered): talk plain to it.
        this._offerFramed = false;
        this._apply(fn.sb_conn_fail(this._conn, now()));
        return;
      }
      this._protocolError(e instanceof SwitchboardError ? e : new SwitchboardError('BAD_FRAME', String(e?.message || e)));
      return;
    }
    try {
      for (const f of frames) {
        if (!this._conn || !this._wire) return;
        this._frame(f);
      }
    } catch (e) {
      if (this._conn && this._wire) this._protocolError(e instanceof SwitchboardError ? e : new SwitchboardError('BAD_FRAME', String(e?.message || e)));
      else throw e;
      return;
    }
    if (this._conn) this._apply(fn.sb_conn_tick(this._conn, now()));
  }

  _frame(f) {
    const fn = core().fn;
    const st = fn.sb_conn_state(this._conn);
    if (st === S.CONNECTING && f.kind !== Kind.HELLO) throw new SwitchboardError('BAD_STATE', 'server spoke before its hello');
    switch (f.kind) {
      case Kind.HELLO: {
        if (st !== S.CONNECTING) throw new SwitchboardError('BAD_STATE', 'second hello');
        this._onHello(jsonOf(f.payload));
        break;
      }
      case Kind.MESSAGE: {
        const binary = (f.flags & Flag.BINARY) !== 0;
        if (f.seq) {
          const r = fn.sb_conn_rx_seq(this._conn, now(), f.seq);
          if (r < 0) throw core().error(r, 'message');
          if (r === RX.DUP) { this._s.duplicates++; return; }
          if (r === RX.GAP) {
            this._s.gaps++;
            this.dispatchEvent(event('error', { error: new SwitchboardError('CONNECTION_LOST', `messages ${(fn.sb_conn_rx_last(this._conn) >>> 0) + 1}..${f.seq - 1} are gone from the server's history`) }));
            fn.sb_conn_set_rx(this._conn, f.seq - 1);
            fn.sb_conn_rx_seq(this._conn, now(), f.seq);
          }
        }
        this._s.received++;
        this._deliver(binary ? f.payload : utf8(f.payload), binary, f.channel, f.seq);
        if (this._q.persist && f.seq) this._persistSoon();
        break;
      }
      case Kind.ACK: {
        const n = fn.sb_conn_acked(this._conn, f.seq);
        if (n < 0) throw new SwitchboardError('BAD_FRAME', `ack of ${f.seq}: never sent`);
        if (n > 0) this._dropAcked();
        break;
      }
      case Kind.RESPONSE:
      case Kind.ERROR: {
        const r = this._requests.get(f.corr);
        if (!r) return; // answered twice (re-sent request) or given up on
        const binary = (f.flags & Flag.BINARY) !== 0;
        if (f.kind === Kind.RESPONSE) r.resolve(binary ? f.payload : utf8(f.payload));
        else {
          let info = {};
          try { info = jsonOf(f.payload); } catch { info = { message: utf8(f.payload) }; }
          r.reject(new SwitchboardError(typeof info.code === 'string' ? info.code : 'REMOTE', String(info.message ?? 'server error')));
        }
        break;
      }
      case Kind.PING:
        this._ctl.push(this._wire.frame(Kind.PONG, { corr: f.id }));
        this._flushSoon();
        break;
      case Kind.PONG:
        fn.sb_conn_pong(this._conn, now());
        break;
      default:
        throw new SwitchboardError('BAD_FRAME', `unexpected frame kind ${f.kind}`);
    }
  }

  _isServerHello(f) {
    if (!f || f.kind !== Kind.HELLO) return false;
    try {
      const h = jsonOf(f.payload);
      return h && h.v === 1 && typeof h.epoch === 'string' && typeof h.session === 'string';
    } catch {
      return false;
    }
  }

  _onHello(h) {
    const fn = core().fn;
    if (!h || h.v !== 1 || typeof h.session !== 'string' || typeof h.epoch !== 'string') {
      throw new SwitchboardError('BAD_VERSION', 'server hello is not switchboard v1');
    }
    if (this._epoch && h.epoch !== this._epoch && (fn.sb_conn_rx_last(this._conn) >>> 0) > 0) {
      // The server lost our stream: its numbering starts again.
      this._s.gaps++;
      this.dispatchEvent(event('error', { error: new SwitchboardError('CONNECTION_LOST', 'the server no longer knows this session; its messages restart') }));
      fn.sb_conn_set_rx(this._conn, 0);
    }
    if (h.gap) {
      this._s.gaps++;
      this.dispatchEvent(event('error', { error: new SwitchboardError('CONNECTION_LOST', 'some messages aged out of the server\'s history before we came back') }));
    }
    this.session = h.session;
    this._epoch = h.epoch;
    this._workedFramed = true;
    this._offerFramed = true;
    if (Number.isInteger(h.maxPayload) && h.maxPayload > 0) this._maxPayload = h.maxPayload;
    if (Number.isInteger(h.maxFrames) && h.maxFrames > 0) this._maxFrames = h.maxFrames;
    if (Number.isInteger(h.maxMessage) && h.maxMessage > 0) this._maxMessage = h.maxMessage;
    this._wire.compress = !!this._compress && h.compress === true;
    const rx = Number.isInteger(h.rx) && h.rx >= 0 ? h.rx >>> 0 : 0;
    fn.sb_conn_resume_from(this._conn, rx);
    this._dropAcked();
    this._sentUpTo = 0;
    this._persistSoon();
    this._apply(fn.sb_conn_opened(this._conn, now()));
  }

  _deliver(data, binary, channel, seq) {
    let value = data;
    if (binary) {
      const ab = data.buffer.byteLength === data.byteLength ? data.buffer : data.slice().buffer;
      value = this._binaryType === 'blob' && typeof Blob !== 'undefined' ? new Blob([ab]) : ab;
    }
    const e = event('message', { data: value, channel, seq, origin: '', lastEventId: seq ? String(seq) : '' });
    this.dispatchEvent(e);
  }

  // ---- outbox ----

  /** Apply the overflow policy; false means the new item is not queued. */
  _admit(item) {
    const q = this._q;
    const size = item.data.length;
    const full = () => this._items.length + 1 > q.maxMessages || this._queuedBytes + size > q.maxBytes;
    if (!full()) return true;
    if (size > q.maxBytes) {
      this._drop(item, 'too-large');
      throw new SwitchboardError('TOO_LARGE', `message of ${size} bytes over the queue's ${q.maxBytes}`);
    }
    if (q.overflow === 'reject') {
      this._drop(item, 'rejected');
      throw new SwitchboardError('QUEUE_FULL', `outbox full (${this._items.length} messages, ${this._queuedBytes} bytes)`);
    }
    if (q.overflow === 'drop-newest') {
      this._drop(item, 'overflow');
      return false;
    }
    while (full() && this._items.length) {
      const old = this._items.shift();
      this._queuedBytes -= old.data.length;
      if (this._sentUpTo > 0) this._sentUpTo--;
      if (this.mode === 'plain' && this._plainWaiting > 0) this._plainWaiting--;
      this._drop(old, 'overflow');
    }
    return true;
  }

  _drop(item, reason) {
    this._s.dropped++;
    this.dispatchEvent(event('drop', { data: item.binary ? item.data : utf8(item.data), reason, seq: item.seq }));
  }

  _dropAcked() {
    const acked = core().fn.sb_conn_acked_seq(this._conn) >>> 0;
    let k = 0;
    while (k < this._items.length && this._items[k].seq && this._items[k].seq <= acked) {
      this._queuedBytes -= this._items[k].data.length;
      k++;
    }
    if (k) {
      this._items.splice(0, k);
      this._sentUpTo = Math.max(0, this._sentUpTo - k);
      this._s.acked += k;
      this._persistSoon();
    }
  }

  _flushSoon() {
    if (this._flushScheduled) return;
    this._flushScheduled = true;
    const go = () => { this._flushScheduled = false; this._flush(false); };
    if (this._batch.maxDelay > 0 && this._ctl.length === 0) setTimeout(go, this._batch.maxDelay);
    else queueMicrotask(go);
  }

  _flushNow() {
    this._flush(false);
  }

  _sendRaw(bytes) {
    this._ws.send(bytes);
  }

  /** Write what is queued: framed batches, or plain messages. */
  _flush(closing) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1 || !this._conn) return;
    const st = core().fn.sb_conn_state(this._conn);
    if (st !== S.OPEN && !closing) return;
    if (this.mode === 'plain') { this._flushPlain(ws); return; }
    const fn = core().fn;
    const frames = this._ctl;
    this._ctl = [];
    // Requests that have not gone out on this connection.
    for (const r of this._requests.values()) {
      if (!r.sent) {
        r.sent = true;
        frames.push(this._wire.frame(Kind.REQUEST, { id: r.id, flags: r.binary ? Flag.BINARY : 0, payload: r.bytes }));
      }
    }
    const maxFrames = Math.min(this._batch.maxMessages || 1, this._maxFrames || 4096);
    const maxBytes = Math.max(1, Math.min(this._batch.maxBytes || 1, (this._maxMessage || (8 << 20)) / 2));
    let i = this._sentUpTo;
    const urgent = frames.length === 1 && i >= this._items.length;
    const send = (chunk) => {
      if (chunk.length) this._sendRaw(this._wire.pack(chunk, { urgent }));
    };
    let chunk = frames, bytes = 0;
    for (const f of chunk) bytes += f.length;
    while (i < this._items.length) {
      // Backpressure: leave the rest queued while the socket's buffer is full.
      if (ws.bufferedAmount > (4 << 20)) { setTimeout(() => this._flushSoon(), 10); break; }
      const it = this._items[i];
      let flags = Flag.ACK_REQ | (it.binary ? Flag.BINARY : 0);
      if (it.seq) { flags |= Flag.RETRY; this._s.retransmits++; } else { it.seq = (fn.sb_conn_tx_next(this._conn) >>> 0); this._s.sent++; }
      const fr = this._wire.frame(Kind.MESSAGE, { seq: it.seq, channel: it.channel, flags, payload: it.data });
      if (chunk.length && (chunk.length >= maxFrames || bytes + fr.length > maxBytes)) {
        send(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(fr);
      bytes += fr.length;
      i++;
    }
    send(chunk);
    if (i !== this._sentUpTo) { this._sentUpTo = i; this._persistSoon(); }
  }

  _flushPlain(ws) {
    while (this._plainWaiting < this._items.length) {
      const it = this._items[this._plainWaiting];
      ws.send(it.binary ? it.data : utf8(it.data));
      this._s.sent++;
      this._s.bytesOut += it.data.length;
      this._plainWaiting++;
    }
    this._drainPlain(ws);
  }

  /** Plain mode: a message leaves the outbox once the browser has written it out. */
  _drainPlain(ws) {
    if (this._ws !== ws || !this._plainWaiting) return;
    if (ws.bufferedAmount === 0) {
      const n = this._plainWaiting;
      for (let k = 0; k < n; k++) this._queuedBytes -= this._items[k].data.length;
      this._items.splice(0, n);
      this._plainWaiting = 0;
      this._persistSoon();
      return;
    }
    setTimeout(() => this._drainPlain(ws), 20);
  }

  _ping() {
    if (this.mode === 'framed' && this._wire) {
      this._ctl.push(this._wire.frame(Kind.PING, { id: this._newId() }));
      this._flushNow();
    } else if (this._heartbeat && this._heartbeat.plainPing != null && this._ws) {
      // Plain servers: an app-level ping message; any reply counts as life.
      this._ws.send(this._heartbeat.plainPing);
    } else if (this._conn) {
      // A plain server cannot be pinged from a browser (no ws ping API):
      // the heartbeat has no verdict there, the transport's own close does.
      core().fn.sb_conn_pong(this._conn, now());
    }
  }

  _ack() {
    const fn = core().fn;
    if (this.mode !== 'framed' || !this._wire) return;
    this._ctl.push(this._wire.frame(Kind.ACK, { seq: (fn.sb_conn_rx_last(this._conn) >>> 0) }));
    fn.sb_conn_ack_sent(this._conn);
    this._flushNow();
  }

  // ---- persistence (queue.persist) ----

  async _restore() {
    if (typeof indexedDB === 'undefined') return;
    let st;
    try {
      st = await idbDo('readonly', (s) => s.get(this._q.persist));
    } catch (e) {
      this.dispatchEvent(event('error', { error: e }));
      return;
    }
    if (!st || st.v !== 1) return;
    this.session = this.session || st.session;
    this._epoch = st.epoch || null;
    this._restored = { tx: st.tx, acked: st.acked, rx: st.rx };
    const restored = st.items.map((x) => ({ seq: x.seq, data: new Uint8Array(x.data), binary: x.binary, channel: x.channel || 0 }));
    this._items = restored.concat(this._items);
    this._queuedBytes = this._items.reduce((n, x) => n + x.data.length, 0);
  }

  _snapshot() {
    const fn = this._conn ? core().fn : null;
    return {
      v: 1,
      session: this.session,
      epoch: this._epoch,
      tx: fn ? (fn.sb_conn_tx_seq(this._conn) >>> 0) : (this._restored?.tx || 0),
      acked: fn ? (fn.sb_conn_acked_seq(this._conn) >>> 0) : (this._restored?.acked || 0),
      rx: fn ? (fn.sb_conn_rx_last(this._conn) >>> 0) : (this._restored?.rx || 0),
      items: this._items.map((x) => ({ seq: x.seq, data: x.data, binary: x.binary, channel: x.channel })),
    };
  }

  _persistSoon() {
    if (!this._q.persist || typeof indexedDB === 'undefined' || this._saveQueued) return;
    this._saveQueued = true;
    const prev = this._savePending || Promise.resolve();
    const p = prev.then(() => new Promise((r) => setTimeout(r, 0))).then(() => {
      this._saveQueued = false;
      const snap = this._snapshot();
      return idbDo('readwrite', (s) => s.put(snap, this._q.persist));
    }).catch((e) => this.dispatchEvent(event('error', { error: e }))).finally(() => {
      if (this._savePending === p) this._savePending = null;
    });
    this._savePending = p;
  }

  _saveNow() {
    this._saveQueued = false;
    this._persistSoon();
  }
}

/** The subprotocol Socket offers first. */
export const SOCKET_PROTOCOL = PROTOCOL;
