// A switchboard.v1 server side for tests that need a server which
// handshakes correctly and then misbehaves: a real server-role session
// greets and welcomes; after that the test writes what it likes.
import { createCore } from '../../js/core.js';
import { ServerSession } from '../../js/server/session.mjs';
import { WHOLE_CORE } from '../../js/server/core-path.mjs';
import { SEV_WRITE, SEV_HELLO, SEV_OPEN, SO_COMPRESS } from '../../js/constants.js';

// The relay's core, on a memory of its own: the server role is in no
// browser core (the glue's may be the whole runtime's or a job's).
const whole = await createCore({ wasmURL: WHOLE_CORE, memory: new WebAssembly.Memory({ initial: 16, maximum: 1024 }) });

/**
 * onOpen(session, write): after the welcome; write(bytes) sends raw bytes.
 * session.send() + frames(session) give a real frame to replay.
 */
export function handshake(ws, onOpen = () => {}, { compress = true } = {}) {
  const s = new ServerSession([[SO_COMPRESS, compress ? 1 : 0]], undefined, whole);
  let open = false;
  const pump = () => {
    s.fn.sb_session_flush(s.h, Date.now());
    s.drain((t, e) => {
      if (t === SEV_WRITE) ws.send(e.data.slice());
      else if (t === SEV_HELLO) { s.setId('test-session-0001'); s.fn.sb_session_accept(s.h, Date.now()); }
      else if (t === SEV_OPEN) open = true;
    });
  };
  s.fn.sb_session_transport_open(s.h, Date.now(), 1);
  pump();
  ws.on('message', (d, bin) => {
    if (open || !s.h) return;
    s.recv(new Uint8Array(d), !bin, Date.now());
    pump();
    if (open) { pump(); onOpen(s); }
  });
  ws.on('close', () => s.destroy());
  ws.on('error', () => {});
}

/** What the session would write now, as transport messages (not sent). */
export function frames(s) {
  const out = [];
  s.fn.sb_session_flush(s.h, Date.now());
  s.drain((t, e) => { if (t === SEV_WRITE) out.push(e.data.slice()); });
  return out;
}
