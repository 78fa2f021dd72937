// SSE dashboard: the seeds' EventSource page rebuilt on EventStream.
import { init, EventStream } from '/js/index.js';
import { logLine, Sparkline } from '/web/ui.js';

const $ = (id) => document.getElementById(id);
const badge = $('badge');
const log = $('log');
const chart = new Sparkline($('chart'), { points: 60, label: 'events/s' });
const BADGE = { open: 'ok', connecting: 'warn', reconnecting: 'warn', paused: 'warn', closed: 'bad', idle: '' };
const LABEL = { time: 'server time', notification: 'notification', alert: 'alert', message: 'message' };

let es = null;
let stream = '';
let count = 0;
let perSecond = 0;
let retries = 0;
let expected = 1; // every event carries the stream-wide sequence number n
let gaps = 0;
let dups = 0;

function stats() {
  $('count').textContent = String(count);
  $('lastid').textContent = es?.lastEventId || '–';
  $('retries').textContent = String(retries);
  $('retry').textContent = es?.retry != null ? `${es.retry} ms` : '–';
  $('gaps').textContent = `${gaps} / ${dups}`;
}

function onEvent(e) {
  const body = JSON.parse(e.data);
  if (count === 0) expected = body.n; // a tab joining a shared stream starts where it is
  if (body.n > expected) gaps += body.n - expected;
  if (body.n < expected) dups++;
  else expected = body.n + 1;
  count++;
  perSecond++;
  const text = e.type === 'time' ? body.time : body.text;
  logLine(log, `#${e.lastEventId} ${LABEL[e.type] || e.type}: ${text}`, e.type);
  stats();
}

function connect() {
  if (es && es.readyState !== EventStream.CLOSED) return;
  const rate = Number($('rate').value);
  // a fresh server-side stream per connect: its rate is fixed at creation
  stream = `demo-${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;
  count = 0;
  retries = 0;
  expected = 1;
  gaps = 0;
  dups = 0;
  const share = $('share').checked;
  // Shared: every tab asks for the same stream (one per rate), one tab holds it.
  if (share) stream = `demo-shared-${rate}`;
  $('transport').disabled = share;
  $('hidden').disabled = share;
  const url = `/sse/stream?s=${stream}&interval=${Math.round(1000 / rate)}&retry=1000`;
  es = new EventStream(url, share ? { share: true, reconnect: { minDelay: 1000, maxDelay: 15000 } } : {
    transport: $('transport').value,
    resumeParam: 'lastEventId', // native transport: the dev server reads the id from the query (opt-in)
    openWhenHidden: !$('hidden').checked,
    reconnect: { minDelay: 1000, maxDelay: 15000 },
  });
  es.addEventListener('statechange', (e) => {
    badge.textContent = e.state;
    badge.className = `badge ${BADGE[e.state] ?? ''}`;
  });
  es.addEventListener('open', () => logLine(log, `connected (${es.transport}) — resuming after id ${es.lastEventId || 'none'}`, 'sys'));
  for (const type of Object.keys(LABEL)) es.addEventListener(type, onEvent);
  es.addEventListener('error', (e) => logLine(log, `error ${e.error?.code}: ${e.error?.message}`, 'sys'));
  es.addEventListener('reconnecting', (e) => {
    retries++;
    logLine(log, `reconnecting in ${Math.round(e.delay)} ms (attempt ${e.attempt})`, 'sys');
    stats();
  });
  es.addEventListener('close', (e) => logLine(log, `closed (${e.reason}${e.error ? `: ${e.error.code}` : ''})`, 'sys'));
  stats();
}

// "1 connection for 3 tabs": the server's count of open connections of this
// stream, and who holds it, from the EventStream's stats().
async function sharing() {
  if (!es || es.readyState === EventStream.CLOSED) return;
  const st = es.stats();
  let conns = '?';
  try { conns = (await (await fetch(`/sse/stats?s=${stream}`)).json()).connections; } catch { /* server gone */ }
  const n = (k, w) => `${k} ${w}${k === 1 ? '' : 's'}`;
  if (!st.shared) {
    $('sharing').textContent = `own connection${st.fallback ? ` (no sharing: ${st.fallback})` : ''} · server sees ${n(conns, 'connection')}`;
    return;
  }
  const holder = st.holder == null ? 'nobody (handing over)' : st.holder === st.tab ? 'this tab' : `tab ${st.holder.toString(36)}`;
  $('sharing').textContent = `${n(conns, 'connection')} for ${n(st.tabs, 'tab')} · held by ${holder} · this tab ${st.tab?.toString(36) ?? '…'} · ${st.handovers} handover(s) here`;
}
setInterval(sharing, 500);

$('connect').addEventListener('click', connect);
$('close').addEventListener('click', () => es?.close());
$('drop').addEventListener('click', async () => {
  // POST from this page (the endpoint checks Origin): drop is a state change
  const r = await fetch(`/sse/drop?s=${stream}`, { method: 'POST' });
  if (!r.ok) return logLine(log, `drop refused: HTTP ${r.status}`, 'sys');
  const { dropped } = await r.json();
  logLine(log, `server dropped ${dropped} connection(s)`, 'sys');
});
for (const id of ['transport', 'rate', 'hidden', 'share']) {
  $(id).addEventListener('change', () => { es?.close(); setTimeout(connect, 0); });
}
setInterval(() => { chart.push(perSecond); perSecond = 0; }, 1000);

await init();
connect();
