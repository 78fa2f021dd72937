// The bridge's hub (docs/bridge.md): one router per JS realm (src/router.c),
// one window listener for every handshake, one timer at the router's next
// deadline. It routes a handshake message to its endpoint, or reports why
// the router refused it, and acts on the router's events; the Remote
// (js/bridge-remote.js) owns the port and the JS values.
import { core } from './core.js';
import { SwitchboardError } from './errors.js';
import { dataEvent } from './glue.js';
import {
  RT_CALL_FAILED, RT_PING, RT_LOST, RT_CONNECT_TIMEOUT, RR_NONE, RR_NO_CHANNEL, RR_BAD_ORIGIN, RR_ORIGIN_REJECTED,
  RR_WRONG_SOURCE, RR_BAD_NONCE, RR_BAD_STATE, ROUTER_RECORD_KIND, ROUTER_RECORD_ENDPOINT, ROUTER_RECORD_ID,
  ROUTER_RECORD_ERR, ROUTER_RECORD_SIZE, ROUTER_CHANNEL_MAX, ORIGIN_MAX, E_CLOSED, BRIDGE_MARK, BRIDGE_VERSION,
} from './constants.js';

// What a reject event's detail.reason says for each sb_route_reason.
export const REASONS = {
  [RR_NONE]: 'none', [RR_NO_CHANNEL]: 'no-channel', [RR_BAD_ORIGIN]: 'bad-origin', [RR_ORIGIN_REJECTED]: 'origin-rejected',
  [RR_WRONG_SOURCE]: 'wrong-source', [RR_BAD_NONCE]: 'bad-nonce', [RR_BAD_STATE]: 'unexpected',
};
// The router's event table: int32 words, one record per event.
const REC = ROUTER_RECORD_SIZE >> 2;

export const encoder = new TextEncoder();
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
    const ep = this.c.check(this.fn.sb_router_open(this.r, p, n, src, o.heartbeatInterval, o.heartbeatInterval > 0 ? o.heartbeatTimeout : 0, o.timeout, now()), 'bridge');
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
    if (typeof this.timer === 'object') /** @type {any} */ (this.timer).unref?.(); // Node: never keep a process alive
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
    if (!d || typeof d !== 'object' || d[BRIDGE_MARK] !== BRIDGE_VERSION) return;
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
    const data = { reason, origin: String(origin), channel: typeof d?.ch === 'string' ? d.ch.slice(0, ROUTER_CHANNEL_MAX) : undefined, messageType: typeof d?.t === 'string' ? d.t.slice(0, 16) : undefined };
    // (messageType: an event's own `type` is its name)
    bridgeMonitor.dispatchEvent(dataEvent('reject', data));
    remote?.dispatchEvent(dataEvent('reject', data));
  }
}
