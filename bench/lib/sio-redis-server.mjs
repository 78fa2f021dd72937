// The socket.io side of bench/relay-redis.mjs: a socket.io 4 server with the
// Redis adapter (@socket.io/redis-adapter on ioredis), so rooms span every
// process on the same Redis. 'join' puts the socket in a room, 'msg' goes to
// the room's other members (socket.to(room)), as the relay fans out.
//
//   node bench/lib/sio-redis-server.mjs --redis redis://127.0.0.1:6379 [--port 0]
// Prints {"port": N} once listening.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const url = opt('redis', null);
const http = createServer();
const io = new Server(http, { serveClient: false });
if (url) {
  const pub = new Redis(url);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
}
io.on('connection', (s) => {
  s.on('join', (room, ack) => { s.join(room); ack?.(); });
  s.on('msg', (room, m) => s.to(room).emit('msg', m));
});
http.listen(Number(opt('port', 0)), '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: http.address().port }) + '\n'));
process.on('SIGTERM', () => process.exit(0));
