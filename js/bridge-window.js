// Window peers of the bridge (docs/bridge.md): the parent side (an iframe
// or a popup) and the child side. The router decides every step of the
// handshake (src/router.c); these say which window it runs on and to which
// origins its messages may go. The window carries the handshake only; the
// calls run on the private port it hands over.
import { SwitchboardError } from './errors.js';
import { BM_BYE, BR_PARENT, BR_CHILD } from './constants.js';
import { Remote } from './bridge-remote.js';

function targetOrigins(hub, remote, win, guess) {
  // postMessage needs exact origins: the exact allowlist entries, as the
  // browser serializes them (the core refused at open what does not parse),
  // plus the guessed origin of the other document if the allowlist admits it.
  const out = [];
  for (const o of remote.origins) {
    // '*' when written; and an opaque ('null') peer can only be reached that way
    if (o === '*' || o === 'null') out.push('*');
    else if (!o.includes('*')) out.push(originOf(o));
  }
  if (guess && hub.allows(remote.opts.channel, win, guess)) out.push(guess);
  return [...new Set(out)].filter(Boolean);
}

function originOf(url) {
  try { return new URL(url, globalThis.location?.href).origin; } catch { return ''; }
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

  start() { return super.start(BR_PARENT); }

  _targets() { return targetOrigins(this.hub, this, this.win, originOf(this.srcUrl?.() || '')); }
}

export class WindowChild extends Remote {
  constructor(win, opts) {
    super('parent', opts);
    this.win = win;
    this.origins = toList(opts.allowedOrigins ?? opts.origin);
  }

  start() {
    this.onHide = () => { if (this.port) this.port.postMessage([BM_BYE, 0]); };
    addEventListener('pagehide', this.onHide);
    this._cleanup = () => removeEventListener('pagehide', this.onHide);
    return super.start(BR_CHILD);
  }

  _targets() {
    const ao = typeof location !== 'undefined' && location.ancestorOrigins;
    const guess = ao && ao.length && this.win === parent ? ao[0] : originOf(document.referrer || '');
    return targetOrigins(this.hub, this, this.win, guess);
  }
}

export function toList(v) {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}
