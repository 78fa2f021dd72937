// SharedState (docs/tabs.md): a replicated key/value map kept in the C core
// (src/sync.c), over a TabGroup (js/tab-group.js) for presence and the
// leader. The core decides what is sent and when (joining, digests, repair,
// answers, saves); this file moves bytes between it, BroadcastChannel, one
// timer and storage, and turns values into JSON.
import { init, core, SwitchboardError } from './core.js';
import { SYNC_CH_DELETED, SYNC_EV_JOINED, SYNC_EV_FLUSHED, SYNC_OUT_PERSIST } from './constants.js';
import { randomSeed, dataEvent } from './glue.js';
import { TabGroup, hasWindow, toU8, startTimer } from './tab-group.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

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

// Copy latin1 text (one byte per char) into the core's scratch; returns the pointer.
function latin1Into(c, s) {
  const p = c.scratch(s.length);
  const h = c.heap();
  for (let i = 0; i < s.length; i++) h[p + i] = s.charCodeAt(i);
  return p;
}

// UTF-8 encode s at h[p] (room for 3 bytes per unit): short ASCII, the
// common key and value, without a call out to TextEncoder.
function utf8Into(s, h, p) {
  const n = s.length;
  if (n <= 256) {
    let i = 0;
    for (; i < n; i++) { const ch = s.charCodeAt(i); if (ch > 127) break; h[p + i] = ch; }
    if (i === n) return n;
  }
  return encoder.encodeInto(s, h.subarray(p, p + n * 3)).written;
}

// ... and back.
function utf8(b) {
  if (b.length > 256) return decoder.decode(b);
  for (let i = 0; i < b.length; i++) if (b[i] > 127) return decoder.decode(b);
  return String.fromCharCode.apply(null, b);
}

/**
 * A key/value map shared by every same-origin tab that opens the same name.
 * Values are JSON (or a custom codec); each key is a last-writer-wins
 * register ordered by a hybrid logical clock, merged in the C core.
 */
export class SharedState extends EventTarget {
  /**
   * @param {string} name
   * @param {import('./tabs.d.ts').SharedStateOptions} [options]
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
  #kicked = false; #timer = null; #due = -1;
  #pendingLocal = new Set(); #closed = false; #storage = null; #joined = null;
  #options; #onPageHide; #known = new Set(); #maxMsg = 0;

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
    if (!this.#s || (this.#maxMsg = this.#c.fn.sb_sync_limits(this.#s, options.maxStateBytes ?? 2097152, options.maxClockSkew ?? 86400000)) < 0) {
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
    const f = this.#c.fn;
    const leader = () => { f.sb_sync_leader(this.#s, Date.now(), g.leader); this.#drive(); };
    g.addEventListener('presence', () => this.#presence());
    g.addEventListener('leaderchange', leader);
    this.#presence();
    // 1. What this browser last saw (the new tab is maybe alone).
    if (this.#storage) {
      const saved = this.#storage.getItem(STORAGE_PREFIX + this.#name);
      if (saved && saved.length <= this.#maxMsg) {
        try { this.#merge(latin1Into(this.#c, saved), saved.length, false); } catch { /* corrupt storage: ignore it */ }
      }
    }
    // 2. A live tab's snapshot, if there is one (the core says when joining is over).
    const joined = new Promise((resolve) => { this.#joined = resolve; });
    this.#c.check(f.sb_sync_start(this.#s, Date.now(), options.joinTimeout, options.digestInterval, options.batchDelay, this.#storage ? 1 : 0), 'SharedState timings');
    leader();
    await joined;
    this.#joined = null;
    this.#open(); // closed while joining
    // 3. Defaults for keys nobody has.
    if (options.initial) {
      for (const [k, v] of Object.entries(options.initial)) if (!this.#cache.has(k)) this.set(k, v);
    }
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
  /** @returns {Generator<[string, unknown]>} */
  * entries() { for (const k of this.#cache.keys()) yield [k, this.get(k)]; }
  [Symbol.iterator]() { return this.entries(); }
  /** A plain object copy of the whole state. */
  /** @returns {any} */
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
    const kl = utf8Into(key, heap, p);
    let vl;
    if (typeof enc === 'string') vl = utf8Into(enc, heap, p + kl);
    else { heap.set(enc, p + kl); vl = enc.length; }
    c.check(c.fn.sb_sync_set(this.#s, Date.now(), p, kl, p + kl, vl), `set "${key}"`);
    // Store what other tabs will see (a decoded copy), not the caller's object.
    this.#cache.set(key, this.#codec === jsonCodec ? new Unparsed(enc) : this.#codec.decode(c.view(p + kl, vl).slice()));
    this.#kick(key);
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
      this.#kick(key);
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
    const n = this.#c.check(this.#c.fn.sb_sync_flush(this.#s), 'flush');
    if (n > 0) this.#post(n);
    this.#drive();
  }

  #open() {
    if (this.#closed) throw new SwitchboardError('CLOSED', 'SharedState is closed');
  }

  #keyBytes(key) {
    if (typeof key !== 'string' || !key) throw new SwitchboardError('INVALID', 'keys are non-empty strings');
    return encoder.encode(key);
  }

  // A local write: the core is polled at the end of the task (it sends the
  // batch then, or arms the timer for batchDelay).
  #kick(key) {
    this.#pendingLocal.add(key);
    if (!this.#kicked) { this.#kicked = true; queueMicrotask(() => this.#drive()); }
  }

  #post(len) {
    this.#bc.postMessage(this.#c.readBytes(this.#c.fn.sb_sync_out(this.#s), len));
  }

  // Send what the core says is due, deliver its events, and arm the one
  // timer at its next deadline.
  #drive() {
    this.#kicked = false;
    const c = this.#c;
    const f = c.fn;
    let n;
    if (!this.#s) return;
    while ((n = f.sb_sync_poll(this.#s, Date.now())) > 0) {
      if (f.sb_sync_out_kind(this.#s) !== SYNC_OUT_PERSIST) this.#post(n);
      else {
        try {
          this.#storage.setItem(STORAGE_PREFIX + this.#name, bytesToLatin1(c.view(f.sb_sync_out(this.#s), n)));
        } catch (e) {
          this.#fail(new SwitchboardError('TOO_LARGE', 'state does not fit in storage', { cause: e }));
        }
      }
    }
    if (n < 0) this.#fail(c.error(n, 'sync'));
    const ev = f.sb_sync_events(this.#s);
    if (ev & SYNC_EV_JOINED) this.#joined?.();
    if (ev & SYNC_EV_FLUSHED && this.#pendingLocal.size) {
      const keys = [...this.#pendingLocal];
      this.#pendingLocal.clear();
      this.dispatchEvent(dataEvent('change', { keys, local: true, origin: this.id }));
    }
    // A listener may have closed us; the same deadline needs no new timer.
    const d = this.#s ? f.sb_sync_deadline(this.#s) : -1;
    if (d === this.#due) return;
    clearTimeout(this.#timer);
    this.#due = d;
    this.#timer = d < 0 ? null : startTimer(() => { this.#due = -1; this.#drive(); }, d - Date.now());
  }

  #presence() {
    const f = this.#c.fn;
    const now = new Set(this.#group.tabs.filter((t) => !t.self).map((t) => t.id));
    for (const id of now) if (!this.#known.has(id)) f.sb_sync_peer_join(this.#s, id);
    for (const id of this.#known) if (!now.has(id)) f.sb_sync_peer_leave(this.#s, id);
    this.#known = now;
  }

  // An `error` event: the error is e.error, as everywhere (e.detail too, deprecated).
  #fail(error) {
    this.dispatchEvent(dataEvent('error', { error }, error));
  }

  #recv(data) {
    const bytes = toU8(data);
    if (!bytes || this.#closed) return;
    if (bytes.length > this.#maxMsg) {
      // Checked before anything is copied into wasm memory.
      this.#fail(new SwitchboardError('TOO_LARGE', `message over ${this.#maxMsg} B`));
      return;
    }
    try {
      this.#merge(this.#c.writeBytes(bytes), bytes.length, true);
    } catch (e) {
      this.#fail(e);
      return;
    }
    const skewed = this.#c.fn.sb_sync_skewed(this.#s);
    if (skewed) this.#fail(new SwitchboardError('CLOCK_SKEW', `${skewed} stamps too far ahead, ignored`));
    this.#drive(); // an answer, a repair request, the end of joining: the core decided
  }

  // Merge len bytes at p (scratch) into the core and apply its change records to the cache.
  #merge(p, len, remote) {
    const c = this.#c;
    const f = c.fn;
    const n = c.check(f.sb_sync_merge(this.#s, Date.now(), p, len), 'merge');
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
      const key = utf8(buf.subarray(pos.i, pos.i + kl));
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
        try { v = json ? JSON.parse(utf8(vb)) : this.#codec.decode(vb.slice()); } catch { bad.push(key); if (this.#cache.delete(key)) keys.push(key); continue; }
        this.#cache.set(key, v);
      }
      keys.push(key);
    }
    if (keys.length) this.dispatchEvent(dataEvent('change', { keys, local: false, origin: f.sb_sync_last_origin(this.#s) >>> 0, remote }));
    if (bad.length) this.#fail(new SwitchboardError('CORRUPT', `values that do not decode, read as absent: ${bad.map((k) => JSON.stringify(k)).join(', ')}`));
    return n;
  }

  /** Send pending writes, persist (when asked to), leave the group, free the core object. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    // The core's last polls flush, then save (every tab: it may be the last one).
    if (this.#s) this.#c.fn.sb_sync_close(this.#s, Date.now());
    this.#drive();
    clearTimeout(this.#timer);
    if (this.#joined) this.#joined(); // open() waiting to join fails with CLOSED
    if (hasWindow && this.#onPageHide) window.removeEventListener('pagehide', this.#onPageHide);
    this.#bc.close();
    this.#group.close();
    if (this.#s) this.#c.fn.sb_sync_destroy(this.#s);
    this.#s = 0;
    this.dispatchEvent(new Event('close'));
  }
}
