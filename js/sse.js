// Server-Sent Events: EventStream (an EventSource that resumes, with headers,
// POST bodies and a backoff policy) on the C event-stream parser.
//
// The C object (src/sse.c) parses the bytes and owns the reconnect state
// machine; this file owns fetch/EventSource, timers and DOM events only.
//
// The parser is js/sse-parser.js, the event classes js/sse-events.js.
import { init, core, SwitchboardError } from './core.js';
import {
  SSE_CONNECTING, SSE_OPEN, E_CONNECTION_LOST, SSE_V_OPEN, SSE_V_RETRY, SSE_V_NO_CONTENT, SSE_V_BAD_TYPE,
} from './constants.js';
import { onProperties } from './glue.js';
import { SseParser, num } from './sse-parser.js';
import { ReconnectingEvent, StateChangeEvent, StreamErrorEvent, StreamCloseEvent, iterate } from './sse-events.js';
import { StreamShare, shareKey } from './sse-share.js';
import { shareBlocker } from './tab-group.js';

export { SseParser, ReconnectingEvent, StateChangeEvent, StreamErrorEvent, StreamCloseEvent };

const OWN_EVENTS = new Set(['open', 'message', 'error', 'reconnecting', 'statechange', 'close']);

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

const UTF8 = new TextEncoder();

function asError(e) {
  return e instanceof SwitchboardError ? e : new SwitchboardError('INTERNAL', String(e?.message || e), { cause: e });
}


/**
 * An EventSource that resumes: custom headers, POST bodies and credentials over
 * fetch (or the native EventSource for plain GETs), a WHATWG-conformant parser
 * in the wasm core, `retry:` honoured as the floor of an exponential backoff
 * with jitter, `Last-Event-ID` on every reconnect.
 */
export class EventStream extends EventTarget {
  #opts; #parser; #ac; #es; #timer; #types; #onVisibility; #fallback; #signal; #onAbort; #relay;
  /** @type {0} */ static CONNECTING = 0;
  /** @type {1} */ static OPEN = 1;
  /** @type {2} */ static CLOSED = 2;

  /**
   * @param {string|URL} url
   * @param {import('./sse.d.ts').EventStreamOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    const base = typeof location !== 'undefined' ? location.href : undefined;
    this.url = new URL(String(url), base).href;
    const method = String(options.method || 'GET').toUpperCase();
    const headers = new Headers(options.headers || {});
    const body = options.body;
    if (body !== undefined && body !== null && typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) {
      throw new SwitchboardError('INVALID', 'body must be re-sendable on reconnect (string, Blob, FormData, URLSearchParams, bytes), not a ReadableStream');
    }
    if (body != null && (method === 'GET' || method === 'HEAD')) throw new SwitchboardError('INVALID', `a ${method} request has no body`);
    const plain = method === 'GET' && body == null && [...headers.keys()].length === 0;
    let transport = options.transport || 'fetch';
    if (!['fetch', 'native', 'auto'].includes(transport)) throw new SwitchboardError('INVALID', 'transport must be fetch, native or auto');
    const share = options.share != null && options.share !== false;
    if (share) {
      // A handover resumes with Last-Event-ID, which only fetch can send.
      if (transport === 'native') throw new SwitchboardError('INVALID', 'a shared stream uses the fetch transport');
      if (options.openWhenHidden === false) throw new SwitchboardError('INVALID', 'a shared stream cannot pause with one hidden tab (openWhenHidden: false)');
      transport = 'fetch';
    }
    const hasNative = typeof EventSource !== 'undefined';
    // Native cannot resume unless the id may ride in the query (opt-in): auto picks it only then.
    if (transport === 'auto') transport = plain && hasNative && options.resumeParam ? 'native' : 'fetch';
    if (transport === 'native' && (!plain || !hasNative)) {
      throw new SwitchboardError('INVALID', hasNative ? 'the native transport can only send a GET without headers or body' : 'no EventSource here');
    }
    // Checked here, synchronously, so a bad option throws from the constructor.
    const rc = options.reconnect === false ? null : /** @type {import('./sse.d.ts').ReconnectOptions} */ (options.reconnect || {});
    const policy = rc && {
      minDelay: num(rc.minDelay, 1000, 'reconnect.minDelay', 0, 1e12),
      maxDelay: num(rc.maxDelay, 30000, 'reconnect.maxDelay', 0, 1e12),
      factor: num(rc.factor, 2, 'reconnect.factor', 1, 1e6),
      maxAttempts: num(rc.maxAttempts, 0, 'reconnect.maxAttempts', 0, 2 ** 31 - 1),
      seed: rc.seed === undefined ? undefined : num(rc.seed, 0, 'reconnect.seed', 0, 2 ** 32 - 1),
    };
    const caps = {
      maxLineBytes: num(options.maxLineBytes, 65536, 'maxLineBytes', 1, 2 ** 28),
      maxEventBytes: num(options.maxEventBytes, 1 << 20, 'maxEventBytes', 1, 2 ** 28),
    };
    if (options.lastEventId != null && String(options.lastEventId).includes('\0')) {
      throw new SwitchboardError('INVALID', 'lastEventId cannot contain NUL');
    }
    this.#opts = {
      method,
      headers,
      body: body ?? undefined,
      credentials: options.credentials || 'same-origin',
      transport,
      fetch: options.fetch || globalThis.fetch?.bind(globalThis),
      resumeParam: options.resumeParam || '', // opt-in: the id would end up in logs and Referer
      openWhenHidden: options.openWhenHidden !== false,
      reconnect: policy,
    };
    /** @type {import('./sse.d.ts').EventStreamState} */
    this._state = 'idle';
    this._closed = false;
    this._h = 0;
    this.#parser = null;
    this.#ac = null;
    this.#es = null;
    this.#timer = null;
    this._retry = null;
    this._lastId = options.lastEventId != null ? String(options.lastEventId) : '';
    this._origin = new URL(this.url).origin;
    this.#types = new Set();
    this.#onVisibility = null;
    this._share = null;
    this.#fallback = null;
    this._tap = null; // set on a shared stream's real stream: events go to the share, not to listeners

    const signal = options.signal;
    if (signal) {
      if (signal.aborted) {
        queueMicrotask(() => this._finish('aborted', undefined));
        return;
      }
      this.#signal = signal;
      this.#onAbort = () => this._finish('aborted', undefined);
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    if (share) {
      const key = shareKey(options.share, this.url, this.#opts);
      this.#fallback = shareBlocker();
      if (!this.#fallback) {
        const own = { ...options, share: false, signal: undefined, transport: /** @type {'fetch'} */ ('fetch') };
        this._share = new StreamShare(this, key, (id) => new EventStream(this.url, { ...own, lastEventId: id }));
        return;
      }
    }
    if (!this.#opts.openWhenHidden && typeof document !== 'undefined') {
      this.#onVisibility = () => this.#visibility();
      document.addEventListener('visibilitychange', this.#onVisibility);
    }
    init().then(
      () => {
        if (this._closed) return;
        const r = this.#opts.reconnect || /** @type {import('./sse.d.ts').ReconnectOptions} */ ({});
        try {
          this.#parser = new SseParser({
            ...caps,
            _minDelay: r.minDelay,
            _maxDelay: r.maxDelay,
            _factor: r.factor,
            _maxAttempts: r.maxAttempts,
            _seed: r.seed,
          });
          this._h = this.#parser._h;
          if (this._lastId) this.#parser.lastEventId = this._lastId;
        } catch (e) {
          return this._fatal(asError(e));
        }
        if (this.#opts.openWhenHidden || typeof document === 'undefined' || !document.hidden) this._connect();
        else this._setState('paused');
      },
      (e) => this._fatal(e instanceof SwitchboardError ? e : new SwitchboardError('NOT_INITIALIZED', String(e?.message || e), { cause: e })),
    );
  }

  /** 0 connecting (or waiting to retry), 1 open, 2 closed — like EventSource. */
  get readyState() {
    return this._state === 'open' ? 1 : this._state === 'closed' ? 2 : 0;
  }

  /** @returns {import('./sse.d.ts').EventStreamState} */
  get state() {
    return this._state;
  }

  get withCredentials() {
    return this.#opts.credentials === 'include';
  }

  /** The id a reconnect resumes from (sent as Last-Event-ID). */
  get lastEventId() {
    this.#sync();
    return this._lastId;
  }

  /** The server's last `retry:` value in ms, or null. */
  get retry() {
    this.#sync();
    return this._retry;
  }

  /** @returns {'fetch' | 'native'} */
  get transport() {
    return this.#opts.transport;
  }

  /** True while this tab takes part in a shared stream (`share`), false for its own stream. */
  get shared() {
    return !!this._share;
  }

  /** Sharing figures: see EventStreamStats in js/sse.d.ts. */
  stats() {
    if (this._share) return this._share.stats();
    return { shared: false, fallback: this.#fallback, key: null, tab: null, holder: null, leader: true, tabs: 1, events: 0, duplicates: 0, handovers: 0 };
  }

  /** Stop for good: aborts the request, fires `close` (reason 'closed'). Idempotent. */
  close() {
    this._finish('closed', undefined);
  }

  /**
   * Async iteration over the events of `types` (default ['message']): ends
   * when the stream closes, throws its error if it closed on one. Leaving
   * the loop early (break, return, throw) closes the stream. At most
   * `maxBuffered` events wait for a slow consumer; past that the stream
   * closes and the iterator throws QUEUE_FULL.
   * @param {string[]} [types]
   * @param {{maxBuffered?: number}} [opts]
   * @returns {AsyncIterableIterator<MessageEvent>}
   */
  events(types = ['message'], { maxBuffered = 10000 } = {}) {
    return iterate(this, types, maxBuffered);
  }

  /** `for await (const e of stream)`: the `message` events, see events(). */
  [Symbol.asyncIterator]() {
    return this.events();
  }

  addEventListener(type, listener, options) {
    super.addEventListener(type, listener, options);
    // Native EventSource only reports named events someone listens to.
    if (!OWN_EVENTS.has(type) && !this.#types.has(type)) {
      this.#types.add(type);
      if (this.#es) this.#es.addEventListener(type, this.#relay);
    }
  }

  _setState(s) {
    if (s === this._state) return;
    const prev = this._state;
    this._state = s;
    this.dispatchEvent(new StateChangeEvent(s, prev));
  }

  _connect() {
    this.#timer = null;
    if (this._closed) return;
    try {
      const c = core();
      c.check(c.fn.sb_sse_connect(this._h, now()), 'connect');
      this._setState('connecting');
      if (this.#opts.transport === 'native') this.#connectNative();
      else this.#connectFetch().catch((e) => this._fatal(asError(e)));
    } catch (e) {
      this._fatal(asError(e));
    }
  }

  async #connectFetch() {
    const o = this.#opts;
    const ac = new AbortController();
    this.#ac = ac;
    const headers = new Headers(o.headers);
    headers.set('accept', 'text/event-stream');
    this.#sync();
    // A header value is bytes: the id's UTF-8, as EventSource sends it (an id
    // beyond Latin-1 would make Headers throw and end the stream).
    if (this._lastId) headers.set('last-event-id', Array.from(new TextEncoder().encode(this._lastId), (b) => String.fromCharCode(b)).join(''));
    let res;
    try {
      res = await o.fetch(this.url, {
        method: o.method,
        headers,
        body: o.body,
        credentials: o.credentials,
        cache: 'no-store',
        signal: ac.signal,
      });
    } catch (e) {
      if (this.#stale(ac)) return;
      return this._lost(new SwitchboardError('CONNECTION_LOST', `request failed: ${e?.message || e}`, { cause: e }));
    }
    if (this.#stale(ac)) {
      res.body?.cancel().catch(() => {});
      return;
    }
    // What the answer means is the core's (sb_sse_response: which statuses
    // are worth retrying, the content type, Retry-After on 429 / 503).
    const c = core(), type = res.headers.get('content-type') || '';
    const t = UTF8.encode(type), ra = UTF8.encode(res.headers.get('retry-after') || '');
    const p = c.scratch(t.length + ra.length);
    c.heap().set(t, p);
    c.heap().set(ra, p + t.length);
    const v = c.fn.sb_sse_response(this._h, res.status, p, t.length, p + t.length, ra.length, Date.now());
    if (v !== SSE_V_OPEN) {
      res.body?.cancel().catch(() => {});
      if (v === SSE_V_NO_CONTENT) return this._fatal(new SwitchboardError('NO_CONTENT', 'server answered 204 No Content: it asks us not to reconnect'));
      if (v === SSE_V_BAD_TYPE) return this._fatal(new SwitchboardError('BAD_CONTENT_TYPE', `expected text/event-stream, got ${JSON.stringify(type.split(';')[0].trim() || 'none')}`));
      const err = new SwitchboardError('HTTP_ERROR', `server answered HTTP ${res.status}`);
      /** @type {any} */ (err).status = res.status;
      return v === SSE_V_RETRY ? this._lost(err) : this._fatal(err);
    }
    if (res.url) this._origin = new URL(res.url).origin;
    core().fn.sb_sse_opened(this._h, now());
    this._setState('open');
    this.dispatchEvent(new Event('open'));
    if (this.#stale(ac)) return;
    const reader = res.body.getReader();
    let readError = null;
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        readError = e;
        break;
      }
      if (this.#stale(ac)) {
        reader.cancel().catch(() => {});
        return;
      }
      if (chunk.done) break;
      try {
        this.#feed(chunk.value);
      } catch (e) {
        reader.cancel().catch(() => {});
        if (this.#stale(ac)) return;
        // A stream over the caps would fail the same way after a reconnect.
        return this._fatal(e);
      }
      if (this.#stale(ac)) {
        reader.cancel().catch(() => {});
        return;
      }
    }
    if (this.#stale(ac)) return;
    this._lost(new SwitchboardError('CONNECTION_LOST', readError ? `stream broke: ${readError?.message || readError}` : 'server ended the stream', { cause: readError || undefined }));
  }

  // True once this request is no longer the current one (closed, paused, replaced).
  #stale(ac) {
    return this._closed || ac !== this.#ac;
  }

  #feed(bytes) {
    this.#parser.feed(bytes, (type, data, id) => {
      if (this._tap) this._tap(type, data, id);
      else this.dispatchEvent(new MessageEvent(type, { data, lastEventId: id, origin: this._origin }));
      return !this._closed;
    });
  }

  // With the fetch transport the core holds the last id (id-only blocks move
  // it too) and the retry value; read them when asked, not per chunk.
  #sync() {
    if (this.#parser && this.#opts.transport === 'fetch') {
      this._lastId = this.#parser.lastEventId;
      this._retry = this.#parser.retry;
    }
  }

  #connectNative() {
    let url = this.url;
    if (this._lastId && this.#opts.resumeParam) {
      // A new EventSource cannot send Last-Event-ID; the id rides in the query.
      const u = new URL(url);
      u.searchParams.set(this.#opts.resumeParam, this._lastId);
      url = u.href;
    }
    const es = new EventSource(url, { withCredentials: this.withCredentials });
    this.#es = es;
    let opened = false;
    this.#relay = (e) => {
      if (this.#es !== es || this._closed) return;
      this._lastId = e.lastEventId;
      core().fn.sb_sse_progress(this._h);
      this.dispatchEvent(new MessageEvent(e.type, { data: e.data, lastEventId: e.lastEventId, origin: e.origin }));
    };
    es.onopen = () => {
      if (this.#es !== es || this._closed) return;
      opened = true;
      core().fn.sb_sse_opened(this._h, now());
      this._setState('open');
      this.dispatchEvent(new Event('open'));
    };
    es.onmessage = this.#relay;
    for (const t of this.#types) es.addEventListener(t, this.#relay);
    es.onerror = () => {
      if (this.#es !== es || this._closed) return;
      const refused = !opened && es.readyState === 2;
      es.close();
      this.#es = null;
      if (refused) {
        // The browser failed the connection (non-200, 204 or wrong type) and
        // does not say which; it would not retry either.
        return this._fatal(new SwitchboardError('HTTP_ERROR', 'server refused the event stream (native EventSource gives no detail)'));
      }
      this._lost(new SwitchboardError('CONNECTION_LOST', 'event stream lost'));
    };
  }

  // The connection is gone but the stream is not: tell, then schedule a retry.
  _lost(err) {
    if (this._closed) return;
    this.#ac = null;
    this.dispatchEvent(new StreamErrorEvent(err));
    if (this._closed) return;
    if (!this.#opts.reconnect) return this._finish('error', err);
    const c = core();
    const t = now();
    const rc = c.fn.sb_sse_failed(this._h, t);
    if (rc === E_CONNECTION_LOST) {
      return this._finish('error', new SwitchboardError('CONNECTION_LOST', `gave up after ${c.fn.sb_sse_attempts(this._h)} attempts`, { cause: err }));
    }
    c.check(rc, 'reconnect');
    // deadline is t + delay in doubles; at epoch-scale t the subtraction
    // loses ~1e-13 ms, so round to the microsecond (150 stays 150).
    const delay = Math.max(0, Math.round((c.fn.sb_sse_deadline(this._h) - t) * 1000) / 1000);
    this._setState('reconnecting');
    this.dispatchEvent(new ReconnectingEvent(delay, c.fn.sb_sse_attempts(this._h), err));
    if (this._closed) return;
    this.#timer = setTimeout(() => this._connect(), delay);
  }

  _fatal(err) {
    if (this._closed) return;
    this.dispatchEvent(new StreamErrorEvent(err));
    this._finish('error', err);
  }

  // openWhenHidden: false — drop the connection while hidden, resume (with
  // Last-Event-ID) when visible again.
  #visibility() {
    if (this._closed || !this._h) return;
    if (document.hidden) {
      if (this._state === 'paused') return;
      this.#hang();
      this._setState('paused');
    } else if (this._state === 'paused') {
      this.#hang();
      this._connect();
    }
  }

  // Stop the current attempt's timer, request and native EventSource.
  #stopAttempt() {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#ac?.abort();
    this.#ac = null;
    if (this.#es) this.#es.close();
    this.#es = null;
  }

  // Drop the current attempt (request or timer) without firing anything.
  #hang() {
    const c = core();
    this.#stopAttempt();
    const s = c.fn.sb_sse_state(this._h);
    if (s === SSE_CONNECTING || s === SSE_OPEN) c.fn.sb_sse_failed(this._h, now());
  }

  _finish(reason, err) {
    if (this._closed) return;
    this._closed = true;
    this.#stopAttempt();
    this._share?.close();
    if (this.#signal) this.#signal.removeEventListener('abort', this.#onAbort);
    if (this.#onVisibility) document.removeEventListener('visibilitychange', this.#onVisibility);
    if (this.#parser) {
      this.#sync();
      this.#parser.close();
      this.#parser = null;
    }
    this._h = 0;
    // readyState is CLOSED at once; the events follow in a microtask, so a
    // listener added right after close() or abort() still hears them
    const prev = this._state;
    this._state = 'closed';
    queueMicrotask(() => {
      this.dispatchEvent(new StateChangeEvent('closed', prev));
      this.dispatchEvent(new StreamCloseEvent(reason, err));
    });
  }
}

// onopen / onmessage / onerror / onclose … like EventSource's handler attributes.
onProperties(EventStream, ['open', 'message', 'error', 'close', 'reconnecting', 'statechange'])
