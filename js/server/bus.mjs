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
    /** @type {Map<string, Set<Function>>} */
    this.rooms = new Map();
  }

  subscribe(room, onMessage) {
    let set = this.rooms.get(room);
    if (!set) this.rooms.set(room, (set = new Set()));
    set.add(onMessage);
    return () => {
      set.delete(onMessage);
      if (!set.size && this.rooms.get(room) === set) this.rooms.delete(room);
    };
  }

  publish(room, msg) {
    const set = this.rooms.get(room);
    if (!set) return 0;
    for (const fn of [...set]) fn(msg);
    return set.size;
  }

  close() {
    this.rooms.clear();
  }
}
