// The rooms' side of a shared engine (Redis, redis.mjs): each process keeps
// a mirror of the logs of the rooms its sessions are in, read once before a
// session uses the room (prepare) and then fed, in order, by the engine's
// deliveries; presence of the other processes' members. The base of Rooms
// (rooms.mjs), which owns the logs, subscriptions and fan-out these use.
// docs/relay.md, "Engines".

export class RoomMirrors {
  /**
   * With a shared engine: the mirrors of rooms, read before a session uses
   * them (a hello, a subscribe, a session claimed from another process).
   * Returns null when they are all here, else a Promise.
   */
  prepare(rooms) {
    if (!this.shared) return null;
    const wait = [];
    for (const room of rooms) {
      clearTimeout(this.idle.get(room));
      this.idle.delete(room);
      if (this.logs.has(room)) continue;
      let p = this.preparing.get(room);
      if (!p) {
        const store = this.r.store;
        p = store.watch(room, {
          entries: (list, epoch, reset, next) => this.r._turn(null, () => this.delivered(room, list, epoch, reset, next)),
          presence: (type, m) => this.r._turn(null, () => this.remotePresence(room, type, m)),
        }).then((first) => {
          this.preparing.delete(room);
          this.logs.set(room, this.restoreLog(room, first.epoch, first.next, first.entries, Date.now()));
          store.start(room);
          if (!this.map.has(room)) this.unused(room);
        }, (e) => {
          this.preparing.delete(room);
          throw e;
        });
        this.preparing.set(room, p);
      }
      wait.push(p);
    }
    return wait.length ? Promise.all(wait) : null;
  }

  /** No session here is in room any more: its mirror goes after a while. */
  unused(room) {
    if (!this.shared || this.idle.has(room)) return;
    const t = setTimeout(() => {
      this.idle.delete(room);
      if (this.map.has(room) || this.preparing.has(room)) return;
      this.logs.delete(room);
      this.r.store.unwatch(room);
    }, 30e3);
    t.unref?.();
    this.idle.set(room, t);
  }

  /**
   * A shared engine's deliveries: entries that follow the mirror's last, in
   * order, fanned out to the subscribers here; reset: the log is another
   * (a new epoch, or trimmed past what this mirror had), so every
   * subscription here goes on from it, told `unrecovered` if its position
   * is gone.
   */
  delivered(room, list, epoch, reset, next) {
    let log = this.logs.get(room);
    if (!log) return;
    const now = Date.now();
    if (reset || epoch !== log.epoch) {
      const n = next ?? (list.length ? list[list.length - 1].offset + 1 : log.next);
      log = this.restoreLog(room, epoch, n, list, now);
      this.logs.set(room, log);
      const r = this.map.get(room);
      for (const slot of r ? r.slots : []) {
        const sub = slot.subOf(room);
        if (!sub) continue;
        if (!log.since(sub.offset)) {
          this.r.stats.unrecovered++;
          this.notice(slot, { type: 'unrecovered', room, channel: sub.channel });
          sub.offset = log.first - 1;
        }
        sub.behind = true;
        this.behind.add(slot);
        this.catchUp(slot);
      }
      return;
    }
    for (const e of list) {
      if (e.offset < log.next) continue;
      log.put(e, now);
      this.fanout(room, e);
    }
  }

  /** Another process's member joined or left room: told to the members here. */
  remotePresence(room, type, m) {
    const r = this.map.get(room);
    if (!r) return;
    const users = this.users(room);
    const all = users.length <= this.r.o.presenceList;
    for (const other of r.slots) {
      if (!other.conn) continue;
      const theirs = other.subOf(room);
      if (!theirs) continue;
      const o = { type, room, channel: theirs.channel, user: m.name };
      if (all) o.users = users;
      this.notice(other, o, true); // written with the others (presenceDelay)
    }
  }
}
