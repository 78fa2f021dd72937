// switchboard: public entry point. One line per capability module.
export { init } from './core.js';
export { SwitchboardError } from './errors.js';
export * from './gzip.js';
export * from './sse.js';
export * from './socket.js';
export * from './tabs.js';
export { encodeFrame, decodeFrame, BatchReader, FrameKind, FrameFlag } from './frame.js';
export { Batcher, Outbox, Inbox, MessageQueue } from './queue.js';
export * from './bridge.js';
