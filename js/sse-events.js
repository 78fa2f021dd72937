// The events of an EventStream (js/sse.js, types in js/sse.d.ts), and its
// async iterator.
import { SwitchboardError } from './errors.js';

export class ReconnectingEvent extends Event {
  constructor(delay, attempt, error) {
    super('reconnecting');
    this.delay = delay;
    this.attempt = attempt;
    this.error = error;
  }
}

/** `statechange`: state moved from `previous` to `state`. */
export class StateChangeEvent extends Event {
  constructor(state, previous) {
    super('statechange');
    this.state = state;
    this.previous = previous;
  }
}

/** `error`: carries the SwitchboardError (`error.code`). */
export class StreamErrorEvent extends Event {
  constructor(error) {
    super('error');
    this.error = error;
  }
}

/** `close`: the stream is over for good; `reason` is 'closed' | 'aborted' | 'error'. */
export class StreamCloseEvent extends Event {
  constructor(reason, error) {
    super('close');
    this.reason = reason;
    this.error = error;
  }
}

/** EventStream.events(): an async iterator over the events of `types` of `stream`. */
export function iterate(stream, types, maxBuffered) {
  const queue = [];
  let head = 0;
  let wake = null;
  let done = false;
  let error = null;
  const notify = () => { const w = wake; wake = null; w?.(); };
  const push = (e) => {
    if (done) return;
    if (queue.length - head >= maxBuffered) {
      error = new SwitchboardError('QUEUE_FULL', `more than ${maxBuffered} events waiting for the iterator`);
      done = true;
      cleanup();
      stream.close();
    } else {
      queue.push(e);
    }
    notify();
  };
  const onClose = (e) => {
    if (!done && e.reason === 'error') error = e.error;
    done = true;
    notify();
  };
  const cleanup = () => {
    for (const t of types) stream.removeEventListener(t, push);
    stream.removeEventListener('close', onClose);
  };
  for (const t of types) stream.addEventListener(t, push);
  stream.addEventListener('close', onClose);
  if (stream._state === 'closed') done = true;
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      while (head === queue.length && !done) await new Promise((r) => { wake = r; });
      if (head < queue.length) {
        const value = queue[head];
        queue[head++] = undefined;
        if (head > 1024 && head * 2 > queue.length) { queue.splice(0, head); head = 0; }
        return { value, done: false };
      }
      cleanup();
      if (error) {
        const e = error;
        error = null;
        throw e;
      }
      return { value: undefined, done: true };
    },
    async return() {
      done = true;
      cleanup();
      stream.close();
      return { value: undefined, done: true };
    },
  };
}
