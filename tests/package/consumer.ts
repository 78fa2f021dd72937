// Uses every public API of the package, so `tsc --strict` proves the shipped
// .d.ts files are complete and true. Type-checked only; never run.
import {
  init, SwitchboardError, type SwitchboardErrorCode,
  gzip, gunzip, deflate, inflate, GzipStream, GunzipStream, DeflateContext, InflateContext,
  type CompressionFormat,
} from 'switchboard';

export async function compression(file: Blob): Promise<number> {
  await init();
  await init({ wasmURL: new URL('/switchboard.wasm', location.href) });
  const format: CompressionFormat = 'deflate-raw';
  const a: Uint8Array = gzip('text', { level: 9, format });
  const b: Uint8Array = gunzip(a, { maxOutputBytes: 1 << 20, format });
  const c: Uint8Array = inflate(deflate(new Uint16Array([1, 2]), { level: 1 }), { maxOutputBytes: 100 });
  const streamed: ReadableStream<Uint8Array> = file.stream().pipeThrough(new GzipStream({ level: 6 })).pipeThrough(new GunzipStream({ maxOutputBytes: 1e6 }));
  const tx = new DeflateContext({ level: 6, windowBits: 15 });
  const rx = new InflateContext({ maxMessageBytes: 1 << 16 });
  const text: string = rx.decompressText(tx.compress('{"a":1}'));
  const bytes: Uint8Array = rx.decompress(tx.compress(new ArrayBuffer(8)));
  const { bytesIn, bytesOut } = tx.stats();
  tx.close();
  rx.close();
  try {
    gunzip(new Uint8Array(3));
  } catch (e) {
    if (e instanceof SwitchboardError) {
      const code: SwitchboardErrorCode = e.code;
      return code.length;
    }
  }
  void streamed;
  return a.length + b.length + c.length + text.length + bytes.length + bytesIn + bytesOut;
}

// ---- frames and queues ----------------------------------------------------
import {
  encodeFrame, decodeFrame, BatchReader, FrameKind, FrameFlag, Batcher, Outbox, Inbox, MessageQueue,
  type Frame,
} from 'switchboard';

export async function queues(port: MessagePort): Promise<number> {
  const bytes: Uint8Array = encodeFrame({ kind: 'message', channel: 1, id: 7, seq: 1, payload: '{"a":1}', flags: FrameFlag.LAST });
  const f: Frame<string> = decodeFrame(bytes, { text: true });
  const kind: number = FrameKind.message;
  const reader = new BatchReader({ maxPayload: 1 << 20 });
  const frames = reader.read(bytes);
  const batcher = new Batcher({ maxMessages: 10, maxBytes: 4096, maxDelay: 5, compressAbove: 512 }, (out, info) => port.postMessage(out, [out.buffer]) ?? info.frames);
  batcher.add({ kind: 'message', payload: 'x' });
  batcher.flush();
  const outbox = new Outbox({ transmit: (b) => port.postMessage(b), maxMessages: 100, overflow: 'drop-oldest', window: 64 });
  outbox.addEventListener('drop', () => {});
  const { rtt } = await outbox.send('hello', { channel: 1, ttl: 5000 });
  const saved: Uint8Array = outbox.serialize();
  const inbox = new Inbox({ sendAck: (b) => port.postMessage(b), text: true, onMessage: (m) => m.seq });
  const q = new MessageQueue<string>(async (item, { attempt }) => item.length + attempt, { concurrency: 2, maxRetries: 3 });
  q.push('job');
  await q.idle();
  q.replay();
  const depth = outbox.stats().depth + batcher.stats().frames + q.stats().queued + inbox.stats().delivered;
  for (const o of [reader, batcher, outbox, inbox, q]) o.close();
  return f.seq + kind + frames.length + rtt + saved.length + depth;
}

// ---- iframe bridge ----------------------------------------------------------
import { connectFrame, connectParent, connect, CallOptions, transfer, bridgeMonitor, type Remote } from 'switchboard';

export async function bridge(iframe: HTMLIFrameElement, worker: Worker): Promise<string> {
  const child: Remote = await connectFrame(iframe, { origin: ['https://*.example.com'], methods: { ping: () => 'pong' }, timeout: 3000 });
  const sum = await child.call<number>('add', 1, 2, new CallOptions({ timeout: 500, transfer: [] }));
  const off = child.on('resized', (d) => d);
  child.emit('hello', { at: Date.now() });
  child.addEventListener('disconnect', () => {});
  off();
  const w = await connect(worker, { methods: { sum: (a: number, b: number) => transfer(new ArrayBuffer(a + b), []) } });
  bridgeMonitor.addEventListener('reject', () => {});
  const parent = await connectParent({ allowedOrigins: 'https://app.example.com' });
  parent.close();
  w.close();
  return `${sum}${child.isConnected}`;
}

// ---- tabs -------------------------------------------------------------------
import { SharedState, TabGroup } from 'switchboard';

export async function tabs(): Promise<number> {
  const group = await TabGroup.open('app', { mode: 'auto', preferVisible: true });
  group.addEventListener('leadershiplost', () => {});
  await group.whenLeader();
  const state = await SharedState.open<{ count: number; user: string }>('state', { initial: { count: 0 }, persist: true });
  state.set('user', 'ada');
  const n: number = state.update('count', (c) => (c ?? 0) + 1);
  const unsubscribe = state.subscribe(({ keys, local }) => keys.length + Number(local));
  for (const [key, value] of state.entries()) void [key, value];
  state.delete('user');
  unsubscribe();
  state.close();
  group.close();
  return n + state.size;
}

// ---- WebSocket ----------------------------------------------------------------
import { Socket, SOCKET_PROTOCOL } from 'switchboard';

export async function socket(): Promise<string> {
  const s = new Socket(async (attempt) => ({ url: `wss://example.com/relay?try=${attempt}`, protocols: ['chat'] }), {
    reconnect: { minDelay: 250, maxDelay: 30000, factor: 2, maxAttempts: 0 },
    heartbeat: { interval: 25000, timeout: 10000 },
    queue: { maxMessages: 1000, overflow: 'reject', persist: 'outbox' },
    batch: { maxDelay: 0 }, compress: { threshold: 256 }, binaryType: 'arraybuffer',
  });
  s.addEventListener('message', (e) => e.data);
  s.addEventListener('drop', (e) => e.reason);
  s.onclose = (e) => e.code;
  s.send('hi');
  const reply = await s.request('ping', { timeout: 1000 });
  s.close(1000, 'bye');
  return `${SOCKET_PROTOCOL}${s.stats().queued}${typeof reply}`;
}

// ---- Server-Sent Events ---------------------------------------------------------
import { EventStream, SseParser } from 'switchboard';

export async function sse(signal: AbortSignal): Promise<number> {
  const es = new EventStream('/events', { method: 'POST', headers: { Authorization: 'Bearer x' }, body: '{}', signal, openWhenHidden: false, reconnect: { minDelay: 1000 } });
  es.addEventListener('notification', (e) => e.data);
  let n = 0;
  for await (const ev of es.events(['message'])) {
    n += ev.data.length;
    if (n > 10) break;
  }
  es.close();
  const p = new SseParser({ maxLineBytes: 1024 });
  p.feed('data: x\n\n', (type, data, id) => { n += type.length + data.length + id.length; });
  p.end();
  p.close();
  return n + es.readyState;
}

// ---- One job alone: switchboard/<job> exports init, SwitchboardError and that job's API ----
import * as bridgeJob from 'switchboard/bridge';
import * as tabsJob from 'switchboard/tabs';
import * as socketJob from 'switchboard/socket';
import * as sseJob from 'switchboard/sse';
import * as gzipJob from 'switchboard/gzip';
import * as queueJob from 'switchboard/queue';
import type { OutboxOptions as JobOutboxOptions, Frame as JobFrame } from 'switchboard/queue';
import * as bridgeSlim from 'switchboard/slim/bridge';

export async function jobs(port: MessagePort): Promise<number> {
  await Promise.all([bridgeJob.init(), tabsJob.init(), socketJob.init(), sseJob.init(), gzipJob.init({ wasmBinary: new Uint8Array(8) }), queueJob.init()]);
  const remote: bridgeJob.Remote = await bridgeJob.connect(port, { timeout: 100 });
  const state: tabsJob.SharedState<{ n: number }> = await tabsJob.SharedState.open('jobs', { initial: { n: 1 } });
  const ws = new socketJob.Socket('wss://example.test/ws');
  const es = new sseJob.EventStream('/events');
  const z: Uint8Array = gzipJob.gzip('x');
  const f: Uint8Array = queueJob.encodeFrame({ kind: 'message', seq: 1, payload: z });
  const err: gzipJob.SwitchboardErrorCode = new queueJob.SwitchboardError('INVALID').code;
  const opts: JobOutboxOptions = { maxMessages: 10, transmit: (bytes: Uint8Array) => port.postMessage(bytes) };
  const frame: JobFrame = queueJob.decodeFrame(f);
  const outbox = new queueJob.Outbox(opts);
  await bridgeSlim.init({ wasmURL: '/switchboard-bridge.wasm' });
  outbox.close();
  remote.close();
  ws.close();
  es.close();
  return (state.get('n') ?? 0) + f.length + err.length + frame.payload.length;
}

// ---- The relay (Node only): switchboard/server ------------------------------------
import { Relay, MemoryStore, SqliteStore, LocalBus, SYSTEM_CHANNEL, createEchoServer, type UpgradeRequest, type Identity, type RelayOptions } from 'switchboard/server';

export async function relay(server: { on(event: 'upgrade', fn: (req: UpgradeRequest, socket: unknown, head: Uint8Array) => void): void }, durable: boolean): Promise<number> {
  const users: Record<string, Identity> = { 'tok-ann': { id: 1, name: 'Ann' }, 'tok-bob': 'bob' };
  const options: RelayOptions = {
    allowedOrigins: ['https://app.example.com', 'https://*.example.com'],
    authenticate: async ({ request, hello }) => users[new URL(request.url ?? '/', 'http://relay').searchParams.get('token') ?? String(hello.token)] ?? null,
    authorize: ({ user, room }) => room !== 'staff' || user?.id === '1',
    onRequest: ({ session, data }) => ({ who: session.userId, data }),
    store: durable ? await SqliteStore.open('relay.db', { synchronous: 'FULL' }) : new MemoryStore(),
    bus: new LocalBus(),
    maxSessions: 100,
    log: (m) => m.length,
  };
  const r = await Relay.create(options);
  server.on('upgrade', (req, socket, head) => r.handleUpgrade(req, socket, head));
  const echo = createEchoServer({ maxPayload: 1024 });
  echo.close();
  r.close();
  return r.stats.sessions + r.stats.refused + SYSTEM_CHANNEL;
}
