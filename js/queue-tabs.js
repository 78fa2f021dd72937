// MessageQueue `tabs` (docs/protocol.md §9.6): every task is told to every
// tab of the origin over a BroadcastChannel, only the TabGroup leader runs
// it, and its result goes back the same way to the tab that posted it. Each
// tab keeps the tasks not yet done, so a new leader (after a close, reload or
// crash) gathers them from the tabs still alive and runs them; one that the
// dead leader had started runs again, flagged `rerun`.
import { TabGroup } from './tab-group.js';
import { SwitchboardError } from './errors.js';
import { randomSeed } from './glue.js';
import { emit } from './queue-base.js';

// How long a new leader waits for the other tabs' lists of open tasks (a
// crashed tab never answers; the live ones answer within a channel hop).
const SYNC_WAIT_MS = 100;
// Ids of finished tasks remembered, so a late list does not bring one back.
const DONE_MAX = 16384;

/** A task's error as plain data: structured clone keeps neither `code` nor the class. */
const errorOf = (e) => ({ name: String(e?.name || 'Error'), message: String(e?.message ?? e), code: typeof e?.code === 'string' ? e.code : undefined });

function errorFrom(d) {
  const e = d?.code ? new SwitchboardError(/** @type {any} */ (d.code), String(d.message)) : new Error(String(d?.message));
  if (!d?.code && d?.name) e.name = String(d.name);
  return e;
}

const isTask = (t) => t && typeof t === 'object' && typeof t.id === 'string' && typeof t.from === 'string';

export class TabQueue {
  /** @param {import('./message-queue.js').MessageQueue} mq */
  constructor(mq, name) {
    if (typeof name !== 'string' || !name) throw new SwitchboardError('INVALID', 'tabs needs a non-empty name');
    this.mq = mq;
    this.name = name;
    this.release = null;      // frees this tab's run lock
    this.tab = randomSeed().toString(36) + randomSeed().toString(36);
    this.seq = 0;
    this.known = new Map();   // id -> {id, item, from, started}: open tasks, in the order they came
    this.waiters = new Map(); // id -> {resolve, reject}: this tab's run() promises
    this.done = new Set();
    this.queued = new Set();  // ids in this tab's engine (the leader's)
    this.heard = new Map();   // id -> done: starts another tab is to confirm (announce)
    this.leading = false;     // leader, and has gathered the open tasks
    this.syncing = 0;         // term whose lists are being gathered
    this.answered = null;
    this.closed = false;
    this.reruns = 0;
    this.group = null;
    this.bc = new BroadcastChannel(`switchboard:queue:${name}`);
    this.bc.onmessage = (e) => this.recv(e.data);
    TabGroup.open(`queue:${name}`).then((g) => {
      if (this.closed) return g.close();
      this.group = g;
      g.addEventListener('leaderchange', () => this.check());
      g.addEventListener('leadershiplost', () => this.resign());
      g.addEventListener('presence', () => this.synced?.()); // a closed tab need not answer
      this.check();
      return undefined;
    }, (e) => this.fail(e));
  }

  post(m) {
    if (!this.closed) this.bc.postMessage(m);
  }

  fail(e) {
    const err = e instanceof SwitchboardError ? e : new SwitchboardError('NOT_INITIALIZED', String(e?.message || e));
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }

  /** Tell every tab of a new task; returns its id. */
  push(item, waiter) {
    const task = { id: `${this.tab}.${++this.seq}`, item, from: this.tab, started: false };
    try {
      this.bc.postMessage({ t: 'task', task });
    } catch (e) {
      throw new SwitchboardError('INVALID', 'an item of a tabs MessageQueue must be structured-cloneable', { cause: e });
    }
    this.known.set(task.id, task);
    if (waiter) this.waiters.set(task.id, waiter);
    if (this.leading) this.enqueue(task);
    return task.id;
  }

  // Leader now: gather the open tasks from the others, then run them.
  check() {
    const g = this.group;
    if (this.closed || !g || !g.isLeader || this.leading || this.syncing === g.term) return;
    const term = g.term;
    this.syncing = term;
    // A run lock besides the election: two tabs that both believe they lead
    // for a moment (a handover) must not both run tasks.
    if (typeof navigator !== 'undefined' && navigator.locks?.request) {
      const ac = new AbortController();
      this.lockAbort = ac;
      navigator.locks.request(`switchboard:queue-run:${this.name}`, { signal: ac.signal }, () => {
        if (this.closed || this.syncing !== term || !g.isLeader) return undefined;
        this.gather(g, term);
        return new Promise((r) => { this.release = r; });
      }).catch(() => { /* aborted: resigned or closed */ });
    } else this.gather(g, term);
  }

  // Ask the other tabs for their open tasks, then run them all.
  gather(g, term) {
    this.answered = new Set();
    this.post({ t: 'sync', term });
    const ready = () => {
      clearTimeout(timer);
      this.synced = null;
      if (this.closed || this.syncing !== term || !g.isLeader) return;
      this.leading = true;
      for (const task of this.known.values()) this.enqueue(task);
    };
    const timer = setTimeout(ready, SYNC_WAIT_MS);
    this.synced = () => { if (g.tabs.every((t) => t.self || this.answered.has(t.id))) ready(); };
    this.synced();
  }

  enqueue(task) {
    if (this.queued.has(task.id) || this.done.has(task.id)) return;
    this.queued.add(task.id);
    const rerun = task.started;
    if (rerun) {
      this.reruns++;
      emit(this.mq, 'rerun', { item: task.item, id: task.id });
    }
    this.mq._queue.push({
      item: task.item, attempts: 0, id: task.id, rerun,
      start: () => this.announce(task),
      settle: (ok, v) => this.settle(task, ok, v, rerun),
    });
    this.mq._next();
  }

  /**
   * Before a task's first attempt: another live tab has heard that it
   * started (or none answers in time: they may all be gone). A renderer that
   * crashes can lose its last posts while its fetches get out, and a next
   * leader that never heard the start would run the task again unflagged.
   * Resolves with whether this tab still leads (else the next one runs it).
   */
  announce(task) {
    task.started = true;
    this.post({ t: 'start', id: task.id });
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.heard.delete(task.id);
        if (!this.leading) this.queued.delete(task.id);
        resolve(this.leading);
      };
      const timer = this.group && this.group.tabs.length > 1 ? setTimeout(done, SYNC_WAIT_MS) : 0;
      if (timer) this.heard.set(task.id, done); else done();
    });
  }

  settle(task, ok, v, rerun) {
    let m = { t: 'done', id: task.id, from: task.from, ok, rerun, value: ok ? v : undefined, error: ok ? undefined : errorOf(v) };
    try {
      this.post(m);
    } catch (e) {
      m = { ...m, ok: false, value: undefined, error: errorOf(new SwitchboardError('INVALID', 'the task result is not structured-cloneable', { cause: e })) };
      this.post(m);
    }
    this.recv(m);
  }

  // No longer the leader: stop starting tasks (the next leader has them).
  resign() {
    this.leading = false;
    this.syncing = 0;
    this.lockAbort?.abort();
    this.release?.();
    this.release = null;
    for (const done of [...this.heard.values()]) done(); // not run here: the next leader has them
    const q = this.mq._queue;
    for (const j of q) if (j.id) this.queued.delete(j.id);
    this.mq._queue = q.filter((j) => !j.id);
  }

  recv(m) {
    if (this.closed || !m || typeof m !== 'object') return;
    const g = this.group;
    if (m.t === 'task' && isTask(m.task)) {
      const task = { id: m.task.id, item: m.task.item, from: m.task.from, started: false };
      if (this.done.has(task.id) || this.known.has(task.id)) return;
      this.known.set(task.id, task);
      if (this.leading) this.enqueue(task);
    } else if (m.t === 'start' && typeof m.id === 'string') {
      const task = this.known.get(m.id);
      if (task) task.started = true;
      this.post({ t: 'heard', id: m.id });
    } else if (m.t === 'heard' && typeof m.id === 'string') {
      this.heard.get(m.id)?.();
    } else if (m.t === 'done' && typeof m.id === 'string') {
      this.finish(m);
    } else if (m.t === 'sync' && g && typeof m.term === 'number') {
      this.post({ t: 'have', term: m.term, tab: g.id, tasks: [...this.known.values()] });
    } else if (m.t === 'have' && m.term === this.syncing && this.answered && Array.isArray(m.tasks)) {
      for (const t of m.tasks) {
        if (!isTask(t) || this.done.has(t.id)) continue;
        const mine = this.known.get(t.id);
        if (mine) mine.started ||= t.started === true;
        else this.known.set(t.id, { id: t.id, item: t.item, from: t.from, started: t.started === true });
      }
      this.answered.add(m.tab);
      this.synced?.();
    }
  }

  finish(m) {
    if (this.done.has(m.id)) return;
    this.done.add(m.id);
    if (this.done.size > DONE_MAX) this.done.delete(this.done.values().next().value);
    this.known.delete(m.id);
    if (this.queued.delete(m.id)) {
      // Done elsewhere (a leader before this one): drop it if not started here.
      const q = this.mq._queue;
      const i = q.findIndex((j) => j.id === m.id);
      if (i >= 0) q.splice(i, 1);
    }
    const w = this.waiters.get(m.id);
    if (w) {
      this.waiters.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(errorFrom(m.error));
    }
    this.mq._checkIdle();
  }

  stats() {
    const g = this.group;
    return { shared: true, leader: this.leading, holder: g ? g.leader : null, tabs: g ? g.tabs.length : 0, open: this.known.size, reruns: this.reruns };
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.leading = false;
    for (const done of [...this.heard.values()]) done();
    this.fail(new SwitchboardError('CLOSED', 'MessageQueue is closed'));
    this.lockAbort?.abort();
    this.release?.();
    this.bc.close();
    this.group?.close();
  }
}
