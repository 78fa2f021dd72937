// Rooms: each room is one ordered log with offsets (1, 2, 3, ...) and an
// epoch (a random id drawn when the log starts). Every message published to
// a room is appended to its log once, whatever the number of subscribers:
// memory is O(room history), not O(sessions x history). A subscriber's
// position is the last offset it was handed; a session that comes back
// (resume) or a client that subscribes again with {epoch, offset} is handed
// what it missed from the log, or told it was not recovered when that part
// of the log is gone (trimmed, or another epoch: the relay restarted without
// a durable store). docs/relay.md, "Rooms".
import { randomBytes } from 'node:crypto';

export const LOG_DEFAULTS = {
  roomHistory: 10000,          // messages kept per room
  roomHistoryBytes: 16 << 20,  // their payload bytes per room
  roomHistoryMs: 10 * 60e3,    // and no older than this
};

/** One logged message: what the fan-out and a replay need. */
// { offset, sid (the sender's session id), from (its user), channel (the app
//   channel it was sent on, for the hello's room), flags, payload, at }

export class RoomLog {
  constructor(room, limits, epoch = randomBytes(9).toString('base64url'), next = 1) {
    this.room = room;
    this.epoch = epoch;
    this.limits = limits;
    this.entries = [];
    this.head = 0;       // entries[head] is the oldest kept
    this.first = next;   // its offset (= next when empty)
    this.next = next;    // the offset the next message gets
    this.bytes = 0;
  }

  get size() { return this.entries.length - this.head; }

  /** Append; returns the entry (with its offset). Trims to the limits. */
  append(e, now) {
    e.offset = this.next++;
    e.at = now;
    this.entries.push(e);
    this.bytes += e.payload.length;
    this.trim(now);
    return e;
  }

  /** A log read back from a store: entries in offset order, all below next. */
  static restore(room, limits, epoch, next, entries, now) {
    const log = new RoomLog(room, limits, epoch, next);
    if (entries.length) log.first = entries[0].offset;
    for (const e of entries) {
      log.entries.push(e);
      log.bytes += e.payload.length;
    }
    log.trim(now);
    return log;
  }

  /** Drop from the front past the count, bytes or age limits. Returns the new first offset. */
  trim(now) {
    const { roomHistory, roomHistoryBytes, roomHistoryMs } = this.limits;
    while (this.size && (this.size > roomHistory || this.bytes > roomHistoryBytes || now - this.entries[this.head].at > roomHistoryMs)) {
      this.bytes -= this.entries[this.head].payload.length;
      this.entries[this.head++] = undefined;
    }
    this.first = this.size ? this.entries[this.head].offset : this.next;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return this.first;
  }

  /**
   * What comes after offset `after` in this epoch: the entries, or null when
   * some of it is gone (trimmed, or `epoch` is another log's).
   */
  since(after, epoch = this.epoch) {
    if (epoch !== this.epoch || !Number.isInteger(after) || after < 0 || after >= this.next || after + 1 < this.first) return null;
    return this.entries.slice(this.head + (after + 1 - this.first));
  }
}

/** A session's subscription to a room, on one of its channels. */
export class Sub {
  constructor(room, channel, offset, canPublish) {
    this.room = room;
    this.channel = channel;
    this.offset = offset;         // the last offset handed to the session
    this.canPublish = canPublish; // authorize({action: 'publish'})
    this.behind = false;          // its session's window is full: it catches up from the log
  }

  toJSON() { return [this.channel, this.room, this.offset, this.canPublish ? 1 : 0]; }

  static from(a) {
    if (!Array.isArray(a) || !(a[0] >= 0) || typeof a[1] !== 'string' || !(a[2] >= 0)) return null;
    return new Sub(a[1], a[0] >>> 0, a[2], a[3] === 1);
  }
}

/** A room name: 1..128 characters. */
export const roomName = (r) => (typeof r === 'string' && r.length > 0 && r.length <= 128 ? r : null);
