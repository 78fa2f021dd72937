// The servers of bench/socket.mjs, in a child process of their own so the
// bench can kill -9 it and start it again on the same port:
//
//   /relay      the reference relay (switchboard.v1, over WebSocket and over
//               HTTP); --db FILE keeps its sessions in SQLite, so a restarted
//               relay resumes them
//   /echo       a plain `ws` echo server (raw WebSocket and partysocket)
//   /socket.io  a socket.io 4 server: 'msg' is echoed back as 'msg', 'req'
//               is answered through the ack callback
//
//   node bench/lib/socket-server.mjs [--port 0] [--db FILE] [--allowed-origin ORIGIN]...
//
// --allowed-origin: the page's origin (the dev server is another port, so
// another origin, and the relay refuses other origins with a 403).
//
// Started with an IPC channel (child_process.fork): sends
// {ready: true, port, at} once listening (at = this process's wall clock,
// performance.timeOrigin + now, ms), and answers {stats: true} with
// {bytes}: TCP bytes read + written by every connection this process has
// accepted so far (live ones and closed ones), i.e. every byte on the wire
// above TCP: HTTP upgrades, WebSocket frame headers and masks, protocol
// framing, acks, pings.
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Server } from 'socket.io';
import { Relay } from '../../js/server/relay.mjs';
import { SqliteStore } from '../../js/server/store.mjs';
import { createEchoServer } from '../../js/server/echo.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const db = opt('db', null);
const allowedOrigins = args.flatMap((a, i) => (a === '--allowed-origin' ? [args[i + 1]] : []));

const relay = await Relay.create({ allowedOrigins, store: db ? await SqliteStore.open(db) : undefined, onRequest: ({ data }) => data });
const echo = createEchoServer();
const http = createServer((req, res) => {
  if (relay.handleRequest(req, res)) return; // the relay's HTTP transport (bench/socket-http.mjs)
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});
let closedBytes = 0;
const live = new Set();
http.on('connection', (sock) => {
  live.add(sock);
  sock.on('close', () => {
    live.delete(sock);
    closedBytes += sock.bytesRead + sock.bytesWritten;
  });
});
http.on('upgrade', (req, socket, head) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path.startsWith('/relay')) relay.handleUpgrade(req, socket, head);
  else if (path.startsWith('/echo')) echo.handleUpgrade(req, socket, head);
  // /socket.io is engine.io's own upgrade listener
});
const io = new Server(http, { serveClient: false, destroyUpgrade: false, cors: { origin: true } });
io.on('connection', (s) => {
  s.on('msg', (m) => s.emit('msg', m));
  s.on('req', (m, ack) => ack(m));
});

http.listen(Number(opt('port', 0)), '127.0.0.1', () => {
  process.send?.({ ready: true, port: http.address().port, at: performance.timeOrigin + performance.now() });
});
process.on('message', (m) => {
  if (m?.stats) {
    let bytes = closedBytes;
    for (const s of live) bytes += s.bytesRead + s.bytesWritten;
    process.send({ bytes });
  }
});
process.on('disconnect', () => process.exit(0));
