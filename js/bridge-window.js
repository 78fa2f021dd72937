// Window peers of the bridge (docs/bridge.md): the parent side (an iframe
// or a popup: offer or probe, welcome a hello) and the child side (hello,
// take an offer or a welcome). The window carries the handshake only; the
// calls run on the private port it hands over.
import { SwitchboardError } from './errors.js';
import { BM_BYE, BM_READY, ROUTER_NONCE_MAX, ORIGIN_MAX, BRIDGE_MARK, BRIDGE_VERSION } from './constants.js';
import { encoder } from './bridge-hub.js';
import { Remote } from './bridge-remote.js';


function targetOrigins(hub, remote, win, guess) {
  // postMessage needs exact origins: the exact allowlist entries, plus the
  // guessed origin of the other document if the allowlist (in C) admits it.
  const out = [];
  for (const o of remote.origins) {
    // '*' when written; and an opaque ('null') peer can only be reached that way
    if (o === '*' || o === 'null') { out.push('*'); continue; }
    const room = o.length * 3;
    // a normalized origin is at most ORIGIN_MAX bytes, then its NUL
    const p = hub.c.scratch(room + ORIGIN_MAX + 1);
    const n = encoder.encodeInto(o, hub.c.heap().subarray(p, p + room)).written;
    const len = hub.fn.sb_origin_normalize(p, n, p + room, ORIGIN_MAX + 1);
    if (len > 0) out.push(hub.c.readString(p + room, len));
  }
  if (guess && !out.includes(guess) && hub.allows(remote.opts.channel, win, guess)) out.push(guess);
  return [...new Set(out)];
}

function originOf(url) {
  try { return new URL(url, location.href).origin; } catch { return ''; }
}

export class WindowParent extends Remote {
  constructor(win, opts, kind, gone, srcUrl) {
    super(kind, opts);
    this.win = win;
    this.origins = toList(opts.origin ?? opts.allowedOrigins);
    // postMessage cannot address an opaque origin: the port would go to '*',
    // i.e. to whatever document the frame shows by then. Only when asked.
    if (this.origins.includes('null') && opts.opaqueTarget !== '*') throw new SwitchboardError('INVALID', 'origin "null" sends the port to "*": pass opaqueTarget: "*" to accept that');
    this._gone = gone;
    this.srcUrl = srcUrl;
  }

  start() {
    const ready = this._whenReady();
    this.ep = this.hub.open(this, this.opts.channel, this.win, this.origins);
    this._restart();
    return ready;
  }

  _restart() {
    const targets = targetOrigins(this.hub, this, this.win, originOf(this.srcUrl?.() || ''));
    this.peerNonce = '';
    if (targets.length === 1 && targets[0] !== '*') {
      // One exact origin: offer the port right away, in case the child loaded
      // before we listened (saves its hello and our welcome). If the child is
      // not there yet, its hello will get a welcome on a new port instead.
      this.hub.events(this._offer());
      this.peerOrigin = targets[0];
      const mc = new MessageChannel();
      this._setPort(mc.port1);
      try {
        this.win.postMessage({ [BRIDGE_MARK]: BRIDGE_VERSION, t: 'offer', ch: this.opts.channel, m: this.myNonce }, targets[0], [mc.port2]);
      } catch { /* closed */ }
      return;
    }
    // Several candidate origins: a port can be transferred only once, so ask
    // the child to say hello instead.
    for (const o of targets) {
      try { this.win.postMessage({ [BRIDGE_MARK]: BRIDGE_VERSION, t: 'probe', ch: this.opts.channel }, o); } catch { /* closed */ }
    }
  }

  _handshake(ev, d, origin) {
    if (d.t !== 'hello' || typeof d.n !== 'string') {
      this.hub.report(this, 'unexpected', origin, d);
      return;
    }
    // The same hello twice (the child's own and the one our probe asked for):
    // the welcome is already on its way. A reloaded child has a new nonce.
    if (d.n === this.peerNonce) return;
    this.peerNonce = d.n;
    this.peerOrigin = origin;
    // A hello while connected is a reload of the child: start over.
    const wasConnected = this.connected;
    this.connected = false;
    this._dropPort();
    this.hub.events(this._offer());
    if (wasConnected) this._disconnected('reload');
    const mc = new MessageChannel();
    this._setPort(mc.port1);
    this.win.postMessage({ [BRIDGE_MARK]: BRIDGE_VERSION, t: 'welcome', ch: this.opts.channel, n: d.n.slice(0, ROUTER_NONCE_MAX), m: this.myNonce },
      origin === 'null' ? this.opts.opaqueTarget : origin, [mc.port2]);
  }
}

export class WindowChild extends Remote {
  constructor(win, opts) {
    super('parent', opts);
    this.win = win;
    this.origins = toList(opts.allowedOrigins ?? opts.origin);
  }

  start() {
    const ready = this._whenReady();
    this.ep = this.hub.open(this, this.opts.channel, this.win, this.origins);
    this.onHide = () => { if (this.port) this.port.postMessage([BM_BYE, 0]); };
    addEventListener('pagehide', this.onHide);
    this._cleanup = () => removeEventListener('pagehide', this.onHide);
    this._restart();
    return ready;
  }

  _guess() {
    const ao = typeof location !== 'undefined' && location.ancestorOrigins;
    if (ao && ao.length && this.win === parent) return ao[0];
    return originOf(document.referrer || '');
  }

  _restart(again) {
    // A probe repeats our hello with the same nonce; anything else starts over.
    if (!again || !this.myNonce) this.hub.events(this._offer());
    for (const o of targetOrigins(this.hub, this, this.win, this._guess())) {
      try { this.win.postMessage({ [BRIDGE_MARK]: BRIDGE_VERSION, t: 'hello', ch: this.opts.channel, n: this.myNonce }, o); } catch { /* gone */ }
    }
  }

  _handshake(ev, d, origin) {
    if (d.t === 'probe' && !this.connected) {
      this._restart(true);
      return;
    }
    if (d.t === 'offer' && !this.connected && ev.ports.length === 1 && typeof d.m === 'string') {
      // The parent's port, unasked: echo its nonce with ours; we are
      // connected once it echoes ours back (BM_ACK). A welcome that answers our
      // hello still wins (race with the parent's own offer).
      this._setPort(ev.ports[0]);
      this.peerOrigin = origin;
      this.port.postMessage([BM_READY, 0, d.m.slice(0, ROUTER_NONCE_MAX), this.myNonce]);
      return;
    }
    if (d.t !== 'welcome' || this.connected || ev.ports.length !== 1 || typeof d.m !== 'string') {
      this.hub.report(this, 'unexpected', origin, d);
      return;
    }
    if (!this._confirm(d.n, origin)) return;
    this._setPort(ev.ports[0]);
    this.peerOrigin = origin;
    this.port.postMessage([BM_READY, 0, d.m.slice(0, ROUTER_NONCE_MAX)]);
    this._connected();
  }
}

export function toList(v) {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}
