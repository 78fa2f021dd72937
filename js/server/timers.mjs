// The relay's sessions' deadlines on one Node timer: a binary min-heap of
// slots by due time, and a setTimeout at the earliest. Ten thousand idle
// connections then hold no Timeout object and no closure each, and moving
// a deadline (after every message, the idle timeout moves) is O(log n)
// instead of a timer cleared and set.
//
// An item is any object; the heap keeps its due time and position on it
// (item.due: ms since the epoch or -1; item.at: its index, or -1).

export class Timers {
  /** @param {(item: object) => void} fire called for each item whose time has come */
  constructor(fire) {
    this.fire = fire;
    this.heap = [];
    this.timer = null;
    this.timerAt = Infinity;
    this.running = false;
    this.closed = false;
  }

  /** Run item's fire at `due` (ms since the epoch); -1 unschedules it. */
  set(item, due) {
    if (this.closed) return;
    if (item.at === undefined) item.at = -1;
    if (due < 0) {
      this.clear(item);
      return;
    }
    const h = this.heap;
    const was = item.at >= 0 ? item.due : Infinity;
    item.due = due;
    if (item.at < 0) {
      item.at = h.length;
      h.push(item);
    }
    if (due < was) this.up(item.at);
    else this.down(item.at);
    this.rearm();
  }

  clear(item) {
    const i = item.at;
    item.due = -1;
    if (i === undefined || i < 0) return;
    item.at = -1;
    const h = this.heap, last = h.pop();
    if (last !== item) {
      h[i] = last;
      last.at = i;
      this.up(i);
      this.down(last.at);
    }
    this.rearm();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = null;
    for (const item of this.heap) { item.at = -1; item.due = -1; }
    this.heap = [];
  }

  /** The Node timer at the earliest due time (a later one is left set: it fires early and re-arms). */
  rearm() {
    const top = this.heap[0];
    const at = top ? top.due : Infinity;
    if (this.running || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.run(), Math.max(1, Math.min(at - Date.now(), 0x7fffffff)));
    this.timer.unref?.();
  }

  run() {
    this.timer = null;
    this.timerAt = Infinity;
    const now = Date.now(), h = this.heap;
    // What is due now; what fire() schedules again lands back in the heap
    // (for a later time) and is not taken in this pass.
    const due = [];
    this.running = true;
    while (h.length && h[0].due <= now) {
      const item = h[0];
      this.clear(item);
      due.push(item);
    }
    // One item's failure must not cost the others their turn: they are
    // off the heap already. The first error is thrown once all have run.
    let failed = null;
    for (const item of due) {
      if (this.closed) break;
      try {
        this.fire(item);
      } catch (e) {
        failed ??= { e };
      }
    }
    this.running = false;
    if (!this.closed) this.rearm();
    if (failed) throw failed.e;
  }

  up(i) {
    const h = this.heap, item = h[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].due <= item.due) break;
      h[i] = h[p];
      h[i].at = i;
      i = p;
    }
    h[i] = item;
    item.at = i;
  }

  down(i) {
    const h = this.heap, n = h.length, item = h[i];
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1].due < h[c].due) c++;
      if (h[c].due >= item.due) break;
      h[i] = h[c];
      h[i].at = i;
      i = c;
    }
    h[i] = item;
    item.at = i;
  }
}
