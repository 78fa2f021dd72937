// The server side of bench/relay.mjs, one process per server so the two
// never share a heap:
//
//   node --expose-gc bench/lib/relay-server.mjs --kind sb   the reference relay (js/server/relay.mjs)
//   node --expose-gc bench/lib/relay-server.mjs --kind sio  a socket.io 4 server
//   node --expose-gc bench/lib/relay-server.mjs --kind ws   a bare `ws` server that
//        holds its sockets and nothing else: the floor under both (Node's
//        socket, the upgrade, ws's objects)
//
// Both on 127.0.0.1, any free port. socket.io: a client's 'join' (room) puts
// it in that room, its 'pub' (object) is emitted as 'msg' to the others in its
// room (socket.to(room): not back to the sender, as the relay does). The
// relay: its defaults except the caps raised to hold the idle connections
// and the hello deadline (SB_RELAY_OPTS='{"compress": false}' adds options).
//
// Started with an IPC channel (child_process.fork): sends {ready, port} once
// listening and answers {mem: true} with {rss, heapUsed, external,
// arrayBuffers, wasm, wasmInUse, sockets} after two full GCs (wasm: the relay
// core's linear memory, wasmInUse: that minus what its allocator has free;
// 0 for socket.io), and {cpu: true} with {us}: this process's CPU time so far
// (user + system, µs).
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { WebSocketServer } from 'ws';
import { Relay } from '../../js/server/relay.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const kind = opt('kind', 'sb');

const http = createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
let sockets = 0;
http.on('connection', (s) => { sockets++; s.on('close', () => { sockets--; }); });

let relay = null;
if (kind === 'sb') {
  relay = await Relay.create({
    // SWITCHBOARD_RELAY_WASM picks a relay core built elsewhere (a profiling build, with names).
    wasm: process.env.SWITCHBOARD_RELAY_WASM ? { wasmURL: new URL(process.env.SWITCHBOARD_RELAY_WASM, `file://${process.cwd()}/`) } : undefined,
    maxConnections: 20000, maxConnectionsPerAddress: 20000, maxSessions: 20000, maxMemory: 2 ** 31,
    helloTimeoutMs: 120e3, // a room of 1,000 filling keeps it busy (bench/relay.mjs)
    ...JSON.parse(process.env.SB_RELAY_OPTS || '{}'),
    log: (m) => { if (!/closing .* (4000|1000|1001|1005|1006)/.test(m)) process.stderr.write(`${m}\n`); },
  });
  http.on('upgrade', (req, socket, head) => relay.handleUpgrade(req, socket, head));
} else if (kind === 'ws') {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => { ws.on('message', () => {}); }));
} else {
  const io = new Server(http, { serveClient: false, transports: ['websocket'] });
  io.on('connection', (s) => {
    let room = null;
    s.on('join', (r) => { room = String(r); s.join(room); });
    s.on('pub', (m) => { if (room) s.to(room).emit('msg', m); });
  });
}

http.listen(0, '127.0.0.1', () => process.send({ ready: true, port: http.address().port }));
process.on('message', (m) => {
  if (m?.cpu) {
    const u = process.cpuUsage();
    process.send({ us: u.user + u.system });
    return;
  }
  if (!m?.mem) return;
  globalThis.gc();
  globalThis.gc();
  const u = process.memoryUsage();
  const wasm = relay ? relay.core.memory.buffer.byteLength : 0;
  const wasmInUse = relay ? wasm - (relay.core.fn.emmalloc_free_dynamic_memory() >>> 0) : 0;
  process.send({ rss: u.rss, heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers, wasm, wasmInUse, sockets, stats: relay ? relay.stats : null });
});
process.on('disconnect', () => process.exit(0));
