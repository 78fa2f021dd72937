// Socket: a WebSocket that loses nothing (docs/socket.md).

/** The subprotocol Socket offers first: `switchboard.v1`. */
export const SOCKET_PROTOCOL: 'switchboard.v1';

export type SocketState = 'idle' | 'connecting' | 'open' | 'closing' | 'closed' | 'reconnecting';

/** Why the last state change happened. */
export type SocketReason =
  | 'none' | 'start' | 'opened' | 'connect-timeout' | 'heartbeat-timeout' | 'peer-closed'
  | 'user-close' | 'retry' | 'online' | 'visible' | 'gave-up' | 'protocol-error' | 'server-close'
  /** the transport moved: WebSocket upgrades are blocked (now on HTTP), or work again (back on WebSocket) */
  | 'blocked' | 'upgrade';

/** What carries the session: a WebSocket, or the relay's HTTP transport (docs/socket.md, "When WebSocket is blocked"). */
export type SocketTransport = 'websocket' | 'http';

/** What the URL provider may return for one attempt. */
export type SocketTarget = string | URL | { url: string | URL; protocols?: string[] };

export interface SocketOptions {
  /** Extra subprotocols, offered after `switchboard.v1`. */
  protocols?: string | string[];
  /** Offer `switchboard.v1` (default true). false: always plain messages. */
  framed?: boolean;
  /** Reconnect policy, or false for a single connection. */
  reconnect?: false | {
    /** Ceiling of the first attempt's delay, ms (default 250); no delay is under minDelay/2. */
    minDelay?: number;
    /** Backoff ceiling, ms (default 30000). */
    maxDelay?: number;
    /** Growth of the ceiling per failed attempt (default 2). Each delay, the first included, is drawn uniformly in [minDelay/2, ceiling]. */
    factor?: number;
    /** Give up after this many failed attempts in a row; 0 = never (default). */
    maxAttempts?: number;
    /** An attempt (socket open + hello) that takes longer fails, ms (default 10000). */
    connectTimeout?: number;
    /** An open socket whose server sends no switchboard greeting within this is talked to in plain mode, ms (default 3000). */
    helloTimeout?: number;
  };
  /** Heartbeat (framed mode), or false. A connection is declared dead when a ping got no traffic back within `timeout`. */
  heartbeat?: false | {
    /** Ping after this long without traffic, ms (default 25000). */
    interval?: number;
    /** Dead when nothing arrives this long after a ping, ms (default 10000). */
    timeout?: number;
    /** Plain mode only: an application ping message to send (any reply counts as life). */
    plainPing?: string;
  };
  /** The outbox: bounded, and kept across reconnects (and reloads with `persist`). */
  queue?: {
    /** Default 10000. */
    maxMessages?: number;
    /** Default 16 MiB. */
    maxBytes?: number;
    /** What a full outbox does with one more message (default 'reject': send() throws QUEUE_FULL). Every drop fires `drop`. */
    overflow?: 'reject' | 'drop-oldest' | 'drop-newest';
    /** IndexedDB key: the outbox, session and sequence numbers survive a reload. */
    persist?: string | null;
  };
  /** Batching of frames into one WebSocket message (framed mode), or false. */
  batch?: false | {
    /** Frames per WebSocket message (default 512). */
    maxMessages?: number;
    /** Bytes per WebSocket message before compression (default 256 KiB). */
    maxBytes?: number;
    /** Wait this long for more messages, ms (default 0: everything sent in the same task goes together). */
    maxDelay?: number;
  };
  /** Per-message deflate on a shared window (framed mode), or false. */
  compress?: false | { threshold?: number; level?: number };
  /** Like WebSocket.binaryType (default 'blob'). */
  binaryType?: 'blob' | 'arraybuffer';
  /**
   * Extra fields for the server's hello, e.g. `{ room: 'chat', user: 'ann', echo: true }` for the relay,
   * or a function called before every attempt (like a URL provider; may be async), e.g. for a fresh token.
   * When `url` or `hello` is a function, a close with 4401 (credentials refused) reconnects with backoff
   * after asking them again; otherwise 4401 ends the Socket.
   */
  hello?: Record<string, unknown> | ((attempt: number) => Record<string, unknown> | Promise<Record<string, unknown>>);
  /** Session id to resume (default: restored from `queue.persist`, else random). */
  session?: string;
  /**
   * Which transports it may use, in the order tried (default `['websocket', 'http']`: HTTP only once
   * upgrades fail while HTTP to the relay works). `['http']` forces HTTP, `['websocket']` never leaves it.
   * HTTP speaks only to the switchboard relay (framed mode).
   */
  transports?: SocketTransport[];
  /** The move to HTTP and back. */
  http?: {
    /** WebSocket attempts that fail before opening, in a row, before one attempt over HTTP (default 2). */
    fallbackAfter?: number;
    /** While on HTTP, try a WebSocket this often, ms, doubling to 16× while it fails (default 15000; 0 = never). */
    probeInterval?: number;
  };
  /** The WebSocket constructor (required in Node: `import WebSocket from 'ws'`). */
  WebSocket?: { new (url: string, protocols?: string | string[]): WebSocket };
  /**
   * One connection for all tabs of this browser profile and origin (docs/socket.md, "Sharing"):
   * `true` shares under the URL, a string under that key. The leading tab holds the connection;
   * every tab's Socket keeps this API, `subscribe()` included (one subscription per room for the
   * tabs that hold it). Not with `queue.persist` (the session lives in the tabs). Where sharing
   * cannot work the Socket keeps its own connection and says why in `stats().share.reason`.
   */
  share?: boolean | string;
  /** Passed to init() when the core is not loaded yet. */
  wasm?: { wasmURL?: string | URL; wasmBinary?: ArrayBuffer | Uint8Array; wasmModule?: WebAssembly.Module };
}

export interface SocketMessageEvent extends Event {
  readonly data: string | ArrayBuffer | Blob;
  /** Frame channel (0 = data and the hello's room; 1 = the relay's notices: presence, refusals, gaps). */
  readonly channel: number;
  /** Sequence number in the server's stream (0 if none). */
  readonly seq: number;
  /** With the relay: the sender it authenticated (undefined for a message not from another client). */
  readonly from?: string;
  /** With the relay: the message's offset in its room's log. */
  readonly offset?: number;
}
/** Where a channel is in its room's log; pass it as `since` to resume there. */
export interface RoomPosition { epoch: string; offset: number }
export interface ChannelMessageEvent extends Event {
  readonly data: string | ArrayBuffer | Blob;
  readonly channel: number;
  /** The sender, as the relay authenticated it. */
  readonly from: string;
  /** Its offset in the room's log (also as lastEventId). */
  readonly offset: number;
  readonly lastEventId: string;
}
export interface ChannelPresenceEvent extends Event { readonly change: 'join' | 'leave'; readonly user: string; readonly users: string[] }
/** Part of the room's history is gone (trimmed, or the relay restarted without a durable store): refetch it. */
export interface ChannelUnrecoveredEvent extends Event { readonly room: string; readonly since: RoomPosition | null }
interface ChannelEventMap {
  message: ChannelMessageEvent;
  presence: ChannelPresenceEvent;
  unrecovered: ChannelUnrecoveredEvent;
  error: SocketErrorEvent;
}

/** One room of the relay on a Socket (socket.subscribe(room)), on a channel of its own. */
export interface Channel extends EventTarget {
  readonly room: string;
  readonly channel: number;
  readonly state: 'subscribing' | 'subscribed' | 'unsubscribed';
  /** Resolves once the relay has confirmed the subscription; rejects FORBIDDEN (authorize), INVALID, QUEUE_FULL. */
  readonly ready: Promise<Channel>;
  /** The room's log: its epoch and the last offset this channel saw (null before the first answer). */
  readonly position: RoomPosition | null;
  readonly epoch: string | null;
  readonly offset: number;
  /** Users in the room, as the relay names them. */
  readonly users: string[];
  /** Whether the relay lets this client publish here (null until subscribed). */
  readonly publish: boolean | null;
  onmessage: ((ev: ChannelMessageEvent) => unknown) | null;
  onpresence: ((ev: ChannelPresenceEvent) => unknown) | null;
  onunrecovered: ((ev: ChannelUnrecoveredEvent) => unknown) | null;
  onerror: ((ev: SocketErrorEvent) => unknown) | null;
  /** Send to the room (held until subscribed); a refused publish fires `error` FORBIDDEN. */
  send(data: string | ArrayBuffer | ArrayBufferView | Blob): void;
  /** A request to the relay's onRequest, with this room as its context. */
  request(data: string | ArrayBuffer | ArrayBufferView, options?: { timeout?: number; signal?: AbortSignal }): Promise<string | Uint8Array>;
  /** Leave the room. */
  unsubscribe(): Promise<void>;
  addEventListener<K extends keyof ChannelEventMap>(type: K, listener: (ev: ChannelEventMap[K]) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof ChannelEventMap>(type: K, listener: (ev: ChannelEventMap[K]) => unknown, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
export interface SocketCloseEvent extends Event { readonly code: number; readonly reason: string; readonly wasClean: boolean }
export interface SocketErrorEvent extends Event { readonly error: Error & { code?: string } }
export interface SocketStateEvent extends Event {
  readonly state: SocketState;
  /** The state before (the same as `state` when only the transport moved). */
  readonly previous: SocketState;
  readonly reason: SocketReason;
  /** With reason 'blocked' or 'upgrade': the transport it moved to. */
  readonly transport?: SocketTransport;
}
export interface SocketReconnectingEvent extends Event { readonly attempt: number; readonly delay: number; readonly reason: SocketReason }
export interface SocketDropEvent extends Event { readonly data: string | Uint8Array; readonly reason: 'overflow' | 'rejected' | 'too-large' | 'expired'; readonly id: number }

export interface SocketStats {
  state: SocketState;
  mode: 'framed' | 'plain' | null;
  /** What carried the last connection that opened (before any: the first of `transports`). */
  transport: SocketTransport;
  queued: number;
  queuedBytes: number;
  inFlight: number;
  requestsPending: number;
  sent: number;
  received: number;
  duplicates: number;
  retransmits: number;
  dropped: number;
  gaps: number;
  opens: number;
  reconnects: number;
  attempt: number;
  /** Last ping round trip, ms, or -1. */
  rtt: number;
  /** Server greetings that came after `reconnect.helloTimeout`: each one reconnected framed. */
  lateGreetings: number;
  /** Bytes on the wire (after compression). */
  bytesOut: number;
  bytesIn: number;
  /** Frame bytes before compression. */
  payloadBytesOut: number;
  payloadBytesIn: number;
  compressionSaved: number;
  lastSeq: { tx: number; acked: number; rx: number } | null;
  /** With `share`: this tab's part. role 'own' = sharing could not work here (reason says why). */
  share?: {
    role: 'leader' | 'follower' | 'own';
    key: string;
    /** Tabs sharing the connection, this one included. */
    tabs: number;
    /** TabGroup id of the leading tab. */
    leader?: number | null;
    reason?: 'no-broadcast-channel' | 'file-url' | 'partitioned';
  };
}

interface SocketEventMap {
  open: Event;
  message: SocketMessageEvent;
  close: SocketCloseEvent;
  error: SocketErrorEvent;
  statechange: SocketStateEvent;
  reconnecting: SocketReconnectingEvent;
  drop: SocketDropEvent;
  /** The hello's room lost part of its history while this session was away. */
  unrecovered: ChannelUnrecoveredEvent;
}

/**
 * A WebSocket that loses nothing: same events and methods as WebSocket (port
 * existing code by changing the constructor), plus reconnect, heartbeat, an
 * outbox, requests and, with a switchboard server, batching, compression,
 * acks and resume.
 */
export class Socket extends EventTarget {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  /**
   * @param url a ws:/wss: URL, or a function called before every attempt
   *   (fresh URL, token or protocols per attempt; may be async). With a
   *   function, a close with 4401 (credentials refused) is retried.
   */
  constructor(url: string | URL | ((attempt: number) => SocketTarget | Promise<SocketTarget>), options?: SocketOptions);
  /** Resolves once the core is loaded and the first attempt has begun. */
  readonly ready: Promise<void>;
  readonly url: string;
  readonly protocol: string;
  readonly extensions: string;
  /** 'framed' with a switchboard server, 'plain' otherwise (null before the first open). */
  readonly mode: 'framed' | 'plain' | null;
  /** The session id the server resumes. */
  readonly session: string | null;
  readonly readyState: 0 | 1 | 2 | 3;
  readonly state: SocketState;
  /** Bytes queued and not yet confirmed. */
  readonly bufferedAmount: number;
  binaryType: 'blob' | 'arraybuffer';
  onopen: ((ev: Event) => unknown) | null;
  onmessage: ((ev: SocketMessageEvent) => unknown) | null;
  onclose: ((ev: SocketCloseEvent) => unknown) | null;
  onerror: ((ev: SocketErrorEvent) => unknown) | null;
  /** Queue a message; throws QUEUE_FULL (overflow 'reject'), TOO_LARGE or CLOSED. */
  send(data: string | ArrayBuffer | ArrayBufferView | Blob, options?: { channel?: number }): void;
  /** Resolves with the server's response; rejects TIMEOUT, CLOSED, the server's error code, or the signal's reason. */
  request(data: string | ArrayBuffer | ArrayBufferView, options?: { timeout?: number; signal?: AbortSignal; channel?: number }): Promise<string | Uint8Array>;
  /**
   * A room of the relay on this connection (framed mode): the same Channel
   * for the same room. It asks for the room from where it is each time the
   * Socket opens; `since` resumes from a saved position (after a reload).
   */
  subscribe(room: string, options?: { since?: RoomPosition }): Channel;
  /** Stop reconnecting and close. */
  close(code?: number, reason?: string): void;
  stats(): SocketStats;
  /** Resolves when the outbox state is written to IndexedDB (queue.persist). */
  persisted(): Promise<void>;
  addEventListener<K extends keyof SocketEventMap>(type: K, listener: (ev: SocketEventMap[K]) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof SocketEventMap>(type: K, listener: (ev: SocketEventMap[K]) => unknown, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
