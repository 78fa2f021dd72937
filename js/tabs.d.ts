// Types for js/tabs.js: TabGroup (presence + leader) and SharedState.

/** A live tab of the group as this tab sees it. */
export interface TabInfo {
  /** Random non-zero 32-bit id, new for every tab session. */
  id: number;
  /** `document.visibilityState !== 'hidden'` as last reported by that tab. */
  visible: boolean;
  /** True for the entry describing this tab. */
  self: boolean;
}

export interface TabGroupOptions {
  /**
   * How to elect the leader. `'auto'` (default): Web Locks when
   * `navigator.locks` exists, heartbeat leases otherwise. `'lease'` forces the
   * heartbeat path (e.g. to test it); `'locks'` fails without Web Locks.
   */
  mode?: 'auto' | 'locks' | 'lease';
  /** Prefer a visible tab as leader: a hidden leader hands over when a visible tab exists. */
  preferVisible?: boolean;
  /** Heartbeat period (ms). Default 500. */
  heartbeatInterval?: number;
  /** A tab not heard from for this long is gone; a crashed lease leader is replaced after it. Default 2000. */
  heartbeatTimeout?: number;
  /** Presence table cap. Default 64. */
  maxTabs?: number;
  /** Use this id instead of a random one (must be unique among the tabs). */
  id?: number;
  /** Aborting it closes the group. */
  signal?: AbortSignal;
}

export interface LeaderChangeDetail {
  leader: number | null;
  isLeader: boolean;
  term: number;
}

/** An event of this module: its data as properties, and as `detail` (deprecated). */
export type TabsEvent<T> = CustomEvent<T> & Readonly<T>;

export interface TabGroupEventMap {
  /** The leader changed (including to "none" between two leaders). */
  leaderchange: TabsEvent<LeaderChangeDetail>;
  /** This tab was leader and is not any more (another tab won, it handed over, or it closed). */
  leadershiplost: Event;
  /** A tab joined, left or changed visibility. */
  presence: TabsEvent<{ tabs: TabInfo[] }>;
  close: Event;
}

/**
 * Presence and leader election among same-origin tabs that open the same
 * name. Exactly one leader: Web Locks where present, heartbeat leases in the
 * C core otherwise. A closing leader is replaced at once; a crashed one
 * within `heartbeatTimeout` (lease path) or as soon as the browser frees its lock.
 */
export class TabGroup extends EventTarget {
  /** Use {@link TabGroup.open}. */
  private constructor();
  static open(name: string, options?: TabGroupOptions): Promise<TabGroup>;
  /** This tab's id. */
  readonly id: number;
  readonly mode: 'locks' | 'lease';
  /** The leader's id, or null while there is none. */
  readonly leader: number | null;
  readonly isLeader: boolean;
  /** Election term of the current leader; grows with each new leader. */
  readonly term: number;
  /** Live tabs, this one included, sorted by id. */
  readonly tabs: TabInfo[];
  readonly closed: boolean;
  /** Resolves when this tab becomes leader; rejects with CLOSED if it closes first. */
  whenLeader(): Promise<void>;
  /** Leave: the other tabs are told at once, and core memory is freed. Also runs on `pagehide`. */
  close(): void;
  addEventListener<K extends keyof TabGroupEventMap>(type: K, listener: (ev: TabGroupEventMap[K]) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof TabGroupEventMap>(type: K, listener: (ev: TabGroupEventMap[K]) => unknown, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** Turns values into bytes and back. The default is JSON text. */
export interface StateCodec {
  /** Throw here for values that cannot be stored: the error reaches set()'s caller. */
  encode(value: unknown, key: string): string | Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

export interface SharedStateOptions {
  /** Values for keys that nobody has after catching up (written like set()). */
  initial?: Record<string, unknown>;
  /** Keep a snapshot in localStorage so a reload or a lone new tab starts from it. */
  persist?: boolean;
  /** Storage to persist into instead of localStorage (anything with getItem/setItem). */
  storage?: Pick<Storage, 'getItem' | 'setItem'>;
  codec?: StateCodec;
  /** Caps (enforced in the core): keys (4096), key bytes (256), value bytes (65536), tombstones (4096). */
  maxKeys?: number;
  maxKeyBytes?: number;
  maxValueBytes?: number;
  maxTombstones?: number;
  maxTabs?: number;
  /**
   * Total key + value bytes the state may hold (a deleted key keeps its key
   * until collected), 1 … 2^30. Default 2097152 (2 MiB): the largest snapshot, which is
   * also the largest message read from another tab or from storage, is then
   * ≈ 2.4 MB, inside localStorage's ~5 MB. A longer message is refused
   * (`error` event, TOO_LARGE) before anything is copied into wasm memory.
   */
  maxStateBytes?: number;
  /**
   * A timestamp from another tab (or storage) more than this many ms ahead of
   * this tab's `Date.now()` is ignored and reported (`error` event, CLOCK_SKEW):
   * one bad message cannot drag every tab's clock to the end of its range.
   * Default 86400000 (24 h); 0 … 2^32 − 1.
   */
  maxClockSkew?: number;
  /** How long open() waits for a live tab's snapshot (ms). Default 150; `Infinity`: until one arrives. Negative: INVALID. */
  joinTimeout?: number;
  /** Digest (heartbeat + tombstone GC + gap repair) period (ms), counted from when open() caught up. Default 1000; `Infinity`: none; under 1: INVALID. */
  digestInterval?: number;
  /** 0 (default): writes of one task go out together at the end of it; > 0: wait this long and batch more; `Infinity`: only with the next flush(), digest, answer or close(). */
  batchDelay?: number;
  /** Options for the TabGroup the state creates. */
  group?: Omit<TabGroupOptions, 'id' | 'signal'>;
  /** Aborting it closes the state; while open() is still joining, open() rejects with CLOSED. */
  signal?: AbortSignal;
}

export interface StateChangeDetail {
  /** Keys whose visible value changed (deleted keys included). */
  keys: string[];
  /** True when this tab made the change. */
  local: boolean;
  /** Id of the tab that made the change (for merges: the sender of the message). */
  origin: number;
  /** Present on merged changes: false when they came from persisted storage. */
  remote?: boolean;
}

export interface SharedStateEventMap {
  change: TabsEvent<StateChangeDetail>;
  /**
   * Bytes from another tab or from storage that did not decode or are over
   * `maxStateBytes` (TOO_LARGE), values another tab wrote that the codec
   * cannot decode (CORRUPT: those keys read as absent), or timestamps that
   * were ignored (CLOCK_SKEW: the rest of that message merged). The error is
   * `error` (`detail` too, deprecated).
   */
  error: CustomEvent<Error> & { readonly error: Error };
  close: Event;
}

/**
 * A key/value map shared by every same-origin tab that opens the same name.
 * Each key is a last-writer-wins register ordered by a hybrid logical clock
 * (tab id as tie-break): every tab ends with the same value for every key.
 */
export class SharedState<T extends Record<string, unknown> = Record<string, unknown>> extends EventTarget {
  /** Use {@link SharedState.open}. */
  private constructor();
  static open<T extends Record<string, unknown> = Record<string, unknown>>(name: string, options?: SharedStateOptions): Promise<SharedState<T>>;
  /** This tab's replica id (= group.id). */
  readonly id: number;
  readonly name: string;
  readonly group: TabGroup;
  readonly size: number;
  readonly closed: boolean;
  /** Current value (a decoded copy: treat it as immutable, write with set/update). */
  get<K extends keyof T & string>(key: K): T[K] | undefined;
  has(key: string): boolean;
  keys(): IterableIterator<string>;
  entries(): IterableIterator<[string, unknown]>;
  [Symbol.iterator](): IterableIterator<[string, unknown]>;
  toJSON(): Partial<T>;
  /** Throws SwitchboardError INVALID (cannot encode) / TOO_LARGE (caps) / CLOSED synchronously. */
  set<K extends keyof T & string>(key: K, value: T[K]): void;
  update<K extends keyof T & string>(key: K, fn: (current: T[K] | undefined) => T[K]): T[K];
  delete(key: string): boolean;
  /** fn runs after each change; returns an unsubscribe function. */
  subscribe(fn: (detail: StateChangeDetail) => void): () => void;
  /** fn(value, detail) after each change of one key (value undefined once deleted); returns an unsubscribe function. */
  watch<K extends keyof T & string>(key: K, fn: (value: T[K] | undefined, detail: StateChangeDetail) => void): () => void;
  /** Broadcast pending writes now (otherwise at the end of the task). */
  flush(): void;
  /** Send pending writes, persist, leave the group, free core memory. Also runs on `pagehide`. */
  close(): void;
  addEventListener<K extends keyof SharedStateEventMap>(type: K, listener: (ev: SharedStateEventMap[K]) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof SharedStateEventMap>(type: K, listener: (ev: SharedStateEventMap[K]) => unknown, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
