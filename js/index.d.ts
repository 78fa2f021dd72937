// switchboard public types. Each capability module has its own .d.ts beside
// its .js; this file re-exports them all.

/** Options for {@link init}. */
export interface InitOptions {
  /** Load the core from this URL instead of the inlined copy (strict CSP, caching). */
  wasmURL?: string | URL;
  /** The core's bytes, if you already have them. */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** A compiled module, e.g. shared with a worker. */
  wasmModule?: WebAssembly.Module;
}

/**
 * Load the WebAssembly core. Idempotent: every call returns the same promise,
 * and a failed load can be retried. Every other API needs it to have resolved.
 */
export function init(options?: InitOptions): Promise<void>;

/**
 * Stable error codes carried by {@link SwitchboardError.code}: first the C
 * core's (enum sb_err in src/switchboard.h, in its order; sb_errname()
 * spells them), then those only the glue raises. tests/node/types.test.mjs
 * checks the list against both, so it is exact.
 */
export type SwitchboardErrorCode =
  | 'NO_MEMORY' | 'INVALID' | 'TOO_LARGE' | 'CORRUPT' | 'BAD_CHECKSUM' | 'TRUNCATED'
  | 'TRAILING_DATA' | 'BAD_FRAME' | 'BAD_VERSION' | 'TOO_DEEP' | 'QUEUE_FULL' | 'TIMEOUT'
  | 'CLOSED' | 'ORIGIN_REJECTED' | 'NOT_FOUND' | 'BAD_STATE' | 'CONNECTION_LOST' | 'EXPIRED'
  | 'BUFFER_TOO_SMALL' | 'BAD_ORIGIN' | 'INTERNAL' | 'RATE_LIMITED'
  // the glue's own
  | 'NOT_INITIALIZED' // an API used before `await init()`
  | 'HTTP_ERROR'      // EventStream: an HTTP status other than 200 (`error.status`)
  | 'NO_CONTENT'      // EventStream: HTTP 204, the server asks not to reconnect
  | 'BAD_CONTENT_TYPE' // EventStream: not text/event-stream
  | 'ABORTED'         // Socket.request: its signal aborted without a reason
  | 'REMOTE'          // Socket.request: the server failed it with a code of its own (`error.remoteCode`) or none
  | 'CLOCK_SKEW'      // SharedState: remote stamps too far ahead of this clock, ignored
  // the relay's (switchboard/server): why it closed a connection (4401, 4403;
  // UNAVAILABLE: 1013, its store did not answer, e.g. Redis away)
  | 'UNAUTHORIZED' | 'FORBIDDEN' | 'UNAVAILABLE';

/** The one error type every switchboard API throws or rejects with. */
export class SwitchboardError extends Error {
  constructor(code: SwitchboardErrorCode, message?: string, options?: { cause?: unknown });
  readonly name: 'SwitchboardError';
  /** Stable identifier, safe to switch on. */
  readonly code: SwitchboardErrorCode;
  /**
   * On a `REMOTE` rejection of `Socket.request()`: the code a relay
   * `onRequest` handler named that is not one of the library's (an
   * application's own, e.g. `'E_NOT_YOURS'`).
   */
  remoteCode?: string;
}

export * from './gzip.js';
export * from './sse.js';
export * from './socket.js';
export * from './tabs.js';
export * from './frame.js';
export * from './queue.js';
export * from './bridge.js';
