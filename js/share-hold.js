// The write hold of a shared Socket's leader (docs/socket.md, "Sharing"): a
// write to the server waits until a tab confirms it has the snapshot that
// counts what the write carries. Else a leader that died right after a write,
// its snapshot still in the channel, left the tabs resuming from an older
// one: they sent again what the server already had, and it said "they may
// arrive twice". One tab is asked per snapshot: the one heard from last
// (a new leader's first snapshot every tab answers: so it hears who lives).
// docs/decisions.md, "One session for all tabs" (confirmation, which tab confirms).
import { now } from './glue.js';

// How long a write waits for the asked tab; for one that does not answer in time
// no write waits again until the tabs change or it answers, and the next is asked, until the
// write has waited MAX_MS: then it goes out unconfirmed (every tab busy, or frozen).
const WAIT_MS = 100;
const MAX_MS = 400;

export class Hold {
  /** @param {import('./socket-share.js').Share} share */
  constructor(share) {
    this.sh = share;
    this.heard = new Map(); // per tab, when it last confirmed a snapshot (every tab hears it)
    this.skip = new Set(); // tabs that did not answer in time
    this.asking = 0; this.confirmed = 0; this.timer = null; this.since = 0;
    this.release = null; // the leader's Socket's: writes what it held
  }

  /**
   * The tab to confirm the next snapshot (0: this one is alone). One that did
   * not answer in time is still asked, though no write waits for it: what the
   * snapshot counts of this tab's own sends is safe only once a tab has it
   * (a leader cut off from the tabs, frozen, sends them again to the next).
   */
  ask() { return (this.asking = this.pick()); }

  /**
   * The one that confirmed last: a tab closed or crashed stays listed until
   * its lease runs out. The leader this one replaced last of all.
   */
  pick() {
    let id = 0, at = -Infinity;
    for (const t of this.sh.group?.tabs || []) {
      if (t.self) continue;
      // (a skipped tab after every other: heard times are Date.now() values)
      const h = (this.skip.has(t.id) ? -1e15 : 0) + (t.id === this.sh.leader ? -2 : this.heard.get(t.id) ?? -1);
      if (h > at) { id = t.id; at = h; }
    }
    return id;
  }

  /** Whether the leader's Socket holds a write, the newest snapshot being gen. */
  write(gen) {
    if (this.sh.quitting || !this.asking || this.skip.has(this.asking) || this.confirmed >= gen) return false;
    if (!this.timer) { this.since = now(); this.timer = setTimeout(() => this.waited(), WAIT_MS); }
    return true;
  }

  /**
   * A tab confirmed a snapshot (to whichever leader). One that did not answer
   * in time is waited for again, but ranks as it did: the tabs that answer in
   * time are asked first.
   */
  got(tab) {
    if (!this.skip.delete(tab)) this.heard.set(tab, now());
  }

  /** A tab has snapshot gen; the newest is last. */
  confirm(gen, last) {
    this.confirmed = gen;
    if (gen >= last) this.free();
  }

  /** Write what is held. */
  free() { clearTimeout(this.timer); this.timer = null; this.release?.(); }

  /** The asked tab did not answer in time (busy, or gone and still listed): ask the next, or write. */
  waited() {
    this.timer = null;
    this.skip.add(this.asking);
    const next = this.pick(); // (given up, the asked stays the skipped one: no write waits for it)
    if (!next || this.skip.has(next) || now() - this.since >= MAX_MS) { this.free(); return; }
    this.asking = next;
    this.sh.post({ t: 'ask', from: this.sh.me, gen: this.sh.gen, ask: next });
    this.timer = setTimeout(() => this.waited(), WAIT_MS);
  }

  /** The tabs changed: every one may be asked again; the asked one gone, the next now. */
  presence(tabs) {
    this.skip.clear();
    for (const id of this.heard.keys()) if (!tabs.some((t) => t.id === id)) this.heard.delete(id);
    if (this.timer && !tabs.some((t) => t.id === this.asking)) { clearTimeout(this.timer); this.waited(); }
  }
}
