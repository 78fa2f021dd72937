// Parent side of the bridge demo. The seed posted with '*' and rendered with
// innerHTML; here the child is pinned by window and origin during a nonce
// handshake, traffic runs over a private MessageChannel, and everything shown
// goes through textContent.
import { connectFrame, bridgeMonitor } from '/js/bridge.js';
import { el, logLine, Sparkline, median } from '/web/ui.js';

const $ = (id) => document.getElementById(id);
const origins = await (await fetch('/api/bridge/origins')).json();
$('parentOrigin').textContent = location.origin;

let remote = null;
let frame = null;
let spoofCount = 0;

function setStatus(text, cls = '') {
  $('status').textContent = text;
  $('status').className = `badge ${cls}`;
}

function logSpoof(r) {
  spoofCount++;
  $('spoofCount').textContent = String(spoofCount);
  logLine($('spoofs'), `ignored ${r.messageType || 'message'} on "${r.channel ?? '?'}" from ${r.origin}: ${r.reason}`, 'bad');
}
// Messages for channels nobody here listens on are reported too.
bridgeMonitor.addEventListener('reject', (e) => { if (e.reason === 'no-channel') logSpoof(e); });

// What the child may call on the parent: only these, never anything inherited.
const methods = {
  now: () => new Date().toISOString(),
};

async function mount() {
  remote?.close();
  frame?.remove();
  const childOrigin = origins[$('placement').value];
  frame = el('iframe', { src: `${childOrigin}/web/bridge-child.html`, title: 'child frame', style: 'width:100%;height:230px;border:1px solid #d8dde3;border-radius:6px' });
  $('frameBox').replaceChildren(frame);
  setStatus('handshake…');
  try {
    remote = await connectFrame(frame, {
      origin: childOrigin, channel: 'demo', methods, heartbeatInterval: 500, heartbeatTimeout: 2000,
      onReject: (r) => { if (r.reason !== 'no-channel') logSpoof(r); },
    });
  } catch (e) {
    setStatus(`${e.code}: ${e.message}`, 'bad');
    return;
  }
  setStatus(`connected to ${childOrigin}`, 'ok');
  remote.on('reply', (m) => { tick.events++; logLine($('messages'), `child: ${m.content}  (${m.timestamp})`); });
  remote.addEventListener('disconnect', (e) => setStatus(`disconnected (${e.reason})`, 'bad'));
  remote.addEventListener('connect', () => setStatus(`connected to ${childOrigin} again`, 'ok'));
}

$('send').addEventListener('click', () => {
  const content = $('messageInput').value;
  if (!content || !remote?.isConnected) return;
  remote.emit('message', { content, timestamp: new Date().toISOString() });
  tick.events++;
  logLine($('messages'), `me: ${content}`);
  $('messageInput').value = '';
});

// Live stats: every call is timed; once a second the charts get the calls
// completed, their median round trip and the events that crossed.
const tick = { calls: 0, events: 0, rtts: [] };
const charts = {
  rate: new Sparkline($('chartRate'), { label: 'calls/s' }),
  latency: new Sparkline($('chartLatency'), { label: 'round trip p50, ms', color: '#15803d' }),
  events: new Sparkline($('chartEvents'), { label: 'events/s', color: '#b45309' }),
};
async function timedCall(name) {
  const t0 = performance.now();
  const v = await remote.call(name);
  tick.calls++;
  tick.rtts.push(performance.now() - t0);
  return v;
}
setInterval(() => {
  charts.rate.push(tick.calls);
  charts.latency.push(median(tick.rtts));
  charts.events.push(tick.events);
  Object.assign(tick, { calls: 0, events: 0, rtts: [] });
}, 1000);
setInterval(() => { if (remote?.isConnected) timedCall('stats').catch(() => {}); }, 250);

$('burst').addEventListener('click', async () => {
  if (!remote?.isConnected) return;
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: 1000 }, () => timedCall('stats')));
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  $('burstResult').textContent = `${ok} of 1,000 calls answered in ${(performance.now() - t0).toFixed(0)} ms`;
});

async function callAndLog(name) {
  const t0 = performance.now();
  try {
    const v = await timedCall(name);
    logLine($('messages'), `child.${name}() → ${JSON.stringify(v)}  in ${(performance.now() - t0).toFixed(2)} ms`, 'ok');
  } catch (e) {
    logLine($('messages'), `child.${name}() rejected: ${e.code || e.name}: ${e.message}`, 'bad');
  }
}
$('rpc').addEventListener('click', () => callAndLog('stats'));
$('slow').addEventListener('click', () => callAndLog('slow'));
$('reload').addEventListener('click', () => { if (frame) frame.src = frame.src; });
$('remove').addEventListener('click', () => { frame?.remove(); });
$('placement').addEventListener('change', mount);

function addSpoof(origin) {
  const f = el('iframe', { src: `${origin}/web/bridge-child.html?spoof=1`, title: 'spoofing frame', style: 'width:100%;height:60px;border:1px dashed #b91c1c' });
  $('spoofs').before(f);
}
$('spoofSame').addEventListener('click', () => addSpoof(origins[$('placement').value]));
$('spoofForeign').addEventListener('click', () => addSpoof($('placement').value === 'child' ? origins.crossSiteChild : origins.child));

mount();
