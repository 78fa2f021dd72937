// The seeds' WebSocket chat room, rebuilt on Socket + the reference relay
// (web/services/relay.mjs). Presence (join/leave, user list) arrives on
// channel 1; chat messages are JSON on channel 0.
import { init, Socket } from '/js/index.js';
import { el, Sparkline } from '/web/ui.js';

const $ = (id) => document.getElementById(id);
const messages = $('messages');
let sock = null;
let lastStats = null; // the previous tick's stats, for rates
let shared = false;

// One outbox per tab that survives reloads: sessionStorage keeps the key for
// this tab only, so two tabs never share (and fight over) one session.
function persistKey() {
  let k = sessionStorage.getItem('chat-persist-key');
  if (!k) {
    k = `chat-${crypto.randomUUID()}`;
    sessionStorage.setItem('chat-persist-key', k);
  }
  return k;
}

function line(text, cls) {
  const node = el('div', { class: cls }, text);
  messages.append(node);
  while (messages.childElementCount > 500) messages.firstElementChild.remove();
  messages.scrollTop = messages.scrollHeight;
  return node;
}

function join() {
  leave();
  const name = $('name').value.trim() || `guest${Math.floor(Math.random() * 1000)}`;
  $('name').value = name;
  localStorage.setItem('chat-name', name);
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/relay`;
  const room = $('roomName').value.trim() || 'lobby';
  shared = $('share').checked;
  // Shared: the tabs of this name and room hold one connection (docs/socket.md, "Sharing");
  // the relay echoes what one tab sent, so every tab shows it. Else one outbox per tab.
  sock = new Socket(url, {
    ...(shared ? { share: `chat:${room}:${name}` } : {}),
    hello: { room, user: name, echo: shared },
    queue: { persist: shared ? null : persistKey(), maxMessages: 5000, overflow: 'drop-oldest' },
    reconnect: { minDelay: 300, maxDelay: 10000 },
    heartbeat: { interval: 10000, timeout: 5000 },
  });
  sock.addEventListener('statechange', (e) => {
    $('state').textContent = e.state;
    if (e.state === 'open') $('banner').hidden = true;
  });
  sock.addEventListener('open', () => {
    line(`connected to ${sock.url}`, 'system');
    for (const n of messages.querySelectorAll('.queued')) n.classList.remove('queued');
  });
  sock.addEventListener('reconnecting', (e) => {
    $('banner').hidden = false;
    $('banner').textContent = `Connection lost (${e.reason}). Reconnecting in ${(e.delay / 1000).toFixed(1)} s — attempt ${e.attempt}. Messages you send now are kept and delivered once it is back.`;
  });
  sock.addEventListener('drop', (e) => line(`dropped (queue full): ${e.data}`, 'system'));
  sock.addEventListener('error', (e) => console.warn('socket:', e.error?.code, e.error?.message));
  sock.addEventListener('close', (e) => line(`closed (${e.code} ${e.reason})`, 'system'));
  sock.addEventListener('message', (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    if (e.channel === 1) {
      if (m.type === 'join') line(`${m.user} joined`, 'system');
      else if (m.type === 'leave') line(`${m.user} left`, 'system');
      if (m.users) $('users').replaceChildren(...m.users.map((u) => el('li', {}, u)));
    } else if (m.type === 'message') {
      // The name the relay stamped (e.from), not one a sender could write into its message.
      line(`${e.from}: ${m.text}`, shared && e.from === $('name').value ? 'me' : 'message');
    }
  });
  // A new Socket counts from zero: rates start now, not at the first tick.
  lastStats = { received: 0, sent: 0, compressionSaved: 0, t: performance.now() };
}

function leave() {
  if (sock) sock.close(1000, 'left the room');
  sock = null;
  $('users').replaceChildren();
  $('banner').hidden = true;
}

function say(text) {
  if (!sock || !text) return;
  const queued = sock.readyState !== Socket.OPEN;
  sock.send(JSON.stringify({ type: 'message', text, ts: Date.now() }));
  if (!shared) line(`me: ${text}`, queued ? 'me queued' : 'me'); // shared: the relay's echo shows it in every tab
}

$('send').addEventListener('click', () => { say($('text').value.trim()); $('text').value = ''; });
$('text').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('send').click(); });
$('burst').addEventListener('click', () => {
  if (!sock) return;
  for (let i = 0; i < 500; i++) sock.send(JSON.stringify({ type: 'message', text: `burst message ${i} — the quick brown fox jumps over the lazy dog`, ts: Date.now() }));
  if (!shared) line('me: (sent a burst of 500 messages)', 'me');
});
$('join').addEventListener('click', join);
$('leave').addEventListener('click', leave);

const charts = {
  rate: new Sparkline($('chartRate'), { label: 'messages/s in' }),
  saved: new Sparkline($('chartSaved'), { label: 'bytes saved/s', color: '#15803d' }),
  depth: new Sparkline($('chartDepth'), { label: 'queue depth', color: '#b45309' }),
  rtt: new Sparkline($('chartRtt'), { label: 'ping RTT, ms', color: '#7c3aed' }),
};

setInterval(() => {
  if (!sock) return;
  const s = sock.stats();
  const dt = (performance.now() - lastStats.t) / 1000;
  const rateIn = Math.round((s.received - lastStats.received) / dt);
  charts.rate.push(rateIn);
  charts.saved.push(Math.max(0, Math.round((s.compressionSaved - lastStats.compressionSaved) / dt)));
  charts.depth.push(s.queued);
  charts.rtt.push(s.rtt >= 0 ? Math.round(s.rtt) : 0);
  $('rateIn').textContent = rateIn;
  $('rateOut').textContent = Math.round((s.sent - lastStats.sent) / dt);
  $('saved').textContent = s.compressionSaved > 4096 ? `${(s.compressionSaved / 1024).toFixed(1)} KiB` : `${s.compressionSaved} B`;
  $('depth').textContent = s.queued;
  $('reconnects').textContent = s.reconnects;
  $('rtt').textContent = s.rtt >= 0 ? `${s.rtt.toFixed(0)} ms` : '–';
  $('queued').hidden = s.queued === 0 || s.state === 'open';
  $('queued').textContent = `${s.queued} queued while offline`;
  const sh = s.share;
  $('conn').hidden = !sh;
  if (sh) {
    $('conn').textContent = sh.role === 'own' ? `own connection (${sh.reason})`
      : `1 connection for ${sh.tabs} tab${sh.tabs === 1 ? '' : 's'} · held by ${sh.role === 'leader' ? 'this tab' : `tab ${(sh.leader || 0).toString(16)}`}`;
  }
  lastStats = { ...s, t: performance.now() };
}, 1000);

await init();
$('name').value = localStorage.getItem('chat-name') || '';
join();
