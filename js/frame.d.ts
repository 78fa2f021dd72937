// Frames: the one binary envelope of docs/protocol.md, encoded and decoded by
// the C core through wasm. Call `await init()` first.

/** Frame kind names and their numbers on the wire (docs/protocol.md §2). */
export declare const FrameKind: Readonly<{
  message: 0; request: 1; response: 2; error: 3; ack: 4; ping: 5; pong: 6;
  hello: 7; 'state-op': 8; batch: 9; skip: 10;
}>;
export type FrameKindName = keyof typeof FrameKind;

/** Flag bits (docs/protocol.md §3). */
export declare const FrameFlag: Readonly<{
  /** payload is raw deflate */
  COMPRESSED: 0x01;
  /** with COMPRESSED: continues the link's shared deflate window */
  SHARED: 0x02;
  /** last frame of a batch / multi-part message */
  LAST: 0x04;
  /** the sender tracks this frame until acked */
  ACK_REQ: 0x08;
  /** payload is opaque bytes, not UTF-8 JSON */
  BINARY: 0x10;
  /** retransmission */
  RETRY: 0x20;
}>;

/** What encodeFrame() takes. Missing numbers are 0; a missing deadline is -1 (none). */
export interface FrameInit {
  kind?: FrameKindName | number;
  flags?: number;
  /** channel / topic id, u32 */
  channel?: number;
  /** message id, u32 */
  id?: number;
  /** per-channel sequence number, u32 */
  seq?: number;
  /** correlation id (the request id a response answers), u32 */
  corr?: number;
  /** absolute ms on the Date.now() clock, integer 0..2^53, or -1 for none */
  deadline?: number;
  /** UTF-8 text or bytes */
  payload?: string | ArrayBuffer | ArrayBufferView;
}

/** A decoded frame. */
export interface Frame<P = Uint8Array> {
  kind: FrameKindName | 'unknown';
  flags: number;
  channel: number;
  id: number;
  seq: number;
  corr: number;
  /** -1 = none */
  deadline: number;
  /** a view into the decoded bytes (no copy), or a string with `{text: true}` */
  payload: P;
}

/**
 * Encode one frame into a new Uint8Array.
 * @throws SwitchboardError INVALID (bad kind, flags, field range, deadline), TOO_LARGE
 */
export declare function encodeFrame(frame: FrameInit): Uint8Array;

/**
 * Decode exactly one frame.
 * @throws SwitchboardError TRUNCATED, BAD_VERSION, BAD_FRAME, TOO_LARGE, TRAILING_DATA
 */
export declare function decodeFrame(bytes: ArrayBuffer | ArrayBufferView, opts: { text: true; maxPayload?: number }): Frame<string>;
export declare function decodeFrame(bytes: ArrayBuffer | ArrayBufferView, opts?: { text?: false; maxPayload?: number }): Frame<Uint8Array>;

/**
 * Reads transport messages (one frame, or a batch that may be deflated and
 * nested) into frames. Holds one link's shared inflate window: use one per
 * connection, and close() it.
 */
export declare class BatchReader {
  /**
   * @param opts.maxPayload cap per frame payload and per message (default 16 MiB)
   * @param opts.maxInflated cap on a decompressed batch (default 16 MiB)
   * @param opts.maxDepth batch nesting limit, 1..16 (default 4)
   */
  constructor(opts?: { maxPayload?: number; maxInflated?: number; maxDepth?: number });
  /**
   * All frames of one message, each with `bytes`, its own encoding (a copy).
   * Validates the whole message first: a bad one yields nothing.
   * @throws SwitchboardError TRUNCATED, BAD_VERSION, BAD_FRAME, TOO_LARGE, TRAILING_DATA, TOO_DEEP, CORRUPT, CLOSED
   */
  read(message: ArrayBuffer | ArrayBufferView, opts: { text: true }): Array<Frame<string> & { bytes: Uint8Array }>;
  read(message: ArrayBuffer | ArrayBufferView, opts?: { text?: false }): Array<Frame<Uint8Array> & { bytes: Uint8Array }>;
  /** New connection: forget the shared window. */
  resetStream(): void;
  close(): void;
}
