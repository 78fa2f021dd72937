// One side of a bridge (docs/bridge.md): calls and their promises by id,
// events, the port, the heartbeat's replies and the part of the handshake
// that runs on the port. The window and port peers (js/bridge-window.js,
// js/bridge-port.js) add how a port is found; the hub (js/bridge-hub.js)
// holds the router every decision comes from.
import { SwitchboardError } from './errors.js';
import {
  BM_CALL, BM_OK, BM_ERR, BM_EVENT, BM_BATCH, BM_PING, BM_PONG, BM_BYE, BM_READY, BM_SYN, BM_ACK, BM_CALL1,
  ROUTER_NONCE_MAX, E_TIMEOUT, E_CLOSED, E_CONNECTION_LOST,
} from './constants.js';
import { dataEvent } from './glue.js';
import { hub, now, REASONS } from './bridge-hub.js';

const EMPTY = [];

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

function nonce() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let s = '';
  for (let i = 0; i < 16; i++) s += b[i].toString(16).padStart(2, '0');
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
  const e = d.name === 'SwitchboardError' && d.code ? new SwitchboardError(/** @type {any} a peer's code, of its version */ (String(d.code)), String(d.message)) : new Error(String(d.message ?? ''));
  e.name = String(d.name || 'Error');
  if (d.code !== undefined) /** @type {any} */ (e).code = d.code;
  // The remote stack first, so the developer sees where it was thrown.
  if (typeof d.stack === 'string' && d.stack) e.stack = d.stack;
  return e;
}

export const DEFAULTS = { channel: 'switchboard', timeout: 10000, heartbeatInterval: 1000, heartbeatTimeout: 3500, batch: false };

/**
 * One side of a bridge. EventTarget: 'connect', 'disconnect', 'reject'.
 */
export class Remote extends EventTarget {
  constructor(kind, opts) {
    super();
    /** @type {Omit<import('./bridge.d.ts').FrameOptions, 'origin'> & import('./bridge.d.ts').ParentOptions} */
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
    this.peerOrigin = '';
    /** @type {boolean | undefined} a lost port does not come back (js/bridge-port.js) */
    this._permanent;
    this._ready = null;
    this.onPort = (ev) => this._portMessage(ev);
    this.onPortClose = () => this._lost('port-closed');
    this.flush = () => this._flush();
    if (typeof this.opts.onReject === 'function') this.addEventListener('reject', (e) => this.opts.onReject(/** @type {CustomEvent} */ (e).detail));
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
        const msg = args.length === 1 ? [BM_CALL1, id, name, args[0]] : [BM_CALL, id, name, args];
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
      if (this.outbox.length >= 2 * (/** @type {{max?: number}} */ (this.opts.batch).max || 256)) this._flush();
      return;
    }
    if (transferList) this.port.postMessage([BM_EVENT, name, data], transferList);
    else this.port.postMessage([BM_EVENT, name, data]);
  }

  _flush() {
    const box = this.outbox, xfer = this.outTransfer;
    if (!box) return;
    this.outbox = null;
    this.outTransfer = null;
    if (this.connected && box.length) this.port.postMessage([BM_BATCH, box], xfer);
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
      try { this.port.postMessage([BM_BYE, 0]); } catch { /* peer gone */ }
      this._dropPort();
    }
    const was = this.connected;
    this.connected = false;
    if (this.ep) this.hub.close(this.ep, E_CLOSED);
    this._cleanup();
    if (this._ready) this._ready.reject(new SwitchboardError('CLOSED', 'bridge closed before connecting'));
    if (was) this._disconnected('closed');
  }

  get isConnected() { return this.connected; }

  // ---- internals ---------------------------------------------------------

  // What the peer kinds (js/bridge-window.js, js/bridge-port.js) provide.
  /** Start the handshake (again). */
  _restart() {}
  /** Undo what start() set up, once the bridge is over. */
  _cleanup() {}
  /** The other side is gone for good (the iframe removed, the popup closed). */
  _gone() { return false; }

  _disconnected(reason) {
    this.dispatchEvent(dataEvent('disconnect', { reason }));
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
    if (was) this._disconnected(reason);
    if (this._permanent || this._gone()) {
      this.closed = true;
      this.hub.close(this.ep, E_CONNECTION_LOST);
      this._cleanup();
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
      this._cleanup();
      r.reject(new SwitchboardError('TIMEOUT', `no handshake on channel "${this.opts.channel}" within ${this.opts.timeout} ms`));
    }
  }

  _ping() {
    if (this._gone()) { this._lost('removed'); return; }
    if (this.port) this.port.postMessage([BM_PING, 0]);
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
      case BM_OK:
      case BM_ERR: {
        const id = d[1];
        // An answer proves the peer alive as a pong does: a pong queued behind
        // a burst of answers must not get the peer declared dead.
        if (typeof id !== 'number' || this.fn.sb_router_settle(this.r, this.ep, id >>> 0, now()) !== 0) return;
        const p = this.pending.get(id);
        this.pending.delete(id);
        if (p) {
          if (d[0] === BM_OK) p[0](d[2]);
          else p[1](reviveError(d[2]));
        }
        return;
      }
      case BM_CALL:
        this._serve(d[1], d[2], Array.isArray(d[3]) ? d[3] : EMPTY);
        return;
      case BM_CALL1:
        this._serve(d[1], d[2], null, d[3]);
        return;
      case BM_EVENT: // [BM_EVENT, name, data]: no id slot, events are the bulk traffic
        this._deliver(d[1], d[2]);
        return;
      case BM_BATCH: {
        const box = d[1];
        if (Array.isArray(box)) for (let i = 0; i + 1 < box.length; i += 2) this._deliver(box[i], box[i + 1]);
        return;
      }
      case BM_PING:
        this.fn.sb_router_heard(this.r, this.ep, now());
        this.port.postMessage([BM_PONG, 0]);
        return;
      case BM_PONG:
        this.fn.sb_router_heard(this.r, this.ep, now());
        return;
      case BM_BYE:
        this._lost('bye');
        return;
      case BM_READY: // parent side: the child got our port and echoes our nonce
        if (!this.connected && this._confirm(d[2], 'port')) {
          // After an offer the child's nonce comes back here: echo it (BM_ACK),
          // and remember it, so its hello, if that overtakes nothing but
          // arrives late on the window, is known as a duplicate.
          if (typeof d[3] === 'string') {
            this.peerNonce = d[3];
            this.port.postMessage([BM_ACK, 0, d[3].slice(0, ROUTER_NONCE_MAX)]);
          }
          this._connected();
        }
        return;
      case BM_SYN: // port/worker side: the peer's nonce, echo it back
        if (typeof d[2] === 'string') this.port.postMessage([BM_ACK, 0, d[2]]);
        return;
      case BM_ACK:
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
        if (kind === BM_OK) port.postMessage([BM_ERR, id, serializeError(e)]);
      }
    };
    // Stacks (file paths, URLs, code structure) only to a same-origin peer, unless asked.
    const fail = (e) => reply(BM_ERR, serializeError(e, this.opts.sendErrorStacks ?? (this.kind === 'worker' || (!!this.peerOrigin && this.peerOrigin === globalThis.location?.origin))));
    if (typeof name !== 'string' || !Object.hasOwn(m, name) || typeof m[name] !== 'function') {
      fail(new SwitchboardError('NOT_FOUND', `no method "${String(name)}"`));
      return;
    }
    let result;
    try {
      result = args ? m[name].apply(m, args) : m[name](arg);
      // a `then` getter or call that throws is the method failing too
      if (result && typeof result.then === 'function') return void result.then((v) => reply(BM_OK, v), fail);
    } catch (e) {
      fail(e);
      return;
    }
    reply(BM_OK, result);
  }

  _deliver(name, data) {
    const set = this.handlers.get(name);
    if (!set) return;
    for (const fn of set) {
      try { fn(data); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }
}
