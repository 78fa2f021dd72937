// Where the relay keeps what must survive: per session exactly its
// sb_session_serialize() blob (id, epoch, outbox = every message not yet
// confirmed by that client, inbox = the dedup state and frames held for
// order) plus the relay's own metadata (room, user, owner, echo). The relay commits
// the sessions that changed after handling a WebSocket message or a timer
// and before any byte that depends on it (an ack, a delivery) is sent.
//
//   interface Store {
//     load(): Iterable<Row> | Promise<Iterable<Row>>   once, at start
//     commit(upserts: Row[], deletes: string[]): void  synchronous, all or nothing
//     close(): void
//   }
//   Row = { id: string, room: string, user: string, owner: string | null, echo: boolean, blob: Uint8Array }
//   (owner: the authenticated user id the session is bound to, or null)
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
    if (!db.prepare('SELECT name FROM pragma_table_info(\'sessions\')').all().some((c) => c.name === 'owner')) {
      db.exec('ALTER TABLE sessions ADD COLUMN owner TEXT');
    }
    const upsert = db.prepare(`INSERT INTO sessions (id, room, user, owner, echo, state, updated)
      VALUES (@id, @room, @user, @owner, @echo, @state, @updated)
      ON CONFLICT (id) DO UPDATE SET room = excluded.room, user = excluded.user, owner = excluded.owner,
        echo = excluded.echo, state = excluded.state, updated = excluded.updated`);
    const remove = db.prepare('DELETE FROM sessions WHERE id = ?');
    this._commit = db.transaction((upserts, deletes) => {
      const now = Date.now();
      for (const id of deletes) remove.run(id);
      for (const r of upserts) {
        upsert.run({ id: r.id, room: r.room, user: r.user, owner: r.owner ?? null, echo: r.echo ? 1 : 0, state: Buffer.from(r.blob.buffer, r.blob.byteOffset, r.blob.byteLength), updated: now });
      }
    });
  }

  load() {
    return this.db.prepare('SELECT id, room, user, owner, echo, state FROM sessions').all().map((r) => ({
      id: r.id, room: r.room, user: r.user, owner: r.owner ?? null, echo: r.echo === 1,
      blob: new Uint8Array(r.state.buffer, r.state.byteOffset, r.state.byteLength),
    }));
  }

  /** One transaction: every changed session's blob, every expired one gone. */
  commit(upserts, deletes) {
    if (!upserts.length && !deletes.length) return;
    this._commit(upserts, deletes);
  }

  close() {
    if (this.db?.open) this.db.close();
  }
}
