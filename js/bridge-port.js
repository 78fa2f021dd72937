// Port peers of the bridge (MessagePort, Worker; docs/bridge.md): the
// channel is private already, so the handshake is a symmetric nonce
// exchange over it.
import { BM_SYN } from './constants.js';
import { Remote } from './bridge-remote.js';

export class PortPeer extends Remote {
  constructor(port, opts, kind) {
    super(kind, opts);
    this.origins = [];
    this._permanent = true; // a lost port does not come back
    this._setPort(port);
  }

  start() {
    const ready = this._whenReady();
    this.ep = this.hub.open(this, this.opts.channel, null, []);
    this._restart();
    return ready;
  }

  _restart() {
    if (!this.port) return; // a port does not come back
    this.hub.events(this._offer());
    this.port.postMessage([BM_SYN, 0, this.myNonce]);
  }

  _handshake() {}
}
