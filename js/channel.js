// Rooms on one Socket (docs/socket.md, "Rooms"): socket.subscribe(room)
// returns a Channel, multiplexed on a channel number of the session of its
// own. The relay (docs/relay.md) keeps each room as one log with offsets and
// stamps every message with its sender; a Channel remembers the last offset
// it saw and asks for what came after it whenever its Socket (re)opens, so a
// new session on the relay resumes the room from there, or says it could
// not ('unrecovered').
//
// The subscription requests are JSON on channel 1, the relay's own:
//   {op: 'subscribe', room, channel, since?: {epoch, offset}} and
//   {op: 'unsubscribe', channel}.
import { SwitchboardError } from './errors.js';
import { event, onProperties } from './glue.js';
import { SESSION_SYSTEM_CHANNEL as SYSTEM } from './constants.js';

export class Channel extends EventTarget {
  #socket; #owner; #held = []; #ready; #presenceSeen;

  constructor(socket, owner, room, channel, since) {
    super();
    this.#socket = socket;
    this.#owner = owner;
    this.room = room;
    this.channel = channel;
    /** 'subscribing' | 'subscribed' | 'unsubscribed' */
    this.state = 'subscribing';
    this.epoch = since ? since.epoch : null;
    this.offset = since ? since.offset : 0;
    /** Users in the room (presence), as the relay names them. */
    this.users = [];
    this.#presenceSeen = 0;
    /** Whether the relay lets this client publish here (null until subscribed). */
    this.publish = null;
    this.#ready = {};
    this.ready = new Promise((resolve, reject) => Object.assign(this.#ready, { resolve, reject }));
    this.ready.catch(() => {});
  }

  /** Where this channel is in its room's log: pass it as `since` to resume elsewhere (after a reload). */
  get position() { return this.epoch ? { epoch: this.epoch, offset: this.offset } : null; }

  /** Send to the room (held until the relay has confirmed the subscription). */
  send(data) {
    if (this.state === 'unsubscribed') throw new SwitchboardError('CLOSED', `not subscribed to ${this.room}`);
    if (this.state === 'subscribing') this.#held.push(data);
    else this.#socket.send(data, { channel: this.channel });
  }

  /** A request to the relay's onRequest, about this room. */
  async request(data, opts = {}) {
    await this.ready;
    return this.#socket.request(data, { ...opts, channel: this.channel });
  }

  /** Leave the room; resolves once the relay has. */
  async unsubscribe() {
    if (this.state === 'unsubscribed') return;
    this.#end(new SwitchboardError('CLOSED', 'unsubscribed'));
    await this.#owner.control({ op: 'unsubscribe', channel: this.channel }, this);
  }

  #end(error) {
    this.state = 'unsubscribed';
    this.#held = [];
    this.#owner.drop(this);
    this.#ready.reject(error);
  }

  /** Ask the relay for the room from where this channel is (each time the Socket opens). */
  _subscribe() {
    const q = { op: 'subscribe', room: this.room, channel: this.channel };
    const seen = this.#presenceSeen; // a notice newer than this answer's list wins over it
    if (this.epoch) q.since = { epoch: this.epoch, offset: this.offset };
    this.#owner.control(q, this).then((text) => {
      if (this.state === 'unsubscribed') return;
      const r = JSON.parse(text);
      if (r.channel > 1) this.channel = r.channel; // a shared Socket's leader numbers the room
      const had = this.epoch !== null && q.since;
      this.epoch = r.epoch;
      if (r.recovered === false || !had) this.offset = r.offset;
      if (seen === this.#presenceSeen) this.users = Array.isArray(r.users) ? r.users : [];
      this.publish = r.publish !== false;
      if (had && r.recovered === false) this.dispatchEvent(event('unrecovered', { room: this.room, since: q.since }));
      if (this.state === 'subscribing') {
        this.state = 'subscribed';
        for (const d of this.#held.splice(0)) this.#socket.send(d, { channel: this.channel });
        this.#ready.resolve(this);
      }
    }, (e) => {
      if (this.state === 'unsubscribed' || e?.code === 'CLOSED') return;
      if (e?.code === 'CONNECTION_LOST' || e?.code === 'TIMEOUT') return; // asked again at the next open
      this._fail(e instanceof SwitchboardError ? e : new SwitchboardError('INTERNAL', String(e)));
    });
  }

  /** The relay refused the room (now, or when it was asked again): error, and the channel ends. */
  _fail(err) {
    if (this.state === 'unsubscribed') return;
    this.dispatchEvent(event('error', { error: err }));
    this.#end(err);
  }

  _message(data, e) {
    if (e.offset > this.offset) this.offset = e.offset;
    this.dispatchEvent(Object.assign(new MessageEvent('message', { data, lastEventId: e.offset ? String(e.offset) : '' }),
      { channel: this.channel, from: e.from, offset: e.offset }));
  }

  /** A notice of the relay about this room. */
  _notice(n) {
    if (n.type === 'join' || n.type === 'leave') {
      this.#presenceSeen++;
      if (Array.isArray(n.users)) this.users = n.users;
      else if (n.type === 'join') this.users = [...this.users, n.user].sort();
      else {
        const i = this.users.indexOf(n.user);
        if (i >= 0) this.users = this.users.filter((_, j) => j !== i);
      }
      this.dispatchEvent(event('presence', { change: n.type, user: n.user, users: this.users }));
    } else if (n.type === 'unrecovered') {
      this.dispatchEvent(event('unrecovered', { room: this.room, since: null }));
    } else if (n.type === 'refused') {
      this.dispatchEvent(event('error', { error: new SwitchboardError(n.code === 'NOT_FOUND' ? 'NOT_FOUND' : 'FORBIDDEN', String(n.message || 'refused')) }));
    }
  }
}

onProperties(Channel, ['message', 'presence', 'unrecovered', 'error']);

/** The option of subscribe() a shared Socket's leader numbers its rooms with (js/share-rooms.js). */
export const AT = Symbol('switchboard.channel');

/** A Socket's channels, by channel number. */
export class Channels extends Map {
  #socket; #next = 2;

  constructor(socket) {
    super();
    this.#socket = socket;
  }

  /** A subscription request to the relay (the Channel's own: the answer's JSON text). */
  control(q) { return this.#socket.request(JSON.stringify(q), { channel: SYSTEM }); }
  drop(c) { this.delete(c.channel); }

  /** socket.subscribe(room, {since}) */
  add(room, opts = {}) {
    if (typeof room !== 'string' || !room.length || room.length > 128) throw new SwitchboardError('INVALID', 'room must be a string of 1 to 128 characters');
    for (const c of this.values()) if (c.room === room) return c;
    const since = opts.since && typeof opts.since.epoch === 'string' && Number.isInteger(opts.since.offset) ? opts.since : null;
    const n = opts[AT] > 1 && !this.has(opts[AT]) ? opts[AT] : this.#next;
    this.#next = Math.max(this.#next, n + 1);
    const c = new Channel(this.#socket, this, room, n, since);
    this.set(c.channel, c);
    if (this.#socket.readyState === 1 && this.#socket.mode === 'framed') c._subscribe();
    return c;
  }

  /** The Socket opened (again): every channel asks for its room from where it is. */
  open(framed) {
    for (const c of this.values()) {
      if (framed) c._subscribe();
      else { c.dispatchEvent(event('error', { error: new SwitchboardError('BAD_STATE', 'rooms need the switchboard relay (framed mode)') })); }
    }
  }

  /** A message: true if it was a channel's (or a notice about one). */
  route(data, e) {
    const c = this.get(e.channel);
    if (c) {
      c._message(data, e);
      return true;
    }
    if (e.channel !== SYSTEM || typeof data !== 'string' || !data.includes('"channel"')) return false;
    let n;
    try { n = JSON.parse(data); } catch { return false; }
    // The hello's room (channel 0) is the Socket's own: it hears of a gap there.
    if (n?.channel === 0 && n.type === 'unrecovered') this.#socket.dispatchEvent(event('unrecovered', { room: n.room, since: null }));
    const to = n && this.get(n.channel);
    if (!to) return false;
    to._notice(n);
    return true;
  }
}
