// switchboard/server: the reference relay for Node (docs/relay.md). Needs the
// peer dependency `ws`; SqliteStore needs `better-sqlite3` (optional, loaded
// only by SqliteStore.open), the Redis engine `ioredis` (optional, loaded only
// by RedisEngine.connect, Relay.create({redis}) and --redis). The package ships this bundled as
// dist/switchboard-server.mjs, beside the whole core it runs on.
export { Relay, SYSTEM_CHANNEL } from './relay.mjs';
export { MemoryStore, SqliteStore } from './store.mjs';
export { LocalBus } from './bus.mjs';
export { RedisEngine } from './redis.mjs';
export { createEchoServer } from './echo.mjs';
