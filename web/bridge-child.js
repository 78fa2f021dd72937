// Child side of the bridge demo (served from the second origin). Its
// allowlist comes from its own server, never from the URL it was embedded with.
import { connectParent, BRIDGE_MARK } from '/js/bridge.js';
import { logLine } from '/web/ui.js';

const $ = (id) => document.getElementById(id);
const origins = await (await fetch('/api/bridge/origins')).json();
$('childOrigin').textContent = location.origin;

if (new URLSearchParams(location.search).has('spoof')) {
  // A hostile frame: it tries the handshake and a direct call on the window.
  $('status').textContent = 'spoofing frame';
  $('status').className = 'badge bad';
  document.querySelector('.row').remove();
  $('received').remove();
  const forge = () => {
    parent.postMessage({ [BRIDGE_MARK]: 1, t: 'hello', ch: 'demo', n: 'f'.repeat(32) }, '*');
    parent.postMessage({ [BRIDGE_MARK]: 1, t: 'call', ch: 'demo', name: 'now' }, '*');
  };
  forge();
  setTimeout(forge, 1000);
} else {
  let received = 0;
  const setStatus = (t, cls) => { $('status').textContent = t; $('status').className = `badge ${cls}`; };
  const parentRemote = await connectParent({
    allowedOrigins: [origins.parent],
    channel: 'demo',
    heartbeatInterval: 500,
    heartbeatTimeout: 2000,
    methods: {
      stats: () => ({ origin: location.origin, received, loadedAt: performance.timeOrigin }),
      slow: () => new Promise((resolve) => setTimeout(() => resolve('done after 2 s'), 2000)),
    },
    onReject: (r) => logLine($('received'), `ignored ${r.type || 'message'} from ${r.origin}: ${r.reason}`, 'bad'),
  });
  setStatus('connected', 'ok');
  parentRemote.addEventListener('disconnect', () => setStatus('disconnected', 'bad'));
  parentRemote.addEventListener('connect', () => setStatus('connected', 'ok'));
  parentRemote.on('message', (m) => {
    received++;
    logLine($('received'), `parent: ${m.content}  (${m.timestamp})`);
  });
  $('reply').addEventListener('click', async () => {
    const content = $('replyInput').value;
    if (!content) return;
    parentRemote.emit('reply', { content, timestamp: await parentRemote.call('now') });
    logLine($('received'), `me: ${content}`);
    $('replyInput').value = '';
  });
}
