/** Anything switchboard accepts as bytes. Strings are encoded as UTF-8. */
export type BytesLike = string | ArrayBuffer | ArrayBufferView;

/** Same names as `CompressionStream`: gzip (RFC 1952), deflate (zlib, RFC 1950), deflate-raw (RFC 1951). */
export type CompressionFormat = 'gzip' | 'deflate' | 'deflate-raw';

export interface CompressOptions {
  /** 0 (store) … 9 (smallest); default 6. */
  level?: number;
  /** Default 'gzip'. */
  format?: CompressionFormat;
}

export interface DecompressOptions {
  /** Hard cap on the output; past it the call throws `TOO_LARGE`. Default 64 MiB, at most 2^30. */
  maxOutputBytes?: number;
  /** Default 'gzip'. */
  format?: CompressionFormat;
}

/** Compress in one call (needs `await init()` first). */
export function gzip(data: BytesLike, options?: CompressOptions): Uint8Array;
/**
 * Decompress in one call. Reads every member of a multi-member gzip. Throws
 * `SwitchboardError` with code TOO_LARGE, TRUNCATED, CORRUPT, BAD_CHECKSUM or TRAILING_DATA.
 */
export function gunzip(data: BytesLike, options?: DecompressOptions): Uint8Array;
/** zlib-wrapped deflate; `gzip(data, { format: 'deflate' })`. */
export function deflate(data: BytesLike, options?: Omit<CompressOptions, 'format'>): Uint8Array;
/** Inverse of {@link deflate}. */
export function inflate(data: BytesLike, options?: Omit<DecompressOptions, 'format'>): Uint8Array;

/**
 * Drop-in for `new CompressionStream(format)`, with a level:
 * `new GzipStream('deflate', { level: 9 })` or `new GzipStream({ format, level })`.
 * Needs `await init()` to have resolved.
 */
export class GzipStream extends TransformStream<BytesLike, Uint8Array> {
  constructor(options?: CompressOptions);
  constructor(format: CompressionFormat, options?: Omit<CompressOptions, 'format'>);
}

/**
 * Drop-in for `new DecompressionStream(format)`, with a cap on the whole
 * stream's output (`TOO_LARGE` errors the stream). Reads multi-member gzip.
 */
export class GunzipStream extends TransformStream<BytesLike, Uint8Array> {
  constructor(options?: DecompressOptions);
  constructor(format: CompressionFormat, options?: Omit<DecompressOptions, 'format'>);
}

export interface ContextStats {
  bytesIn: number;
  bytesOut: number;
}

/**
 * Per-message compression over one shared window (as WebSocket
 * permessage-deflate, RFC 7692): small similar messages compress well because
 * each can refer to the ones before. Decompress in order with one {@link InflateContext}.
 */
export class DeflateContext {
  constructor(options?: { level?: number; windowBits?: number });
  compress(message: BytesLike): Uint8Array;
  stats(): ContextStats;
  /** Frees the core memory; later calls throw `CLOSED`. */
  close(): void;
}

/**
 * Receiving side of {@link DeflateContext}. A message that fails (`TRUNCATED`,
 * `CORRUPT`, `TOO_LARGE`) leaves the shared window unusable: later calls throw
 * `BAD_STATE`; both sides must start new contexts.
 */
export class InflateContext {
  /** `maxMessageBytes` caps each decompressed message (default 16 MiB). */
  constructor(options?: { maxMessageBytes?: number });
  decompress(data: BytesLike): Uint8Array;
  decompressText(data: BytesLike): string;
  stats(): ContextStats;
  close(): void;
}
