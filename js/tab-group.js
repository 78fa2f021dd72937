// TabGroup (docs/tabs.md): presence and one leader per group of same-origin
// tabs, over the leases of the C core (src/lease.c). This file moves bytes
// between the core, a BroadcastChannel, Web Locks and one timer; the helpers
// at the top are SharedState's too (js/shared-state.js).
import { init, core, SwitchboardError } from './core.js';
import { LEASE_EV_LEADER, LEASE_EV_LOST, LEASE_EV_PRESENCE, LEASE_EV_STEAL, LEASE_MSG_MAX } from './constants.js';
import { randomSeed, dataEvent } from './glue.js';

export const hasWindow = typeof window !== 'undefined' && typeof document !== 'undefined';

export function isVisible() {
  return hasWindow ? document.visibilityState !== 'hidden' : true;
}

export function toU8(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return null;
}

/**
 * Why this page cannot share one connection with the other tabs of its
 * origin (it then keeps its own), or '' where it can: no BroadcastChannel,
 * a file: page, or a frame under another origin (browsers key
 * BroadcastChannel and locks by top-level site: it would not meet the tabs).
 * @returns {'' | 'no-broadcast-channel' | 'file-url' | 'partitioned'}
 */
export function shareBlocker() {
  if (typeof BroadcastChannel !== 'function') return 'no-broadcast-channel';
  if (typeof location !== 'undefined' && location.protocol === 'file:') return 'file-url';
  if (typeof window !== 'undefined' && window.top !== window) {
    try { if (window.top.location.origin !== location.origin) return 'partitioned'; } catch { return 'partitioned'; }
  }
  return '';
}

// Timers stay ref'd in Node: an open group is live work, like a socket; close() ends it.
export function startTimer(fn, ms) {
  return setTimeout(fn, Math.max(0, ms));
}

/**
 * Presence and leader election for tabs of one origin sharing a name.
 * Leadership uses Web Locks (`navigator.locks`) when the browser has them and
 * heartbeat leases from the C core otherwise (`mode: 'lease'` forces that).
 */
export class TabGroup extends EventTarget {
  /**
   * @param {string} name
   * @param {import('./tabs.d.ts').TabGroupOptions & {id?: number}} [options]
   */
  static async open(name, options = {}) {
    await init();
    const g = new TabGroup(name, options);
    await g.#start();
    return g;
  }

  #c; #h = 0; #bc; #timer = null; #closed = false; #name;
  #locks; #lockAbort = null; #releaseLock = null; #options;
  #onVisibility; #onPageHide; #tabs = [];

  /** @private use TabGroup.open() */
  constructor(name, options = {}) {
    super();
    if (typeof name !== 'string' || !name) throw new SwitchboardError('INVALID', 'TabGroup needs a non-empty name');
    this.#c = core();
    this.#name = name;
    this.#options = options;
    const mode = options.mode || 'auto';
    const locks = typeof navigator !== 'undefined' && navigator.locks && typeof navigator.locks.request === 'function';
    if (mode === 'locks' && !locks) throw new SwitchboardError('INVALID', 'Web Locks are not available here');
    this.#locks = mode === 'locks' || (mode === 'auto' && locks);
    /** This tab's id (non-zero 32-bit, random per tab session). */
    this.id = options.id >>> 0 || randomSeed();
    this.#h = this.#c.fn.sb_lease_create(this.id, options.heartbeatInterval ?? 500, options.heartbeatTimeout ?? 2000,
      options.maxTabs ?? 64, options.preferVisible ? 1 : 0, this.#locks ? 1 : 0);
    if (!this.#h) throw new SwitchboardError('INVALID', 'TabGroup needs 0 < heartbeatInterval < heartbeatTimeout');
    this.#bc = new BroadcastChannel(`switchboard:tabs:${name}`);
    this.#bc.onmessage = (e) => this.#recv(e.data);
    if (options.signal) {
      if (options.signal.aborted) queueMicrotask(() => this.close());
      else options.signal.addEventListener('abort', () => this.close(), { once: true });
    }
  }

  /** 'locks' or 'lease': how this group elects its leader. */
  get mode() { return this.#locks ? 'locks' : 'lease'; }
  /** Id of the leading tab, or null while there is none. */
  get leader() { return this.#h ? (this.#c.fn.sb_lease_leader(this.#h) >>> 0) || null : null; }
  get isLeader() { return !!this.#h && this.#c.fn.sb_lease_is_leader(this.#h) === 1; }
  /** Election term of the current leader (grows with every new leader). */
  get term() { return this.#h ? this.#c.fn.sb_lease_term(this.#h) : 0; }
  /** Live tabs, this one included: [{ id, visible, self }]. */
  get tabs() { return this.#tabs.slice(); }
  get closed() { return this.#closed; }

  /** Resolves when this tab leads (at once if it already does). */
  whenLeader() {
    if (this.isLeader) return Promise.resolve();
    if (this.#closed) return Promise.reject(new SwitchboardError('CLOSED', 'TabGroup closed'));
    return new Promise((resolve, reject) => {
      const done = () => { this.removeEventListener('leaderchange', check); this.removeEventListener('close', closed); };
      const check = () => { if (this.isLeader) { done(); resolve(); } };
      const closed = () => { done(); reject(new SwitchboardError('CLOSED', 'TabGroup closed')); };
      this.addEventListener('leaderchange', check);
      this.addEventListener('close', closed);
    });
  }

  async #start() {
    const f = this.#c.fn;
    this.#send(f.sb_lease_start(this.#h, performance.now(), isVisible() ? 1 : 0));
    this.#refreshTabs();
    if (hasWindow) {
      this.#onVisibility = () => {
        if (!this.#h) return;
        this.#send(f.sb_lease_set_visible(this.#h, performance.now(), isVisible() ? 1 : 0));
        this.#after();
      };
      this.#onPageHide = () => this.close();
      document.addEventListener('visibilitychange', this.#onVisibility);
      window.addEventListener('pagehide', this.#onPageHide);
    }
    if (this.#locks) this.#requestLock();
    this.#after();
  }

  /** Queue for the lock; with steal, take it from a holder gone silent (a frozen tab). */
  #requestLock(steal = false) {
    this.#lockAbort?.abort(); // (a steal replaces the queued request)
    const ac = this.#lockAbort = new AbortController();
    const name = `switchboard:leader:${this.#name}`;
    // (a steal cannot take a signal: it is granted at once)
    navigator.locks.request(name, steal ? { steal } : { signal: ac.signal }, () => {
      if (this.#closed) return undefined;
      // Held until we resolve: close(), or handing over to a visible tab.
      const held = new Promise((resolve) => { this.#releaseLock = resolve; });
      this.#send(this.#c.fn.sb_lease_claim(this.#h, performance.now()));
      this.#after();
      return held;
    }).catch(() => {
      // Stolen while this tab was frozen (not aborted by us): it leads no more.
      if (this.#closed || ac.signal.aborted || this.#lockAbort !== ac) return;
      this.#releaseLock = null;
      this.#send(this.#c.fn.sb_lease_resign(this.#h, performance.now()));
      this.#requestLock();
      this.#after();
    });
  }

  #send(len) {
    if (len > 0 && !this.#closed) this.#bc.postMessage(this.#c.readBytes(this.#c.fn.sb_lease_out(this.#h), len));
    else if (len < 0) this.#c.check(len, 'tabs');
  }

  #recv(data) {
    const bytes = toU8(data);
    if (!bytes || !this.#h || bytes.length > LEASE_MSG_MAX) return;
    const c = this.#c;
    const p = c.writeBytes(bytes);
    const r = c.fn.sb_lease_recv(this.#h, performance.now(), p, bytes.length);
    if (r > 0) this.#send(r);
    this.#after();
  }

  #tick() {
    this.#timer = null;
    if (!this.#h) return;
    this.#send(this.#c.fn.sb_lease_tick(this.#h, performance.now()));
    this.#after();
  }

  #refreshTabs() {
    const f = this.#c.fn;
    const list = [{ id: this.id, visible: isVisible(), self: true }];
    const n = f.sb_lease_peer_count(this.#h);
    for (let i = 0; i < n; i++) list.push({ id: f.sb_lease_peer_id(this.#h, i) >>> 0, visible: f.sb_lease_peer_visible(this.#h, i) === 1, self: false });
    list.sort((a, b) => a.id - b.id);
    this.#tabs = list;
  }

  // Deliver core events, hand over a Web Lock if a visible tab should lead,
  // and arm the single timer at the core's next deadline.
  #after() {
    if (!this.#h) return;
    const f = this.#c.fn;
    const ev = f.sb_lease_events(this.#h);
    if (ev & LEASE_EV_PRESENCE) {
      this.#refreshTabs();
      this.dispatchEvent(dataEvent('presence', { tabs: this.tabs }));
    }
    if (ev & LEASE_EV_LOST) {
      // (the core stepped down holding the lock: it had been frozen, and another tab took over)
      if (this.#locks && this.#releaseLock) { const release = this.#releaseLock; this.#releaseLock = null; release(); this.#requestLock(); }
      this.dispatchEvent(new Event('leadershiplost'));
    }
    if (ev & LEASE_EV_LEADER) this.dispatchEvent(dataEvent('leaderchange', { leader: this.leader, isLeader: this.isLeader, term: this.term }));
    if (ev & LEASE_EV_STEAL && this.#locks && !this.#releaseLock) this.#requestLock(true);
    if (this.#locks && this.#options.preferVisible && this.isLeader && !isVisible() &&
        this.#tabs.some((t) => !t.self && t.visible) && this.#releaseLock) {
      // Give the lock up and queue again: a visible tab gets its turn.
      const release = this.#releaseLock;
      this.#releaseLock = null;
      this.#send(f.sb_lease_resign(this.#h, performance.now()));
      release();
      this.#requestLock();
      return this.#after();
    }
    clearTimeout(this.#timer);
    const d = f.sb_lease_deadline(this.#h);
    this.#timer = d < 0 ? null : startTimer(() => this.#tick(), d - performance.now());
    return undefined;
  }

  /** Leave the group: tell the others (a leader is replaced at once) and free the core object. */
  close() {
    if (this.#closed) return;
    const f = this.#c.fn;
    const wasLeader = this.isLeader;
    const len = f.sb_lease_stop(this.#h, performance.now());
    if (len > 0) this.#bc.postMessage(this.#c.readBytes(f.sb_lease_out(this.#h), len));
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#releaseLock) this.#releaseLock();
    if (this.#lockAbort) this.#lockAbort.abort();
    this.#bc.close();
    if (hasWindow) {
      document.removeEventListener('visibilitychange', this.#onVisibility);
      window.removeEventListener('pagehide', this.#onPageHide);
    }
    f.sb_lease_destroy(this.#h);
    this.#h = 0;
    if (wasLeader) this.dispatchEvent(new Event('leadershiplost'));
    this.dispatchEvent(new Event('close'));
  }
}
