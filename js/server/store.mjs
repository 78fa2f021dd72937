// Where the relay keeps what resume needs across a relay restart: per
// session, its serialized state (sb_session_serialize: id, epoch, what it
// has accepted, what it has not yet had confirmed) and its room metadata.
// The relay commits after handling each input and before writing anything
// it caused, so an ack never runs ahead of the store.
//
//   interface Store {
//     load(): Iterable<{id, meta, state: Uint8Array}>
//     put(id, meta, state), delete(id), commit(), close()
//   }
//
// MemoryStore (default): for the life of the process (resume survives
// network drops, not relay restarts). JournalStore: one JSON line per change
// appended with one write(2) per commit; on start the last line of each
// session wins; rewritten (temp file, fsync, rename) once it holds more than
// twice what is live.
import { openSync, writeSync, closeSync, readFileSync, renameSync, existsSync, fsyncSync, truncateSync } from 'node:fs';

export class MemoryStore {
  load() { return []; }
  put() {}
  delete() {}
  commit() {}
  close() {}
}

const b64 = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('base64');

export class JournalStore {
  /** @param {string} path journal file (created if missing) */
  constructor(path, opts = {}) {
    this.path = path;
    this.minCompact = opts.minCompactBytes ?? (1 << 20);
    this.live = new Map(); // id -> line
    this.pending = [];
    this.size = 0;
    this.fd = -1;
  }

  load() {
    if (existsSync(this.path)) {
      const bytes = readFileSync(this.path);
      // A process killed inside a write leaves a torn last line. It was never
      // acked (lines are written before what they cause), so it is cut off.
      const end = bytes.lastIndexOf(0x0a) + 1;
      if (end < bytes.length) truncateSync(this.path, end);
      this.size = end;
      let start = 0;
      while (start < end) {
        const nl = bytes.indexOf(0x0a, start);
        const line = bytes.subarray(start, nl).toString('utf8');
        start = nl + 1;
        let r;
        try { r = JSON.parse(line); } catch { throw new Error(`relay journal ${this.path}: bad record at byte ${start}`); }
        if (typeof r?.id !== 'string') continue;
        if (r.x) this.live.delete(r.id);
        else this.live.set(r.id, line);
      }
    }
    this.fd = openSync(this.path, 'a');
    const out = [];
    for (const line of this.live.values()) {
      const r = JSON.parse(line);
      out.push({ id: r.id, meta: r.m || {}, state: new Uint8Array(Buffer.from(r.s, 'base64')) });
    }
    return out;
  }

  put(id, meta, state) {
    const line = JSON.stringify({ id, m: meta, s: b64(state) });
    this.live.set(id, line);
    this.pending.push(line);
  }

  delete(id) {
    if (!this.live.delete(id)) return;
    this.pending.push(JSON.stringify({ id, x: 1 }));
  }

  /** One write for everything since the last commit; a short write is retried. */
  commit() {
    if (!this.pending.length || this.fd < 0) return;
    const buf = Buffer.from(this.pending.join('\n') + '\n');
    this.pending = [];
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    this.size += buf.length;
    let liveBytes = 0;
    for (const l of this.live.values()) liveBytes += l.length + 1;
    if (this.size > this.minCompact && this.size > 2 * liveBytes) this.#compact();
  }

  #compact() {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    const text = Buffer.from([...this.live.values()].map((l) => l + '\n').join(''));
    let off = 0;
    while (off < text.length) off += writeSync(fd, text, off, text.length - off);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.size = text.length;
  }

  close() {
    this.commit();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
