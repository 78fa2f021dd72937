// Reliable queue demo: Outbox -> lossy MessageChannel -> Inbox, acks back over
// the same lossy link. The page checks the guarantee itself: every message
// delivered once, in per-channel order, or reported as dropped/expired.
import { init, Outbox, Inbox } from '/js/index.js';
import { el, logLine, Sparkline } from '/web/ui.js';

const $ = (id) => document.getElementById(id);
const num = (id) => Number($(id).value);
const log = (text, cls) => logLine($('log'), text, cls);

await init();
$('status').textContent = 'core loaded';

const { port1, port2 } = new MessageChannel();
const link = { up: true, lost: 0, duplicated: 0, carried: 0 };

// The lossy part: each message may be lost, duplicated or delayed (which
// reorders it), in both directions.
function lossy(port, bytes) {
  if (!link.up || Math.random() * 100 < num('loss')) { link.lost++; return; }
  const copies = Math.random() * 100 < num('dup') ? 2 : 1;
  if (copies === 2) link.duplicated++;
  for (let i = 0; i < copies; i++) {
    link.carried++;
    const jitter = num('jitter');
    if (jitter > 0) setTimeout(() => port.postMessage(bytes), Math.random() * jitter);
    else port.postMessage(bytes);
  }
}

// What the page expects and what arrived, to check the guarantee.
const expect = { sent: 0, given: new Set() };
const got = { ids: new Set(), duplicates: 0, outOfOrder: 0, lastSeq: new Map(), count: 0 };

const inbox = new Inbox({ sendAck: (ack) => lossy(port2, ack), text: true });
inbox.addEventListener('message', (e) => {
  const f = e; // the frame's fields are the event's
  const key = f.payload;
  if (got.ids.has(key)) got.duplicates++;
  got.ids.add(key);
  got.count++;
  if ((got.lastSeq.get(f.channel) ?? 0) >= f.seq) got.outOfOrder++;
  got.lastSeq.set(f.channel, f.seq);
});
port2.onmessage = (e) => inbox.receive(e.data);

let outbox = null;
let timeouts = 0;
function makeOutbox(state) {
  const ob = new Outbox({
    transmit: (frame) => lossy(port1, frame),
    window: num('window'), maxMessages: num('cap'), overflow: $('overflow').value,
    ackTimeout: 60, retryMinDelay: 10, retryMaxDelay: 400, state,
  });
  for (const type of ['drop', 'expired', 'deadletter']) {
    ob.addEventListener(type, (e) => {
      expect.given.add(`m${e.id}`);
      log(`${type}: message ${e.id} (${e.error.code})`, 'bad');
    });
  }
  ob.addEventListener('timeout', () => { timeouts++; });
  port1.onmessage = (e) => ob.receiveAck(e.data);
  return ob;
}
outbox = makeOutbox();

// Payload "m<id>": the id the outbox gives back, so drops can be matched.
function burst() {
  const n = num('count');
  let refused = 0;
  for (let i = 0; i < n; i++) {
    const channel = 1 + (i % 3);
    try {
      // The id is known only after enqueue; the payload carries the page's
      // own counter, which equals the outbox id in this demo (ids start at 1
      // and only this page sends).
      expect.sent++;
      outbox.enqueue(`m${expect.sent}`, { channel });
    } catch (err) {
      expect.sent--;
      refused++;
      if (refused === 1) log(`send refused: ${err.code} (queue full, policy reject)`, 'bad');
    }
  }
  log(`queued ${n - refused} messages${refused ? `, ${refused} refused` : ''}`);
}

$('send').addEventListener('click', burst);
$('toggle').addEventListener('click', () => {
  link.up = !link.up;
  outbox.setOnline(link.up);
  $('toggle').textContent = link.up ? 'Take link down' : 'Bring link up';
  log(link.up ? 'link up: unacked frames go out again' : 'link down: the outbox holds everything', link.up ? 'ok' : '');
});

// Persist the whole sender in IndexedDB, drop it, and start a new one from
// what was stored, as a page reload would.
function idb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open('switchboard-queue-demo', 1);
    req.onupgradeneeded = () => req.result.createObjectStore('outbox');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
function tx(db, mode, fn) {
  return new Promise((resolve, reject) => {
    const t = db.transaction('outbox', mode);
    const r = fn(t.objectStore('outbox'));
    t.oncomplete = () => resolve(r.result);
    t.onerror = () => reject(t.error);
  });
}
$('restart').addEventListener('click', async () => {
  const state = outbox.serialize();
  const depth = outbox.stats().depth;
  const db = await idb();
  await tx(db, 'readwrite', (s) => s.put(state, 'state'));
  outbox.close();
  const stored = await tx(db, 'readonly', (s) => s.get('state'));
  db.close();
  outbox = makeOutbox(new Uint8Array(stored));
  if (!link.up) outbox.setOnline(false);
  log(`sender restarted from IndexedDB (${stored.byteLength} B, ${depth} messages pending)`, 'ok');
});

// Live figures.
const chart = new Sparkline($('chart'), { label: 'in flight' });
function stat(label, value) {
  return el('span', { class: 'stat' }, el('b', {}, String(value)), label);
}
setInterval(() => {
  const o = outbox.stats();
  const i = inbox.stats();
  const settled = got.ids.size + [...expect.given].filter((k) => !got.ids.has(k)).length;
  $('stats').replaceChildren(
    stat('queued + in flight', o.depth), stat('in flight', o.inFlight), stat('transmissions', o.sent),
    stat('retries', o.retries), stat('timeouts', timeouts), stat('acked', o.acked), stat('ack RTT ms', o.rtt < 0 ? '–' : o.rtt.toFixed(1)),
    stat('drops', o.drops), stat('delivered', got.count), stat('duplicates dropped', i.duplicates),
    stat('held for order', i.held), stat('link lost', link.lost), stat('link duplicated', link.duplicated),
  );
  chart.push(o.inFlight);
  if (!expect.sent) return;
  const good = got.duplicates === 0 && got.outOfOrder === 0;
  const done = settled >= expect.sent && o.depth === 0;
  const v = $('verdict');
  v.className = good ? (done ? 'ok' : 'muted') : 'bad';
  v.textContent = `${got.ids.size} of ${expect.sent} delivered` +
    (expect.given.size ? `, ${expect.given.size} reported dropped/expired` : '') +
    ` · ${got.duplicates} duplicates · ${got.outOfOrder} out of order` + (done ? ' · complete' : ' · in progress');
}, 100);
