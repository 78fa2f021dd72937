// The MessageQueue: ordered asynchronous processing of received messages
// in JS (handlers are JS promises), retries drawn like sb_backoff_delay.
import { SwitchboardError } from './core.js';
import { randomSeed } from './glue.js';
import { emit, Emitter, positive } from './queue-base.js';
import { TabQueue } from './queue-tabs.js';

const closedError = () => new SwitchboardError('CLOSED', 'MessageQueue is closed');

/**
 * Ordered asynchronous processing of received messages: items start in
 * arrival order, at most `concurrency` at once; a failing handler is retried
 * with exponential backoff and full jitter, then moved to a dead-letter list
 * the app can inspect and replay. With concurrency 1 order is strict: a
 * failing item holds the line until it succeeds or is dead-lettered.
 * Events: `done` {item, attempts}, `retry` {item, attempts, error, delay},
 * `deadletter` {item, attempts, error}, `idle`; with `tabs`, `rerun` {item, id}.
 * With `tabs: 'name'` each task runs once across the tabs of the origin, on
 * the leading tab (js/queue-tabs.js, docs/protocol.md §9.6).
 */
export class MessageQueue extends Emitter {
  #handler; #concurrency; #retries; #min; #max; #maxQueued; #maxDead; #rng; #running; #waiting; #dead; #stats; #paused; #abort; #idleWaiters; #timers; #tabs; #tabsAsked;
  /**
   * @param {(item: any, info: {attempt: number, signal: AbortSignal}) => any} handler
   * @param {import('./queue.d.ts').MessageQueueOptions} [opts]
   */
  constructor(handler, opts = {}) {
    super();
    if (typeof handler !== 'function') throw new SwitchboardError('INVALID', 'MessageQueue needs a handler function');
    this.#handler = handler;
    this.#concurrency = positive(opts.concurrency, 1, 'concurrency', { min: 1, int: true });
    this.#retries = positive(opts.maxRetries, 3, 'maxRetries', { int: true });
    this.#min = positive(opts.retryMinDelay, 100, 'retryMinDelay', { min: 0.001 });
    this.#max = positive(opts.retryMaxDelay, Math.max(10000, this.#min), 'retryMaxDelay', { min: this.#min });
    this.#maxQueued = positive(opts.maxQueued, 10000, 'maxQueued', { min: 1, int: true });
    this.#maxDead = positive(opts.maxDeadLetters, 1000, 'maxDeadLetters', { min: 1, int: true });
    // xorshift32, as sb_rng in src/switchboard.h: seeded, so tests replay.
    this.#rng = (opts.seed === undefined ? randomSeed() : opts.seed >>> 0) || 0x9e3779b9;
    this._queue = [];   // {item, attempts}
    this.#running = 0;
    this.#waiting = 0;  // items sleeping before a retry
    this.#dead = [];
    this.#stats = { done: 0, failed: 0, retries: 0, deadLetters: 0 };
    this.#paused = false;
    this._closed = false;
    this.#abort = new AbortController();
    this.#idleWaiters = [];
    this.#timers = new Set(); // retry sleeps, cleared by close()
    // Without BroadcastChannel a task runs in the tab that posted it: still once.
    this.#tabs = opts.tabs === undefined || typeof BroadcastChannel === 'undefined' ? null : new TabQueue(this, opts.tabs);
    this.#tabsAsked = opts.tabs !== undefined;
  }

  /** Queue an item; throws QUEUE_FULL past maxQueued, CLOSED after close(). */
  push(item) {
    this.#add(item, null);
  }

  /** Queue an item; resolves with what its handler returned, rejects with its last error (dead-lettered) or CLOSED. */
  run(item) {
    return new Promise((resolve, reject) => this.#add(item, { resolve, reject }));
  }

  #add(item, waiter) {
    if (this._closed) throw closedError();
    if ((this.#tabs ? this.#tabs.known.size : this._queue.length) >= this.#maxQueued) throw new SwitchboardError('QUEUE_FULL', 'MessageQueue is full');
    if (this.#tabs) return this.#tabs.push(item, waiter);
    this._queue.push({ item, attempts: 0, settle: waiter && ((ok, v) => (ok ? waiter.resolve(v) : waiter.reject(v))) });
    this._next();
    return undefined;
  }

  /** Dead letters: [{item, attempts, error}], oldest first (a copy). */
  get deadLetters() {
    return this.#dead.slice();
  }

  /** Put dead letters (all, or those `filter` accepts) back at the end of the queue. */
  replay(filter) {
    const keep = [];
    let n = 0;
    for (const d of this.#dead) {
      if (!filter || filter(d)) {
        if (this.#tabs) this.#tabs.push(d.item, null);
        else this._queue.push({ item: d.item, attempts: 0 });
        n++;
      } else keep.push(d);
    }
    this.#dead = keep;
    this._next();
    return n;
  }

  pause() { this.#paused = true; }
  resume() { this.#paused = false; this._next(); }

  /** Resolves when nothing is queued, running or waiting to retry. */
  idle() {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  stats() {
    const s = { queued: this._queue.length, running: this.#running, waiting: this.#waiting, deadLetterCount: this.#dead.length, ...this.#stats };
    if (!this.#tabsAsked) return s;
    return { ...s, tabs: this.#tabs ? this.#tabs.stats() : { shared: false, leader: true, holder: null, tabs: 1, open: 0, reruns: 0 } };
  }

  /** Stop: running handlers see their AbortSignal fire; nothing new starts. */
  close() {
    this._closed = true;
    // A local run() hears CLOSED; a tabs task stays with the other tabs.
    for (const j of this._queue) if (!j.id) j.settle?.(false, closedError());
    this._queue.length = 0;
    this.#tabs?.close();
    this.#abort.abort(new SwitchboardError('CLOSED', 'MessageQueue is closed'));
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#waiting = 0;
    this._checkIdle();
  }

  #isIdle() {
    return this._queue.length === 0 && this.#running === 0 && this.#waiting === 0 && !this.#tabs?.known.size;
  }

  _checkIdle() {
    if (!this.#isIdle()) return;
    const w = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const r of w) r();
    emit(this, 'idle', {});
  }

  #rand() {
    let x = this.#rng;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.#rng = x;
    return ((Math.imul(x, 0x2545f491) >>> 0) >>> 8) / 16777216;
  }

  #delay(attempt) {
    let ceil = this.#min;
    for (let i = 1; i < attempt && ceil < this.#max; i++) ceil *= 2;
    ceil = Math.min(ceil, this.#max);
    return this.#min / 2 + (ceil - this.#min / 2) * this.#rand();
  }

  _next() {
    // Strict order with concurrency 1: a retrying item blocks the line.
    while (!this.#paused && !this._closed && this._queue.length && this.#running + (this.#concurrency === 1 ? this.#waiting : 0) < this.#concurrency) {
      const job = this._queue.shift();
      this._run(job);
    }
  }

  async _run(job) {
    this.#running++;
    job.attempts++;
    let error = null, value;
    // (tabs: false once this tab no longer leads: the next leader runs it)
    if (job.attempts === 1 && job.start && !(await job.start())) {
      this.#running--;
      this._next();
      return this._checkIdle();
    }
    try {
      const info = { attempt: job.attempts, signal: this.#abort.signal };
      if (job.id) Object.assign(info, { id: job.id, rerun: job.rerun });
      value = await this.#handler(job.item, info);
    } catch (e) {
      error = e ?? new Error('handler failed');
    }
    this.#running--;
    if (this._closed) {
      if (!job.id) job.settle?.(!error, error || value);
      return this._checkIdle();
    }
    if (!error) {
      this.#stats.done++;
      job.settle?.(true, value);
      emit(this, 'done', { item: job.item, attempts: job.attempts });
    } else if (job.attempts <= this.#retries) {
      const delay = this.#delay(job.attempts);
      this.#stats.retries++;
      this.#waiting++;
      emit(this, 'retry', { item: job.item, attempts: job.attempts, error, delay });
      const t = setTimeout(() => {
        this.#timers.delete(t);
        this.#waiting--;
        if (this._closed) return;
        // Back to the front: it was first in line.
        this._queue.unshift(job);
        this._next();
      }, delay);
      this.#timers.add(t);
    } else {
      this.#stats.failed++;
      this.#stats.deadLetters++;
      this.#dead.push({ item: job.item, attempts: job.attempts, error });
      job.settle?.(false, error);
      if (this.#dead.length > this.#maxDead) this.#dead.shift();
      emit(this, 'deadletter', { item: job.item, attempts: job.attempts, error });
    }
    this._next();
    this._checkIdle();
  }
}
