// Fan-out behind one small interface. The relay publishes every message of a
// room here and delivers what it gets back to its own sessions, so several
// relay processes behind a load balancer only need a Bus that reaches all of
// them (Redis pub/sub: publish() = PUBLISH room <frame bytes>, subscribe() =
// SUBSCRIBE room); the wire protocol does not change.
//
//   interface Bus {
//     subscribe(room: string, onMessage: (msg: BusMessage) => void): () => void
//     publish(room: string, msg: BusMessage): void
//     close(): void
//   }
//   BusMessage = { from: string|null, channel: number, flags: number, payload: Uint8Array }
//
// The in-process bus delivers synchronously, inside publish(): a message and
// its deliveries into the recipients' sessions are then one turn of the
// relay, committed to the store together before the sender's ack leaves
// (docs/relay.md, "Relay state across restarts"). A bus that delivers later
// (Redis) makes each delivery a turn of its own in the receiving process.

export class LocalBus {
  constructor() {
    /** room -> its subscriber, or a Set of them when more than one (one relay: one each) */
    this.rooms = new Map();
    this.gen = 0; // close() starts another: a handle from before it touches nothing
  }

  subscribe(room, onMessage) {
    const had = this.rooms.get(room);
    if (!had) this.rooms.set(room, onMessage);
    else if (had instanceof Set) had.add(onMessage);
    else this.rooms.set(room, new Set([had, onMessage]));
    let done = false;
    const gen = this.gen;
    return () => {
      if (done || gen !== this.gen) return;
      done = true;
      const now = this.rooms.get(room);
      if (now === onMessage) this.rooms.delete(room);
      else if (now instanceof Set && now.delete(onMessage) && !now.size) this.rooms.delete(room);
    };
  }

  publish(room, msg) {
    const got = this.rooms.get(room);
    if (!got) return 0;
    if (!(got instanceof Set)) {
      got(msg);
      return 1;
    }
    for (const fn of [...got]) fn(msg);
    return got.size;
  }

  close() {
    this.gen++;
    this.rooms.clear();
  }
}
