// Multi-tab state and leadership (docs/tabs.md). TabGroup: presence and one
// leader per group of same-origin tabs. SharedState: a replicated key/value
// map kept in the C core (src/sync.c); this file only moves bytes between the
// core, BroadcastChannel, timers and storage, and turns values into JSON.
import { init, core, SwitchboardError } from './core.js';
import {
  LEASE_EV_LEADER, LEASE_EV_LOST, LEASE_EV_PRESENCE, LEASE_MSG_MAX, SYNC_SNAPSHOT, SYNC_DIGEST, SYNC_REQUEST, SYNC_CH_DELETED,
} from './constants.js';
import { randomSeed } from './glue.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const hasWindow = typeof window !== 'undefined' && typeof document !== 'undefined';


function isVisible() {
  return hasWindow ? document.visibilityState !== 'hidden' : true;
}

function toU8(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return null;
}

// Timers stay ref'd in Node: an open group is live work, like a socket; close() ends it.
function startTimer(fn, ms) {
  return setTimeout(fn, Math.max(0, ms));
}

/** Copy `len` bytes of core output at `ptr`. */
function out(c, ptr, len) {
  return c.readBytes(ptr, len);
}

/**
 * Presence and leader election for tabs of one origin sharing a name.
 * Leadership uses Web Locks (`navigator.locks`) when the browser has them and
 * heartbeat leases from the C core otherwise (`mode: 'lease'` forces that).
 */
export class TabGroup extends EventTarget {
  /**
   * @param {string} name
   * @param {{mode?: 'auto'|'locks'|'lease', preferVisible?: boolean, heartbeatMs?: number,
   *          leaseMs?: number, maxTabs?: number, id?: number, signal?: AbortSignal}} [options]
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
    const hb = options.heartbeatMs ?? 500;
    const lease = options.leaseMs ?? 2000;
    this.#h = this.#c.fn.sb_lease_create(this.id, hb, lease, options.maxTabs ?? 64, options.preferVisible ? 1 : 0, this.#locks ? 1 : 0);
    if (!this.#h) throw new SwitchboardError('INVALID', 'bad TabGroup options (need 0 < heartbeatMs < leaseMs)');
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

  #requestLock() {
    this.#lockAbort = new AbortController();
    navigator.locks.request(`switchboard:leader:${this.#name}`, { signal: this.#lockAbort.signal }, () => {
      if (this.#closed) return undefined;
      // Held until we resolve: close(), or handing over to a visible tab.
      const held = new Promise((resolve) => { this.#releaseLock = resolve; });
      this.#send(this.#c.fn.sb_lease_claim(this.#h, performance.now()));
      this.#after();
      return held;
    }).catch(() => { /* aborted on close */ });
  }

  #send(len) {
    if (len > 0 && !this.#closed) this.#bc.postMessage(out(this.#c, this.#c.fn.sb_lease_out(this.#h), len));
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
      this.dispatchEvent(new CustomEvent('presence', { detail: { tabs: this.tabs } }));
    }
    if (ev & LEASE_EV_LOST) this.dispatchEvent(new Event('leadershiplost'));
    if (ev & LEASE_EV_LEADER) this.dispatchEvent(new CustomEvent('leaderchange', { detail: { leader: this.leader, isLeader: this.isLeader, term: this.term } }));
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
    if (this.#timer !== null) clearTimeout(this.#timer);
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
    if (len > 0) this.#bc.postMessage(out(this.#c, f.sb_lease_out(this.#h), len));
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
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

/* ---- SharedState ------------------------------------------------------------ */

const jsonCodec = {
  encode(value, key) {
    let text;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      throw new SwitchboardError('INVALID', `value for "${key}" cannot be encoded as JSON: ${e.message}`, { cause: e });
    }
    if (text === undefined) throw new SwitchboardError('INVALID', `value for "${key}" cannot be encoded as JSON (${typeof value})`);
    return text;
  },
  decode(bytes) { return JSON.parse(decoder.decode(bytes)); },
};

function readVar(buf, pos) {
  let v = 0; let mul = 1; let b;
  do {
    b = buf[pos.i++];
    v += (b & 0x7f) * mul;
    mul *= 128;
  } while (b & 0x80);
  return v;
}

const STORAGE_PREFIX = 'switchboard:state:';

/** JSON text of a local write, parsed on first read. */
class Unparsed {
  constructor(text) { this.text = text; }
}

function bytesToLatin1(b) {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode.apply(null, b.subarray(i, i + 8192));
  return s;
}

function latin1ToBytes(s) {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

/**
 * A key/value map shared by every same-origin tab that opens the same name.
 * Values are JSON (or a custom codec); each key is a last-writer-wins
 * register ordered by a hybrid logical clock, merged in the C core.
 */
export class SharedState extends EventTarget {
  /**
   * @param {string} name
   * @param {{initial?: Record<string, unknown>, persist?: boolean, codec?: {encode(v: unknown, key: string): string|Uint8Array, decode(b: Uint8Array): unknown},
   *          maxKeys?: number, maxKeyBytes?: number, maxValueBytes?: number, maxTombstones?: number,
   *          maxStateBytes?: number, maxClockSkewMs?: number, joinTimeoutMs?: number, digestMs?: number, batchMs?: number, storage?: Storage,
   *          group?: object, signal?: AbortSignal}} [options]
   */
  static async open(name, options = {}) {
    await init();
    const group = await TabGroup.open(name, { ...(options.group || {}), id: randomSeed() });
    let s;
    try {
      s = new SharedState(name, options, group);
    } catch (e) {
      group.close();
      throw e;
    }
    try {
      await s.#start(options);
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  #c; #s = 0; #bc; #name; #codec; #cache = new Map(); #group;
  #flushQueued = false; #flushTimer = null; #digestTimer = null; #persistTimer = null;
  #pendingLocal = new Set(); #closed = false; #storage = null; #joined = null;
  #lastRequest = -Infinity; #options; #onPageHide; #known = new Set(); #maxMsg = 0;

  /** @private use SharedState.open() */
  constructor(name, options, group) {
    super();
    if (typeof name !== 'string' || !name) throw new SwitchboardError('INVALID', 'SharedState needs a non-empty name');
    this.#c = core();
    this.#name = name;
    this.#options = options;
    this.#codec = options.codec || jsonCodec;
    this.#group = group;
    this.id = group.id; // one id for presence and for the replica
    // Everything that can throw comes before anything that must be freed.
    if (options.signal?.aborted) throw new SwitchboardError('CLOSED', 'SharedState.open() aborted');
    if (options.persist) {
      this.#storage = options.storage || (typeof localStorage !== 'undefined' ? localStorage : null);
      if (!this.#storage) throw new SwitchboardError('INVALID', 'persist needs localStorage (or options.storage)');
    }
    this.#s = this.#c.fn.sb_sync_create(this.id, options.maxKeys ?? 4096, options.maxKeyBytes ?? 256,
      options.maxValueBytes ?? 65536, options.maxTombstones ?? 4096, options.maxTabs ?? 256);
    // The largest message (a full snapshot) follows from maxStateBytes; the
    // default keeps it (≈ 2.4 MB) well inside localStorage's ~5 MB.
    if (!this.#s || (this.#maxMsg = this.#c.fn.sb_sync_limits(this.#s, options.maxStateBytes ?? 2097152, options.maxClockSkewMs ?? 86400000)) < 0) {
      this.#c.fn.sb_sync_destroy(this.#s);
      this.#s = 0;
      throw new SwitchboardError('INVALID', 'bad SharedState caps');
    }
    this.#bc = new BroadcastChannel(`switchboard:state:${name}`);
    this.#bc.onmessage = (e) => this.#recv(e.data);
    if (options.signal) options.signal.addEventListener('abort', () => this.close(), { once: true });
  }

  /** The TabGroup this state uses (presence, leader). */
  get group() { return this.#group; }
  get name() { return this.#name; }
  get size() { return this.#cache.size; }
  get closed() { return this.#closed; }

  async #start(options) {
    const g = this.#group;
    g.addEventListener('presence', () => this.#presence());
    g.addEventListener('leaderchange', () => { if (g.isLeader) this.#schedulePersist(); });
    this.#presence();
    // 1. What this browser last saw (the new tab is maybe alone).
    if (this.#storage) {
      const saved = this.#storage.getItem(STORAGE_PREFIX + this.#name);
      if (saved && saved.length <= this.#maxMsg) {
        try { this.#merge(latin1ToBytes(saved), false); } catch { /* corrupt storage: ignore it */ }
      }
    }
    // 2. A live tab's snapshot, if there is one.
    const joined = new Promise((resolve) => { this.#joined = resolve; });
    this.#request(true);
    const wait = options.joinTimeoutMs ?? 150;
    await Promise.race([joined, new Promise((r) => startTimer(r, wait))]);
    this.#joined = null;
    // 3. Defaults for keys nobody has.
    if (options.initial) {
      for (const [k, v] of Object.entries(options.initial)) if (!this.#cache.has(k)) this.set(k, v);
    }
    const digestMs = options.digestMs ?? 1000;
    const digest = () => {
      this.#digestTimer = startTimer(digest, digestMs);
      this.#digest();
    };
    this.#digestTimer = startTimer(digest, digestMs);
    if (hasWindow) {
      this.#onPageHide = () => this.close();
      window.addEventListener('pagehide', this.#onPageHide);
    }
  }

  /** Current value of key (undefined when absent). Treat it as immutable. */
  get(key) {
    const v = this.#cache.get(key);
    return v instanceof Unparsed ? this.#parse(key, v) : v;
  }

  has(key) { return this.#cache.has(key); }
  keys() { return this.#cache.keys(); }
  /** [key, value] pairs of the current state. */
  * entries() { for (const k of this.#cache.keys()) yield [k, this.get(k)]; }
  [Symbol.iterator]() { return this.entries(); }
  /** A plain object copy of the whole state. */
  toJSON() { return Object.fromEntries(this.entries()); }

  // A local write keeps its JSON text and parses it on first read: a copy
  // (the caller's object may change later) without paying for it per set.
  #parse(key, u) {
    const v = JSON.parse(u.text);
    this.#cache.set(key, v);
    return v;
  }

  /**
   * Write key. Encodes now: a value the codec cannot encode (functions,
   * cycles, BigInt…) or that exceeds a cap throws here, never in another tab.
   * The write reaches other tabs in one batched broadcast per task.
   */
  set(key, value) {
    this.#open();
    if (typeof key !== 'string' || !key) throw new SwitchboardError('INVALID', 'keys are non-empty strings');
    const enc = this.#codec.encode(value, key);
    const c = this.#c;
    // UTF-8 has at least one byte per UTF-16 unit: refuse before copying into wasm.
    if (key.length > (this.#options.maxKeyBytes ?? 256) || enc.length > (this.#options.maxValueBytes ?? 65536)) throw new SwitchboardError('TOO_LARGE', `set "${key}": over a cap`);
    // Key and value are encoded straight into wasm memory, side by side.
    const vmax = typeof enc === 'string' ? enc.length * 3 : enc.length;
    const kmax = key.length * 3;
    const p = c.scratch(kmax + vmax);
    const heap = c.heap();
    const kl = encoder.encodeInto(key, heap.subarray(p, p + kmax)).written;
    let vl;
    if (typeof enc === 'string') vl = encoder.encodeInto(enc, heap.subarray(p + kl, p + kl + vmax)).written;
    else { heap.set(enc, p + kl); vl = enc.length; }
    c.check(c.fn.sb_sync_set(this.#s, Date.now(), p, kl, p + kl, vl), `set "${key}"`);
    // Store what other tabs will see (a decoded copy), not the caller's object.
    this.#cache.set(key, this.#codec === jsonCodec ? new Unparsed(enc) : this.#codec.decode(c.view(p + kl, vl).slice()));
    this.#localChange(key);
  }

  /** set(key, fn(current)) */
  update(key, fn) {
    const next = fn(this.get(key));
    this.set(key, next);
    return next;
  }

  /** Remove key; returns whether it existed. */
  delete(key) {
    this.#open();
    const kb = this.#keyBytes(key);
    const c = this.#c;
    const p = c.writeBytes(kb);
    const r = c.check(c.fn.sb_sync_delete(this.#s, Date.now(), p, kb.length), `delete "${key}"`);
    if (r === 1) {
      this.#cache.delete(key);
      this.#localChange(key);
    }
    return r === 1;
  }

  /** Call fn(detail) after every change; returns an unsubscribe function. */
  subscribe(fn) {
    const h = (e) => fn(e.detail);
    this.addEventListener('change', h);
    return () => this.removeEventListener('change', h);
  }

  /** Call fn(value, detail) whenever `key` changes (value undefined once deleted); returns an unsubscribe function. */
  watch(key, fn) {
    return this.subscribe((d) => { if (d.keys.includes(key)) fn(this.get(key), d); });
  }

  /** Broadcast pending writes now instead of at the end of the task. */
  flush() {
    if (this.#closed) return;
    this.#flushQueued = false;
    if (this.#flushTimer !== null) { clearTimeout(this.#flushTimer); this.#flushTimer = null; }
    const f = this.#c.fn;
    const n = this.#c.check(f.sb_sync_flush(this.#s), 'flush');
    if (n > 0) this.#post(n);
    if (this.#pendingLocal.size) {
      const keys = [...this.#pendingLocal];
      this.#pendingLocal.clear();
      this.dispatchEvent(new CustomEvent('change', { detail: { keys, local: true, origin: this.id } }));
      this.#schedulePersist();
    }
  }

  #open() {
    if (this.#closed) throw new SwitchboardError('CLOSED', 'SharedState is closed');
  }

  #keyBytes(key) {
    if (typeof key !== 'string' || !key) throw new SwitchboardError('INVALID', 'keys are non-empty strings');
    return encoder.encode(key);
  }

  #localChange(key) {
    this.#pendingLocal.add(key);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    const ms = this.#options.batchMs ?? 0;
    if (ms > 0) this.#flushTimer = startTimer(() => this.flush(), ms);
    else queueMicrotask(() => { if (this.#flushQueued) this.flush(); });
  }

  #post(len) {
    this.#bc.postMessage(this.#c.readBytes(this.#c.fn.sb_sync_out(this.#s), len));
  }

  #request(force) {
    const now = performance.now();
    if (!force && now - this.#lastRequest < 500) return;
    this.#lastRequest = now;
    this.#post(this.#c.check(this.#c.fn.sb_sync_request(this.#s)));
  }

  #digest() {
    if (this.#closed) return;
    this.flush();
    const f = this.#c.fn;
    const n = f.sb_sync_digest(this.#s, Date.now());
    if (n > 0) this.#post(n);
    f.sb_sync_gc(this.#s);
  }

  #presence() {
    const f = this.#c.fn;
    const now = new Set(this.#group.tabs.filter((t) => !t.self).map((t) => t.id));
    for (const id of now) if (!this.#known.has(id)) f.sb_sync_peer_join(this.#s, id);
    for (const id of this.#known) if (!now.has(id)) f.sb_sync_peer_leave(this.#s, id);
    this.#known = now;
  }

  #recv(data) {
    const bytes = toU8(data);
    if (!bytes || this.#closed) return;
    if (bytes.length > this.#maxMsg) {
      // Checked before anything is copied into wasm memory.
      this.dispatchEvent(new CustomEvent('error', { detail: new SwitchboardError('TOO_LARGE', `message over ${this.#maxMsg} B`) }));
      return;
    }
    let n;
    try {
      n = this.#merge(bytes, true);
    } catch (e) {
      this.dispatchEvent(new CustomEvent('error', { detail: e }));
      return;
    }
    if (n === undefined) return;
    const f = this.#c.fn;
    const skewed = f.sb_sync_skewed(this.#s);
    if (skewed) this.dispatchEvent(new CustomEvent('error', { detail: new SwitchboardError('CLOCK_SKEW', `${skewed} stamps too far ahead, ignored`) }));
    const type = f.sb_sync_last_type(this.#s);
    if (type === SYNC_SNAPSHOT && this.#joined) this.#joined();
    if (type === SYNC_REQUEST) {
      // A tab joined or missed writes: the leader answers (everyone does
      // while none is known, or when the leader itself asks).
      const g = this.#group;
      const from = f.sb_sync_last_origin(this.#s) >>> 0;
      if (g.isLeader || !g.leader || g.leader === from) this.#sendSnapshot();
    } else if (type === SYNC_DIGEST && f.sb_sync_missing(this.#s) > 0) {
      this.#request(false); // a digest shows writes we never got: repair
    }
  }

  #sendSnapshot() {
    this.flush();
    const n = this.#c.check(this.#c.fn.sb_sync_snapshot(this.#s, Date.now()), 'snapshot');
    this.#post(n);
  }

  // Merge bytes into the core and apply its change records to the cache.
  #merge(bytes, remote) {
    const c = this.#c;
    const f = c.fn;
    const p = c.writeBytes(bytes);
    const n = c.check(f.sb_sync_merge(this.#s, Date.now(), p, bytes.length), 'merge');
    if (n === 0) return 0;
    // Read the change records in place: nothing calls into the core until
    // the loop is done (a custom codec gets its own copy of the bytes).
    const buf = c.view(f.sb_sync_changes(this.#s), f.sb_sync_changes_len(this.#s));
    const json = this.#codec === jsonCodec;
    const keys = [];
    const bad = [];
    const pos = { i: 0 };
    for (let k = 0; k < n; k++) {
      const flags = buf[pos.i++];
      const kl = readVar(buf, pos);
      const key = decoder.decode(buf.subarray(pos.i, pos.i + kl));
      pos.i += kl;
      const vl = readVar(buf, pos);
      const vb = buf.subarray(pos.i, pos.i + vl);
      pos.i += vl;
      if (flags & SYNC_CH_DELETED) {
        this.#cache.delete(key);
      } else {
        let v;
        // Another tab wrote garbage: the core holds it (as every tab's does),
        // so the key reads as absent here too, and it is reported below.
        try { v = json ? JSON.parse(decoder.decode(vb)) : this.#codec.decode(vb.slice()); } catch { bad.push(key); if (this.#cache.delete(key)) keys.push(key); continue; }
        this.#cache.set(key, v);
      }
      keys.push(key);
    }
    if (keys.length) {
      this.dispatchEvent(new CustomEvent('change', { detail: { keys, local: false, origin: f.sb_sync_last_origin(this.#s) >>> 0, remote } }));
      this.#schedulePersist();
    }
    if (bad.length) this.dispatchEvent(new CustomEvent('error', { detail: new SwitchboardError('CORRUPT', `values that do not decode, read as absent: ${bad.map((k) => JSON.stringify(k)).join(', ')}`) }));
    return n;
  }

  #schedulePersist() {
    if (!this.#storage || this.#persistTimer !== null || !this.#group.isLeader) return;
    this.#persistTimer = startTimer(() => { this.#persistTimer = null; this.#persist(); }, 100);
  }

  #persist() {
    if (!this.#storage || !this.#s) return;
    this.flush();
    const f = this.#c.fn;
    const n = f.sb_sync_snapshot(this.#s, Date.now());
    if (n <= 0) return;
    try {
      this.#storage.setItem(STORAGE_PREFIX + this.#name, bytesToLatin1(this.#c.view(f.sb_sync_out(this.#s), n)));
    } catch (e) {
      this.dispatchEvent(new CustomEvent('error', { detail: new SwitchboardError('TOO_LARGE', 'state does not fit in storage', { cause: e }) }));
    }
  }

  /** Send pending writes, persist (when asked to), leave the group, free the core object. */
  close() {
    if (this.#closed) return;
    if (this.#s) {
      try { this.flush(); } catch { /* closing anyway */ }
      this.#persist(); // every tab saves on the way out: it may be the last one
    }
    this.#closed = true;
    for (const t of [this.#flushTimer, this.#digestTimer, this.#persistTimer]) if (t !== null) clearTimeout(t);
    if (hasWindow && this.#onPageHide) window.removeEventListener('pagehide', this.#onPageHide);
    this.#bc.close();
    this.#group.close();
    if (this.#s) this.#c.fn.sb_sync_destroy(this.#s);
    this.#s = 0;
    this.dispatchEvent(new Event('close'));
  }
}
