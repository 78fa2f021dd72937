#!/usr/bin/env node
// switchboard-relay: the reference relay as a process (docs/relay.md).
//   npx switchboard-relay [--port 8090] [--host 127.0.0.1] [--allowed-origin ORIGIN]...
//                         [--db FILE | --redis URL] [--auth MODULE] [--max-connections N] … [--echo]
// Serves the relay on every path (or with --echo a plain echo server) and
// prints one JSON line {"port": N} on stdout once listening; logs go to
// stderr. Tests spawn it so they can kill -9 and restart it.
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// [flag, value name, what, default] — --help prints exactly this table.
const OPTIONS = [
  ['port', 'N', 'port to listen on (0: any free port)', '8090'],
  ['host', 'ADDR', 'address to listen on (0.0.0.0 or :: for every interface)', '127.0.0.1'],
  ['allowed-origin', 'ORIGIN', 'a web origin whose pages may connect besides the relay\'s own: exact (https://app.example.com), a wildcard (https://*.example.com) or *; repeatable', 'none: same-origin pages and non-browser clients only'],
  ['db', 'FILE', 'keep the sessions in this SQLite file (needs better-sqlite3), so a restarted relay resumes them', 'none: in memory'],
  ['journal', 'FILE', 'older name for --db', 'none'],
  ['redis', 'URL', 'keep sessions and rooms in Redis (needs ioredis), shared by every relay process given the same URL: fan-out, presence and resume across processes', 'none: in memory'],
  ['presence-ttl-ms', 'MS', 'with --redis: a process that stops refreshing its members this long has them leave', '15000'],
  ['auth', 'MODULE', 'path or package name of a module whose default export (a function: authenticate; or {authenticate, authorize}) or named exports authenticate / authorize check every hello', 'none: anyone may connect, with the user its hello names'],
  ['max-connections', 'N', 'sockets at once, upgrades included; over it new ones get HTTP 503', '10000'],
  ['max-connections-per-address', 'N', 'sockets at once from one client address (behind a proxy every client shares one)', '100'],
  ['max-sessions', 'N', 'sessions kept, attached or waiting for their client', '10000'],
  ['max-memory', 'MIB', 'the relay core\'s memory budget in MiB (16..2048); past it an allocation closes only its connection', '1024'],
  ['rate-messages', 'N', 'frames a second one connection may send (0: no limit); over it the socket is not read, then closed with 4008', '1000'],
  ['rate-bytes', 'N', 'frame bytes a second one connection may send, after inflating (0: no limit)', '8388608'],
  ['room-history', 'N', 'messages each room\'s log keeps for clients that come back', '10000'],
  ['room-history-bytes', 'N', 'payload bytes each room\'s log keeps', '16777216'],
  ['room-history-ms', 'MS', 'age past which a room\'s log forgets a message', '600000'],
  ['max-subscriptions', 'N', 'rooms one session may be in, its hello\'s room included', '64'],
  ['echo', '', 'serve a plain WebSocket echo server instead of the relay (what a non-switchboard server looks like)', 'off'],
  ['help', '', 'print this and exit', ''],
];

function usage() {
  const rows = OPTIONS.map(([f, v, what, def]) => `  --${f}${v ? ` ${v}` : ''}\n      ${what}${def ? ` (default: ${def})` : ''}`);
  return `usage: switchboard-relay [options]\n\nThe switchboard relay: rooms over WebSocket sessions that lose nothing.\n\n${rows.join('\n')}\n`;
}

function parse(argv) {
  const o = { 'allowed-origin': [] };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    const spec = m && OPTIONS.find(([f]) => f === m[1]);
    if (!spec) throw new Error(`unknown argument ${JSON.stringify(argv[i])}`);
    let v = true;
    if (spec[1]) {
      v = m[2] ?? argv[++i];
      if (v === undefined) throw new Error(`--${spec[0]} needs a value (${spec[1]})`);
    } else if (m[2] !== undefined) {
      throw new Error(`--${spec[0]} takes no value`);
    }
    if (Array.isArray(o[spec[0]])) o[spec[0]].push(v);
    else o[spec[0]] = v;
  }
  return o;
}

/** The numeric limits given on the command line, as Relay options. */
function limits(o) {
  const out = {};
  for (const [flag, key, scale = 1] of [['max-connections', 'maxConnections'], ['max-connections-per-address', 'maxConnectionsPerAddress'],
    ['max-sessions', 'maxSessions'], ['max-memory', 'maxMemory', 1 << 20], ['rate-messages', 'rateMessages'], ['rate-bytes', 'rateBytes'],
    ['room-history', 'roomHistory'], ['room-history-bytes', 'roomHistoryBytes'], ['room-history-ms', 'roomHistoryMs'], ['max-subscriptions', 'maxSubscriptions']]) {
    if (o[flag] === undefined) continue;
    const v = Number(o[flag]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${flag} ${o[flag]}: not a number`);
    out[key] = v * scale;
  }
  return out;
}

/** The Relay hooks a --auth module exports. */
async function loadHooks(name) {
  const local = /^\.{0,2}[/\\]/.test(name) || /\.[cm]?[jt]s$/.test(name) || existsSync(name);
  const mod = await import(local ? pathToFileURL(resolve(name)).href : name);
  const d = mod.default;
  const hooks = {
    authenticate: mod.authenticate ?? (typeof d === 'function' ? d : d?.authenticate),
    authorize: mod.authorize ?? (typeof d === 'function' ? undefined : d?.authorize),
  };
  for (const [k, f] of Object.entries(hooks)) {
    if (f !== undefined && typeof f !== 'function') throw new Error(`--auth ${name}: ${k} is not a function`);
  }
  if (!hooks.authenticate && !hooks.authorize) throw new Error(`--auth ${name}: no default export, authenticate or authorize`);
  return hooks;
}

const log = (m) => process.stderr.write(m + '\n');
let o;
try {
  o = parse(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`switchboard-relay: ${e.message}\n\n${usage()}`);
  process.exit(2);
}
if (o.help) {
  process.stdout.write(usage());
  process.exit(0);
}
const port = Number(o.port ?? 8090);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`switchboard-relay: --port ${o.port}: not a port\n`);
  process.exit(2);
}
const host = o.host ?? '127.0.0.1';
const db = o.db ?? o.journal ?? null;
if (db && o.redis) {
  process.stderr.write('switchboard-relay: --db and --redis: one store only\n');
  process.exit(2);
}
const presenceTtlMs = o['presence-ttl-ms'] === undefined ? undefined : Number(o['presence-ttl-ms']);
if (presenceTtlMs !== undefined && !(presenceTtlMs >= 100)) {
  process.stderr.write(`switchboard-relay: --presence-ttl-ms ${o['presence-ttl-ms']}: at least 100\n`);
  process.exit(2);
}

let target;
try {
  // The server entry imports ws (a peer dependency): loaded only now, so
  // --help and argument errors work without it.
  const { Relay, SqliteStore, createEchoServer } = await import('./index.mjs').catch((e) => {
    if (e?.code === 'ERR_MODULE_NOT_FOUND' && /'ws'/.test(e.message)) throw new Error('the relay needs the peer dependency ws: npm install ws');
    throw e;
  });
  target = o.echo
    ? createEchoServer()
    : await Relay.create({
      ...limits(o),
      store: db ? await SqliteStore.open(db) : undefined,
      redis: o.redis ? { url: o.redis, presenceTtlMs } : undefined,
      allowedOrigins: o['allowed-origin'],
      ...(o.auth ? await loadHooks(o.auth) : {}),
      log,
      onRequest: ({ data }) => data,
    });
} catch (e) {
  process.stderr.write(`switchboard-relay: ${e?.message || e}\n`);
  process.exit(1);
}

const server = createServer((req, res) => {
  if (target.handleRequest?.(req, res)) return; // the HTTP transport (the relay's, not the echo's)
  res.writeHead(426, { 'content-type': 'text/plain' });
  res.end('WebSocket or the switchboard HTTP transport only\n');
});
server.on('upgrade', (req, socket, head) => target.handleUpgrade(req, socket, head));
server.on('error', (e) => {
  process.stderr.write(`switchboard-relay: ${e.message}\n`);
  process.exit(1);
});
server.listen(port, host, () => {
  const { port: p } = server.address();
  log(`switchboard-relay: ${o.echo ? 'echo' : 'relay'} on ws://${host.includes(':') ? `[${host}]` : host}:${p}/` +
    (o.echo ? '' : `, origins: same-origin${o['allowed-origin'].map((x) => ` + ${x}`).join('')}, auth: ${o.auth || 'none'}, store: ${db || (o.redis ? `redis ${o.redis}` : 'memory')}`));
  process.stdout.write(JSON.stringify({ port: p }) + '\n');
});
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  server.close();
  try { await target.close(); } catch (e) { log(`switchboard-relay: closing: ${e?.message || e}`); }
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
