// Where the relay keeps what must survive: per session exactly its
// sb_session_serialize() blob (id, epoch, outbox = every message not yet
// confirmed by that client, inbox = the dedup state and frames held for
// order) plus the relay's own metadata (room, user, owner, echo). The relay commits
// the sessions that changed after handling a WebSocket message or a timer
// and before any byte that depends on it (an ack, a delivery) is sent.
//
//   interface Store {
//     load(): Iterable<Row> | Promise<Iterable<Row>>   once, at start
//     loadRooms?(): RoomRow[]                          once, at start (a durable store)
//     commit(upserts: Row[], deletes: string[], logs: LogAppend[]): void  synchronous, all or nothing
//     logs?: Map<string, RoomLog>                      an in-process store keeps the logs themselves
//     close(): void
//   }
//   Row = { id: string, room: string, user: string, owner: string | null, echo: boolean,
//           subs: [channel, room, offset, canPublish][], blob: Uint8Array }
//   (owner: the authenticated user id the session is bound to, or null)
//   LogAppend = { room, epoch, first, next, entries: Entry[] }  (first: its oldest kept offset;
//               next: the offset its next message gets)
//   RoomRow = { room, epoch, next, entries: Entry[] }
//   Entry = { offset, sid, from, flags, payload, at }  (rooms.mjs)
// A room's log is committed with the sessions in the same call: the message
// and the sender's dedup state (its inbox in the blob) are stored together,
// before the ack that confirms them leaves.
//
// MemoryStore (the default) keeps the rows in memory: resume survives
// network drops, and a new Relay given the same MemoryStore object, but not
// a process restart. SqliteStore keeps them in an SQLite database
// (better-sqlite3, an optional peer dependency loaded only when asked for):
// one transaction per commit, WAL journal, so `kill -9` at any moment loses
// nothing a client was told about. docs/decisions.md, "Relay state in SQLite".

export class MemoryStore {
  /** Lives with the process: the relay gives it the state when it closes. */
  get inProcess() { return true; }

  constructor() {
    /** @type {Map<string, object>} */
    this.rows = new Map();
    /** room -> RoomLog, kept by reference (the relay appends to them). */
    this.logs = new Map();
  }

  load() {
    return [...this.rows.values()];
  }

  commit(upserts, deletes) {
    for (const id of deletes) this.rows.delete(id);
    for (const r of upserts) this.rows.set(r.id, { ...r });
  }

  close() {}
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  room TEXT NOT NULL,
  user TEXT NOT NULL,
  owner TEXT,
  echo INTEGER NOT NULL,
  state BLOB NOT NULL,
  updated REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rooms (
  room TEXT PRIMARY KEY,
  epoch TEXT NOT NULL,
  next INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_log (
  room TEXT NOT NULL,
  offset INTEGER NOT NULL,
  sid TEXT NOT NULL,
  sender TEXT NOT NULL,
  flags INTEGER NOT NULL,
  payload BLOB NOT NULL,
  at REAL NOT NULL,
  PRIMARY KEY (room, offset)
) WITHOUT ROWID`;

export class SqliteStore {
  /**
   * Open (or create) the database file.
   * @param {string} path
   * @param {{synchronous?: 'NORMAL'|'FULL'}} [opts] NORMAL (default): a
   *   commit survives the relay process dying at any point; FULL: also the
   *   machine losing power (one fsync per commit).
   */
  static async open(path, opts = {}) {
    let Database;
    try {
      ({ default: Database } = await import('better-sqlite3'));
    } catch (e) {
      throw new Error(`the relay's SQLite store needs the optional peer dependency better-sqlite3 (npm install better-sqlite3@12): ${e.message}`, { cause: e });
    }
    return new SqliteStore(new Database(path), opts);
  }

  constructor(db, opts = {}) {
    const sync = opts.synchronous === 'FULL' ? 'FULL' : 'NORMAL';
    this.db = db;
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${sync}`);
    db.exec(SCHEMA);
    // A database from before sessions were bound to users: its sessions have none.
    const cols = db.prepare('SELECT name FROM pragma_table_info(\'sessions\')').all().map((c) => c.name);
    if (!cols.includes('owner')) db.exec('ALTER TABLE sessions ADD COLUMN owner TEXT');
    if (!cols.includes('subs')) db.exec('ALTER TABLE sessions ADD COLUMN subs TEXT');
    const upsert = db.prepare(`INSERT INTO sessions (id, room, user, owner, echo, subs, state, updated)
      VALUES (@id, @room, @user, @owner, @echo, @subs, @state, @updated)
      ON CONFLICT (id) DO UPDATE SET room = excluded.room, user = excluded.user, owner = excluded.owner,
        echo = excluded.echo, subs = excluded.subs, state = excluded.state, updated = excluded.updated`);
    const remove = db.prepare('DELETE FROM sessions WHERE id = ?');
    const room = db.prepare('INSERT INTO rooms (room, epoch, next) VALUES (?, ?, ?) ON CONFLICT (room) DO UPDATE SET epoch = excluded.epoch, next = excluded.next');
    const append = db.prepare('INSERT OR REPLACE INTO room_log (room, offset, sid, sender, flags, payload, at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const trim = db.prepare('DELETE FROM room_log WHERE room = ? AND offset < ?');
    const blob = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    this._commit = db.transaction((upserts, deletes, logs) => {
      const now = Date.now();
      for (const id of deletes) remove.run(id);
      for (const r of upserts) {
        upsert.run({ id: r.id, room: r.room, user: r.user, owner: r.owner ?? null, echo: r.echo ? 1 : 0, subs: JSON.stringify(r.subs || []), state: blob(r.blob), updated: now });
      }
      for (const l of logs) {
        room.run(l.room, l.epoch, l.next);
        for (const e of l.entries) append.run(l.room, e.offset, e.sid, e.from, e.flags, blob(e.payload), e.at);
        trim.run(l.room, l.first);
      }
    });
  }

  load() {
    const subsOf = (t) => { try { return JSON.parse(t || '[]'); } catch { return []; } };
    return this.db.prepare('SELECT id, room, user, owner, echo, subs, state FROM sessions').all().map((r) => ({
      id: r.id, room: r.room, user: r.user, owner: r.owner ?? null, echo: r.echo === 1, subs: subsOf(r.subs),
      blob: new Uint8Array(r.state.buffer, r.state.byteOffset, r.state.byteLength),
    }));
  }

  loadRooms() {
    const entries = this.db.prepare('SELECT offset, sid, sender, flags, payload, at FROM room_log WHERE room = ? ORDER BY offset');
    return this.db.prepare('SELECT room, epoch, next FROM rooms').all().map(({ room, epoch, next }) => {
      const list = entries.all(room).map((e) => ({ offset: e.offset, sid: e.sid, from: e.sender, flags: e.flags, payload: new Uint8Array(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength), at: e.at }));
      return { room, epoch, next, entries: list };
    });
  }

  /** One transaction: every changed session's blob, every expired one gone, the rooms' new messages. */
  commit(upserts, deletes, logs = []) {
    if (!upserts.length && !deletes.length && !logs.length) return;
    this._commit(upserts, deletes, logs);
  }

  close() {
    if (this.db?.open) this.db.close();
  }
}
