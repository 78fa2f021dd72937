// The bridge's hub (docs/bridge.md): one router per JS realm (src/router.c),
// one window listener for every handshake, one timer at the router's next
// deadline. It hands every bridge message to the router, which decides what
// it means, and carries out the router's events; the Remote
// (js/bridge-remote.js) owns the port and the JS values.
import { core } from './core.js';
import { SwitchboardError } from './errors.js';
import { dataEvent } from './glue.js';
import {
  RT_CALL_FAILED, RT_PING, RT_SILENT, RT_CLOSED, RT_SEND, RT_CONNECTED, RT_DISCONNECTED, RT_RESTART, RT_REJECT,
  RR_NONE, RR_NO_CHANNEL, RR_BAD_ORIGIN, RR_ORIGIN_REJECTED, RR_WRONG_SOURCE, RR_BAD_NONCE, RR_BAD_STATE, BW_TIMEOUT,
  ROUTER_RECORD_KIND, ROUTER_RECORD_ENDPOINT, ROUTER_RECORD_ID, ROUTER_RECORD_ERR, ROUTER_RECORD_SIZE,
  ROUTER_CHANNEL_MAX, ROUTER_NONCE_MAX, ROUTER_TYPE_MAX, ORIGIN_MAX, E_CLOSED, BRIDGE_MARK, BRIDGE_VERSION,
} from './constants.js';

// What a reject event's reason says for each sb_route_reason.
const REASONS = {
  [RR_NONE]: 'none', [RR_NO_CHANNEL]: 'no-channel', [RR_BAD_ORIGIN]: 'bad-origin', [RR_ORIGIN_REJECTED]: 'origin-rejected',
  [RR_WRONG_SOURCE]: 'wrong-source', [RR_BAD_NONCE]: 'bad-nonce', [RR_BAD_STATE]: 'unexpected',
};
// Cut to just over the core's cap before copying into wasm: a hostile window
// must not make us allocate, and the core still refuses the rest.
export const cut = (v, max = ROUTER_NONCE_MAX) => (typeof v === 'string' ? v.slice(0, max + 1) : '');
// The router's event table: int32 words, one record per event.
const REC = ROUTER_RECORD_SIZE >> 2;

const encoder = new TextEncoder();
export const now = () => performance.now();

/** Every rejected message on this realm's windows, also those for no bridge. */
export const bridgeMonitor = new EventTarget();

let hubInstance = null;
/** The realm's hub, created at the first bridge. */
export function hub() {
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
    /** @type {any} setTimeout's: a number, or an object in Node */
    this.timer = 0;
    this.timerAt = Infinity;
    this.windowListening = false;
    this.onWindowMessage = (ev) => this.handshakeMessage(ev);
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

  // 16 random bytes (the core's next nonce, if it needs one), then strings,
  // in wasm scratch: [random, ptr, len, ptr, len, ...].
  args(...strs) {
    const c = this.c;
    const p = c.scratch(16 + strs.reduce((n, s) => n + s.length * 3, 0));
    const heap = c.heap();
    crypto.getRandomValues(heap.subarray(p, p + 16));
    const out = [p];
    let q = p + 16;
    for (const s of strs) {
      const w = encoder.encodeInto(s, heap.subarray(q, q + s.length * 3)).written;
      out.push(q, w);
      q += w;
    }
    return out;
  }

  /** The endpoint's own nonce (which 0) or its peer's (1), from the core. */
  nonce(ep, which) {
    const p = this.fn.sb_router_nonce(this.r, ep, which);
    return p ? this.c.readString(p + 1, this.c.heap()[p]) : '';
  }

  open(remote, sourceObj, role) {
    const src = sourceObj ? this.sourceId(sourceObj) : 0;
    const o = remote.opts;
    const [p, n] = this.c.writeString(o.channel);
    const ep = this.c.check(this.fn.sb_router_open(this.r, p, n, src, role, o.heartbeatInterval, o.heartbeatInterval > 0 ? o.heartbeatTimeout : 0, o.timeout, now()), 'bridge');
    try {
      for (const pat of remote.origins) {
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
    const [, p, n, q, m] = this.args(channel, origin);
    return this.fn.sb_router_route(this.r, p, n, this.sources.get(sourceObj) || 0, q, m) > 0;
  }

  armAt(at) {
    if (at < 0 || at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.tick, Math.max(0, at - now()));
    if (typeof this.timer === 'object') /** @type {any} */ (this.timer).unref?.(); // Node: never keep a process alive
  }

  poll() {
    this.events(this.fn.sb_router_poll(this.r, now()));
    this.armAt(this.fn.sb_router_next_deadline(this.r));
  }

  // Carry out the router's event table (kind, endpoint, id, err); `ev` is
  // the window message it answers, if any.
  events(n, ev) {
    if (n <= 0) return;
    const t = new Int32Array(this.c.heap().buffer, this.fn.sb_router_events(this.r), n * REC).slice();
    for (let r = 0; r < n * REC; r += REC) {
      const kind = t[r + (ROUTER_RECORD_KIND >> 2)], ep = t[r + (ROUTER_RECORD_ENDPOINT >> 2)], remote = this.eps.get(ep);
      const id = t[r + (ROUTER_RECORD_ID >> 2)] >>> 0, err = t[r + (ROUTER_RECORD_ERR >> 2)];
      if (kind === RT_REJECT) this.report(remote, REASONS[id], ev);
      if (!remote) continue;
      if (kind === RT_CALL_FAILED) remote._fail(id, err);
      else if (kind === RT_SEND) remote._send(id, ev);
      else if (kind === RT_CONNECTED) remote._connected();
      else if (kind === RT_DISCONNECTED) remote._disconnected(id);
      else if (kind === RT_RESTART) remote._start();
      else if (kind === RT_PING) remote._ping();
      else if (kind === RT_SILENT) remote._lost(BW_TIMEOUT);
      else if (kind === RT_CLOSED) { this.eps.delete(ep); remote._closed(err); }
    }
  }

  handshakeMessage(ev) {
    const d = ev.data;
    // Not a bridge message: other code on the page owns it.
    if (!d || typeof d !== 'object' || d[BRIDGE_MARK] !== BRIDGE_VERSION) return;
    const [rnd, ...s] = this.args(cut(d.ch, ROUTER_CHANNEL_MAX), cut(d.t, ROUTER_TYPE_MAX), cut(d.n), cut(d.m), String(ev.origin).slice(0, ORIGIN_MAX + 1));
    this.events(this.fn.sb_router_window(this.r, (ev.source && this.sources.get(ev.source)) || 0, ...s, ev.ports.length, rnd, now()), ev);
  }

  // A refused message: on the monitor, and on its bridge if it has one (ev:
  // the window message; none for one on the port).
  report(remote, reason, ev) {
    const d = ev ? ev.data : { ch: remote?.opts.channel, t: 'confirm' };
    const data = { reason, origin: ev ? String(ev.origin) : 'port', channel: typeof d?.ch === 'string' ? d.ch.slice(0, ROUTER_CHANNEL_MAX) : undefined, messageType: typeof d?.t === 'string' ? d.t.slice(0, ROUTER_TYPE_MAX) : undefined };
    // (messageType: an event's own `type` is its name)
    bridgeMonitor.dispatchEvent(dataEvent('reject', data));
    remote?.dispatchEvent(dataEvent('reject', data));
  }
}
