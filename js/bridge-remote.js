// One side of a bridge (docs/bridge.md): calls and their promises by id,
// events, the port, the heartbeat's replies, and the messages the router
// (src/router.c, through js/bridge-hub.js) says to send: it decides every
// step of the handshake. The window and port peers (js/bridge-window.js,
// js/bridge-port.js) add where the messages go.
import { SwitchboardError } from './errors.js';
import {
  BM_CALL, BM_OK, BM_ERR, BM_EVENT, BM_BATCH, BM_PING, BM_PONG, BM_BYE, BM_READY, BM_SYN, BM_ACK, BM_CALL1,
  BS_OFFER, BS_PROBE, BS_HELLO, BS_WELCOME, BS_READY, BS_READY_OWN, BS_ACK, BW_BYE, BW_RELOAD, BW_TIMEOUT, BW_REMOVED,
  BW_PORT_CLOSED, BW_CLOSED, E_CLOSED, BRIDGE_MARK, BRIDGE_VERSION, BRIDGE_OFFER, BRIDGE_PROBE,
  BRIDGE_HELLO, BRIDGE_WELCOME,
} from './constants.js';
import { dataEvent } from './glue.js';
import { hub, now, cut } from './bridge-hub.js';

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

// A `disconnect` event's reason for each sb_bridge_why.
const WHY = { [BW_BYE]: 'bye', [BW_RELOAD]: 'reload', [BW_TIMEOUT]: 'timeout', [BW_REMOVED]: 'removed', [BW_PORT_CLOSED]: 'port-closed', [BW_CLOSED]: 'closed' };
// The window message type of each window sb_bridge_send.
const TYPE = { [BS_OFFER]: BRIDGE_OFFER, [BS_PROBE]: BRIDGE_PROBE, [BS_HELLO]: BRIDGE_HELLO, [BS_WELCOME]: BRIDGE_WELCOME };

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
    this.peerOrigin = '';
    /** @type {string[]} the origins window messages go to (none for a port) */
    this.targets = [];
    /** @type {string[]} the allowlist */
    this.origins = [];
    /** @type {any} the window or worker messages come from (none for a port) */
    this.win = null;
    this._ready = null;
    this.onPort = (ev) => this.#portMessage(ev);
    this.onPortClose = () => this._lost(BW_PORT_CLOSED);
    this.flush = () => this.#flush();
    if (typeof this.opts.onReject === 'function') this.addEventListener('reject', (e) => this.opts.onReject(/** @type {CustomEvent} */ (e).detail));
  }

  /** Open the endpoint in `role` and start the handshake; resolves once it completes. */
  start(role) {
    const ready = {};
    ready.promise = new Promise((res, rej) => { ready.resolve = res; ready.reject = rej; });
    this._ready = ready;
    this.ep = this.hub.open(this, this.win, role);
    this._start();
    return ready.promise;
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
    if (signal) return this.#callWithSignal(signal, name, args, timeout, xfer);
    if (!this.connected) return Promise.reject(new SwitchboardError(this.closed ? 'CLOSED' : 'CONNECTION_LOST', 'bridge is not connected'));
    if (this.outbox) this.#flush(); // batched events keep their place before this call
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
  #callWithSignal(signal, name, args, timeout, xfer) {
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
      if (this.outbox.length >= 2 * (/** @type {{max?: number}} */ (this.opts.batch).max || 256)) this.#flush();
      return;
    }
    if (transferList) this.port.postMessage([BM_EVENT, name, data], transferList);
    else this.port.postMessage([BM_EVENT, name, data]);
  }

  #flush() {
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
    this.#flush();
    if (this.port) {
      try { this.port.postMessage([BM_BYE, 0]); } catch { /* peer gone */ }
    }
    this.closed = true; // for the `disconnect` listeners already
    this.hub.events(this.fn.sb_router_close(this.r, this.ep, E_CLOSED));
  }

  get isConnected() { return this.connected; }

  // ---- internals ---------------------------------------------------------

  // What the peer kinds (js/bridge-window.js, js/bridge-port.js) provide.
  /** Where window messages may go: exact origins, or '*'. */
  _targets() { return []; }
  /** Undo what start() set up, once the bridge is over. */
  _cleanup() {}
  /** The other side is gone for good (the iframe removed, the popup closed). */
  _gone() { return false; }

  /** Start the handshake (again): the router says what to send. */
  _start() {
    const ts = (this.targets = this._targets());
    this.hub.events(this.fn.sb_router_start(this.r, this.ep, ts.length, ts.filter((o) => o !== '*').length, this.hub.args()[0], now()));
  }

  // Send what the router decided (enum sb_bridge_send), with the nonces it
  // holds; `ev` is the window message it answers.
  _send(kind, ev) {
    const mine = this.hub.nonce(this.ep, 0), peer = this.hub.nonce(this.ep, 1);
    if (kind === BS_READY || kind === BS_READY_OWN) {
      this._setPort(ev.ports[0]);
      this.peerOrigin = ev.origin;
      this.port.postMessage(kind === BS_READY ? [BM_READY, 0, peer] : [BM_READY, 0, peer, mine]);
    } else if (!TYPE[kind]) {
      this.port?.postMessage(kind === BS_ACK ? [BM_ACK, 0, peer] : [BM_SYN, 0, mine]);
    } else {
      // `n` is the child's nonce, `m` the parent's; a welcome goes to the hello's origin.
      const msg = { [BRIDGE_MARK]: BRIDGE_VERSION, t: TYPE[kind], ch: this.opts.channel };
      if (kind === BS_HELLO) msg.n = mine;
      if (kind === BS_WELCOME) msg.n = peer;
      if (kind === BS_OFFER || kind === BS_WELCOME) msg.m = mine;
      const to = kind === BS_WELCOME ? [ev.origin === 'null' ? this.opts.opaqueTarget : ev.origin] : this.targets;
      for (const o of to) {
        try {
          if (kind === BS_OFFER || kind === BS_WELCOME) {
            const mc = new MessageChannel();
            this._setPort(mc.port1);
            this.peerOrigin = o;
            this.win.postMessage(msg, o, [mc.port2]);
          } else this.win.postMessage(msg, o);
        } catch { /* the window is gone */ }
      }
    }
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

  _disconnected(why) {
    this.connected = false;
    this.outbox = null;
    this.#dropPort();
    this.dispatchEvent(dataEvent('disconnect', { reason: WHY[why] }));
  }

  // Closed for good by the router (we closed, the peer is gone for good, or no
  // handshake in time).
  _closed(err) {
    this.closed = true;
    this.connected = false;
    this.#dropPort();
    this._cleanup();
    if (this._ready) {
      this._ready.reject(this.hub.c.error(err, `no handshake on channel "${this.opts.channel}"`));
      this._ready = null;
    }
  }

  /** Tell the router the peer is lost (why: enum sb_bridge_why), and whether its window is gone. */
  _lost(why) {
    if (!this.closed) this.hub.events(this.fn.sb_router_lost(this.r, this.ep, why, +this._gone()));
  }

  _fail(id, err) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p[1](this.hub.c.error(err));
  }

  _setPort(port) {
    this.#dropPort();
    this.port = port;
    port.onmessage = this.onPort;
    port.addEventListener('close', this.onPortClose);
  }

  #dropPort() {
    const port = this.port;
    if (!port) return;
    this.port = null;
    port.onmessage = null;
    port.removeEventListener('close', this.onPortClose);
    port.close();
  }

  _ping() {
    if (this._gone()) this._lost(BW_REMOVED);
    else this.port?.postMessage([BM_PING, 0]);
  }

  #portMessage(ev) {
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
        this.#serve(d[1], d[2], Array.isArray(d[3]) ? d[3] : EMPTY);
        return;
      case BM_CALL1:
        this.#serve(d[1], d[2], null, d[3]);
        return;
      case BM_EVENT: // [BM_EVENT, name, data]: no id slot, events are the bulk traffic
        this.#deliver(d[1], d[2]);
        return;
      case BM_BATCH: {
        const box = d[1];
        if (Array.isArray(box)) for (let i = 0; i + 1 < box.length; i += 2) this.#deliver(box[i], box[i + 1]);
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
      case BM_READY:
      case BM_SYN:
      case BM_ACK: { // the handshake on the port: the router decides
        const [, p, n, q, m] = this.hub.args(cut(d[2]), cut(d[3]));
        this.hub.events(this.fn.sb_router_port(this.r, this.ep, d[0], p, n, q, m, +this._gone(), now()));
        return;
      }
      default:
    }
  }

  #serve(id, name, args, arg) {
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

  #deliver(name, data) {
    const set = this.handlers.get(name);
    if (!set) return;
    for (const fn of set) {
      try { fn(data); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }
}
