// What the relay checks before a client gets a session: the Origin of the
// upgrade request (against an allowlist matched by the core, src/origin.c,
// the same syntax and matcher as the iframe bridge) and the identity its
// authenticate hook gives the hello. docs/relay.md.
import { SwitchboardError } from '../errors.js';
import { ORIGIN_MAX, CLOSE_AUTH, CLOSE_FORBIDDEN, CLOSE_TRY_AGAIN } from '../constants.js';

/**
 * The Origins allowed to open a WebSocket: the request's own origin (its
 * Host, http or https as it arrived), plus every entry of `patterns`
 * (exact origins, `https://*.example.com`, `*` only when written, `null`).
 * A request without an Origin header (not a browser) is not checked.
 */
export class OriginPolicy {
  constructor(core, patterns = []) {
    if (!Array.isArray(patterns)) throw new SwitchboardError('INVALID', 'allowedOrigins must be an array of strings');
    this.c = core;
    this.list = 0;
    if (!patterns.length) return;
    this.list = core.fn.sb_origin_list_create(Math.min(Math.max(patterns.length, 1), 4096));
    if (!this.list) throw new SwitchboardError('NO_MEMORY', 'origin list');
    try {
      for (const p of patterns) {
        if (typeof p !== 'string') throw new SwitchboardError('INVALID', 'allowedOrigins must be strings');
        const [ptr, n] = core.writeString(p);
        core.check(core.fn.sb_origin_list_add(this.list, ptr, n), `allowed origin ${JSON.stringify(p)}`);
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /** The origin normalized by the core, or null if it does not parse. */
  normalize(origin) {
    const c = this.c;
    const room = origin.length * 3;
    const p = c.scratch(room + ORIGIN_MAX + 1);
    const n = new TextEncoder().encodeInto(origin, c.heap().subarray(p, p + room)).written;
    const len = c.fn.sb_origin_normalize(p, n, p + room, ORIGIN_MAX + 1);
    return len > 0 ? c.readString(p + room, len) : null;
  }

  /** May this upgrade request open a WebSocket? */
  allows(req) {
    const origin = req.headers.origin;
    if (origin === undefined) return true; // not a browser: nothing to protect
    if (typeof origin !== 'string' || origin.length > ORIGIN_MAX) return false;
    const host = req.headers.host;
    if (host && origin !== 'null') {
      const self = this.normalize(`${req.socket?.encrypted ? 'https' : 'http'}://${host}`);
      if (self && self === this.normalize(origin)) return true;
    }
    if (!this.list) return false;
    const [p, n] = this.c.writeString(origin);
    return this.c.fn.sb_origin_list_match(this.list, p, n) >= 0;
  }

  destroy() {
    if (this.list) this.c.fn.sb_origin_list_destroy(this.list);
    this.list = 0;
  }
}

/** An error that closes a client's transport with `closeCode` and the reason `CODE: message`. */
export function refusal(closeCode, message) {
  const e = new SwitchboardError(closeCode === CLOSE_AUTH ? 'UNAUTHORIZED' : 'FORBIDDEN', message);
  e.closeCode = closeCode;
  e.refusal = true;
  return e;
}

/** What authenticate() returned -> {id, name}, or null (refused). */
export function identityOf(v) {
  if (typeof v === 'string') return v ? { id: v, name: v.slice(0, 64) } : null;
  if (!v || typeof v !== 'object' || (typeof v.id !== 'string' && typeof v.id !== 'number')) return null;
  const id = String(v.id);
  if (!id || id.length > 256) return null;
  return { id, name: String(v.name ?? id).slice(0, 64) };
}

/**
 * Call hook(); then next(result): at once when it returned a value, or in a
 * turn of its own (turn(fn)) once its promise settles, if `alive()` still
 * holds then. A throw or rejection becomes refusal(code). A promise that
 * has not settled within `ms` closes with 1013 (the hook's backend is slow:
 * come back later).
 */
export function step(hook, next, { code, turn, alive, ms, log }) {
  const refuse = (e) => {
    log(`relay: ${code === CLOSE_AUTH ? 'authenticate' : 'authorize'} refused: ${e?.stack || e}`);
    return refusal(code, String(e?.message || e || 'refused').slice(0, 100));
  };
  let v;
  try {
    v = hook();
  } catch (e) {
    throw refuse(e);
  }
  if (!v || typeof v.then !== 'function') return next(v);
  let done = false;
  const timer = setTimeout(() => {
    done = true;
    turn(() => {
      if (!alive()) return;
      throw Object.assign(new SwitchboardError('TIMEOUT', `${code === CLOSE_AUTH ? 'authenticate' : 'authorize'} took over ${ms} ms`), { closeCode: CLOSE_TRY_AGAIN });
    });
  }, ms);
  timer.unref?.();
  Promise.resolve(v).then((x) => [x, null], (e) => [undefined, e ?? new Error('refused')]).then(([x, e]) => {
    clearTimeout(timer);
    if (done) return;
    turn(() => {
      if (!alive()) return;
      if (e) throw refuse(e);
      next(x);
    });
  });
  return undefined;
}
