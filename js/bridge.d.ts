// Types for the cross-document bridge (js/bridge.js).
import type { InitOptions, SwitchboardError } from './index.js';

/** Methods the other side may call: own function properties only. */
export type Methods = Record<string, (...args: any[]) => unknown>;

/** Why a message was ignored. */
export type RejectReason =
  | 'no-channel'      // bridge-marked message for a channel nobody here listens on
  | 'bad-origin'      // event.origin does not parse
  | 'origin-rejected' // origin not in the allowlist
  | 'wrong-source'    // allowed origin, but not the window this bridge is pinned to
  | 'bad-nonce'       // a handshake reply that does not carry our nonce (forged)
  | 'unexpected';     // a handshake message out of order, e.g. on the window after the handshake

/** What a `reject` event carries (as its properties, and as the deprecated `detail`), and what `onReject` gets. */
export interface RejectReport {
  reason: RejectReason;
  origin: string;
  channel?: string;
  /** handshake message type that was refused ('hello', 'welcome', …); not `type`, an event's own name */
  messageType?: string;
}

export interface BridgeOptions {
  /** Methods the other side may call. Inherited properties (`constructor`, `toString`…) are never callable. */
  methods?: Methods;
  /** Default per-call timeout and connect timeout in ms (0 = none). Default 10000. */
  timeout?: number;
  /** Name that keeps several bridges on one window apart. Default "switchboard". */
  channel?: string;
  /** Heartbeat interval in ms (0 = off). Default 1000. */
  heartbeatInterval?: number;
  /** Silence (no pong, no answer) after which the peer is lost and `disconnect` fires, in ms. Default 3500. */
  heartbeatTimeout?: number;
  /** Coalesce `emit()`s of one task into one message (optionally at most `max` events). */
  batch?: boolean | { max?: number };
  /**
   * Send the `stack` of a method's error to the peer. Default: only when the
   * peer is same-origin (a Worker, or a window of this origin); a stack
   * shows file paths, URLs and code structure.
   */
  sendErrorStacks?: boolean;
  /** Called for every ignored message aimed at this bridge (also a `reject` event). */
  onReject?: (report: RejectReport) => void;
  /** Passed to `init()` if the core is not loaded yet. */
  init?: InitOptions;
}

export interface FrameOptions extends BridgeOptions {
  /**
   * Origins the child may have: exact ("https://w.example.com:8443"), subdomain
   * wildcards ("https://*.example.com", never the bare domain, same scheme and
   * port), "null" (sandboxed/opaque, needs `opaqueTarget`) or "*" — the last two only when written.
   */
  origin: string | string[];
  /**
   * Required with `origin` "null": postMessage cannot address an opaque
   * origin, so the welcome that carries the private port goes to "*", to
   * whatever document the frame shows by then. Passing "*" says you accept that.
   */
  opaqueTarget?: '*';
}

export interface ParentOptions extends BridgeOptions {
  /** Origins the parent (or opener) may have; same syntax as `FrameOptions.origin`. Not needed in a Worker. */
  allowedOrigins?: string | string[];
}

/** Options for one call: pass as the last argument of `remote.call()`. */
export class CallOptions {
  /** `signal` aborts the call: it rejects with `signal.reason` and a late answer is dropped. */
  constructor(opts?: { timeout?: number; transfer?: Transferable[]; signal?: AbortSignal });
  timeout?: number;
  transfer?: Transferable[];
  signal?: AbortSignal;
}

/** A method's return value (or reply) with a transfer list. */
export class Transfer<T = unknown> {
  constructor(value: T, transfer?: Transferable[]);
  value: T;
  transfer: Transferable[];
}
/** `return transfer(buffer, [buffer])` from a method moves the buffer instead of copying it. */
export function transfer<T>(value: T, list: Transferable[]): Transfer<T>;

/**
 * One side of a connection. Events: `connect` (also after a re-handshake),
 * `disconnect` (`e.reason`: 'bye' | 'reload' | 'timeout' | 'removed' | 'port-closed' | 'closed'),
 * `reject` (the {@link RejectReport} fields: `e.reason`, `e.origin`, `e.channel`, `e.messageType`). The
 * data are also `e.detail` (deprecated).
 */
export class Remote extends EventTarget {
  /**
   * Call a method on the other side. Arguments are structured-cloned; a
   * trailing {@link CallOptions} sets a timeout or transfer list. Rejects with
   * the remote error (name, message, stack, code), or a SwitchboardError with
   * code TIMEOUT, CONNECTION_LOST, CLOSED, NOT_FOUND (no such method) or QUEUE_FULL.
   */
  call<T = any>(name: string, ...args: any[]): Promise<T>;
  /** Fire-and-forget event. Throws CONNECTION_LOST / CLOSED when not connected. */
  emit(name: string, data?: unknown, transfer?: Transferable[]): void;
  /** Listen to the other side's events; returns an unsubscribe function. */
  on(name: string, handler: (data: any) => void): () => void;
  /** Tell the peer, reject pending calls with CLOSED, free the endpoint. */
  close(): void;
  readonly isConnected: boolean;
  /** The object whose own functions the other side may call (replaceable). */
  methods: Methods;
}

/** Parent side for an iframe: resolves after the handshake. */
export function connectFrame(iframe: HTMLIFrameElement, options: FrameOptions): Promise<Remote>;
/** Child side: in an iframe (talks to `parent`), a popup (talks to `opener`) or a Worker (talks to its page). */
export function connectParent(options?: ParentOptions): Promise<Remote>;
/** A popup from `window.open` (needs `origin`), a Worker, or a MessagePort whose other end also calls `connect`. */
export function connect(endpoint: Window | Worker | MessagePort, options?: BridgeOptions & { origin?: string | string[]; opaqueTarget?: '*' }): Promise<Remote>;

/** Every `reject` on this page's bridges, including messages for channels nobody listens on. */
export const bridgeMonitor: EventTarget;
/** The key that marks bridge handshake messages on a window. */
export const BRIDGE_MARK: '__switchboard_bridge';

export type { SwitchboardError };
