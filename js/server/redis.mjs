// The Redis engine: the relay's Store and Bus in one Redis (7, standalone),
// shared by any number of relay processes. docs/relay.md, "Engines";
// docs/decisions.md, "A Redis engine".
//
//   sessions   one hash per session, {gen, proc, owner, meta, blob}: the same
//              Row as the other stores, plus a generation that fences a
//              process out once another one has claimed the session
//   rooms      a hash per room {epoch, next, bytes} and a stream per room whose
//              entry ids are the offsets (`<offset>-0`), trimmed to
//              roomHistory, roomHistoryBytes, roomHistoryMs
//   commit     one Lua script per commit: every changed session (unless
//              fenced), every expired one deleted, and each message appended
//              with the offset Redis gives it and PUBLISHed to its room's
//              channel in the same script: a message is fanned out only
//              once it is stored, and stored together with its sender's
//              dedup state. Nothing of a commit is acked before it returns
//   fan-out    pub/sub, one channel per room; each process keeps a mirror of
//              the rooms it serves and repairs a gap (an offset it has not
//              seen, a reconnect) from the stream, so deliveries are in
//              order and complete
//   presence   a sorted set per room, member `proc|sid|name`, score its
//              expiry; each process refreshes its own and sweeps the
//              expired (a dead process's users leave), joins and leaves
//              published on the room's channel
//
// The client is ioredis (an optional peer dependency, imported only here,
// which only Relay.create({redis}) and --redis load). Its offline queue is off
// and nothing is resent after a reconnect: a command that cannot be sent
// fails at once, so the relay refuses (1013) rather than holds, and a commit
// whose reply was lost is never run twice.
import { randomBytes } from 'node:crypto';
import { COMMIT, CLAIM, JOIN, LEAVE, REFRESH, SWEEP } from './redis-scripts.mjs';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Backoff between reconnect attempts: 50 ms doubling to 2 s, with jitter. */
export const retryDelay = (attempt) => Math.min(2000, 50 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);

const utf = (b) => (typeof b === 'string' ? b : b.toString('utf8'));
const memberOf = (proc, sid, name) => `${proc}|${sid}|${name}`;
function parseMember(m) {
  const a = m.indexOf('|'), b = m.indexOf('|', a + 1);
  return { proc: m.slice(0, a), sid: m.slice(a + 1, b), name: m.slice(b + 1) };
}

/** The data of a logged message: JSON {s, f, fl, at} + '\n' + payload. */
function packEntry(e) {
  const head = enc.encode(JSON.stringify({ s: e.sid, f: e.from, fl: e.flags, at: e.at }) + '\n');
  const b = Buffer.allocUnsafe(head.length + e.payload.length);
  b.set(head, 0);
  b.set(e.payload, head.length);
  return b;
}
function unpackEntry(offset, buf) {
  const nl = buf.indexOf(10);
  const h = JSON.parse(buf.subarray(0, nl).toString('utf8'));
  const payload = new Uint8Array(buf.length - nl - 1);
  payload.set(buf.subarray(nl + 1));
  return { offset, sid: h.s, from: h.f, flags: h.fl, payload, at: h.at };
}

export class RedisEngine {
  /**
   * Connect (and wait until Redis answers).
   * @param {string} url redis://host:port[/db]
   * @param {object} [opts] prefix ('sb:'), presenceTtlMs (15 s), log, connectTimeoutMs (5 s)
   */
  static async connect(url, opts = {}) {
    let Redis;
    try {
      ({ default: Redis } = await import('ioredis'));
    } catch (e) {
      throw new Error(`the relay's Redis engine needs the optional peer dependency ioredis (npm install ioredis@5): ${e.message}`, { cause: e });
    }
    const eng = new RedisEngine(Redis, url, opts);
    await eng._ready(opts.connectTimeoutMs ?? 5000);
    return eng;
  }

  constructor(Redis, url, opts = {}) {
    /** Sessions and logs are in Redis, reachable from every process; commits are async. */
    this.shared = true;
    this.prefix = opts.prefix ?? 'sb:';
    this.proc = randomBytes(9).toString('base64url'); // this process, in presence and claims
    this.presenceTtlMs = opts.presenceTtlMs ?? 15e3;
    this.log = opts.log || (() => {});
    this.limits = null; // the relay's options, set by attach()
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,          // not connected: a command fails at once
      autoResendUnfulfilledCommands: false, // a commit whose reply was lost is never run twice
      maxRetriesPerRequest: 0,
      retryStrategy: (n) => retryDelay(n),
      commandTimeout: opts.commandTimeoutMs ?? 5000,
      connectTimeout: opts.connectTimeoutMs ?? 5000,
    };
    this.cmd = new Redis(url, common);
    // The subscriber queues its (re)subscriptions while away; ioredis
    // subscribes again to every channel after a reconnect.
    this.sub = new Redis(url, { ...common, enableOfflineQueue: true, commandTimeout: undefined, maxRetriesPerRequest: null });
    for (const [name, lua] of [['sbCommit', COMMIT], ['sbClaim', CLAIM], ['sbJoin', JOIN], ['sbLeave', LEAVE], ['sbSweep', SWEEP], ['sbRefresh', REFRESH]]) {
      this.cmd.defineCommand(name, { numberOfKeys: 0, lua });
    }
    this.up = false;
    this.closed = false;
    /** room -> Watch: what this process mirrors of a room (watch()) */
    this.watches = new Map();
    this._due = new Set(); // watches with deliveries to hand on (setImmediate)
    this._dueTimer = null;
    this.onClaimed = null; // (id, gen) => void: another process took a session over
    this._members = new Map(); // room -> Map(sid -> member) of this process's attached members
    for (const c of [this.cmd, this.sub]) c.on('error', (e) => this.log(`relay: redis: ${e.message}`));
    this.cmd.on('ready', () => {
      const was = this.up;
      this.up = true;
      if (was === false && this._started) {
        this.log('relay: redis: connected again');
        this._repairAll(); // what was published while away
        this._heartbeat();
      }
    });
    this.cmd.on('close', () => {
      if (this.up) this.log('relay: redis: connection lost; reconnecting');
      this.up = false;
    });
    // The subscriber is back: what was published before its subscriptions
    // were in place is read from the streams, now and once more shortly.
    this.sub.on('ready', () => {
      if (!this._started) return;
      this._repairAll();
      setTimeout(() => { this._repairAll(); this._resyncPresence(); }, 500).unref?.();
    });
    this.sub.on('messageBuffer', (ch, msg) => this._message(ch, msg));
  }

  async _ready(ms) {
    const t = setTimeout(() => { this.cmd.disconnect(); this.sub.disconnect(); }, ms);
    try {
      await Promise.all([this.cmd.connect(), this.sub.connect()]);
      await this.sub.subscribe(this.prefix + 'claims');
    } catch (e) {
      this.cmd.disconnect();
      this.sub.disconnect();
      throw new Error(`redis: cannot connect: ${e.message}`, { cause: e });
    } finally {
      clearTimeout(t);
    }
    this.up = true;
    this._started = true;
  }

  /** The relay's options (limits, TTLs) and the heartbeat. */
  attach(o) {
    this.limits = o;
    clearInterval(this._beat);
    this._beat = setInterval(() => this._heartbeat(), Math.max(50, this.presenceTtlMs / 3));
    this._beat.unref?.();
  }

  get _sessionTtl() { return Math.ceil((this.limits?.sessionTtlMs ?? 300e3) + this.presenceTtlMs); }
  get _roomTtl() { return Math.ceil((this.limits?.roomHistoryMs ?? 600e3) + (this.limits?.sessionTtlMs ?? 300e3) + 60e3); }

  // ---- Store --------------------------------------------------------------

  load() { return []; } // sessions are claimed one by one when their client comes back

  /**
   * One script: the sessions (fenced by their generation), the deletes, the
   * appends (offsets from Redis, published in the same script).
   * upserts: Row & {gen}; deletes: [id, gen][]; appends: {room, epoch, sid, from, flags, payload, at}[]
   * -> the ids fenced out (claimed by another process meanwhile).
   */
  async commit(upserts, deletes, appends) {
    const l = this.limits || {};
    const a = [this.prefix, this.proc, this._sessionTtl, l.roomHistory ?? 10000, this._roomTtl,
      l.roomHistoryBytes ?? 16 << 20, Date.now() - (l.roomHistoryMs ?? 600e3), upserts.length, deletes.length, appends.length];
    for (const r of upserts) {
      a.push(r.id, String(r.gen), r.owner ?? '', JSON.stringify({ room: r.room, user: r.user, owner: r.owner ?? null, echo: !!r.echo, subs: r.subs || [] }),
        Buffer.from(r.blob.buffer, r.blob.byteOffset, r.blob.byteLength));
    }
    for (const [id, gen] of deletes) a.push(id, String(gen));
    for (const e of appends) a.push(e.room, e.epoch, e.sid, packEntry(e), e.payload.length, e.at ?? Date.now());
    const fenced = await this.cmd.sbCommit(...a);
    return (fenced || []).map(utf);
  }

  /**
   * Take over a session stored by any process: -> null (unknown), 'forbidden'
   * (another user's), 'mine' (mine: the generation this process has of it,
   * still the stored one) or its Row with its new generation.
   */
  async claim(id, userId, mine = 0) {
    const r = await this.cmd.sbClaimBuffer(this.prefix, id, this.proc, this._sessionTtl, userId === undefined ? '0' : '1', userId ?? '', mine ? String(mine) : '');
    if (!r) return null;
    if (!Array.isArray(r)) {
      const v = utf(r);
      return v === 'forbidden' || v === 'mine' ? v : null;
    }
    const meta = JSON.parse(utf(r[1]));
    const blob = new Uint8Array(r[2].length);
    blob.set(r[2]);
    return { id, gen: Number(utf(r[0])), ...meta, blob };
  }

  // ---- Bus: a room's log, in order and complete ---------------------------

  /**
   * Mirror a room: subscribe to its channel, then read its log. Resolves to
   * {epoch, next, entries, members}; after that, on.entries(entries, epoch,
   * reset) gets every later message in order (reset: the log started anew,
   * another epoch), on.presence(type, {proc, sid, name}) the other
   * processes' joins and leaves.
   */
  async watch(room, on) {
    if (this.watches.has(room)) throw new Error(`redis: ${room} is watched already`);
    if (!this.up) throw new Error('redis is not connected');
    const w = { room, on, epoch: null, next: 0, loading: true, queue: [], members: new Map(), repairing: false, seen: 0 };
    this.watches.set(room, w);
    try {
      let t;
      await Promise.race([this.sub.subscribe(this.prefix + 'c:' + room), new Promise((_, no) => {
        t = setTimeout(() => no(new Error('redis: subscribing timed out')), this.cmd.options.commandTimeout || 5000);
      })]).finally(() => clearTimeout(t));
      // The room's epoch is drawn once, here or by the first append, whichever is first.
      const mk = this.prefix + 'r:' + room;
      await this.cmd.pipeline().hsetnx(mk, 'epoch', randomBytes(9).toString('base64url')).hsetnx(mk, 'next', 1).pexpire(mk, this._roomTtl).exec()
        .then((res) => { for (const [e] of res) if (e) throw e; });
      const [log, members] = await Promise.all([this._read(room, 0), this._presence(room)]);
      w.epoch = log.epoch;
      w.next = log.next;
      for (const m of members) w.members.set(m.key, m);
      return { epoch: log.epoch, next: log.next, entries: log.entries, members };
    } catch (e) {
      if (this.watches.get(room) === w) this.watches.delete(room);
      this.sub.unsubscribe(this.prefix + 'c:' + room).catch(() => {});
      throw e;
    }
  }

  /** The mirror of room is in place: what arrived meanwhile, and all that follows, is handed on. */
  start(room) {
    const w = this.watches.get(room);
    if (!w || !w.loading) return;
    w.loading = false;
    this._drainQueue(w);
  }

  unwatch(room) {
    const w = this.watches.get(room);
    if (!w) return;
    this.watches.delete(room);
    this.sub.unsubscribe(this.prefix + 'c:' + room).catch(() => {});
  }

  /** The log of room after offset `after`: {epoch, next, entries}. */
  async _read(room, after) {
    // One transaction: no commit between reading `next` and the entries.
    const res = await this.cmd.multi().hmget(this.prefix + 'r:' + room, 'epoch', 'next')
      .xrangeBuffer(this.prefix + 'l:' + room, `(${after}-0`, '+').exec();
    for (const [e] of res) if (e) throw e;
    const meta = res[0][1], list = res[1][1];
    const epoch = meta[0] || null;
    const next = meta[1] ? Number(meta[1]) : 1;
    const entries = [];
    for (const [id, fields] of list) entries.push(unpackEntry(Number(utf(id).split('-')[0]), fields[1]));
    return { epoch, next, entries };
  }

  async _presence(room) {
    const list = await this.cmd.zrangebyscore(this.prefix + 'p:' + room, Date.now(), '+inf');
    const out = [];
    for (const m of list) {
      const x = parseMember(m);
      if (x.proc !== this.proc) out.push({ key: m, ...x });
    }
    return out;
  }

  _message(chb, msg) {
    const ch = utf(chb);
    if (ch === this.prefix + 'claims') {
      const [id, gen, proc] = utf(msg).split(' ');
      if (proc !== this.proc) this.onClaimed?.(id, Number(gen));
      return;
    }
    const room = ch.slice(this.prefix.length + 2);
    const w = this.watches.get(room);
    if (!w) return;
    if (msg[0] === 0x70) { // 'p': presence
      const key = msg.subarray(2).toString('utf8');
      const x = parseMember(key);
      if (x.proc === this.proc) return;
      if (msg[1] === 0x4a) { // J
        if (w.members.has(key)) return;
        w.members.set(key, { key, ...x });
        w.on.presence?.('join', x);
      } else if (w.members.delete(key)) {
        w.on.presence?.('leave', x);
      }
      return;
    }
    // 'm' epoch \n offset \n data
    const a = msg.indexOf(10, 1), b = msg.indexOf(10, a + 1);
    const epoch = msg.subarray(1, a).toString('utf8');
    const offset = Number(msg.subarray(a + 1, b).toString('utf8'));
    w.queue.push({ epoch, e: unpackEntry(offset, msg.subarray(b + 1)) });
    // Everything that came in one read is handed on at once: one turn of the
    // relay, one write per subscriber for all of it (as a batch of a
    // client's frames fans out in the memory engine).
    this._due.add(w);
    if (!this._dueTimer) {
      this._dueTimer = setImmediate(() => {
        this._dueTimer = null;
        const due = [...this._due];
        this._due.clear();
        for (const x of due) this._drainQueue(x);
      });
    }
  }

  /** Hand on what follows w.next in order; a gap or another epoch is read from the stream. */
  _drainQueue(w) {
    if (w.loading || w.repairing || this.watches.get(w.room) !== w) return;
    const ready = [];
    let gap = false;
    while (w.queue.length) {
      const { epoch, e } = w.queue[0];
      if (epoch !== w.epoch || e.offset > w.next) { gap = true; break; }
      w.queue.shift();
      if (e.offset === w.next) {
        ready.push(e);
        w.next++;
      }
    }
    if (ready.length) this._hand(w, ready, w.epoch, false);
    if (gap) this._repair(w);
  }

  _hand(w, entries, epoch, reset, next) {
    try {
      w.on.entries(entries, epoch, reset, next);
    } catch (e) {
      this.log(`relay: redis delivery: ${e?.stack || e}`);
    }
  }

  /** Read what w missed from the stream (a gap, a reconnect, another epoch). */
  _repair(w) {
    if (w.repairing || w.loading) return;
    w.repairing = true;
    const done = () => {
      w.repairing = false;
      if (this.watches.get(w.room) === w && !this.closed && w.queue.length) this._drainQueue(w);
    };
    this._read(w.room, w.next - 1).then((log) => {
      if (this.watches.get(w.room) !== w) return done();
      const fresh = log.entries.filter((e) => e.offset >= w.next);
      if (log.epoch !== w.epoch || (fresh.length && fresh[0].offset !== w.next)) {
        // The log started anew (another epoch), or lost what follows this
        // mirror (trimmed): the mirror starts over from what it has.
        const all = log.epoch !== w.epoch ? log.entries : fresh;
        w.epoch = log.epoch;
        w.next = log.next;
        this._hand(w, all, log.epoch, true, log.next);
      } else if (fresh.length) {
        w.next = fresh[fresh.length - 1].offset + 1;
        this._hand(w, fresh, w.epoch, false);
      }
      // What the queue still has beyond the log read: its next turn.
      w.queue = w.queue.filter((q) => q.epoch === w.epoch && q.e.offset >= w.next);
      done();
    }, (e) => {
      this.log(`relay: redis: reading ${w.room}: ${e.message}`);
      setTimeout(() => { w.repairing = false; if (this.watches.get(w.room) === w) this._repair(w); }, retryDelay(3)).unref?.();
    });
  }

  _repairAll() {
    for (const w of this.watches.values()) if (!w.loading) this._repair(w);
  }

  /** After a reconnect: the other processes' members as Redis has them; what changed meanwhile is told. */
  _resyncPresence() {
    for (const w of this.watches.values()) {
      if (w.loading) continue;
      this._presence(w.room).then((list) => {
        if (this.watches.get(w.room) !== w) return;
        const now = new Map(list.map((m) => [m.key, m]));
        for (const [key, m] of w.members) if (!now.has(key)) { w.members.delete(key); w.on.presence?.('leave', m); }
        for (const [key, m] of now) if (!w.members.has(key)) { w.members.set(key, m); w.on.presence?.('join', m); }
      }, (e) => this.log(`relay: redis presence of ${w.room}: ${e.message}`));
    }
  }

  // ---- presence ---------------------------------------------------------------

  /** This process's member sid (named name) joins or leaves room. */
  presence(type, room, sid, name) {
    let mine = this._members.get(room);
    const was = mine?.get(sid);
    const oops = (e) => this.log(`relay: redis presence: ${e.message}`);
    if (was && (type !== 'join' || was !== memberOf(this.proc, sid, name))) { // left, or renamed
      mine.delete(sid);
      if (!mine.size) this._members.delete(room);
      if (this.up) this.cmd.sbLeave(this.prefix, room, was).catch(oops);
    }
    if (type === 'join') {
      const key = memberOf(this.proc, sid, name);
      if (!this._members.has(room)) this._members.set(room, new Map());
      this._members.get(room).set(sid, key);
      if (this.up) this.cmd.sbJoin(this.prefix, room, key, Date.now() + this.presenceTtlMs, this.presenceTtlMs * 2).catch(oops);
    }
  }

  /** The other processes' members of room (as this process mirrors them). */
  members(room) {
    const w = this.watches.get(room);
    return w ? [...w.members.values()] : [];
  }

  /**
   * Every presenceTtlMs / 3: this process's members refreshed, the expired
   * swept (their leaves published), the sessions' keys kept alive.
   */
  _heartbeat() {
    if (!this.up || this.closed) return;
    const now = Date.now();
    const pipe = this.cmd.pipeline();
    for (const [room, mine] of this._members) pipe.sbRefresh(this.prefix, room, now + this.presenceTtlMs, this.presenceTtlMs * 2, ...mine.values());
    const refreshes = this._members.size; // the replies before the sweeps'
    const rooms = [...this.watches.keys()];
    for (const room of rooms) pipe.sbSweep(this.prefix, room, now);
    // A mirror behind its log (a publish lost while a connection was down,
    // and nothing since that would show the gap) reads what it missed.
    for (const room of rooms) pipe.hmget(this.prefix + 'r:' + room, 'epoch', 'next');
    for (const id of this.sessionIds?.() || []) pipe.pexpire(this.prefix + 's:' + id, this._sessionTtl);
    pipe.exec().then((res) => {
      rooms.forEach((room, i) => {
        const [err, meta] = res[refreshes + rooms.length + i] || [];
        const w = this.watches.get(room);
        if (err || !w || w.loading || !meta?.[0]) return;
        // Behind what Redis had one beat ago: a publish was lost (what is
        // only in flight now has arrived by the next beat).
        const next = Number(meta[1]);
        if (meta[0] !== w.epoch || (w.seen && w.next < w.seen)) this._repair(w);
        w.seen = next;
      });
    }, (e) => this.log(`relay: redis heartbeat: ${e.message}`));
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this._beat);
    clearImmediate(this._dueTimer);
    try {
      if (this.up) {
        const pipe = this.cmd.pipeline();
        for (const [room, mine] of this._members) for (const key of mine.values()) pipe.sbLeave(this.prefix, room, key);
        await pipe.exec();
      }
    } catch (e) {
      this.log(`relay: redis: leaving: ${e.message}`);
    }
    this._members.clear();
    this.watches.clear();
    await Promise.allSettled([this.cmd.quit(), this.sub.quit()]);
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}

export { packEntry, unpackEntry, parseMember, dec };
