// Cross-document bridge: promise RPC and events between a page and its
// iframes, popups, workers and MessagePorts.
//
// The wasm router (src/router.c) decides: which endpoint a handshake message
// belongs to (channel + expected window + origin allowlist), whether a reply
// carries our nonce, which call ids are pending where and until when, when to
// ping and when a silent peer is lost. This file only moves JS values: it owns
// the windows, ports and timers, and holds argument/result values and promise
// callbacks by call id, so payloads keep structured-clone semantics and
// transferables. After the handshake everything runs over a private
// MessageChannel; the window is only ever used for the handshake.
//
// This file is the job's entry (switchboard/bridge): the connect functions.
// js/bridge-hub.js holds the router, js/bridge-remote.js a Remote,
// js/bridge-window.js and js/bridge-port.js the two kinds of peer.
import { init } from './core.js';
import { SwitchboardError } from './errors.js';
import { BRIDGE_MARK, BRIDGE_VERSION, BRIDGE_PORT } from './constants.js';
import { DEFAULTS } from './bridge-remote.js';
import { WindowParent, WindowChild, toList } from './bridge-window.js';
import { PortPeer } from './bridge-port.js';

export { CallOptions, Transfer, transfer, Remote } from './bridge-remote.js';
export { bridgeMonitor } from './bridge-hub.js';
export { BRIDGE_MARK };

/**
 * Parent side for an iframe.
 * @param {HTMLIFrameElement} iframe
 * @param {Partial<import('./bridge.d.ts').FrameOptions>} [opts]
 */
export async function connectFrame(iframe, opts = {}) {
  await init(opts.init);
  if (!iframe || !iframe.contentWindow) throw new SwitchboardError('INVALID', 'the iframe must be in the document');
  if (!toList(opts.origin).length) throw new SwitchboardError('INVALID', 'connectFrame needs `origin` (the allowlist; "*" only if you mean it)');
  const win = iframe.contentWindow;
  const gone = () => !iframe.isConnected || iframe.contentWindow !== win;
  const remote = new WindowParent(win, opts, 'frame', gone, () => iframe.src);
  return remote.start();
}

/**
 * Child side, inside an iframe or a popup (talks to window.parent or window.opener),
 * or inside a Worker (talks to the page that created it).
 * @param {import('./bridge.d.ts').ParentOptions & {origin?: string | string[]}} [opts]
 */
export function connectParent(opts = {}) {
  if (typeof window === 'undefined' && typeof self !== 'undefined' && typeof self.postMessage === 'function') {
    return connectFromWorker(opts);
  }
  return (async () => {
    await init(opts.init);
    const win = window.parent !== window ? window.parent : window.opener;
    if (!win) throw new SwitchboardError('INVALID', 'no parent or opener window');
    if (!toList(opts.allowedOrigins ?? opts.origin).length) throw new SwitchboardError('INVALID', 'connectParent needs `allowedOrigins`');
    return new WindowChild(win, opts).start();
  })();
}

function connectFromWorker(opts) {
  // Listen synchronously so the page's port is not dispatched before we are ready.
  const channel = opts.channel || DEFAULTS.channel;
  const got = new Promise((resolve) => {
    const onMsg = (ev) => {
      const d = ev.data;
      if (d && typeof d === 'object' && d[BRIDGE_MARK] === BRIDGE_VERSION && d.t === BRIDGE_PORT && d.ch === channel && ev.ports.length === 1) {
        self.removeEventListener('message', onMsg);
        resolve(ev.ports[0]);
      }
    };
    self.addEventListener('message', onMsg);
  });
  return (async () => {
    const [port] = await Promise.all([got, init(opts.init)]);
    return new PortPeer(port, opts, 'worker').start();
  })();
}

/**
 * Connect to a popup window (from window.open), a Worker, or a MessagePort.
 * @param {Window|Worker|MessagePort} endpoint
 */
export async function connect(endpoint, opts = {}) {
  await init(opts.init);
  if (typeof MessagePort !== 'undefined' && endpoint instanceof MessagePort) {
    return new PortPeer(endpoint, opts, 'port').start();
  }
  if (typeof Worker !== 'undefined' && endpoint instanceof Worker) {
    const mc = new MessageChannel();
    endpoint.postMessage({ [BRIDGE_MARK]: BRIDGE_VERSION, t: BRIDGE_PORT, ch: opts.channel || DEFAULTS.channel }, [mc.port2]);
    return new PortPeer(mc.port1, opts, 'worker').start();
  }
  if (endpoint && typeof endpoint.postMessage === 'function' && 'closed' in endpoint) {
    if (!toList(opts.origin).length) throw new SwitchboardError('INVALID', 'connect(window) needs `origin`');
    return new WindowParent(endpoint, opts, 'window', () => endpoint.closed, null).start();
  }
  throw new SwitchboardError('INVALID', 'connect() takes a Window, Worker or MessagePort');
}
