// Small helpers every job's glue shares: the clock, events, names of C
// enums as the API spells them, on* properties, listeners that are removed
// together, IndexedDB, a server's error answer. No policy.
import { SwitchboardError } from './errors.js';

/** Wall-clock ms that never runs backwards. It keeps running while the
 * machine sleeps, which is what lets a heartbeat notice a sleep. */
let last = 0; // a binding, not a property of now(): nothing runs at load, so a job that does not use now() leaves it out
export function now() {
  const t = Date.now();
  if (t > last) last = t;
  return last;
}

/** An Event with read-only properties. */
export function event(type, props) {
  const e = new Event(type);
  for (const k in props) Object.defineProperty(e, k, { value: props[k], enumerable: true });
  return e;
}

/**
 * A custom event whose data are its own properties (e.keys, e.reason, e.error:
 * docs/api.md, "Conventions"), and `detail` too, for code written when they
 * were only there (deprecated; `detail` defaults to the data). No key of
 * `data` may be one of Event's own (type, target…): those are read-only.
 */
export const dataEvent = (type, data, detail = data) => Object.assign(new CustomEvent(type, { detail }), data);

/** A non-zero 32-bit seed from the platform's CSPRNG (jitter, ids). */
export function randomSeed() {
  const a = new Uint32Array(1);
  do globalThis.crypto.getRandomValues(a); while (a[0] === 0);
  return a[0];
}

export const obj = (v) => (v && typeof v === 'object' ? v : {});

/** A generated C enum object -> [value] = 'kebab-name' (CONNECT_TIMEOUT -> 'connect-timeout'). */
export const kebabNames = (o) => Object.entries(o).reduce((a, [k, v]) => { a[v] = k.toLowerCase().replace(/_/g, '-'); return a; }, []);
/** ... and [[camelName, value]] (QUEUED_BYTES -> 'queuedBytes'). */
export const camelEntries = (o) => Object.entries(o).map(([k, v]) => [k.toLowerCase().replace(/_(.)/g, (_, c) => c.toUpperCase()), v]);

/** on<type> properties on an EventTarget class, like WebSocket's. */
export function onProperties(cls, types) {
  const handlers = new WeakMap();
  for (const type of types) {
    Object.defineProperty(cls.prototype, `on${type}`, {
      get() { return handlers.get(this)?.[type] || null; },
      set(f) {
        const h = handlers.get(this) || {};
        handlers.set(this, h);
        if (h[type]) this.removeEventListener(type, h[type]);
        h[type] = typeof f === 'function' ? f : null;
        if (h[type]) this.addEventListener(type, h[type]);
      },
    });
  }
}

/** addEventListener that records how to undo it in `offs`. */
export function listen(offs, target, type, fn) {
  if (!target || typeof target.addEventListener !== 'function') return;
  target.addEventListener(type, fn);
  offs.push(() => target.removeEventListener(type, fn));
}

/** One IndexedDB transaction on store `store` of database `name`. */
export function idb(name, store, mode, fn) {
  return new Promise((resolve, reject) => {
    const rq = indexedDB.open(name, 1);
    rq.onupgradeneeded = () => rq.result.createObjectStore(store);
    rq.onerror = () => reject(rq.error);
    rq.onsuccess = () => {
      const db = rq.result;
      const tx = db.transaction(store, mode);
      const op = fn(tx.objectStore(store));
      tx.oncomplete = () => { db.close(); resolve(op.result); };
      tx.onerror = tx.onabort = () => { db.close(); reject(tx.error); };
    };
  });
}

// Codes a relay answers with besides the core's own (index.d.ts, "the relay's").
const RELAY_CODES = ['UNAUTHORIZED', 'FORBIDDEN', 'UNAVAILABLE'];

/**
 * A server's {code, message} error answer (UTF-8 JSON bytes) as a
 * SwitchboardError. A code that is not one of the library's (an application's
 * own, from a relay onRequest handler) becomes REMOTE, with the server's code
 * kept as `remoteCode`, so `code` stays within SwitchboardErrorCode.
 * @param {Uint8Array} data
 * @param {{cstr(p: number): string, fn: any}} c the core
 */
export function remoteError(data, c) {
  const text = new TextDecoder().decode(data);
  let info;
  try { info = JSON.parse(text); } catch { info = { message: text }; }
  const named = typeof info?.code === 'string' ? info.code : '';
  let ours = RELAY_CODES.includes(named);
  // the core's codes, by name from the core itself (sb_errname: "UNKNOWN" past the last)
  for (let rc = -1, n; !ours && (n = c.cstr(c.fn.sb_errname(rc))) !== 'UNKNOWN'; rc--) ours = n === named;
  const e = new SwitchboardError(ours ? /** @type {any} */ (named) : 'REMOTE', String(info?.message ?? 'server error'));
  return named && !ours ? Object.assign(e, { remoteCode: named }) : e;
}
