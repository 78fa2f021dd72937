// A shared Socket (docs/socket.md, "Sharing"): `new Socket(url, { share })`
// holds one real connection per browser profile, origin and key, in the
// leading tab of a TabGroup; the other tabs' Sockets talk to it over a
// BroadcastChannel and keep the whole API. The leader runs an ordinary
// Socket (the one session of the C core) with a tap on its events: it posts
// a snapshot of the session (sb_session_serialize) to the tabs at the end of
// each task that changed it, and its writes to the server wait until a tab
// confirms the snapshot that counts them, so whichever tab leads next
// resumes the same session from a state no older than what the server or
// any tab has seen. docs/decisions.md, "One session for all tabs".
import { SwitchboardError } from './errors.js';
import { core } from './core.js';
import { TabGroup } from './tab-group.js';
import { TabRooms, LeaderRooms } from './share-rooms.js';
import { Hold } from './share-hold.js';
import { event, now, obj, remoteError } from './glue.js';
import { SEV_WRITE, SEV_MESSAGE, SEV_RESPONSE, SEV_REQUEST_FAILED, SEV_REQUEST_MOVED, SEV_DIRTY, SEV_F_REMOTE, FRAME_F_BINARY, CLOSE_NORMAL, CLOSE_REPLACING, CLOSE_REPLACED, E_CLOSED, SESSION_SYSTEM_CHANNEL as SYSTEM } from './constants.js';

/** The option key of the leader's tap on its Socket (and of a request's id callback). */
export const SHARE = Symbol('switchboard.share');

const errOf = (e) => ({ code: e?.code || 'INTERNAL', message: String(e?.message || e) });
const errFrom = (e) => new SwitchboardError(e.code, e.message);
/** A string as it is; bytes copied (structured clone takes them to the other tabs). */
const own = (d) => (typeof d === 'string' ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength)) : new Uint8Array(d.slice(0)));

/** The shared Socket behind a Socket constructed with opts.share (js/socket.js, shareSocket). */
export class Share {
  constructor(sock, url, opts, Socket, key) {
    this.sock = sock; this.url = url; this.Socket = Socket; this.key = key;
    this.opts = { ...opts, share: undefined, queue: { ...obj(opts.queue), persist: null } };
    this.binaryType = opts.binaryType === 'arraybuffer' ? 'arraybuffer' : 'blob';
    this.st = { readyState: 0, state: 'connecting', mode: null }; this.shown = this.st.state;
    this.info = {};
    this.lid = 0; this.taken = 0; this.asked = new Map(); this.pending = new Map(); this.waiting = new Map(); // my sends and requests by lid
    this.latest = null; this.leader = 0; this.term = 0; this.bye = 0; this.closed = false;
    this.got = new Map(); this.gotSession = null; // per channel, the last seq this tab delivered (fresh)
    // leader only
    this.inner = null; this.s = null; this.acc = new Map(); this.reqs = new Map(); this.aborts = new Map();
    this.gen = 0; this.hold = new Hold(this); this.stale = false; this.queued = false; this.later = []; this.answers = []; this.gone = false; this.lr = null; this.sys = null;
    this.tr = new TabRooms(this); // this tab's Channels (js/share-rooms.js)
    this.bc = new BroadcastChannel(`switchboard:socket:${key}`);
    this.bc.onmessage = (e) => this.recv(e.data);
    this.ready = TabGroup.open(`socket:${key}`).then((g) => {
      this.group = g;
      if (this.closed) { g.close(); return; }
      g.addEventListener('leaderchange', () => { if (g.isLeader && !this.inner) this.lead(); });
      // pagehide (the group closed itself): leave; else another tab took over while this one
      // was frozen (Web Locks stolen, js/tab-group.js): follow it.
      g.addEventListener('leadershiplost', () => (g.closed ? this.resign() : this.demote()));
      g.addEventListener('presence', () => { this.hold.presence(g.tabs); if (this.s && !this.quitting) this.lr.presence(g.tabs); });
      if (g.isLeader) this.lead();
      else this.post({ t: 'hello' });
    });
  }

  get me() { return this.group ? this.group.id : 0; }
  post(m) {
    if (this.inner) m.term = this.group.term; // a leader's: a tab drops a snapshot or event of an older one
    if (!this.closed && !this.gone) this.bc.postMessage(m);
  }

  // ---- every tab ----

  send(data, opts = {}) {
    if (this.closed) throw new SwitchboardError('CLOSED', 'socket is closed');
    if (typeof Blob !== 'undefined' && data instanceof Blob) {
      data.arrayBuffer().then((b) => this.send(b, opts)).catch((e) => this.sock.dispatchEvent(event('error', { error: e })));
      return;
    }
    this.submit({ t: 'send', ch: opts.channel >>> 0, data: own(data) });
  }

  request(data, opts = {}) {
    if (this.closed) return Promise.reject(new SwitchboardError('CLOSED', 'socket is closed'));
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(signal.reason || new SwitchboardError('ABORTED', 'request aborted'));
    return new Promise((resolve, reject) => {
      const timeout = opts.timeout ?? 30000;
      const m = { t: 'req', ch: opts.channel >>> 0, data: own(data), timeout, deadline: timeout > 0 ? now() + timeout : 0 };
      const lid = this.submit(m);
      const onAbort = () => { done(); reject(signal.reason || new SwitchboardError('ABORTED', 'request aborted')); this.cancel(lid); };
      // The leader's session keeps the deadline; this one is for a leader that never had the request.
      const late = timeout > 0 ? setTimeout(() => { done(); reject(new SwitchboardError('TIMEOUT', 'request timed out')); this.cancel(lid); }, timeout + 1000) : null;
      const done = () => { clearTimeout(late); this.waiting.delete(lid); signal?.removeEventListener('abort', onAbort); };
      this.waiting.set(lid, { resolve: (v) => { done(); resolve(v); }, reject: (e) => { done(); reject(e); } });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Number a send or request of this tab; kept until a snapshot shows the leader took it. */
  submit(m) {
    m.lid = ++this.lid;
    this.pending.set(m.lid, m);
    this.push(m);
    return m.lid;
  }

  /** To the leader (this tab's own session, or a post); before the group is open, later. */
  push(m) {
    if (!this.group) return;
    m.tab = this.me;
    m.base = this.taken; // everything up to here a snapshot showed taken
    if (this.s) this.take(m);
    else if (!this.inner) this.post(m);
  }

  cancel(lid) {
    this.pending.delete(lid); // never sent if the leader has not taken it yet
    const m = { t: 'cancel', tab: this.me, lid };
    if (this.inner) this.recv(m); else this.post(m);
  }

  close(code = CLOSE_NORMAL, reason = '') {
    if (this.closed) return;
    const alone = !this.group || this.group.tabs.length <= 1;
    if (!alone) this.tr.leave();
    this.resign(alone ? code : CLOSE_REPLACING, alone ? reason : 'handover');
    this.finish({ code, reason, wasClean: true });
  }

  /** Stop leading at once, before the next leader starts: the last tab ends the session; any
   * other leaves it to the next leader (4001: the server keeps it). What the close writes is
   * snapshotted first (the tap); what it fails after is the next leader's. */
  resign(code = CLOSE_REPLACING, reason = 'handover') {
    if (!this.inner || this.quitting) return;
    this.inner.close(code, reason);
    this.quitting = true;
    this.hold.free(); // the snapshot that counts them goes to the tabs before the bye
    this.s = null; // takes nothing more: the next leader does
    // The last post of this leader (one sender's posts arrive in order): a tab
    // that has it has everything, and leads from its latest snapshot at once.
    this.post({ t: 'bye', from: this.me });
    this.gone = true;
  }

  /**
   * This tab led, and another took the session over while it was frozen (its
   * Socket was told 4000, or its lock was stolen): follow that one. What it
   * took of its own tab's sends is in the snapshots it posted before it froze
   * (between tasks); the rest is still pending here and goes to the new leader.
   */
  demote() {
    const inner = this.inner;
    if (!inner || this.quitting || this.closed) return;
    this.quitting = true; // its session's events are nobody's now
    this.hold.free();
    inner.close(CLOSE_REPLACING, 'handover');
    this.inner = this.s = this.lr = this.hold.release = null;
    this.quitting = false;
    this.leader = 0; // the next snapshot names the leader; this tab then resends what it lacks
    this.post({ t: 'hello' });
  }

  finish(info) {
    if (this.closed) return;
    this.closed = true;
    this.st = { readyState: 3, state: 'closed', mode: this.st.mode };
    clearTimeout(this.hold.timer);
    this.group?.close();
    this.bc.close();
    for (const w of [...this.waiting.values()]) w.reject(new SwitchboardError('CLOSED', 'socket closed'));
    this.sock.dispatchEvent(event('close', info));
  }

  stats() {
    const g = this.group;
    // (a follower that has heard nothing from a leader yet: an unshared Socket's zeros)
    const base = this.inner ? this.inner.stats() : this.info.state ? this.info : this.Socket.prototype.stats.call(this.sock);
    return { ...base, state: this.st.state, mode: this.st.mode,
      share: { role: this.inner ? 'leader' : 'follower', key: this.key, tabs: g ? g.tabs.length : 1, leader: g?.leader ?? null } };
  }

  /** The shared connection's state (from the leader's posts); a follower hears its changes here. */
  apply(st, info, reason = 'none') {
    const was = this.st;
    if (info) this.info = info;
    if (!st || this.closed) return;
    this.st = st;
    Object.assign(this.sock, { url: st.url, protocol: st.protocol, session: st.session });
    if (!this.inner && st.state !== this.shown) this.show({ state: st.state, reason });
    if (st.readyState === 1 && was.readyState !== 1) {
      this.sock.dispatchEvent(event('open', {}));
      this.tr.open(st.mode === 'framed');
    }
  }

  /** A statechange in this tab, from the state it showed last (a tab that takes over leads on a new Socket). */
  show(props) {
    props.previous = this.shown;
    this.shown = props.state;
    this.sock.dispatchEvent(event('statechange', props));
  }

  recv(m) {
    if (!m || typeof m !== 'object' || this.closed) return;
    switch (m.t) {
      case 'snap': case 'have': this.snap(m); break;
      // (also in a new leader: the old one's last posts may come after it took over)
      case 'msg': this.deliver(m); break;
      case 'rmsg': if (m.to.includes(this.me) && this.fresh(m)) this.tr.deliver(m, this.dataOf(m)); break;
      case 'note': if (!this.inner && m.to.includes(this.me)) this.tr.note(m); break;
      case 'sans': if (m.tab === this.me) this.tr.answer(m); break;
      case 'res': if (m.tab === this.me) this.settle(m); break;
      case 'ev': if (!this.inner && !(m.term < this.term)) this.event(m); break;
      case 'resend': if (m.tab === this.me) this.resend(m.from - 1); break;
      case 'need': if (this.latest && !this.inner) this.post({ ...this.latest, t: 'have' }); break;
      case 'bye': if (m.from === this.leader) { this.bye = m.from; this.gathered?.(); } break;
      // (to the leader whose snapshot it has: a replaced one still running numbers its own)
      case 'got': this.hold.got(m.tab); if (this.inner && m.to === this.me && m.gen > this.hold.confirmed) this.confirm(m.gen); break;
      // (after the snapshot it names: one sender's posts arrive in order)
      case 'ask': if (m.ask === this.me && !this.inner && this.latest?.from === m.from && this.latest.gen >= m.gen) this.post({ t: 'got', gen: this.latest.gen, tab: this.me, to: m.from }); break;
      default: if (this.inner) this.lead1(m);
    }
  }

  snap(m) {
    if (m.t === 'have' || this.gather) { this.gather?.(m, m.t === 'have'); return; }
    // (a leader that was frozen, thawed and not yet told it leads no more: its term is older)
    if (this.inner || !(m.blob instanceof Uint8Array) || m.term < this.term) return;
    this.term = m.term;
    this.latest = m; // one sender's posts arrive in order
    // A new leader's first snapshot every tab confirms: it learns which listed tabs live.
    const fresh = m.from !== this.leader;
    if (m.ask === this.me || fresh) this.post({ t: 'got', gen: m.gen, tab: this.me, to: m.from });
    const acc = m.acc?.[this.me] || 0;
    for (const a of m.res || []) if (a.tab === this.me) this.settle(a);
    if (fresh) { this.hold.heard.delete(m.from); this.leader = m.from; this.resend(acc); } else this.drop(acc);
    this.apply(m.st, m.stats);
    this.tr.check(m.rooms, this.me);
  }

  drop(acc) {
    if (acc > this.taken) this.taken = acc;
    for (const lid of this.pending.keys()) { if (lid > acc) break; this.pending.delete(lid); } }
  resend(acc) {
    this.drop(acc);
    for (const m of this.pending.values()) this.push(m);
  }

  settle(a) {
    const w = this.waiting.get(a.lid);
    if (!w) return; // settled before (a repeated answer after a handover)
    this.pending.delete(a.lid);
    if (a.ok) w.resolve(a.v); else w.reject(a.remote ? remoteError(a.v, core()) : errFrom(a.v));
  }

  dataOf(m) { return typeof m.data === 'string' ? m.data : this.binaryType === 'blob' && typeof Blob !== 'undefined' ? new Blob([m.data]) : m.data.buffer; }

  /**
   * Whether this tab has not had m yet: a session's messages are numbered per
   * channel, so one this tab delivered (from the old leader's post, and
   * again from the new leader's session, which resumed from a snapshot
   * older than what the tabs were given) is dropped, and a new leader still
   * takes the old one's last posts that arrive after it took over.
   */
  fresh(m) {
    if (!m.seq) return true; // plain mode: not numbered
    const id = this.st.session;
    if (id && id !== this.gotSession) { // another session numbers from 1 again
      if (this.gotSession) this.got.clear();
      this.gotSession = id;
    }
    if (m.seq <= (this.got.get(m.ch) || 0)) return false;
    this.got.set(m.ch, m.seq);
    return true;
  }

  deliver(m) {
    if (!this.fresh(m)) return;
    const data = this.dataOf(m);
    this.sock.dispatchEvent(Object.assign(new MessageEvent('message', { data, lastEventId: m.seq ? String(m.seq) : '' }),
      { channel: m.ch, seq: m.seq, from: m.from, offset: m.offset || undefined }));
  }

  event(m) {
    this.apply(m.st, m.stats, m.type === 'statechange' ? m.props.reason : 'none');
    if (m.type === 'open' || m.type === 'statechange') return; // apply() fired it
    if (m.type === 'close') { this.finish(m.props); return; }
    const props = m.type === 'error' ? { error: errFrom(m.props.error) } : m.props;
    this.sock.dispatchEvent(event(m.type, props));
  }

  // ---- the leader ----

  /** This tab leads: resume the freshest snapshot any live tab has. */
  async lead() {
    if (this.inner || this.closed) return;
    // The tabs that can answer: not this one, nor the leader that is gone (it may still be listed).
    const others = this.group.tabs.filter((t) => !t.self && t.id !== this.leader).length;
    let best = this.latest;
    // A leader that said bye (closed, reloaded) has nothing more in flight: its
    // last snapshot is here. One that crashed may have posts still arriving
    // here and a newer snapshot in another tab: gather, briefly.
    if (others > 0 && !(this.leader && this.bye === this.leader)) {
      await new Promise((done) => {
        let n = 0;
        const t = setTimeout(done, 300); // a crashed tab is still listed: do not wait for it long
        const end = () => { clearTimeout(t); done(); };
        this.gather = (m, reply) => { // the tabs' newest, and the old leader's last posts still arriving
          if (m.blob instanceof Uint8Array && (!best || m.gen > best.gen)) best = m;
          if (reply && ++n >= others) end();
        };
        this.gathered = end; // its bye came after all: everything it posted is here
        this.post({ t: 'need' });
      });
      this.gather = this.gathered = null;
    }
    if (this.closed || this.inner) return;
    this.gen = this.hold.confirmed = best ? best.gen : 0;
    this.acc = new Map(Object.entries(best?.acc || {}).map(([k, v]) => [Number(k), v]));
    this.reqs = new Map((best?.reqs || []).map((q) => [q.sid, q]));
    this.answers = best?.res || [];
    const tap = { snapshot: best ? best.blob : null, booted: (s, release) => this.booted(s, release), event: (t, e, s) => this.tap(t, e, s) };
    const inner = new this.Socket(this.url, { ...this.opts, [SHARE]: tap });
    this.inner = inner;
    for (const type of ['statechange', 'open', 'reconnecting', 'error', 'drop', 'unrecovered', 'close']) {
      inner.addEventListener(type, (e) => this.innerEvent(type, e));
    }
    // The relay's channel: what the leader's Socket routes to none of its rooms is every tab's, as unshared.
    inner.addEventListener('message', (e) => { const m = this.sys; this.sys = null; if (m && e.channel === SYSTEM) { this.post(m); this.deliver(m); } });
    this.lr = new LeaderRooms(this);
    this.lr.restore(best?.rooms, best && best.from !== this.me ? best.from : 0); // before it opens: the same channels, from their offsets
  }

  booted(s, release) {
    this.s = s;
    this.hold.release = release;
    const t = now();
    for (const q of this.reqs.values()) s.fn.sb_session_expect(s.h, q.sid, q.deadline ? Math.max(1, q.deadline - t) : 0, t);
    this.snapshot(s); // the tabs learn who leads, and resend what it lacks of theirs
    queueMicrotask(() => { for (const a of this.answers.splice(0)) this.answer(a); this.resend(this.acc.get(this.me) || 0); });
  }

  stateOf() {
    const i = this.inner;
    return { readyState: i.readyState, state: i.state, mode: i.mode, url: i.url, protocol: i.protocol, session: i.session };
  }

  snapshot(s) {
    this.stale = false;
    const blob = s.serialize();
    const m = { t: 'snap', from: this.me, gen: ++this.gen, ask: this.hold.ask(), blob, acc: Object.fromEntries(this.acc), reqs: [...this.reqs.values()],
      res: this.answers, rooms: this.lr.list(), st: this.stateOf(), stats: this.inner.stats() };
    this.latest = m;
    this.post(m);
    // This tab's own sends stay pending until a tab has a snapshot that counts them (confirm):
    // a leader that froze and was replaced sends them again to the next one (demote).
    if (!m.ask) this.drop(m.acc[this.me] || 0);
    this.apply(m.st, null);
  }

  /** Every event of the leader's session, before its Socket acts on it. */
  tap(t, e, s) {
    if (s !== this.s) return false; // a session this tab no longer leads (demote)
    this.sys = null;
    if (t === SEV_DIRTY) {
      this.dirty();
    } else if (t === SEV_REQUEST_MOVED) { // its answer comes under the new id: so in the snapshots too
      const q = this.reqs.get(e.value);
      if (q) { this.reqs.set(q.sid = e.id, q).delete(e.value); this.dirty(); }
    } else if (t === SEV_WRITE) {
      if (this.stale) this.snapshot(s);
      return this.hold.write(this.gen);
    } else if (this.quitting) {
      // handing over: requests it fails now wait in the next leader
    } else if (t === SEV_MESSAGE) {
      const bin = e.flags & FRAME_F_BINARY, room = this.lr.byCh.get(e.channel);
      const m = { t: 'msg', ch: e.channel, seq: e.seq, data: bin ? e.data.slice() : e.text(), from: e.aux ? e.from() : undefined, offset: e.value };
      // Posted before the snapshot that counts it (at the end of this task,
      // or the next write): one sender's posts arrive in order, so a tab with
      // that snapshot has the message. A leader that dies in between leaves
      // an older snapshot, from which the relay sends it again and the tabs
      // drop what they had (fresh). The other way round, a snapshot that got
      // out of a dying renderer without the messages after it lost them.
      if (room) { this.lr.message(room, m); this.toTabs(m, false); return; }
      if (e.channel === SYSTEM) { this.sys = m; return; } // a notice its rooms take, or every tab's (above)
      this.post(m);
      this.deliver(m);
    } else if (t === SEV_RESPONSE || t === SEV_REQUEST_FAILED) {
      const q = this.reqs.get(e.id);
      // Failed because this session ends: replaced (4000: another tab leads it now, and
      // answers), or closed, when every tab's Socket rejects what waits (finish).
      if (!q || (t === SEV_REQUEST_FAILED && e.code === E_CLOSED)) return;
      this.reqs.delete(e.id);
      this.aborts.delete(`${q.tab}:${q.lid}`);
      const ok = t === SEV_RESPONSE, remote = !ok && !!(e.flags & SEV_F_REMOTE);
      const v = ok ? (e.flags & FRAME_F_BINARY ? e.data.slice() : e.text()) : remote ? e.data.slice() : errOf(s.c.error(e.code, 'request'));
      // The answer rides in the snapshot too: a leader that dies right after still has it delivered.
      this.answers.push({ t: 'res', tab: q.tab, lid: q.lid, ok, remote, v });
      this.afterSnap(() => { for (const a of this.answers.splice(0)) this.answer(a); });
    }
  }

  /** A tab has snapshot gen: the writes wait no more, and what it counts of this tab's own is safe. */
  confirm(gen) {
    if (this.latest?.gen === gen) this.drop(this.latest.acc[this.me] || 0);
    this.hold.confirm(gen, this.gen);
  }

  answer(a) { if (a.tab === this.me) this.settle(a); else this.post(a); }

  /**
   * The state changed: a snapshot at the end of this task (or before the next
   * write). Never in the middle of the session's events: its state then
   * holds every message of the read they came from, and a snapshot posted
   * before those messages' own posts would, from a renderer that dies right
   * after, leave a leader resuming past messages no tab was given.
   */
  dirty() { this.stale = true; this.soon(); }
  /** Posts that the snapshot must count first (answers, room notices and replies): after it. */
  afterSnap(f) { this.later.push(f); this.dirty(); }
  soon() {
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      if (this.stale && this.s?.h) this.snapshot(this.s);
      for (const f of this.later.splice(0)) f();
    });
  }
  /** The rooms' posts to the tabs (js/share-rooms.js). */
  toTab(a) {
    if (a.tab === this.me) { this.tr.answer(a); return; }
    this.afterSnap(() => this.post(a));
  }
  toTabs(m, first = true) {
    if (first) { this.afterSnap(() => this.toTabs(m, false)); return; }
    this.post(m);
    if (!m.to.includes(this.me)) return;
    if (m.t === 'note') this.tr.note(m); else if (this.fresh(m)) this.tr.deliver(m, this.dataOf(m));
  }
  /** A room request of this tab: to its own leader's rooms, or posted. */
  toLeader(m) {
    if (!this.group) return; // asked again when it opens
    m.tab = this.me;
    if (this.inner) { if (this.s && !this.quitting) this.lr.take(m); } else this.post(m);
  }

  innerEvent(type, e) {
    if (this.quitting || e.target !== this.inner) return;
    // Replaced (4000): another tab took the session over while this one was frozen (just
    // thawed, this one may not have heard the others yet).
    if (type === 'close' && e.code === CLOSE_REPLACED && this.group && !this.group.closed) { this.demote(); return; }
    // (the event's own fields: what structured clone takes of it)
    const props = type === 'error' ? { error: errOf(e.error) } : {};
    if (type !== 'error') for (const k of ['state', 'reason', 'attempt', 'delay', 'data', 'id', 'code', 'wasClean', 'room', 'since']) if (k in e) props[k] = e[k];
    const m = { t: 'ev', type, props, st: this.stateOf(), stats: this.inner.stats() };
    this.post(m);
    this.apply(m.st, m.stats);
    if (type === 'close') this.finish(props);
    else if (type === 'statechange') this.show(props);
    else if (type !== 'open') this.sock.dispatchEvent(event(type, type === 'error' ? { error: e.error } : props));
  }

  /** A tab's message to the leader. */
  lead1(m) {
    if (m.t === 'hello') { if (this.s) this.snapshot(this.s); return; }
    if (m.t === 'cancel') { this.aborts.get(`${m.tab}:${m.lid}`)?.abort(); return; }
    if ((m.t === 'sub' || m.t === 'unsub') && this.s && !this.quitting) { this.lr.take(m); return; }
    if ((m.t === 'send' || m.t === 'req') && this.s) this.take(m);
  }

  /** Put a tab's send or request into the session, once and in the tab's order. */
  take(m) {
    let had = this.acc.get(m.tab) || 0;
    // Taken by a leader whose last snapshot never reached this one: that tab no longer has them.
    if (m.base > had && m.tab !== this.me) had = m.base;
    if (m.lid <= had) return;
    // A gap (posted while no one led): that tab resends from there, asked once.
    if (m.lid > had + 1 && m.tab !== this.me) {
      if (this.asked.get(m.tab) !== had + 1) { this.asked.set(m.tab, had + 1); this.post({ t: 'resend', tab: m.tab, from: had + 1 }); }
      return;
    }
    this.asked.delete(m.tab);
    this.acc.set(m.tab, m.lid);
    if (m.t === 'send') {
      this.lr.sent(m.ch, m.tab);
      try { this.inner.send(m.data, { channel: m.ch }); } catch { /* a drop event says which */ }
      return;
    }
    const ac = new AbortController();
    this.aborts.set(`${m.tab}:${m.lid}`, ac);
    this.inner.request(m.data, { channel: m.ch, timeout: m.timeout, signal: ac.signal,
      [SHARE]: (sid) => { m.sid = sid; this.reqs.set(sid, { sid, tab: m.tab, lid: m.lid, deadline: m.deadline }); } })
      // Once it has an id its answer comes through the tap; before that (BAD_STATE, QUEUE_FULL)
      // from here. CLOSED: this tab's session ends, and the request is the next leader's (tap).
      .catch((e) => { if (!m.sid && !this.quitting && e?.code !== 'CLOSED') this.answer({ t: 'res', tab: m.tab, lid: m.lid, ok: false, v: errOf(e) }); });
  }
}
