// The server role of a session (src/session.h): js/session.js's driver on
// the C constructor and calls that only the relay's core exports
// (SB_RELAY_EXPORT), so the browser glue never names them and no browser
// core links the server role.
import { Session } from '../session.js';
import { SESSION_SERVER, FRAME_F_BINARY } from '../constants.js';

export class ServerSession extends Session {
  create(seed) { return this.fn.sb_session_create(SESSION_SERVER, seed); }

  respond(id, isError, binary, data, now) {
    const [p, n] = this.put(data);
    return this.check(this.fn.sb_session_respond(this.h, id, isError ? 1 : 0, binary ? FRAME_F_BINARY : 0, p, n, now), 'respond');
  }
}
