// Port peers of the bridge (MessagePort, Worker; docs/bridge.md): the
// channel is private already, so the handshake is a symmetric nonce
// exchange over it (SYN/ACK, decided by the router).
import { BR_PORT } from './constants.js';
import { Remote } from './bridge-remote.js';

export class PortPeer extends Remote {
  constructor(port, opts, kind) {
    super(kind, opts);
    this._setPort(port);
  }

  start() { return super.start(BR_PORT); }
}
