// Server-Sent Events: EventStream and the bare SseParser.

import type { SwitchboardError } from './index.js';

/** Reconnect policy. Delays are drawn with full jitter above a floor. */
export interface ReconnectOptions {
  /**
   * Floor of the delay until the server sends `retry:` (which then becomes
   * the floor). ms, default 1000. No delay is under the floor; the first
   * reconnect after a connection that delivered events waits between the
   * floor and twice it (jittered, so clients do not come back at one instant).
   */
  minDelay?: number;
  /** Cap on the exponential growth (a server `retry:` above it still wins). ms, default 30000. */
  maxDelay?: number;
  /** Growth per consecutive failed attempt, default 2. */
  factor?: number;
  /** Give up (close with CONNECTION_LOST) after this many consecutive failures; 0 = never (default). */
  maxAttempts?: number;
  /** Jitter seed; default from crypto.getRandomValues. */
  seed?: number;
}

export interface EventStreamOptions {
  /** HTTP method, default 'GET'. A non-GET (or headers, or a body) needs the fetch transport. */
  method?: string;
  /** Request headers, e.g. Authorization. `Accept` and `Last-Event-ID` are set by EventStream. */
  headers?: HeadersInit;
  /** Request body; it is sent again on every reconnect, so it cannot be a ReadableStream. */
  body?: BodyInit | null;
  /** fetch credentials mode, default 'same-origin'; 'include' = EventSource's withCredentials. */
  credentials?: RequestCredentials;
  /** Reconnect policy, or false to close on the first lost connection. */
  reconnect?: ReconnectOptions | false;
  /** Resume from this id on the first request (sent as Last-Event-ID). */
  lastEventId?: string;
  /**
   * Keep the stream open while the page is hidden (default true). With false
   * the connection is dropped when the tab is hidden (state 'paused') and
   * resumed from Last-Event-ID when it is visible again.
   */
  openWhenHidden?: boolean;
  /** Aborting it closes the stream and fires `close` with reason 'aborted'. */
  signal?: AbortSignal;
  /**
   * 'fetch' (default): fetch + the wasm parser, any method/headers/body.
   * 'native': the browser's EventSource (GET without headers only); our
   * reconnect policy still applies, but a new EventSource cannot send
   * Last-Event-ID: it resumes only with `resumeParam`.
   * 'auto': native when the request allows it and `resumeParam` is set, else fetch.
   */
  transport?: 'fetch' | 'native' | 'auto';
  /**
   * Native transport: the query parameter that carries the last event id on
   * reconnects (e.g. 'lastEventId'). Off by default: the id then appears in
   * the URL, so in server and proxy logs, history and the Referer of whatever
   * the response loads. Without it a native reconnect does not resume.
   */
  resumeParam?: string;
  /** Cap on one line of the stream in bytes (default 64 KiB); past it: error TOO_LARGE, closed. */
  maxLineBytes?: number;
  /** Cap on one event's data in bytes (default 1 MiB); past it: error TOO_LARGE, closed. */
  maxEventBytes?: number;
  /** fetch implementation to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /**
   * Share one HTTP stream among the tabs of this origin (docs/sse.md,
   * "Sharing across tabs"): `true` keys it by the request (URL, method,
   * headers, credentials, string body), a string names the key. One tab (the
   * TabGroup leader) holds the request; every tab gets every event once, in
   * order, across handovers (resumed with Last-Event-ID). Uses the fetch
   * transport; cannot be combined with `openWhenHidden: false`. Where sharing
   * cannot work the stream is the tab's own: `shared` false, `stats().fallback` says why.
   */
  share?: boolean | string;
}

/** EventStream.stats(): who holds a shared stream and what crossed to this tab. */
export interface EventStreamStats {
  /** true while this tab takes part in a shared stream */
  shared: boolean;
  /** why `share` was asked for and not done ('no-broadcast-channel', 'file-url', 'partitioned': a frame under another origin), else null */
  fallback: 'no-broadcast-channel' | 'file-url' | 'partitioned' | null;
  /** the sharing key (a hash of the request for `share: true`), null unshared */
  key: string | null;
  /** this tab's TabGroup id, null unshared or before the group is up */
  tab: number | null;
  /** the id of the tab that holds the HTTP stream, null unshared or between holders */
  holder: number | null;
  /** true when this tab holds the HTTP stream (always for an own stream) */
  leader: boolean;
  /** tabs taking part (1 for an own stream) */
  tabs: number;
  /** shared events dispatched in this tab */
  events: number;
  /** relayed events this tab dropped as already seen (after a handover) */
  duplicates: number;
  /** handovers this tab made as a new holder (resumed from a position other tabs had reached) */
  handovers: number;
}

export type EventStreamState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'paused' | 'closed';

/** `reconnecting`: the connection was lost; the next attempt starts after `delay` ms. */
export class ReconnectingEvent extends Event {
  constructor(delay: number, attempt: number, error: SwitchboardError);
  /** ms until the next attempt */
  readonly delay: number;
  /** consecutive failed attempts so far (1 for the first reconnect) */
  readonly attempt: number;
  /** why the connection was lost */
  readonly error: SwitchboardError;
}

/** `statechange`: from `previous` to `state`. */
export class StateChangeEvent extends Event {
  constructor(state: EventStreamState, previous: EventStreamState);
  readonly state: EventStreamState;
  readonly previous: EventStreamState;
}

/**
 * `error`: fired for every lost connection (then `reconnecting` follows) and for
 * fatal answers (then `close` follows). `error.code` is one of
 * CONNECTION_LOST, HTTP_ERROR (with `.status`), NO_CONTENT (HTTP 204),
 * BAD_CONTENT_TYPE, TOO_LARGE, NOT_INITIALIZED.
 */
export class StreamErrorEvent extends Event {
  constructor(error: SwitchboardError & { status?: number });
  readonly error: SwitchboardError & { status?: number };
}

/** `close`: the stream is over for good. */
export class StreamCloseEvent extends Event {
  constructor(reason: 'closed' | 'aborted' | 'error', error?: SwitchboardError);
  /** 'closed' (close()), 'aborted' (the signal), 'error' (fatal answer or attempts used up) */
  readonly reason: 'closed' | 'aborted' | 'error';
  readonly error?: SwitchboardError;
}

export interface EventStreamEventMap {
  open: Event;
  message: MessageEvent<string>;
  error: StreamErrorEvent;
  reconnecting: ReconnectingEvent;
  statechange: StateChangeEvent;
  close: StreamCloseEvent;
}

/**
 * An EventSource that resumes. Named events (`event: price`) arrive as
 * MessageEvents of that type, like EventSource: `es.addEventListener('price', …)`.
 *
 * ```js
 * const es = new EventStream('/llm', { method: 'POST', headers: { authorization }, body });
 * es.addEventListener('token', (e) => out.append(e.data));
 * es.addEventListener('close', (e) => console.log(e.reason, e.error?.code));
 * ```
 */
export class EventStream extends EventTarget {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSED: 2;
  constructor(url: string | URL, options?: EventStreamOptions);
  /** Absolute URL of the stream. */
  readonly url: string;
  /** 0 connecting / waiting to retry / paused, 1 open, 2 closed (like EventSource). */
  readonly readyState: 0 | 1 | 2;
  readonly state: EventStreamState;
  readonly withCredentials: boolean;
  /** The id a reconnect resumes from. */
  readonly lastEventId: string;
  /** The server's last `retry:` in ms, or null (fetch transport only). */
  readonly retry: number | null;
  readonly transport: 'fetch' | 'native';
  /** True while this tab takes part in a shared stream (`share`); false for its own stream, fallback included. */
  readonly shared: boolean;
  /** Sharing figures (see EventStreamStats). */
  stats(): EventStreamStats;
  /** Stop for good; `close` fires (reason 'closed'). Idempotent. */
  close(): void;
  /**
   * Async iteration over the events of `types` (default ['message']). Ends
   * when the stream closes; throws its error if it closed on one (e.g.
   * NO_CONTENT). Leaving the loop early closes the stream. Past
   * `maxBuffered` (default 10000) unread events the stream closes and the
   * iterator throws QUEUE_FULL.
   */
  events(types?: string[], options?: { maxBuffered?: number }): AsyncIterableIterator<MessageEvent<string>>;
  /** `for await (const e of stream)`: the `message` events (see events()). */
  [Symbol.asyncIterator](): AsyncIterableIterator<MessageEvent<string>>;
  onopen: ((this: EventStream, ev: Event) => unknown) | null;
  onmessage: ((this: EventStream, ev: MessageEvent<string>) => unknown) | null;
  onerror: ((this: EventStream, ev: StreamErrorEvent) => unknown) | null;
  onclose: ((this: EventStream, ev: StreamCloseEvent) => unknown) | null;
  onreconnecting: ((this: EventStream, ev: ReconnectingEvent) => unknown) | null;
  onstatechange: ((this: EventStream, ev: StateChangeEvent) => unknown) | null;
  addEventListener<K extends keyof EventStreamEventMap>(type: K, listener: (this: EventStream, ev: EventStreamEventMap[K]) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: (this: EventStream, ev: MessageEvent<string>) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}

/**
 * The WHATWG event-stream parser on its own (sans-I/O), for custom
 * transports. Needs `await init()` first. Holds wasm memory: close() it.
 */
export class SseParser {
  constructor(options?: { maxLineBytes?: number; maxEventBytes?: number });
  /**
   * Parse more bytes (any chunking); calls onEvent for each completed event,
   * in order, and returns how many. Return false from onEvent to stop the
   * rest of this batch. Throws TOO_LARGE past a cap (after the events before
   * it); the parser then refuses input until end().
   */
  feed(chunk: Uint8Array | ArrayBuffer | ArrayBufferView | string, onEvent: (type: string, data: string, lastEventId: string) => unknown): number;
  /** End of one stream (connection gone): drops a partial line/event. */
  end(): void;
  /** Last event id as of the last dispatch; settable (no NUL). */
  lastEventId: string;
  /** The server's `retry:` in ms, or null. */
  readonly retry: number | null;
  /** Free the core memory. Idempotent. */
  close(): void;
}
