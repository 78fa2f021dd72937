// The client side of bench/relay.mjs: many clients of one kind in this
// process, driven over IPC by the bench.
//
//   sb   a client-role switchboard.v1 session of the C core (js/session.js,
//        the same session the browser Socket runs, with the Socket's default
//        options but connectTimeout 120 s and 60 s for the greeting) over a
//        `ws` WebSocket; hello {room, user}
//   sio  socket.io-client 4 (transports ['websocket'], forceNew: one
//        connection per client), 'join' room once connected
//   ws   a bare `ws` WebSocket (idle only: the floor)
//
// Messages from the bench:
//   {open: n, room, prefix}  open n clients (in batches of 100); each joins
//                            `room`, or its own room `${prefix}${i}` when
//                            room is null. Answers {opened, failed}
//   {pub: rate, ms, phase}   the publishers of this process (the first
//                            `publishers` clients opened with {publishers})
//                            send `rate` messages a second between them for
//                            ms, in ticks of 10 ms. Answers {sent} at the end
//   {collect: phase, from, to} answers {n, lat (ms, one per delivery of that
//                            phase), inWindow (deliveries that arrived between
//                            wall clock from and to, any phase)}
//   {close: true}            closes every client, answers {closed}
// Every message is ~230 B of JSON {p: phase, t: wall clock at send, i, text};
// a subscriber parses each one it gets (socket.io-client parses them too).
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { init } from '../../js/core.js';
import { Session } from '../../js/session.js';
import {
  SESSION_PROTOCOL, SO_CONNECT_TIMEOUT, SO_HELLO_TIMEOUT, SEV_WRITE, SEV_CONNECT, SEV_DISCONNECT, SEV_OPEN, SEV_MESSAGE, SEV_F_TEXT, SEV_F_OFFER_FRAMED,
} from '../../js/constants.js';

const args = process.argv.slice(2);
const kind = args[args.indexOf('--kind') + 1];
const url = args[args.indexOf('--url') + 1];
await init();

const wall = () => performance.timeOrigin + performance.now();
const TEXT = 'the release review is after lunch, bring the dashboard numbers and the customer contract draft please ok thanks';

// Per-phase latency samples of the deliveries to this process's clients.
const lat = new Map();
const arrivals = []; // wall clock of every delivery (for the window count), as a growable list
let nArr = 0;
function delivered(text) {
  const now = wall();
  const m = JSON.parse(text);
  let a = lat.get(m.p);
  if (!a) lat.set(m.p, (a = []));
  a.push(now - m.t);
  arrivals[nArr++] = now;
}

/** One switchboard client: a client-role Session over a ws WebSocket. */
class SbClient {
  constructor(hello, onMessage) {
    // The Socket's defaults but a longer connect timeout (socket + handshake):
    // a relay busy with a filling room answers hellos late (bench/relay.mjs).
    // The greeting may come late too: waiting only the default 3 s for it, a
    // client of a relay busy with a filling room went plain and took the
    // greeting for a message.
    this.s = new Session([[SO_CONNECT_TIMEOUT, 120e3], [SO_HELLO_TIMEOUT, 60e3]]);
    const [p, n] = this.s.put(JSON.stringify(hello));
    this.s.check(this.s.fn.sb_session_set_hello(this.s.h, p, n), 'hello');
    this.onMessage = onMessage;
    this.ws = null;
    this.timer = null;
    this.queued = false;
    this.opened = new Promise((resolve) => { this._opened = resolve; });
    this.run((now) => this.s.fn.sb_session_start(this.s.h, now));
  }

  run(fn) {
    if (!this.s.h) return;
    fn(Date.now());
    this.drain();
    if (!this.queued) {
      this.queued = true;
      queueMicrotask(() => { // one flush (one batch) per task, as the Socket
        this.queued = false;
        if (!this.s.h) return;
        this.s.fn.sb_session_set_buffered(this.s.h, this.ws ? this.ws.bufferedAmount : 0);
        this.s.fn.sb_session_flush(this.s.h, Date.now());
        this.drain();
        this.arm();
      });
    }
  }

  arm() {
    const d = this.s.deadline();
    if (d === this.due && this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.due = d;
    if (d < 0) return;
    this.timer = setTimeout(() => { this.timer = null; this.run((now) => this.s.fn.sb_session_tick(this.s.h, now)); }, Math.max(1, d - Date.now()));
  }

  drain() {
    this.s.drain((t, ev) => {
      if (t === SEV_WRITE) {
        if (this.ws?.readyState === 1) this.ws.send(ev.data, { binary: !(ev.flags & SEV_F_TEXT) });
      } else if (t === SEV_MESSAGE) {
        if (ev.channel === 0) this.onMessage(ev.text());
      } else if (t === SEV_CONNECT) {
        this.connect((ev.flags & SEV_F_OFFER_FRAMED) !== 0);
      } else if (t === SEV_DISCONNECT) {
        const ws = this.ws;
        this.ws = null;
        ws?.close(ev.code);
      } else if (t === SEV_OPEN) {
        this._opened(true);
      }
    });
  }

  connect(framed) {
    const ws = new WebSocket(url, framed ? [SESSION_PROTOCOL] : [], { perMessageDeflate: false });
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => this.run((now) => this.s.fn.sb_session_transport_open(this.s.h, now, ws.protocol === SESSION_PROTOCOL ? 1 : 0)));
    ws.on('message', (data, isBinary) => {
      if (this.ws !== ws) return;
      const [p, n] = this.s.put(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.run((now) => this.s.fn.sb_session_recv(this.s.h, p, n, isBinary ? 0 : 1, now));
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.run((now) => this.s.fn.sb_session_transport_closed(this.s.h, now, code || 1006));
    });
    ws.on('error', () => {});
  }

  send(text) { this.run((now) => this.s.send(0, false, text, now)); }

  close() {
    clearTimeout(this.timer);
    this.ws?.terminate();
    this.s.destroy();
  }
}

/** One socket.io client. */
class SioClient {
  constructor(room, onMessage) {
    this.s = io(url, { transports: ['websocket'], forceNew: true });
    this.s.on('msg', (m) => onMessage(m));
    this.opened = new Promise((resolve) => {
      this.s.once('connect', () => { this.s.emit('join', room); resolve(true); });
      this.s.once('connect_error', () => resolve(false));
    });
  }

  send(obj) { this.s.emit('pub', obj); }
  close() { this.s.close(); }
}

/** A bare WebSocket, for the floor. */
class WsClient {
  constructor() {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve) => { this.ws.once('open', () => resolve(true)); this.ws.once('error', () => resolve(false)); });
  }

  close() { this.ws.terminate(); }
}

const clients = [];
let publishers = [];

async function open(n, room, prefix, pubs) {
  let failed = 0;
  const BATCH = 100;
  for (let k = 0; k < n; k += BATCH) {
    const batch = [];
    for (let i = k; i < Math.min(n, k + BATCH); i++) {
      const r = room ?? `${prefix}${i}`;
      const isPub = i < pubs;
      const onMessage = isPub ? () => {} : kind === 'sb' ? delivered : (m) => {
        // socket.io-client has already parsed it; the same work as ours is that parse.
        const now = wall();
        let a = lat.get(m.p);
        if (!a) lat.set(m.p, (a = []));
        a.push(now - m.t);
        arrivals[nArr++] = now;
      };
      const c = kind === 'sb' ? new SbClient({ room: r, user: `u${i}` }, onMessage) : kind === 'sio' ? new SioClient(r, onMessage) : new WsClient();
      if (isPub) publishers.push(c);
      batch.push(c);
    }
    const ok = await Promise.race([Promise.all(batch.map((c) => c.opened)), new Promise((r) => setTimeout(() => r(null), 120e3))]);
    if (!ok) failed += batch.length;
    else failed += ok.filter((x) => !x).length;
    clients.push(...batch);
  }
  return { opened: clients.length, failed };
}

function publish(rate, ms, phase) {
  return new Promise((resolve) => {
    let sent = 0, owed = 0, i = 0;
    const t0 = wall();
    const tick = setInterval(() => {
      const el = wall() - t0;
      if (el >= ms) {
        clearInterval(tick);
        resolve({ sent });
        return;
      }
      owed = Math.floor((el * rate) / 1000) - sent;
      for (; owed > 0; owed--) {
        const m = { p: phase, t: wall(), i: sent, text: TEXT };
        const c = publishers[i++ % publishers.length];
        c.send(kind === 'sb' ? JSON.stringify(m) : m);
        sent++;
      }
    }, 10);
  });
}

process.on('message', async (m) => {
  if (m.open != null) {
    if (m.publishers) publishers = [];
    process.send(await open(m.open, m.room ?? null, m.prefix ?? 'own-', m.publishers || 0));
  } else if (m.pub != null) {
    process.send(await publish(m.pub, m.ms, m.phase));
  } else if (m.collect != null) {
    let inWindow = 0;
    for (let i = 0; i < nArr; i++) if (arrivals[i] >= m.from && arrivals[i] < m.to) inWindow++;
    process.send({ n: (lat.get(m.collect) || []).length, lat: lat.get(m.collect) || [], inWindow });
  } else if (m.close) {
    for (const c of clients) c.close();
    clients.length = 0;
    process.send({ closed: true });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
