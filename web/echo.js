// Socket in fallback mode: the dev server's /echo endpoint picks no
// subprotocol, so Socket sends plain messages (see docs/socket.md).
import { init, Socket } from '/js/index.js';
import { logLine } from '/web/ui.js';

const $ = (id) => document.getElementById(id);
const log = $('log');
await init();
const sock = new Socket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/echo`, {
  binaryType: 'arraybuffer',
  reconnect: { minDelay: 300, maxDelay: 8000 },
});
sock.addEventListener('statechange', (e) => { $('state').textContent = `${e.state} (${e.reason})`; });
sock.addEventListener('open', () => { $('mode').textContent = `mode: ${sock.mode}`; logLine(log, `open, protocol "${sock.protocol}" → ${sock.mode} mode`); });
sock.addEventListener('reconnecting', (e) => logLine(log, `reconnecting in ${Math.round(e.delay)} ms (attempt ${e.attempt})`, 'bad'));
sock.addEventListener('message', (e) => {
  if (typeof e.data === 'string') logLine(log, `← text: ${e.data}`, 'ok');
  else logLine(log, `← ${e.data.byteLength} bytes: ${Array.from(new Uint8Array(e.data), (b) => b.toString(16).padStart(2, '0')).join(' ')}`, 'ok');
});
$('send').addEventListener('click', () => { sock.send($('text').value); logLine(log, `→ text: ${$('text').value}`); });
$('bin').addEventListener('click', () => {
  const b = crypto.getRandomValues(new Uint8Array(16));
  sock.send(b);
  logLine(log, `→ 16 bytes`);
});
setInterval(() => { $('queued').textContent = `queued: ${sock.stats().queued}`; }, 500);
