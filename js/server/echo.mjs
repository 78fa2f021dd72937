// A plain WebSocket echo server: no subprotocol, text and binary sent back as
// they came. It is what "any other server" looks like to Socket (fallback mode).
import { WebSocketServer } from 'ws';

export function createEchoServer(opts = {}) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload ?? 1 << 20, perMessageDeflate: false,
    // Pick no subprotocol, like a server that has never heard of switchboard.
    handleProtocols: () => false });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
  return {
    wss,
    handleUpgrade(req, socket, head) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}
