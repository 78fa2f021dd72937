#!/usr/bin/env node
// Standalone relay process (tests spawn it so they can kill -9 and restart it):
//   node js/server/relay-cli.mjs [--port 8090] [--host 127.0.0.1] [--db file] [--echo]
// --db keeps the sessions in an SQLite file (needs better-sqlite3) so a
// restarted relay resumes them; --journal is an older name for it.
// Serves the relay on every path, or with --echo the plain echo server.
// Prints one JSON line {"port": N} on stdout once listening.
import { createServer } from 'node:http';
import { Relay } from './relay.mjs';
import { SqliteStore } from './store.mjs';
import { createEchoServer } from './echo.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const port = Number(opt('port', 8090));
const host = opt('host', '127.0.0.1');
const db = opt('db', opt('journal', null));
const log = (m) => process.stderr.write(m + '\n');

const target = args.includes('--echo')
  ? createEchoServer()
  : await Relay.create({
    store: db ? await SqliteStore.open(db) : undefined,
    log,
    onRequest: ({ data }) => data,
  });

const server = createServer((req, res) => {
  res.writeHead(426, { 'content-type': 'text/plain' });
  res.end('WebSocket only\n');
});
server.on('upgrade', (req, socket, head) => target.handleUpgrade(req, socket, head));
server.listen(port, host, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
const stop = () => { target.close(); server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
