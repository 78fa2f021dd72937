// Where the relay keeps the state that resume needs: per session, the last
// client seq accepted (so a re-sent message is dropped, not delivered twice)
// and the bounded history of what was sent to it (so a client that missed
// messages gets them replayed). MemoryStore keeps it for the life of the
// process; JournalStore also appends every change to a file with one
// write(2) per committed step, so `kill -9` at any moment loses nothing that
// a client was told (acks go out only after the commit). On start the
// journal is replayed; it is compacted into a snapshot when it grows.
import { openSync, writeSync, closeSync, readFileSync, renameSync, existsSync, fsyncSync, truncateSync } from 'node:fs';

export class MemoryStore {
  constructor() {
    this.pending = [];
  }

  /** Records to replay at start: none. */
  load() {
    return [];
  }

  record(rec) {
    void rec;
  }

  commit() {}

  /** Called with a function producing the full state as records. */
  compact(_snapshot) {}

  close() {}
}

export class JournalStore {
  /**
   * @param {string} path journal file (created if missing)
   * @param {{compactAfter?: number}} [opts] records written before a compaction
   */
  constructor(path, opts = {}) {
    this.path = path;
    this.compactAfter = opts.compactAfter ?? 50000;
    this.pending = [];
    this.written = 0;
    this.fd = -1;
  }

  load() {
    const recs = [];
    if (existsSync(this.path)) {
      const bytes = readFileSync(this.path);
      // A process killed inside a write leaves a torn last line. It was never
      // acked (records are written before their acks), so it is cut off here:
      // appending after it would glue the next record onto it.
      const end = bytes.lastIndexOf(0x0a) + 1;
      if (end < bytes.length) truncateSync(this.path, end);
      const lines = bytes.subarray(0, end).toString('utf8').split('\n');
      for (let i = 0; i < lines.length; i++) {
        if (!lines[i]) continue;
        try {
          recs.push(JSON.parse(lines[i]));
        } catch {
          throw new Error(`relay journal ${this.path}: bad record at line ${i + 1}`);
        }
      }
    }
    this.written = recs.length;
    this.fd = openSync(this.path, 'a');
    return recs;
  }

  record(rec) {
    this.pending.push(JSON.stringify(rec));
  }

  /** One write for everything recorded since the last commit. */
  commit() {
    if (!this.pending.length) return;
    const text = this.pending.join('\n') + '\n';
    this.written += this.pending.length;
    this.pending = [];
    writeSync(this.fd, text);
  }

  get wantsCompaction() {
    return this.written > this.compactAfter;
  }

  /** Replace the journal with a snapshot (write temp, fsync, rename). */
  compact(snapshotRecords) {
    this.commit();
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    const lines = snapshotRecords.map((r) => JSON.stringify(r)).join('\n');
    writeSync(fd, lines ? lines + '\n' : '');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.written = snapshotRecords.length;
  }

  close() {
    this.commit();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
