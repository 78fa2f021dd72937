// Cross-document bridge: promise RPC and events between a page and its
// iframes, popups, workers and MessagePorts.
//
// The wasm router (src/router.c) decides: which endpoint a handshake message
// belongs to (channel + expected window + origin allowlist), whether a reply
// carries our nonce, which call ids are pending where and until when, when to
// ping and when a silent peer is lost. This file only moves JS values: it owns
// the windows, ports and timers, and holds argument/result values and promise
// callbacks by call id, so payloads keep structured-clone semantics and
// transferables. After the handshake everything runs over a private
// MessageChannel; the window is only ever used for the handshake.
import { init, core } from './core.js';
import { SwitchboardError } from './errors.js';
import {
  RT_CALL_FAILED, RT_PING, RT_LOST, RT_CONNECT_TIMEOUT, RR_NONE, RR_NO_CHANNEL, RR_BAD_ORIGIN, RR_ORIGIN_REJECTED,
  RR_WRONG_SOURCE, RR_BAD_NONCE, RR_BAD_STATE, ROUTER_RECORD_KIND, ROUTER_RECORD_ENDPOINT, ROUTER_RECORD_ID,
  ROUTER_RECORD_ERR, ROUTER_RECORD_SIZE, ROUTER_CHANNEL_MAX, ROUTER_NONCE_MAX, ORIGIN_MAX,
  E_TIMEOUT, E_CLOSED, E_CONNECTION_LOST,
} from './constants.js';

const MARK = '__switchboard_bridge';
const VERSION = 1;

// Port messages are arrays: [kind, id, a, b] for calls, replies and the
// handshake on the port; [EVENT, name, data] and [BATCH, [name, data, …]].
const CALL = 1, OK = 2, ERR = 3, EVENT = 4, BATCH = 5, PING = 6, PONG = 7, BYE = 8, READY = 9, SYN = 10, ACK = 11;
// One-argument calls skip the args array: one nesting level less to clone.
const CALL1 = 12;

// What a reject event's detail.reason says for each sb_route_reason.
const REASONS = {
  [RR_NONE]: 'none', [RR_NO_CHANNEL]: 'no-channel', [RR_BAD_ORIGIN]: 'bad-origin', [RR_ORIGIN_REJECTED]: 'origin-rejected',
  [RR_WRONG_SOURCE]: 'wrong-source', [RR_BAD_NONCE]: 'bad-nonce', [RR_BAD_STATE]: 'unexpected',
};
// The router's event table: int32 words, one record per event.
const REC = ROUTER_RECORD_SIZE >> 2;

const EMPTY = [];
const encoder = new TextEncoder();
const now = () => performance.now();

/** Options for one call, passed as the last argument of `remote.call()`. */
export class CallOptions {
  /** @param {{timeout?: number, transfer?: Transferable[], signal?: AbortSignal}} opts */
  constructor({ timeout, transfer, signal } = {}) {
    this.timeout = timeout;
    this.transfer = transfer;
    this.signal = signal;
  }
}

/** Wrap a method's return value (or an emitted payload) with a transfer list. */
export class Transfer {
  constructor(value, transfer) {
    this.value = value;
    this.transfer = transfer || EMPTY;
  }
}
export const transfer = (value, list) => new Transfer(value, list);

/** Every rejected message on this realm's windows, also those for no bridge. */
export const bridgeMonitor = new EventTarget();

function nonce() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let s = '';
  for (let i = 0; i < 16; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return s;
}

// Always answers with plain strings: whatever was thrown (a Symbol, undefined,
// an object whose getters throw) must not leave the caller waiting.
function serializeError(e, stack) {
  try {
    if (e && (typeof e === 'object' || typeof e === 'function')) {
      return {
        name: String(e.name || 'Error'), message: String(e.message ?? ''),
        stack: stack && typeof e.stack === 'string' ? e.stack : '', code: e.code === undefined ? undefined : String(e.code),
      };
    }
    return { name: 'Error', message: String(e), stack: '' };
  } catch {
    return { name: 'Error', message: 'a value that cannot be described was thrown', stack: '' };
  }
}

function reviveError(d) {
  if (!d || typeof d !== 'object') return new Error(String(d));
  const e = d.name === 'SwitchboardError' && d.code ? new SwitchboardError(String(d.code), String(d.message)) : new Error(String(d.message ?? ''));
  e.name = String(d.name || 'Error');
  if (d.code !== undefined) e.code = d.code;
  // The remote stack first, so the developer sees where it was thrown.
  if (typeof d.stack === 'string' && d.stack) e.stack = d.stack;
  return e;
}

// ---------------------------------------------------------------------------
// The hub: one router per JS realm, one window listener, one timer.

let hubInstance = null;
function hub() {
  if (!hubInstance) hubInstance = new Hub();
  return hubInstance;
}

class Hub {
  constructor() {
    this.c = core();
    this.fn = this.c.fn;
    this.r = this.fn.sb_router_create(256, 65535, 32);
    if (!this.r) throw new SwitchboardError('NO_MEMORY', 'router');
    this.eps = new Map();          // handle -> Remote
    this.sources = new WeakMap();  // Window / Worker -> source id
    this.nextSource = 1;
    this.timer = 0;
    this.timerAt = Infinity;
    this.windowListening = false;
    this.onWindowMessage = (ev) => this.handshakeMessage(ev, ev.source, ev.origin);
    this.tick = () => { this.timer = 0; this.timerAt = Infinity; this.poll(); };
  }

  sourceId(obj) {
    let id = this.sources.get(obj);
    if (!id) { id = this.nextSource++; this.sources.set(obj, id); }
    return id;
  }

  listenWindow() {
    if (!this.windowListening && typeof addEventListener === 'function' && typeof window !== 'undefined') {
      addEventListener('message', this.onWindowMessage);
      this.windowListening = true;
    }
  }

  // Two strings into wasm scratch at once.
  strings(a, b) {
    const c = this.c;
    const p = c.scratch(a.length * 3 + b.length * 3 + 2);
    const heap = c.heap();
    const wa = encoder.encodeInto(a, heap.subarray(p, p + a.length * 3)).written;
    const wb = encoder.encodeInto(b, heap.subarray(p + wa, p + wa + b.length * 3 + 1)).written;
    return [p, wa, p + wa, wb];
  }

  open(remote, channel, sourceObj, origins) {
    const src = sourceObj ? this.sourceId(sourceObj) : 0;
    const [p, n] = this.c.writeString(channel);
    const o = remote.opts;
    const ep = this.c.check(this.fn.sb_router_open(this.r, p, n, src, o.heartbeat, o.heartbeat > 0 ? o.deadAfter : 0, o.timeout, now()), 'bridge');
    try {
      for (const pat of origins) {
        if (typeof pat !== 'string') throw new SwitchboardError('INVALID', 'origins must be strings');
        const [q, m] = this.c.writeString(pat);
        this.c.check(this.fn.sb_router_allow(this.r, ep, q, m), `origin ${JSON.stringify(pat)}`);
      }
    } catch (e) {
      this.fn.sb_router_close(this.r, ep, E_CLOSED);
      throw e;
    }
    this.eps.set(ep, remote);
    this.listenWindow();
    this.armAt(this.fn.sb_router_next_deadline(this.r));
    return ep;
  }

  /** Is `origin` allowed on ep from `sourceObj`? (for choosing a targetOrigin) */
  allows(channel, sourceObj, origin) {
    const [p, n, q, m] = this.strings(channel, origin);
    return this.fn.sb_router_route(this.r, p, n, this.sources.get(sourceObj) || 0, q, m) > 0;
  }

  close(ep, err) {
    const n = this.fn.sb_router_close(this.r, ep, err);
    this.events(n);
    this.eps.delete(ep);
  }

  armAt(at) {
    if (at < 0 || at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.tick, Math.max(0, at - now()));
    if (typeof this.timer === 'object') this.timer.unref?.(); // Node: never keep a process alive
  }

  poll() {
    this.events(this.fn.sb_router_poll(this.r, now()));
    this.armAt(this.fn.sb_router_next_deadline(this.r));
  }

  // Act on the router's event table (kind, endpoint, call id, err).
  events(n) {
    if (n <= 0) return;
    const t = new Int32Array(this.c.heap().buffer, this.fn.sb_router_events(this.r), n * REC).slice();
    for (let r = 0; r < n * REC; r += REC) {
      const kind = t[r + (ROUTER_RECORD_KIND >> 2)], remote = this.eps.get(t[r + (ROUTER_RECORD_ENDPOINT >> 2)]);
      const id = t[r + (ROUTER_RECORD_ID >> 2)] >>> 0, err = t[r + (ROUTER_RECORD_ERR >> 2)];
      if (!remote) continue;
      if (kind === RT_CALL_FAILED) remote._fail(id, err);
      else if (kind === RT_PING) remote._ping();
      else if (kind === RT_LOST) remote._lost('timeout');
      else if (kind === RT_CONNECT_TIMEOUT) remote._connectTimeout();
    }
  }

  handshakeMessage(ev, sourceObj, origin) {
    const d = ev.data;
    // Not a bridge message: other code on the page owns it.
    if (!d || typeof d !== 'object' || d[MARK] !== VERSION) return;
    // Cut to just over the core's caps before copying into wasm: a hostile
    // window must not make us allocate, and the core still refuses the rest.
    const ch = typeof d.ch === 'string' ? d.ch.slice(0, ROUTER_CHANNEL_MAX + 1) : '';
    const [p, n, q, m] = this.strings(ch, String(origin).slice(0, ORIGIN_MAX + 1));
    const src = (sourceObj && this.sources.get(sourceObj)) || 0;
    const ep = this.fn.sb_router_route(this.r, p, n, src, q, m);
    if (ep < 0) {
      const reason = REASONS[this.fn.sb_router_reason(this.r)] || 'unexpected';
      this.report(this.eps.get(this.fn.sb_router_reason_ep(this.r)), reason, origin, d);
      return;
    }
    this.eps.get(ep)?._handshake(ev, d, origin);
  }

  report(remote, reason, origin, d) {
    const detail = { reason, origin: String(origin), channel: typeof d?.ch === 'string' ? d.ch.slice(0, ROUTER_CHANNEL_MAX) : undefined, type: typeof d?.t === 'string' ? d.t.slice(0, 16) : undefined };
    bridgeMonitor.dispatchEvent(Object.assign(new Event('reject'), { detail }));
    if (remote) remote._report(detail);
  }
}

// ---------------------------------------------------------------------------

const DEFAULTS = { channel: 'switchboard', timeout: 10000, heartbeat: 1000, deadAfter: 3500, batch: false };

/**
 * One side of a bridge. EventTarget: 'connect', 'disconnect', 'reject'.
 */
export class Remote extends EventTarget {
  constructor(kind, opts) {
    super();
    this.opts = { ...DEFAULTS };
    for (const k of Object.keys(opts)) if (opts[k] !== undefined) this.opts[k] = opts[k];
    if (typeof this.opts.channel !== 'string' || !this.opts.channel) throw new SwitchboardError('INVALID', 'channel must be a non-empty string');
    this.kind = kind;            // 'frame' | 'parent' | 'window' | 'worker' | 'port'
    this.methods = this.opts.methods || {};
    this.hub = hub();
    this.fn = this.hub.fn;
    this.r = this.hub.r;
    this.ep = 0;
    this.port = null;
    this.pending = new Map();    // call id -> [resolve, reject]
    this.handlers = new Map();   // event name -> Set<fn>
    this.outbox = null;
    this.outTransfer = null;
    this.closed = false;
    this.connected = false;
    this.myNonce = '';
    this.peerNonce = '';
    this._ready = null;
    this.onPort = (ev) => this._portMessage(ev);
    this.onPortClose = () => this._lost('port-closed');
    this.flush = () => this._flush();
    if (typeof this.opts.onReject === 'function') this.addEventListener('reject', (e) => this.opts.onReject(e.detail));
  }

  /** Resolves once the first handshake completes. */
  _whenReady() {
    if (!this._ready) {
      this._ready = {};
      this._ready.promise = new Promise((res, rej) => { this._ready.resolve = res; this._ready.reject = rej; });
    }
    return this._ready.promise;
  }

  /**
   * Call a method on the other side. A trailing `CallOptions` sets timeout / transfer.
   * @returns {Promise<any>}
   */
  call(name, ...args) {
    let timeout = this.opts.timeout, xfer = EMPTY, signal = null;
    const last = args[args.length - 1];
    if (last instanceof CallOptions) {
      args.pop();
      if (last.timeout !== undefined) timeout = last.timeout;
      if (last.transfer) xfer = last.transfer;
      if (last.signal) signal = last.signal;
    }
    if (signal) return this._callWithSignal(signal, name, args, timeout, xfer);
    if (!this.connected) return Promise.reject(new SwitchboardError(this.closed ? 'CLOSED' : 'CONNECTION_LOST', 'bridge is not connected'));
    if (this.outbox) this._flush(); // batched events keep their place before this call
    const t = now();
    const id = this.fn.sb_router_call(this.r, this.ep, t, timeout);
    if (id < 0) return Promise.reject(this.hub.c.error(id, `call ${name}`));
    return new Promise((resolve, reject) => {
      try {
        // no transfer-list argument unless needed: converting even [] costs
        const msg = args.length === 1 ? [CALL1, id, name, args[0]] : [CALL, id, name, args];
        if (xfer.length) this.port.postMessage(msg, xfer);
        else this.port.postMessage(msg);
      } catch (e) {
        this.fn.sb_router_settle(this.r, this.ep, id, t);
        reject(e);
        return;
      }
      this.pending.set(id, [resolve, reject]);
      this._lastId = id;
      if (timeout > 0 && t + timeout < this.hub.timerAt) this.hub.armAt(t + timeout);
    });
  }

  // Abortable call: the id is retired in the core on abort, so a late answer
  // is dropped like after a timeout.
  _callWithSignal(signal, name, args, timeout, xfer) {
    if (signal.aborted) return Promise.reject(signal.reason);
    let id = 0;
    this._lastId = 0;
    const onAbort = () => {
      const p = this.pending.get(id);
      if (!p || this.fn.sb_router_settle(this.r, this.ep, id, 0) !== 0) return;
      this.pending.delete(id);
      p[1](signal.reason);
    };
    const inner = this.call(name, ...args, new CallOptions({ timeout, transfer: xfer }));
    id = this._lastId; // set synchronously by call() (0 if it failed early)
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => signal.removeEventListener('abort', onAbort);
    inner.then(done, done);
    return inner;
  }

  /** Fire-and-forget event to the other side. */
  emit(name, data, transferList) {
    if (!this.connected) throw new SwitchboardError(this.closed ? 'CLOSED' : 'CONNECTION_LOST', 'bridge is not connected');
    if (this.opts.batch) {
      if (!this.outbox) {
        this.outbox = [];
        this.outTransfer = [];
        queueMicrotask(this.flush);
      }
      this.outbox.push(name, data);
      if (transferList) this.outTransfer.push(...transferList);
      if (this.outbox.length >= 2 * (this.opts.batch.max || 256)) this._flush();
      return;
    }
    if (transferList) this.port.postMessage([EVENT, name, data], transferList);
    else this.port.postMessage([EVENT, name, data]);
  }

  _flush() {
    const box = this.outbox, xfer = this.outTransfer;
    if (!box) return;
    this.outbox = null;
    this.outTransfer = null;
    if (this.connected && box.length) this.port.postMessage([BATCH, box], xfer);
  }

  /** Listen to events emitted by the other side; returns an unsubscribe function. */
  on(name, fn) {
    let set = this.handlers.get(name);
    if (!set) this.handlers.set(name, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Close the bridge: pending calls reject with CLOSED, the peer is told. */
  close() {
    if (this.closed) return;
    this._flush();
    this.closed = true;
    if (this.port) {
      try { this.port.postMessage([BYE, 0]); } catch { /* peer gone */ }
      this._dropPort();
    }
    const was = this.connected;
    this.connected = false;
    if (this.ep) this.hub.close(this.ep, E_CLOSED);
    if (this._cleanup) this._cleanup();
    if (this._ready) this._ready.reject(new SwitchboardError('CLOSED', 'bridge closed before connecting'));
    if (was) this.dispatchEvent(Object.assign(new Event('disconnect'), { detail: { reason: 'closed' } }));
  }

  get isConnected() { return this.connected; }

  // ---- internals ---------------------------------------------------------

  _report(detail) {
    this.dispatchEvent(Object.assign(new Event('reject'), { detail }));
  }

  _fail(id, err) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p[1](this.hub.c.error(err));
  }

  _setPort(port) {
    this._dropPort();
    this.port = port;
    port.onmessage = this.onPort;
    port.addEventListener('close', this.onPortClose);
  }

  _dropPort() {
    const port = this.port;
    if (!port) return;
    this.port = null;
    port.onmessage = null;
    port.removeEventListener('close', this.onPortClose);
    port.close();
  }

  _connected() {
    this.connected = true;
    this.hub.armAt(this.fn.sb_router_next_deadline(this.r));
    if (this._ready) {
      const r = this._ready;
      this._ready = null;
      r.resolve(this);
    }
    this.dispatchEvent(new Event('connect'));
  }

  _lost(reason) {
    if (!this.ep || this.closed) return;
    const was = this.connected;
    this.connected = false;
    this.outbox = null;
    this._dropPort();
    this.hub.events(this.fn.sb_router_lost(this.r, this.ep));
    if (was) this.dispatchEvent(Object.assign(new Event('disconnect'), { detail: { reason } }));
    if (this._permanent || (this._gone && this._gone())) {
      this.closed = true;
      this.hub.close(this.ep, E_CONNECTION_LOST);
      if (this._cleanup) this._cleanup();
      return;
    }
    this._restart();
  }

  _connectTimeout() {
    if (this._ready) {
      const r = this._ready;
      this._ready = null;
      this.closed = true;
      this.hub.close(this.ep, E_TIMEOUT);
      if (this._cleanup) this._cleanup();
      r.reject(new SwitchboardError('TIMEOUT', `no handshake on channel "${this.opts.channel}" within ${this.opts.timeout} ms`));
    }
  }

  _ping() {
    if (this._gone && this._gone()) { this._lost('removed'); return; }
    if (this.port) this.port.postMessage([PING, 0]);
  }

  _offer() {
    this.myNonce = nonce();
    const [p, n] = this.hub.c.writeString(this.myNonce);
    const events = this.fn.sb_router_offer(this.r, this.ep, p, n, now());
    if (events < 0) throw this.hub.c.error(events);
    return events;
  }

  _confirm(n, origin) {
    const [p, len] = this.hub.c.writeString(typeof n === 'string' ? n.slice(0, ROUTER_NONCE_MAX) : '');
    const rc = this.fn.sb_router_confirm(this.r, this.ep, p, len, now());
    if (rc < 0) {
      this.hub.report(this, REASONS[this.fn.sb_router_reason(this.r)] || 'unexpected', origin, { ch: this.opts.channel, t: 'confirm' });
      return false;
    }
    return true;
  }

  _portMessage(ev) {
    const d = ev.data;
    if (!Array.isArray(d)) return;
    switch (d[0]) {
      case OK:
      case ERR: {
        const id = d[1];
        // An answer proves the peer alive as a pong does: a pong queued behind
        // a burst of answers must not get the peer declared dead.
        if (typeof id !== 'number' || this.fn.sb_router_settle(this.r, this.ep, id >>> 0, now()) !== 0) return;
        const p = this.pending.get(id);
        this.pending.delete(id);
        if (p) {
          if (d[0] === OK) p[0](d[2]);
          else p[1](reviveError(d[2]));
        }
        return;
      }
      case CALL:
        this._serve(d[1], d[2], Array.isArray(d[3]) ? d[3] : EMPTY);
        return;
      case CALL1:
        this._serve(d[1], d[2], null, d[3]);
        return;
      case EVENT: // [EVENT, name, data]: no id slot, events are the bulk traffic
        this._deliver(d[1], d[2]);
        return;
      case BATCH: {
        const box = d[1];
        if (Array.isArray(box)) for (let i = 0; i + 1 < box.length; i += 2) this._deliver(box[i], box[i + 1]);
        return;
      }
      case PING:
        this.fn.sb_router_heard(this.r, this.ep, now());
        this.port.postMessage([PONG, 0]);
        return;
      case PONG:
        this.fn.sb_router_heard(this.r, this.ep, now());
        return;
      case BYE:
        this._lost('bye');
        return;
      case READY: // parent side: the child got our port and echoes our nonce
        if (!this.connected && this._confirm(d[2], 'port')) {
          // After an offer the child's nonce comes back here: echo it (ACK),
          // and remember it, so its hello, if that overtakes nothing but
          // arrives late on the window, is known as a duplicate.
          if (typeof d[3] === 'string') {
            this.peerNonce = d[3];
            this.port.postMessage([ACK, 0, d[3].slice(0, ROUTER_NONCE_MAX)]);
          }
          this._connected();
        }
        return;
      case SYN: // port/worker side: the peer's nonce, echo it back
        if (typeof d[2] === 'string') this.port.postMessage([ACK, 0, d[2]]);
        return;
      case ACK:
        if (!this.connected && this._confirm(d[2], 'port')) this._connected();
        return;
      default:
    }
  }

  _serve(id, name, args, arg) {
    const m = this.methods;
    const port = this.port;
    const reply = (kind, value) => {
      let xfer = EMPTY;
      if (value instanceof Transfer) { xfer = value.transfer; value = value.value; }
      try {
        if (xfer.length) port.postMessage([kind, id, value], xfer);
        else port.postMessage([kind, id, value]);
      } catch (e) {
        if (kind === OK) port.postMessage([ERR, id, serializeError(e)]);
      }
    };
    // Stacks (file paths, URLs, code structure) only to a same-origin peer, unless asked.
    const fail = (e) => reply(ERR, serializeError(e, this.opts.sendErrorStacks ?? (this.kind === 'worker' || (!!this.peerOrigin && this.peerOrigin === globalThis.location?.origin))));
    if (typeof name !== 'string' || !Object.hasOwn(m, name) || typeof m[name] !== 'function') {
      fail(new SwitchboardError('NOT_FOUND', `no method "${String(name)}"`));
      return;
    }
    let result;
    try {
      result = args ? m[name].apply(m, args) : m[name](arg);
      // a `then` getter or call that throws is the method failing too
      if (result && typeof result.then === 'function') return void result.then((v) => reply(OK, v), fail);
    } catch (e) {
      fail(e);
      return;
    }
    reply(OK, result);
  }

  _deliver(name, data) {
    const set = this.handlers.get(name);
    if (!set) return;
    for (const fn of set) {
      try { fn(data); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }
}

// ---------------------------------------------------------------------------
// Window peers: the parent side (iframe / popup) and the child side.

function targetOrigins(hub, remote, win, guess) {
  // postMessage needs exact origins: the exact allowlist entries, plus the
  // guessed origin of the other document if the allowlist (in C) admits it.
  const out = [];
  for (const o of remote.origins) {
    // '*' when written; and an opaque ('null') peer can only be reached that way
    if (o === '*' || o === 'null') { out.push('*'); continue; }
    const room = o.length * 3;
    // a normalized origin is at most ORIGIN_MAX bytes, then its NUL
    const p = hub.c.scratch(room + ORIGIN_MAX + 1);
    const n = encoder.encodeInto(o, hub.c.heap().subarray(p, p + room)).written;
    const len = hub.fn.sb_origin_normalize(p, n, p + room, ORIGIN_MAX + 1);
    if (len > 0) out.push(hub.c.readString(p + room, len));
  }
  if (guess && !out.includes(guess) && hub.allows(remote.opts.channel, win, guess)) out.push(guess);
  return [...new Set(out)];
}

function originOf(url) {
  try { return new URL(url, location.href).origin; } catch { return ''; }
}

class WindowParent extends Remote {
  constructor(win, opts, kind, gone, srcUrl) {
    super(kind, opts);
    this.win = win;
    this.origins = toList(opts.origin ?? opts.allowedOrigins);
    // postMessage cannot address an opaque origin: the port would go to '*',
    // i.e. to whatever document the frame shows by then. Only when asked.
    if (this.origins.includes('null') && opts.opaqueTarget !== '*') throw new SwitchboardError('INVALID', 'origin "null" sends the port to "*": pass opaqueTarget: "*" to accept that');
    this._gone = gone;
    this.srcUrl = srcUrl;
  }

  start() {
    const ready = this._whenReady();
    this.ep = this.hub.open(this, this.opts.channel, this.win, this.origins);
    this._restart();
    return ready;
  }

  _restart() {
    const targets = targetOrigins(this.hub, this, this.win, originOf(this.srcUrl?.() || ''));
    this.peerNonce = '';
    if (targets.length === 1 && targets[0] !== '*') {
      // One exact origin: offer the port right away, in case the child loaded
      // before we listened (saves its hello and our welcome). If the child is
      // not there yet, its hello will get a welcome on a new port instead.
      this.hub.events(this._offer());
      this.peerOrigin = targets[0];
      const mc = new MessageChannel();
      this._setPort(mc.port1);
      try {
        this.win.postMessage({ [MARK]: VERSION, t: 'offer', ch: this.opts.channel, m: this.myNonce }, targets[0], [mc.port2]);
      } catch { /* closed */ }
      return;
    }
    // Several candidate origins: a port can be transferred only once, so ask
    // the child to say hello instead.
    for (const o of targets) {
      try { this.win.postMessage({ [MARK]: VERSION, t: 'probe', ch: this.opts.channel }, o); } catch { /* closed */ }
    }
  }

  _handshake(ev, d, origin) {
    if (d.t !== 'hello' || typeof d.n !== 'string') {
      this.hub.report(this, 'unexpected', origin, d);
      return;
    }
    // The same hello twice (the child's own and the one our probe asked for):
    // the welcome is already on its way. A reloaded child has a new nonce.
    if (d.n === this.peerNonce) return;
    this.peerNonce = d.n;
    this.peerOrigin = origin;
    // A hello while connected is a reload of the child: start over.
    const wasConnected = this.connected;
    this.connected = false;
    this._dropPort();
    this.hub.events(this._offer());
    if (wasConnected) this.dispatchEvent(Object.assign(new Event('disconnect'), { detail: { reason: 'reload' } }));
    const mc = new MessageChannel();
    this._setPort(mc.port1);
    this.win.postMessage({ [MARK]: VERSION, t: 'welcome', ch: this.opts.channel, n: d.n.slice(0, ROUTER_NONCE_MAX), m: this.myNonce },
      origin === 'null' ? this.opts.opaqueTarget : origin, [mc.port2]);
  }
}

class WindowChild extends Remote {
  constructor(win, opts) {
    super('parent', opts);
    this.win = win;
    this.origins = toList(opts.allowedOrigins ?? opts.origin);
  }

  start() {
    const ready = this._whenReady();
    this.ep = this.hub.open(this, this.opts.channel, this.win, this.origins);
    this.onHide = () => { if (this.port) this.port.postMessage([BYE, 0]); };
    addEventListener('pagehide', this.onHide);
    this._cleanup = () => removeEventListener('pagehide', this.onHide);
    this._restart();
    return ready;
  }

  _guess() {
    const ao = typeof location !== 'undefined' && location.ancestorOrigins;
    if (ao && ao.length && this.win === parent) return ao[0];
    return originOf(document.referrer || '');
  }

  _restart(again) {
    // A probe repeats our hello with the same nonce; anything else starts over.
    if (!again || !this.myNonce) this.hub.events(this._offer());
    for (const o of targetOrigins(this.hub, this, this.win, this._guess())) {
      try { this.win.postMessage({ [MARK]: VERSION, t: 'hello', ch: this.opts.channel, n: this.myNonce }, o); } catch { /* gone */ }
    }
  }

  _handshake(ev, d, origin) {
    if (d.t === 'probe' && !this.connected) {
      this._restart(true);
      return;
    }
    if (d.t === 'offer' && !this.connected && ev.ports.length === 1 && typeof d.m === 'string') {
      // The parent's port, unasked: echo its nonce with ours; we are
      // connected once it echoes ours back (ACK). A welcome that answers our
      // hello still wins (race with the parent's own offer).
      this._setPort(ev.ports[0]);
      this.peerOrigin = origin;
      this.port.postMessage([READY, 0, d.m.slice(0, ROUTER_NONCE_MAX), this.myNonce]);
      return;
    }
    if (d.t !== 'welcome' || this.connected) {
      this.hub.report(this, 'unexpected', origin, d);
      return;
    }
    if (ev.ports.length !== 1 || typeof d.m !== 'string') {
      this.hub.report(this, 'unexpected', origin, d);
      return;
    }
    if (!this._confirm(d.n, origin)) return;
    this._setPort(ev.ports[0]);
    this.peerOrigin = origin;
    this.port.postMessage([READY, 0, d.m.slice(0, ROUTER_NONCE_MAX)]);
    this._connected();
  }
}

// ---------------------------------------------------------------------------
// Port peers (MessagePort, Worker): the channel is private already, so the
// handshake is a symmetric nonce exchange over it.

class PortPeer extends Remote {
  constructor(port, opts, kind) {
    super(kind, opts);
    this.origins = [];
    this._permanent = true; // a lost port does not come back
    this._setPort(port);
  }

  start() {
    const ready = this._whenReady();
    this.ep = this.hub.open(this, this.opts.channel, null, []);
    this._restart();
    return ready;
  }

  _restart() {
    if (!this.port) return; // a port does not come back
    this.hub.events(this._offer());
    this.port.postMessage([SYN, 0, this.myNonce]);
  }

  _handshake() {}
}

function toList(v) {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/**
 * Parent side for an iframe.
 * @param {HTMLIFrameElement} iframe
 * @param {{origin: string|string[], methods?: object, timeout?: number, channel?: string, heartbeat?: number, deadAfter?: number, batch?: boolean|{max?: number}, onReject?: (r: object) => void}} opts
 */
export async function connectFrame(iframe, opts = {}) {
  await init(opts.init);
  if (!iframe || !iframe.contentWindow) throw new SwitchboardError('INVALID', 'the iframe must be in the document');
  if (!toList(opts.origin).length) throw new SwitchboardError('INVALID', 'connectFrame needs `origin` (the allowlist; "*" only if you mean it)');
  const win = iframe.contentWindow;
  const gone = () => !iframe.isConnected || iframe.contentWindow !== win;
  const remote = new WindowParent(win, opts, 'frame', gone, () => iframe.src);
  return remote.start();
}

/**
 * Child side, inside an iframe or a popup (talks to window.parent or window.opener),
 * or inside a Worker (talks to the page that created it).
 * @param {{allowedOrigins?: string|string[], methods?: object, timeout?: number, channel?: string}} opts
 */
export function connectParent(opts = {}) {
  if (typeof window === 'undefined' && typeof self !== 'undefined' && typeof self.postMessage === 'function') {
    return connectFromWorker(opts);
  }
  return (async () => {
    await init(opts.init);
    const win = window.parent !== window ? window.parent : window.opener;
    if (!win) throw new SwitchboardError('INVALID', 'no parent or opener window');
    if (!toList(opts.allowedOrigins ?? opts.origin).length) throw new SwitchboardError('INVALID', 'connectParent needs `allowedOrigins`');
    return new WindowChild(win, opts).start();
  })();
}

function connectFromWorker(opts) {
  // Listen synchronously so the page's port is not dispatched before we are ready.
  const channel = opts.channel || DEFAULTS.channel;
  const got = new Promise((resolve) => {
    const onMsg = (ev) => {
      const d = ev.data;
      if (d && typeof d === 'object' && d[MARK] === VERSION && d.t === 'port' && d.ch === channel && ev.ports.length === 1) {
        self.removeEventListener('message', onMsg);
        resolve(ev.ports[0]);
      }
    };
    self.addEventListener('message', onMsg);
  });
  return (async () => {
    const [port] = await Promise.all([got, init(opts.init)]);
    return new PortPeer(port, opts, 'worker').start();
  })();
}

/**
 * Connect to a popup window (from window.open), a Worker, or a MessagePort.
 * @param {Window|Worker|MessagePort} endpoint
 */
export async function connect(endpoint, opts = {}) {
  await init(opts.init);
  if (typeof MessagePort !== 'undefined' && endpoint instanceof MessagePort) {
    return new PortPeer(endpoint, opts, 'port').start();
  }
  if (typeof Worker !== 'undefined' && endpoint instanceof Worker) {
    const mc = new MessageChannel();
    endpoint.postMessage({ [MARK]: VERSION, t: 'port', ch: opts.channel || DEFAULTS.channel }, [mc.port2]);
    return new PortPeer(mc.port1, opts, 'worker').start();
  }
  if (endpoint && typeof endpoint.postMessage === 'function' && 'closed' in endpoint) {
    if (!toList(opts.origin).length) throw new SwitchboardError('INVALID', 'connect(window) needs `origin`');
    return new WindowParent(endpoint, opts, 'window', () => endpoint.closed, null).start();
  }
  throw new SwitchboardError('INVALID', 'connect() takes a Window, Worker or MessagePort');
}

export { MARK as BRIDGE_MARK };
