// EventStream `share` (docs/sse.md, "Sharing across tabs"): one HTTP stream
// per key, held by the leading tab of a TabGroup; the holder numbers each
// event and relays it over a BroadcastChannel, every tab (the holder too)
// dispatches what is past its own position. A new holder resumes from the
// least advanced tab's last event id and numbers the replay from that tab's
// position, so a tab that had seen more drops the repeats by number.
import { TabGroup } from './tab-group.js';
import { SwitchboardError } from './errors.js';
import { StreamErrorEvent, ReconnectingEvent } from './sse-events.js';

// How long a new holder waits for the other tabs' positions (a crashed tab
// never answers; the live ones answer within a BroadcastChannel hop).
const WHERE_WAIT_MS = 50;


// cyrb53: a 53-bit string hash, so a key names no header value.
function hash(s) {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

/** The sharing key: the name given, or the request (URL, method, headers, body). */
export function shareKey(share, url, o) {
  if (typeof share === 'string') {
    if (!share) throw new SwitchboardError('INVALID', 'share needs a non-empty name');
    return share;
  }
  if (o.body != null && typeof o.body !== 'string') {
    throw new SwitchboardError('INVALID', "share: true keys the stream by its request: give a string body, or share: 'name'");
  }
  const headers = [...o.headers].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return hash(JSON.stringify([url, o.method, headers, o.body ?? null, o.credentials]));
}

const errorOf = (e) => (e ? { code: e.code || 'INTERNAL', message: String(e.message || e), status: e.status } : null);

function errorFrom(d) {
  if (!d) return undefined;
  const e = new SwitchboardError(/** @type {any} */ (String(d.code)), String(d.message));
  if (typeof d.status === 'number') /** @type {any} */ (e).status = d.status;
  return e;
}

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/**
 * One tab's end of a shared stream. `es` is that tab's EventStream; `open(id)`
 * makes the real (unshared) stream from `id` when this tab comes to hold it.
 */
export class StreamShare {
  constructor(es, key, open) {
    this.es = es;
    this.key = key;
    this.open = open;
    this.group = null;
    this.inner = null;
    this.claim = 0;         // term being claimed, while positions are collected
    this.closed = false;
    // This tab's position: the number and id of the last event it
    // dispatched, and the number at which that id first came.
    this.n = -1;
    this.id = '';
    this.idN = 0;
    this.term = 0;          // term of the holder whose events were last taken
    this.next = 0;          // as holder: the number of the last event relayed
    this.answers = null;
    this.counts = { events: 0, duplicates: 0, handovers: 0 };
    this.bc = new BroadcastChannel(`switchboard:sse:${key}`);
    this.bc.onmessage = (e) => this.recv(e.data);
    TabGroup.open(`sse:${key}`).then((g) => {
      if (this.closed) return g.close();
      this.group = g;
      g.addEventListener('leaderchange', () => this.check());
      g.addEventListener('leadershiplost', () => this.resign());
      g.addEventListener('presence', () => this.whereDone?.()); // a closed tab need not answer
      this.post({ t: 'hello' });
      this.check();
      return undefined;
    }, (e) => es._fatal(e instanceof SwitchboardError ? e : new SwitchboardError('NOT_INITIALIZED', String(e?.message || e))));
  }

  post(m) {
    if (!this.closed) this.bc.postMessage(m);
  }

  stats() {
    const g = this.group;
    return {
      shared: true, fallback: null, key: this.key, tab: g ? g.id : null, holder: g ? g.leader : null,
      leader: !!this.inner, tabs: g ? g.tabs.length : 0, ...this.counts,
    };
  }

  // Became the leader: ask every tab where it is, then resume from the least advanced.
  check() {
    const g = this.group;
    if (this.closed || !g || !g.isLeader || this.inner || this.claim === g.term) return;
    const term = g.term;
    this.claim = term;
    this.answers = new Map([[g.id, this.where()]]);
    this.post({ t: 'where', term });
    const others = () => g.tabs.filter((t) => !t.self).every((t) => this.answers?.has(t.id));
    const done = () => {
      clearTimeout(timer);
      this.whereDone = null;
      if (this.closed || this.claim !== term || !g.isLeader || this.inner) return;
      // Its own position as of now: the old holder's last relays may have come meanwhile.
      this.answers.set(g.id, this.where());
      this.start([...this.answers.values()]);
      this.answers = null;
    };
    const timer = setTimeout(done, WHERE_WAIT_MS);
    this.whereDone = () => { if (others()) done(); };
    this.whereDone();
  }

  where() {
    return { n: this.n, id: this.id, idN: this.idN };
  }

  // Open the real stream from the least advanced position any tab reports.
  start(positions) {
    const known = positions.filter((p) => p.n >= 0);
    let from = '', base = 0;
    if (known.length) {
      const least = known.reduce((a, b) => (b.n < a.n ? b : a));
      const most = Math.max(...known.map((p) => p.n));
      if (least.id) { from = least.id; base = least.idN; } else base = most; // no id: nothing to resume from
      this.counts.handovers++;
    } else {
      from = this.es._lastId;
    }
    this.next = base;
    const inner = this.open(from);
    this.inner = inner;
    const term = this.group.term;
    const mine = () => this.inner === inner;
    inner._tap = (type, data, id) => {
      if (!mine()) return;
      const m = { t: 'ev', term, n: ++this.next, type, data, id };
      this.post(m);
      this.recv(m);
    };
    const relay = (m) => { if (mine()) { m.term = term; m.retry = inner.retry; this.post(m); this.recv(m); } };
    inner.addEventListener('statechange', (e) => relay({ t: 'state', state: e.state }));
    inner.addEventListener('open', () => relay({ t: 'open' }));
    inner.addEventListener('error', (e) => relay({ t: 'error', error: errorOf(e.error) }));
    inner.addEventListener('reconnecting', (e) => relay({ t: 'reconnecting', delay: e.delay, attempt: e.attempt, error: errorOf(e.error) }));
    inner.addEventListener('close', (e) => { if (e.reason === 'error') relay({ t: 'close', error: errorOf(e.error) }); });
  }

  // No longer the leader (closed, or a lease taken over): drop the real stream.
  resign() {
    const inner = this.inner;
    this.inner = null;
    this.claim = 0;
    inner?.close();
  }

  recv(m) {
    if (this.closed || !m || typeof m !== 'object' || typeof m.t !== 'string') return;
    const es = this.es, g = this.group;
    switch (m.t) {
      case 'hello':
        // A tab joined: the holder tells it where the stream is.
        if (this.inner) this.post({ t: 'at', term: g.term, ...this.where(), state: es._state, retry: es._retry });
        return;
      case 'at':
        if (this.n < 0 && isNum(m.n) && typeof m.id === 'string' && isNum(m.idN)) {
          this.n = m.n; this.id = m.id; this.idN = m.idN;
          this.state(m);
        }
        return;
      case 'where':
        if (g && isNum(m.term) && m.term >= g.term) this.post({ t: 'here', term: m.term, tab: g.id, ...this.where() });
        return;
      case 'here':
        if (this.answers && m.term === this.claim && isNum(m.tab) && isNum(m.n) && typeof m.id === 'string' && isNum(m.idN)) {
          this.answers.set(m.tab, { n: m.n, id: m.id, idN: m.idN });
          this.whereDone?.();
        }
        return;
      default:
    }
    // From a holder: an older holder's word is void once a newer one spoke.
    if (!isNum(m.term) || m.term < this.term) return;
    this.term = m.term;
    if (m.retry === null || isNum(m.retry)) es._retry = m.retry;
    if (m.t === 'ev') {
      if (!isNum(m.n) || typeof m.type !== 'string' || typeof m.data !== 'string' || typeof m.id !== 'string') return;
      if (m.n <= this.n) { this.counts.duplicates++; return; }
      this.n = m.n;
      if (m.id !== this.id) { this.id = m.id; this.idN = m.n; }
      es._lastId = m.id;
      this.counts.events++;
      es.dispatchEvent(new MessageEvent(m.type, { data: m.data, lastEventId: m.id, origin: es._origin }));
    } else if (m.t === 'state') this.state(m);
    else if (m.t === 'open') {
      es._setState('open');
      es.dispatchEvent(new Event('open'));
    } else if (m.t === 'error') es.dispatchEvent(new StreamErrorEvent(errorFrom(m.error)));
    else if (m.t === 'reconnecting' && isNum(m.delay) && isNum(m.attempt)) {
      es.dispatchEvent(new ReconnectingEvent(m.delay, m.attempt, errorFrom(m.error)));
    } else if (m.t === 'close') es._finish('error', errorFrom(m.error));
  }

  state(m) {
    if (['connecting', 'open', 'reconnecting'].includes(m.state)) {
      const was = this.es._state;
      this.es._setState(m.state);
      if (m.t === 'at' && m.state === 'open' && was !== 'open') this.es.dispatchEvent(new Event('open'));
    }
  }

  /** This tab leaves: a holder hands the stream to the next leader. */
  close() {
    if (this.closed) return;
    this.resign();
    this.closed = true;
    this.bc.close();
    this.group?.close();
  }
}
