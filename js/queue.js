// The queue job (switchboard/queue): batching and queues, one class a file.
// Batcher (js/batcher.js) over src/batch.c; Outbox and Inbox (js/outbox.js,
// js/inbox.js) over src/queue.c (docs/protocol.md §8–§9); MessageQueue
// (js/message-queue.js) in JS. Frames themselves: js/frame.js.
export { Batcher } from './batcher.js';
export { Outbox } from './outbox.js';
export { Inbox } from './inbox.js';
export { MessageQueue } from './message-queue.js';
