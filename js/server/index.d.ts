// switchboard/server: the reference relay for Node (docs/relay.md). Needs the
// peer dependency `ws`; SqliteStore needs `better-sqlite3`. The types are
// structural, so they check without @types/node.

/** What the relay reads of an HTTP upgrade request (node:http's IncomingMessage is one). */
export interface UpgradeRequest {
  url?: string;
  headers: Record<string, string | string[] | undefined>;
  socket?: { remoteAddress?: string; encrypted?: boolean };
}

/** What `authenticate` may return for a user: an id (also the name shown), or an id and a display name. */
export type Identity = string | { id: string | number; name?: string };

/** An authenticated user as the hooks and the relay see it. */
export interface RelayUser {
  /** What sessions are bound to (at most 256 characters). */
  id: string;
  /** What presence shows (at most 64 characters; default: the id). */
  name: string;
}

export interface AuthenticateContext {
  /** The upgrade request: its URL (`?token=`), headers (cookies) and socket. */
  request: UpgradeRequest;
  /** The hello's application JSON (the Socket's `hello` option), e.g. `{room, user, token}`. */
  hello: Record<string, unknown>;
}

export interface AuthorizeContext extends AuthenticateContext {
  /** Who `authenticate` said (null without an authenticate hook). */
  user: RelayUser | null;
  /** The room the hello asks for (default `lobby`). */
  room: string;
}

export interface RequestContext {
  /** `user`: the name presence shows; `userId`: the authenticated id the session is bound to, or null. */
  session: { id: string; user: string; userId: string | null; room: string };
  data: string | Uint8Array;
  binary: boolean;
  relay: Relay;
}

/** One session as a store keeps it. */
export interface StoreRow {
  id: string;
  room: string;
  user: string;
  /** The authenticated user id the session is bound to, or null. */
  owner: string | null;
  echo: boolean;
  /** The session's `sb_session_serialize()` state. */
  blob: Uint8Array;
}

/** Where the relay keeps its sessions (MemoryStore, SqliteStore, or your own). */
export interface Store {
  /** Once, at start. */
  load(): Iterable<StoreRow> | Promise<Iterable<StoreRow>>;
  /** Synchronous, all or nothing; the relay sends nothing that depends on it before it returns. */
  commit(upserts: StoreRow[], deletes: string[]): void;
  close(): void;
  /** True for a store that lives and dies with the process (the relay then commits only at close()). */
  readonly inProcess?: boolean;
}

export interface BusMessage { from: string | null; channel: number; flags: number; payload: Uint8Array }

/** Fan-out between the relay's rooms (LocalBus, or one that reaches several processes). */
export interface Bus {
  subscribe(room: string, onMessage: (msg: BusMessage) => void): () => void;
  publish(room: string, msg: BusMessage): void;
  close(): void;
}

export interface RelayOptions {
  /**
   * Web origins whose pages may connect, besides the relay's own (the request's Host, http or https as it
   * arrived): exact (`https://app.example.com`), any subdomain (`https://*.example.com`), `*` (any origin),
   * `null` (sandboxed frames). Any other Origin gets HTTP 403 before the upgrade; a request without an
   * Origin header (not a browser) is not checked. Default: none.
   */
  allowedOrigins?: string[];
  /**
   * Called when a client's hello arrives, before its session is created or resumed (may be async; it has
   * `helloTimeoutMs` to answer, else 1013). Returns the user, or null / throws to refuse: the transport
   * is closed with 4401 `UNAUTHORIZED: …`. The user's name replaces the hello's `user` in presence, and
   * a session may then only be resumed by the user that created it (anyone else: 4403).
   */
  authenticate?: (ctx: AuthenticateContext) => Identity | null | undefined | Promise<Identity | null | undefined>;
  /** Called after `authenticate`: may this user use this room? Falsy or a throw refuses with 4403 `FORBIDDEN: …`. */
  authorize?: (ctx: AuthorizeContext) => unknown;
  /** Answers `Socket.request()`; a throw or rejection answers with `{code, message}`. Default: echo. */
  onRequest?: (ctx: RequestContext) => unknown;
  /** Default: a MemoryStore (or the RedisEngine of `redis`). */
  store?: Store | RedisEngine;
  /**
   * Sessions, rooms and presence in this Redis (a `redis://` URL, or the URL with options), shared by every
   * relay process given the same: `Relay.create` connects a RedisEngine (needs `ioredis`). docs/relay.md, "Engines".
   */
  redis?: string | ({ url: string } & RedisEngineOptions);
  /** Default: a LocalBus. */
  bus?: Bus;
  log?: (message: string) => void;
  /** Largest frame payload (default 1 MiB). */
  maxPayload?: number;
  /** Largest WebSocket message, also after inflating (default 8 MiB). */
  maxMessage?: number;
  /** Frames in one WebSocket message (default 4096). */
  maxFrames?: number;
  /** Messages per session not yet confirmed by its client (default 20000). */
  maxHistory?: number;
  /** Their payload bytes (default 32 MiB). */
  maxHistoryBytes?: number;
  /** Default 10000. */
  maxSessions?: number;
  /** The hello's application JSON (default 8 KiB). */
  maxHelloBytes?: number;
  /** Nothing more is written while a socket buffers this much (default 4 MiB). */
  highWater?: number;
  /** A detached session is forgotten after this, ms (default 300000). */
  sessionTtlMs?: number;
  /** The hello must come within this, ms (default 10000); also the time the hooks have. */
  helloTimeoutMs?: number;
  /** A connection silent this long is dropped, ms (default 60000). */
  idleTimeoutMs?: number;
  /** HTTP transport: a POST's body must have arrived within this, ms (default 30000; else 408 and its stream closes 1013). */
  httpPostTimeoutMs?: number;
  /** HTTP transport: a stream silent this long gets a keepalive record, ms (default 20000; nginx times out at 60 s). */
  httpKeepaliveMs?: number;
  batchDelayMs?: number;
  compress?: boolean;
  /** zlib level (0-9) of what the relay sends (default 1: each delivery of a room message is deflated on its own). */
  compressLevel?: number;
  /** `[SO_*, value]` pairs for the sessions, after the above. */
  sessionOptions?: Array<[number, number]>;
  /** The whole core to run on (default: `switchboard.wasm` beside the relay). */
  wasm?: { wasmURL?: string | URL; wasmBinary?: ArrayBuffer | Uint8Array; wasmModule?: object };
}

export interface RelayStats {
  connections: number;
  sessions: number;
  messagesIn: number;
  duplicatesIn: number;
  messagesOut: number;
  requests: number;
  protocolErrors: number;
  errors: number;
  commits: number;
  /** Upgrades refused for their Origin, hellos refused by authenticate / authorize / a session's owner. */
  refused: number;
}

/** The reference relay: every WebSocket is a server-role session of the whole core. */
export class Relay {
  /** Loads its own instance of the whole core, then the store's sessions. */
  static create(options?: RelayOptions): Promise<Relay>;
  /** For an http(s) server's `upgrade` event. */
  handleUpgrade(request: UpgradeRequest, socket: unknown, head: Uint8Array): void;
  /**
   * For an http(s) server's `request` event: the HTTP transport of the same sessions (docs/protocol.md §13).
   * true when the request was the transport's (it is answered); false: the host answers it.
   */
  handleRequest(request: UpgradeRequest, response: unknown): boolean;
  /** Commits the sessions, closes every connection and the store (a RedisEngine once its last commit returned: the promise). */
  close(): void | Promise<void>;
  readonly stats: RelayStats;
}

/** The channel relay presence uses: `{type: 'join'|'leave', user, users}`. */
export const SYSTEM_CHANNEL: 1;

/** Sessions in memory: resume survives network drops, not a restart. */
export class MemoryStore implements Store {
  constructor();
  readonly inProcess: true;
  load(): StoreRow[];
  commit(upserts: StoreRow[], deletes: string[]): void;
  close(): void;
}

/** Sessions in an SQLite file (better-sqlite3, WAL, one transaction per commit): resume survives a restart. */
export class SqliteStore implements Store {
  /** `synchronous: 'FULL'` adds an fsync per commit (power loss). */
  static open(path: string, options?: { synchronous?: 'NORMAL' | 'FULL' }): Promise<SqliteStore>;
  load(): StoreRow[];
  commit(upserts: StoreRow[], deletes: string[]): void;
  close(): void;
}

export interface RedisEngineOptions {
  /** Prefix of every key and channel (default `sb:`): relays that share rooms use the same. */
  prefix?: string;
  /** A process that has not refreshed its members this long has them leave (default 15000 ms). */
  presenceTtlMs?: number;
  /** A Redis command that has not answered in this long fails (default 5000 ms). */
  commandTimeoutMs?: number;
  /** Connecting: fail after this long (default 5000 ms). */
  connectTimeoutMs?: number;
  log?: (message: string) => void;
}

/**
 * The relay's store and bus in one Redis 7 (ioredis, an optional peer dependency), shared by every relay
 * process on it: sessions resume from any process, each room's log is a stream with offsets, fan-out and
 * presence reach every process. Commits are one Lua script each, asynchronous; nothing is sent before one returns.
 */
export class RedisEngine {
  /** Connects, and fails unless Redis answers within `connectTimeoutMs`. */
  static connect(url: string, options?: RedisEngineOptions): Promise<RedisEngine>;
  readonly shared: true;
  close(): Promise<void>;
}

/** In-process fan-out (synchronous). */
export class LocalBus implements Bus {
  constructor();
  subscribe(room: string, onMessage: (msg: BusMessage) => void): () => void;
  publish(room: string, msg: BusMessage): number;
  close(): void;
}

/** A plain WebSocket echo server (no subprotocol): what a non-switchboard server looks like to a Socket. */
export function createEchoServer(options?: { maxPayload?: number }): {
  handleUpgrade(request: UpgradeRequest, socket: unknown, head: Uint8Array): void;
  close(): void;
};
