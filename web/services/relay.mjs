// Dev-server service: the reference relay at ws://<host>/relay (switchboard.v1,
// rooms from hello.room) and a plain echo server at ws://<host>/echo (what any
// non-switchboard server looks like to Socket: fallback mode).
import { Relay } from '../../js/server/relay.mjs';
import { createEchoServer } from '../../js/server/echo.mjs';

export default async function install(ctx) {
  const echo = createEchoServer();
  let relay = null;
  try {
    relay = await Relay.create({ log: ctx.log });
  } catch (e) {
    // A missing or stale wasm build must not take the whole dev server down.
    ctx.log('relay service disabled:', e.message);
  }
  ctx.route('/relay', (req, res) => (relay ? relay.handleRequest(req, res) : false));
  ctx.upgrade('/relay', (req, socket, head) => (relay ? relay.handleUpgrade(req, socket, head) : socket.destroy()));
  ctx.upgrade('/echo', (req, socket, head) => echo.handleUpgrade(req, socket, head));
  return {
    close() {
      relay?.close();
      echo.close();
    },
  };
}
