// Dev-server SSE endpoint for the demos, tests and bench.
//
//   GET|POST /sse/stream?s=NAME&…   the event stream of stream NAME
//   POST     /sse/drop?s=NAME       cut every open connection of NAME now
//   POST     /sse/emit?s=NAME&type=T  write the request body as one event now
//   GET      /sse/stats?s=NAME      JSON: requests seen (with Last-Event-ID), open connections
//   GET      /sse/clock             this process's clock (performance.timeOrigin + now), ms
//
// A stream is created by its first request; its parameters come from that
// request's query: interval (ms between generated events, default 1000; 0 =
// none, only /emit), count (stop after N events), types (comma list cycled,
// default time,notification,alert,message), history (bounded replay buffer,
// default 1000), retry (sent as `retry:` on every connection), dropEvery (cut
// each connection mid-event after that many events).
// Per request: status=204|500|… answers that status; ctype=text/plain or
// application/json a wrong content type; echo=1 sends the request (method,
// headers but cookies, body) as a first `request` event. Resume: Last-Event-ID
// header (or ?lastEventId= for the native EventSource transport) replays the
// history after that id. A stream whose `count` is reached answers an
// up-to-date reconnect with 204.
//
// Nothing from a request is written back unchecked (2026-12-01): content
// types come from an allowlist, stream and event names from a safe charset
// (so no markup and no CR/LF: nothing can add a field or an event), data
// lines are split on every line end, cookies are not echoed, and the two
// state-changing routes (drop, emit) take only POST with an Origin of this
// dev server. A bad parameter is a 400 that names the parameter, not its value.
import { performance } from 'node:perf_hooks';

const MAX_HISTORY = 10000;
const MAX_STREAMS = 256;
const IDLE_STOP_MS = 10000;
const NOTES = ['You have new mail', 'Maintenance tonight at 23:00', 'A new feature shipped', 'Please review your security settings'];
const ALERTS = ['CPU above 90%', 'Disk space low', 'Network unstable', 'Slow responses'];
const MESSAGES = ['Welcome to Server-Sent Events', 'Pushed in real time', 'Server running', 'A plain message'];
// ctype= values a test may ask for, and what is sent for them
const CTYPES = new Map([['text/event-stream', 'text/event-stream; charset=utf-8'], ['text/plain', 'text/plain'], ['application/json', 'application/json']]);
// stream and event names: no markup, no field separators, no line ends
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const NOSNIFF = { 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' };

class BadParam extends Error {}

const clock = () => performance.timeOrigin + performance.now();

function intParam(q, name, dflt, lo, hi) {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  const n = Number(v);
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, Math.floor(n))) : dflt;
}

function payload(type, n) {
  const t = clock();
  switch (type) {
    case 'time': return JSON.stringify({ n, t, time: new Date().toISOString() });
    case 'notification': return JSON.stringify({ n, t, text: NOTES[n % NOTES.length] });
    case 'alert': return JSON.stringify({ n, t, text: ALERTS[n % ALERTS.length] });
    default: return JSON.stringify({ n, t, text: MESSAGES[n % MESSAGES.length] });
  }
}

function frame(ev) {
  if (!NAME.test(ev.type)) throw new BadParam('type'); // never a CR/LF in a field
  let s = ev.id == null ? '' : `id: ${ev.id}\n`;
  if (ev.type !== 'message') s += `event: ${ev.type}\n`;
  for (const line of ev.data.split(/\r\n|\r|\n/)) s += `data: ${line}\n`;
  return s + '\n';
}

class Stream {
  constructor(name, q) {
    this.name = name;
    this.interval = intParam(q, 'interval', 1000, 0, 60000);
    this.count = intParam(q, 'count', 0, 0, 1e9);
    this.types = (q.get('types') || 'time,notification,alert,message').split(',').filter(Boolean).slice(0, 16);
    if (!this.types.length || !this.types.every((t) => NAME.test(t))) throw new BadParam('types');
    this.historyMax = intParam(q, 'history', 1000, 1, MAX_HISTORY);
    this.retry = intParam(q, 'retry', -1, -1, 3600000);
    this.dropEvery = intParam(q, 'dropEvery', 0, 0, 1e9);
    this.history = [];
    this.nextId = 1;
    this.clients = new Set();
    this.requests = [];
    this.drops = 0;
    this.lastClientAt = Date.now();
    this.timer = this.interval ? setInterval(() => this.tick(), this.interval) : null;
  }

  get finished() {
    return this.count > 0 && this.nextId > this.count;
  }

  tick() {
    if (this.finished) return this.stop();
    if (!this.clients.size && Date.now() - this.lastClientAt > IDLE_STOP_MS) return this.stop();
    const n = this.nextId;
    const type = this.types[(n - 1) % this.types.length];
    this.publish(type, payload(type, n));
    if (this.finished) {
      // everyone has it all: end the responses; their reconnect gets 204
      for (const c of this.clients) c.res.end();
      this.stop();
    }
  }

  publish(type, data) {
    const ev = { id: this.nextId++, type, data };
    this.history.push(ev);
    if (this.history.length > this.historyMax) this.history.shift();
    for (const c of [...this.clients]) this.send(c, ev);
  }

  send(c, ev) {
    if (this.dropEvery && c.sent >= this.dropEvery) {
      // cut mid-event: the id and half the data of the next event, then the
      // socket goes (alternately a hard reset and a clean end)
      const f = frame(ev);
      c.res.write(f.slice(0, f.length >> 1));
      this.drops++;
      c.dropped = true;
      this.clients.delete(c);
      if (this.drops & 1) c.res.socket?.destroy();
      else c.res.end();
      return;
    }
    c.res.write(frame(ev));
    c.sent++;
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  // a client came back to a stream that went idle: generate again
  wake() {
    if (!this.timer && this.interval && !this.finished) this.timer = setInterval(() => this.tick(), this.interval);
  }
}

async function readBody(req, max = 1 << 20) {
  const parts = [];
  let n = 0;
  for await (const b of req) {
    n += b.length;
    if (n > max) throw new Error('body too large');
    parts.push(b);
  }
  return Buffer.concat(parts).toString('utf8');
}

function json(res, status, obj) {
  res.writeHead(status, { 'content-type': 'application/json', ...NOSNIFF });
  res.end(JSON.stringify(obj));
}

function text(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...NOSNIFF });
  res.end(body);
}

export default async function install(ctx) {
  const streams = new Map();
  // pages of this dev server, on either port, by either loopback name
  const own = new Set(ctx.ports.flatMap((p) => [ctx.host, '127.0.0.1', 'localhost'].map((h) => `http://${h}:${p}`)));

  const nameOf = (q) => {
    const name = q.get('s') || 'demo';
    if (!NAME.test(name)) throw new BadParam('s');
    return name;
  };

  const get = (q) => {
    const name = nameOf(q);
    let st = streams.get(name);
    if (!st) {
      if (streams.size >= MAX_STREAMS) {
        // forget the oldest idle stream
        for (const [k, v] of streams) {
          if (!v.clients.size) { v.stop(); streams.delete(k); break; }
        }
      }
      st = new Stream(name, q);
      streams.set(name, st);
    }
    return st;
  };

  async function stream(req, res, q) {
    const ctype = CTYPES.get(q.get('ctype') || 'text/event-stream');
    if (!ctype) throw new BadParam('ctype');
    const st = get(q);
    const lastHeader = req.headers['last-event-id'];
    const last = lastHeader ?? q.get('lastEventId') ?? null;
    const body = req.method === 'POST' ? await readBody(req) : '';
    st.requests.push({ method: req.method, lastEventId: last, at: clock() });
    if (st.requests.length > 1000) st.requests.shift();
    st.lastClientAt = Date.now();
    const status = intParam(q, 'status', 200, 200, 599);
    if (status !== 200) {
      res.writeHead(status, { 'content-type': 'text/plain', ...NOSNIFF });
      return res.end(status === 204 ? undefined : `status ${status}`);
    }
    const lastId = last !== null && /^\d+$/.test(last) ? Number(last) : 0;
    if (st.finished && lastId >= st.nextId - 1) {
      res.writeHead(204, { 'cache-control': 'no-store' });
      return res.end();
    }
    res.writeHead(200, { 'content-type': ctype, ...NOSNIFF, 'x-accel-buffering': 'no' });
    res.socket?.setNoDelay(true);
    let head = ': switchboard dev SSE\n';
    if (st.retry >= 0) head += `retry: ${st.retry}\n`;
    head += '\n';
    if (q.get('echo')) {
      const { cookie, ...headers } = req.headers; // never echo cookies
      head += frame({ type: 'request', data: JSON.stringify({ method: req.method, headers, body }) });
    }
    res.write(head);
    const c = { res, sent: 0, dropped: false };
    // replay what this client missed, then go live
    for (const ev of st.history) {
      if (ev.id <= lastId) continue;
      st.send(c, ev);
      if (c.dropped) return undefined;
    }
    if (st.finished) return res.end();
    st.clients.add(c);
    st.wake();
    const ping = setInterval(() => res.write(': ping\n\n'), 15000);
    res.on('close', () => {
      clearInterval(ping);
      st.clients.delete(c);
      st.lastClientAt = Date.now();
    });
    return undefined;
  }

  // drop and emit change state: POST only (no <img>/link GETs), and only from
  // this server's own pages (a form on another site can POST too).
  const stateChange = (req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain; charset=utf-8', ...NOSNIFF });
      res.end('POST only');
      return false;
    }
    if (!own.has(req.headers.origin)) {
      text(res, 403, 'Origin must be this dev server');
      return false;
    }
    return true;
  };

  const route = async (req, res) => {
    const u = new URL(req.url, 'http://x');
    const q = u.searchParams;
    switch (u.pathname) {
      case '/sse/stream':
        if (req.method !== 'GET' && req.method !== 'POST') return false;
        await stream(req, res, q);
        return true;
      case '/sse/drop': {
        if (!stateChange(req, res)) return true;
        const st = streams.get(nameOf(q));
        let n = 0;
        if (st) for (const c of [...st.clients]) { st.clients.delete(c); c.res.socket?.destroy(); n++; }
        json(res, 200, { dropped: n });
        return true;
      }
      case '/sse/emit': {
        if (!stateChange(req, res)) return true;
        const type = q.get('type') || 'message';
        if (!NAME.test(type)) throw new BadParam('type');
        const st = get(q);
        const data = await readBody(req, 64 * 1024);
        st.publish(type, data.replace(/\r\n?/g, '\n'));
        json(res, 200, { id: st.nextId - 1 });
        return true;
      }
      case '/sse/stats': {
        const st = streams.get(nameOf(q));
        json(res, 200, st ? { requests: st.requests, connections: st.clients.size, produced: st.nextId - 1, drops: st.drops } : { requests: [], connections: 0, produced: 0, drops: 0 });
        return true;
      }
      case '/sse/clock':
        json(res, 200, { t: clock() });
        return true;
      default:
        return false;
    }
  };
  ctx.route('/sse/', async (req, res) => {
    try {
      return await route(req, res);
    } catch (e) {
      if (!(e instanceof BadParam) || res.headersSent) throw e;
      text(res, 400, `bad ${e.message} parameter`);
      return true;
    }
  });

  return {
    close() {
      for (const st of streams.values()) {
        st.stop();
        for (const c of st.clients) c.res.socket?.destroy();
      }
      streams.clear();
    },
  };
}
