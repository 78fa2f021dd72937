// Batching and queues (docs/protocol.md §8–§9): thin glue over the C state
// machines. Every class holds wasm memory: call close() when done. Events
// carry their data as properties (`e.id`, `e.error`: docs/api.md,
// "Conventions"), and as `detail` too (deprecated).
import type { Frame, FrameInit, FrameKindName } from './frame.js';
import type { SwitchboardError } from './index.js';

/** An event of this module: its data as properties, and as `detail` (deprecated). */
export type QueueEvent<T> = CustomEvent<T> & Readonly<T>;

export interface BatcherOptions {
  /** flush when this many frames are pending (default 100) */
  maxMessages?: number;
  /** flush when the pending frames reach this many bytes, before compression (default 64 KiB) */
  maxBytes?: number;
  /** flush this long after the first pending frame (default 10 ms; 0 = at once) */
  maxDelay?: number;
  /** compress a batch only from this many bytes (default 1024), and only if smaller */
  compressAbove?: number;
  /** 'shared' (one deflate window per link, best ratio), 'deflate' (each batch alone) or 'none'; default 'shared' */
  compression?: 'shared' | 'deflate' | 'none';
  /** zlib level 0..9 (default 6) */
  level?: number;
}

export interface FlushInfo {
  /** the transport message: one frame, or a batch frame */
  bytes: Uint8Array;
  /** frames in it */
  frames: number;
  compressed: boolean;
}

export interface BatcherStats {
  frames: number; batches: number; rawBytes: number; outBytes: number;
  compressed: number; compressionSkipped: number; pending: number; pendingBytes: number;
  /** rawBytes / outBytes */
  ratio: number;
}

/**
 * Collects frames and flushes on max count, bytes or delay, whichever comes
 * first (one timer). Event `flush` ({@link QueueEvent}<FlushInfo>).
 */
export declare class Batcher extends EventTarget {
  constructor(opts?: BatcherOptions, onFlush?: (bytes: Uint8Array, info: FlushInfo) => void);
  /** Add an encoded frame or a frame to encode. @throws CLOSED, BAD_FRAME… */
  add(frame: Uint8Array | FrameInit): void;
  /** Flush now. */
  flush(): void;
  /** The link was re-established: the next compressed batch starts a fresh window. */
  resetStream(): void;
  readonly pending: number;
  stats(): BatcherStats;
  /** Flush what is pending, then free the core object. */
  close(): void;
}

export interface OutboxOptions {
  /** called with each frame to put on the wire */
  transmit: (bytes: Uint8Array) => void;
  /** messages held, queued + in flight (default 1000) */
  maxMessages?: number;
  /** payload bytes held (default 8 MiB) */
  maxBytes?: number;
  /** when full: throw QUEUE_FULL, evict the oldest unsent of the lowest priority, or drop the new one (default 'reject') */
  overflow?: 'reject' | 'drop-oldest' | 'drop-newest';
  /** frames in flight without an ack (default 64) */
  window?: number;
  /** wait this long for an ack (default 5000 ms) */
  ackTimeout?: number;
  /** retry delay: full jitter in [retryMinDelay/2, min(retryMaxDelay, retryMinDelay·2^k)] (defaults 100 / 30000 ms) */
  retryMinDelay?: number;
  retryMaxDelay?: number;
  /** dead-letter after this many retries (default 0 = retry until the TTL) */
  maxRetries?: number;
  /** distinct channels (default 256) */
  maxChannels?: number;
  /** jitter seed (default: crypto.getRandomValues) */
  seed?: number;
  /** start offline (default true = online) */
  online?: boolean;
  /** a state from serialize(): resume where a previous page left off */
  state?: Uint8Array;
}

export interface SendOptions {
  channel?: number;
  kind?: FrameKindName | number;
  /** 0 (lowest) .. 7 (default 0) */
  priority?: number;
  /** give up if not acked within this many ms (default: never) */
  ttl?: number;
  corr?: number;
  /** default: true for bytes, false for strings */
  binary?: boolean;
  last?: boolean;
}

export interface OutboxEventDetail {
  id: number; channel: number; seq: number; attempts: number;
  /** `ack`: round-trip time of the acked transmission */
  rtt?: number;
  /** `timeout`: delay before the retry */
  delay?: number;
  /** `drop` (QUEUE_FULL), `expired` (EXPIRED), `deadletter` (TIMEOUT) */
  error?: SwitchboardError;
}

export interface OutboxStats {
  depth: number; bytes: number; inFlight: number; sent: number; retries: number; acked: number;
  drops: number; expired: number; deadLetters: number;
  /** smoothed ack RTT in ms, -1 before the first ack */
  rtt: number; rttLast: number;
}

/**
 * Reliable outbound queue. Events ({@link QueueEvent}<OutboxEventDetail>): `ack`,
 * `drop`, `expired`, `timeout`, `deadletter`.
 */
export declare class Outbox extends EventTarget {
  constructor(opts: OutboxOptions);
  /** Queue a message, returns its id. @throws QUEUE_FULL, TOO_LARGE, INVALID, CLOSED */
  enqueue(payload: string | ArrayBuffer | ArrayBufferView, opts?: SendOptions): number;
  /** Queue and wait for the ack. Rejects QUEUE_FULL, EXPIRED, TIMEOUT or CLOSED. */
  send(payload: string | ArrayBuffer | ArrayBufferView, opts?: SendOptions): Promise<{ id: number; rtt: number }>;
  /** Feed an ack frame from the peer; returns how many messages it acknowledged. */
  receiveAck(frameBytes: ArrayBuffer | ArrayBufferView): number;
  /** Offline stops transmissions and ack timers; online resends every unacked frame. */
  setOnline(online: boolean): void;
  /** Transmit what is due now (normally automatic). */
  pump(): void;
  /** The whole queue, for persistence. */
  serialize(): Uint8Array;
  stats(): OutboxStats;
  /** Free the core object; pending send() promises reject with CLOSED. */
  close(): void;
}

export interface InboxOptions {
  /** called with each ack frame to send back */
  sendAck: (bytes: Uint8Array) => void;
  /** how far past the next expected seq frames are held (default 1024) */
  window?: number;
  /** bytes held waiting for gaps + undelivered (default 8 MiB) */
  maxBytes?: number;
  maxChannels?: number;
  /** coalesce acks for this long (default 0: one ack per task) */
  ackDelay?: number;
  /** decode payloads as UTF-8 strings (frames flagged BINARY keep their bytes) */
  text?: boolean;
  /** ack frames received by receive() go to this Outbox (a two-way link) */
  outbox?: Outbox;
  /** dedup state from serialize() */
  state?: Uint8Array;
  onMessage?: (frame: Frame<any>) => void;
}

/**
 * Receiving side: delivers every reliable frame once, in per-channel order,
 * and acks it. Event `message` ({@link QueueEvent}<Frame>).
 */
export declare class Inbox extends EventTarget {
  constructor(opts: InboxOptions);
  /**
   * Feed a transport message (frame or batch); returns frames delivered.
   * A malformed message throws before anything is delivered; a bad frame
   * inside a valid batch throws after the others were processed.
   */
  receive(message: ArrayBuffer | ArrayBufferView): number;
  /** Feed one encoded frame; returns frames delivered. */
  push(frameBytes: ArrayBuffer | ArrayBufferView): number;
  /** The peer restarted without its state: forget dedup state. */
  reset(): void;
  /** Dedup state, frames held for order (already acked) and undelivered ones, for persistence; restore with `new Inbox({state})`. */
  serialize(): Uint8Array;
  stats(): { delivered: number; duplicates: number; held: number; refused: number; skipped: number; acks: number };
  close(): void;
}

export interface MessageQueueOptions {
  /** handlers running at once (default 1 = strict order) */
  concurrency?: number;
  /** retries after the first failure before dead-lettering (default 3) */
  maxRetries?: number;
  /** backoff with full jitter: retry k waits [retryMinDelay/2, min(retryMaxDelay, retryMinDelay·2^(k-1))] (defaults 100 / 10000 ms) */
  retryMinDelay?: number;
  retryMaxDelay?: number;
  /** push() throws QUEUE_FULL past this (default 10000) */
  maxQueued?: number;
  /** oldest dead letters are forgotten past this (default 1000) */
  maxDeadLetters?: number;
  seed?: number;
  /**
   * Run each task once across the tabs of this origin that open a queue of
   * this name (docs/protocol.md §9.6): the leading tab (TabGroup) runs every
   * task, the result or error returns to the posting tab's run() promise, and
   * a new leader takes over the open tasks when the leader goes. Items and
   * results must be structured-cloneable. Every tab passes the same handler.
   * A task that was running when its leader died runs again (`info.rerun`,
   * event `rerun`): at-least-once for it, exactly once for the rest.
   */
  tabs?: string;
}

/** What a handler learns about its task. */
export interface TaskInfo {
  /** 1 for the first try, then one more per retry */
  attempt: number;
  /** aborts when the queue closes */
  signal: AbortSignal;
  /** `tabs` queues: the task's id, the same in every tab and on a rerun (an idempotency key) */
  id?: string;
  /** `tabs` queues: true when a leader that died had started this task (its effects may have happened) */
  rerun?: boolean;
}

/** MessageQueue.stats().tabs, for a queue with `tabs`. */
export interface TabQueueStats {
  /** false where the queue runs alone (no BroadcastChannel): each task in its own tab */
  shared: boolean;
  /** this tab runs the tasks */
  leader: boolean;
  /** TabGroup id of the leading tab, null between leaders */
  holder: number | null;
  /** tabs in the group */
  tabs: number;
  /** tasks this tab knows are not done yet, from every tab */
  open: number;
  /** tasks this tab ran again as a new leader */
  reruns: number;
}

export interface DeadLetter<T> { item: T; attempts: number; error: unknown }

/**
 * Ordered async processing with a concurrency limit, retries with backoff and
 * a dead-letter list. Events ({@link QueueEvent}): `done` {item, attempts},
 * `retry` {item, attempts, error, delay}, `deadletter` {item, attempts,
 * error}, `idle`.
 */
export declare class MessageQueue<T = unknown> extends EventTarget {
  constructor(handler: (item: T, info: TaskInfo) => unknown, opts?: MessageQueueOptions);
  /** @throws QUEUE_FULL, CLOSED, INVALID (an item a tabs queue cannot clone) */
  push(item: T): void;
  /**
   * Queue an item and wait for it: resolves with the handler's result, rejects
   * with its last error once dead-lettered, or CLOSED. With `tabs`, in the
   * posting tab whichever tab ran it. Rejects where push() would throw.
   */
  run<R = unknown>(item: T): Promise<R>;
  readonly deadLetters: DeadLetter<T>[];
  /** Re-queue dead letters (all, or those filter accepts); returns how many. */
  replay(filter?: (d: DeadLetter<T>) => boolean): number;
  pause(): void;
  resume(): void;
  /** Resolves when nothing is queued, running or waiting to retry (with `tabs`: and no tab's task is open). */
  idle(): Promise<void>;
  stats(): { queued: number; running: number; waiting: number; deadLetterCount: number; done: number; failed: number; retries: number; deadLetters: number; tabs?: TabQueueStats };
  /** Stop; running handlers see their AbortSignal abort. */
  close(): void;
}
