// Socket in headless Chromium against real `ws` servers on loopback: the
// relay runs as a child process so it can be killed with SIGKILL and
// restarted from its journal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';
import { browser, server, routeWasm, useBrowserAndServer, watchErrors, unexpected } from './harness.mjs';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { SESSION_PROTOCOL as PROTOCOL } from '../../js/constants.js';
import { handshake } from '../node/fake-server.mjs';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const RELAY_CLI = join(ROOT, 'js/server/relay-cli.mjs');
let tmp;
const relays = new Set(); // every relay child, killed in after() whatever a test did
const sockets = new Set(); // every Node-side Socket, closed in after() likewise

useBrowserAndServer();
before(async () => {
  await init();
  mkdirSync(join(ROOT, 'build'), { recursive: true });
  tmp = mkdtempSync(join(ROOT, 'build', 'socket-test-'));
});

after(async () => {
  for (const sock of sockets) sock.close();
  for (const child of relays) child.kill('SIGKILL');
  if (tmp && !process.env.SB_KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

async function newPage() {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  // Test a freshly built core when one is named (the page otherwise loads /dist).
  await routeWasm(page);
  const errors = watchErrors(page);
  await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
  return { page, ctx, errors };
}

async function freePort() {
  const s = createServer();
  await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

/** Start the relay process; resolves once it listens. The page is on the dev server's origin. */
function startRelay(port, journal, more = []) {
  return new Promise((resolveStart, reject) => {
    const child = spawn(process.execPath, [RELAY_CLI, '--port', String(port), '--journal', journal, '--allowed-origin', server.url, ...more], {
      env: process.env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    relays.add(child);
    let out = '';
    child.stderr.on('data', () => {});
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('"port"')) resolveStart(child);
    });
    child.on('exit', (code) => {
      relays.delete(child);
      reject(new Error(`relay exited early (${code})`));
    });
  });
}

function kill9(child) {
  return new Promise((ok) => {
    if (child.exitCode !== null || child.signalCode !== null) return ok();
    child.once('exit', () => ok());
    child.kill('SIGKILL');
  });
}


const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(fn, ms, what) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('chaos: 10,000 messages each way over three rooms of one connection, relay killed -9 and restarted 10 times, each side gets every message once in order in each room', async () => {
  const N = 10000;
  const port = await freePort();
  const journal = join(tmp, 'chaos.journal');
  let relay = await startRelay(port, journal);
  const url = `ws://127.0.0.1:${port}/`;
  const opts = { reconnect: { minDelay: 20, maxDelay: 300, connectTimeout: 3000 }, heartbeat: { interval: 1000, timeout: 1000 }, queue: { maxMessages: 2 * N } };

  const { page, ctx, errors } = await newPage();
  await page.evaluate(async ({ url, opts, N }) => {
    const sb = await import('/js/index.js');
    await sb.init();
    window.got = [[], [], []];
    const s = new sb.Socket(url, { ...opts, hello: { room: 'chaos', user: 'page' } });
    s.onmessage = (e) => { if (e.channel === 0) window.got[0].push(e.data); };
    s.onerror = () => {};
    window.sock = s;
    // The hello's room, and two more on the same connection.
    const rooms = [s, s.subscribe('chaos-a'), s.subscribe('chaos-b')];
    rooms[1].onmessage = (e) => window.got[1].push(e.data);
    rooms[2].addEventListener('message', (e) => window.got[2].push(e.data));
    await new Promise((r) => s.addEventListener('open', r, { once: true }));
    await Promise.all([rooms[1].ready, rooms[2].ready]);
    // Started once both ends are in the rooms: a room relays to its members only.
    window.startPump = () => {
      window.pump = (async () => {
        for (let i = 0; i < N;) {
          for (let k = 0; k < 10 && i < N; k++, i++) rooms[i % 3].send(`p${i}`);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
    };
  }, { url, opts, N });

  const node = new Socket(url, { WebSocket, ...opts, hello: { room: 'chaos', user: 'node' } });
  sockets.add(node);
  const byRoom = [[], [], []];
  node.onmessage = (e) => { if (e.channel === 0) byRoom[0].push(e.data); };
  node.onerror = () => {};
  const nodeRooms = [node, node.subscribe('chaos-a'), node.subscribe('chaos-b')];
  nodeRooms[1].onmessage = (e) => byRoom[1].push(e.data);
  nodeRooms[2].onmessage = (e) => byRoom[2].push(e.data);
  await new Promise((r) => node.addEventListener('open', r, { once: true }));
  await Promise.all([nodeRooms[1].ready, nodeRooms[2].ready]);
  await page.evaluate(() => window.startPump());
  let sentNode = 0;
  const pumpNode = (async () => {
    while (sentNode < N) {
      for (let k = 0; k < 10 && sentNode < N; k++, sentNode++) nodeRooms[sentNode % 3].send(`n${sentNode}`);
      await sleep(5);
    }
  })();
  const count = (g) => g[0].length + g[1].length + g[2].length;
  const gotNode = { get length() { return count(byRoom); } };

  const opens = async () => [node.stats().opens, await page.evaluate(() => window.sock.stats().opens)];
  for (let i = 0; i < 10; i++) {
    await sleep(150 + Math.random() * 350);
    const [nodeOpens, pageOpens] = await opens();
    await kill9(relay);
    await sleep(Math.random() * 150);
    relay = await startRelay(port, journal);
    // Both sides back before the next kill, so each kill cuts a live
    // connection however slow the machine is.
    await until(async () => { const [n, p] = await opens(); return n > nodeOpens && p > pageOpens; }, 20000, `both sides reconnected after kill ${i + 1}`);
  }
  await pumpNode;
  try {
    await until(async () => gotNode.length >= N && (await page.evaluate(() => window.got.flat().length)) >= N, 60000, 'all messages');
  } catch (e) {
    const pg = await page.evaluate(() => ({ n: window.got.map((g) => g.length), last: window.got.map((g) => g.slice(-2)), st: window.sock.stats() }));
    throw new Error(`${e.message}: node got ${byRoom.map((g) => g.length)} (${byRoom.map((g) => g.slice(-2))}), stats ${JSON.stringify(node.stats())}; page got ${pg.n} (${pg.last}), stats ${JSON.stringify(pg.st)}`);
  }
  await sleep(200); // anything extra (a duplicate) would arrive now
  const gotPage = await page.evaluate(() => window.got);
  const want = (prefix, room) => Array.from({ length: N }, (_, i) => i).filter((i) => i % 3 === room).map((i) => `${prefix}${i}`);
  for (let r = 0; r < 3; r++) {
    assert.deepEqual(gotPage[r], want('n', r), `page, room ${r}`);
    assert.deepEqual(byRoom[r], want('p', r), `node, room ${r}`);
  }
  const st = await page.evaluate(() => window.sock.stats());
  assert.ok(st.reconnects >= 5, `page reconnected ${st.reconnects} times`);
  assert.deepEqual(unexpected(errors), []);
  node.close();
  await page.evaluate(() => window.sock.close());
  await ctx.close();
  await kill9(relay);
});

test('security in a page: the relay stamps who authenticate says, in messages and presence; a room the user may not join is refused; the victim is undisturbed', async () => {
  const port = await freePort();
  const relay = await startRelay(port, join(tmp, 'sec.db'), ['--auth', join(ROOT, 'tests/node/relay-auth.mjs')]);
  const { page, ctx, errors } = await newPage();
  const got = await page.evaluate(async (url) => {
    const sb = await import('/js/index.js');
    await sb.init();
    const opened = (s) => new Promise((ok) => s.addEventListener('open', ok, { once: true }));
    // Mallory signs in as herself and claims to be Ann, in her hello and in her message.
    const ann = new sb.Socket(`${url}?token=tok-ann`, { hello: { room: 'sec' } });
    const mallory = new sb.Socket(`${url}?token=tok-mallory`, { hello: { room: 'sec', user: 'Ann' } });
    const heard = [], presence = [];
    ann.onmessage = (e) => { if (e.channel === 0) heard.push([e.from, e.data]); else presence.push(JSON.parse(e.data).user); };
    await Promise.all([opened(ann), opened(mallory)]);
    const staffAnn = ann.subscribe('staff'), staffMallory = mallory.subscribe('staff');
    const refused = await staffMallory.ready.then(() => 'joined', (e) => e.code);
    await staffAnn.ready;
    let sendAfter = 'sent';
    try { staffMallory.send('let me in'); } catch (e) { sendAfter = e.code; }
    mallory.send(JSON.stringify({ user: 'Ann', text: 'send me your password' }));
    await new Promise((r) => setTimeout(r, 300));
    const r = { heard, presence, refused, sendAfter, staffState: staffMallory.state, staffUsers: staffAnn.users, annState: ann.readyState, annOpens: ann.stats().opens };
    ann.close(); mallory.close();
    return r;
  }, `ws://127.0.0.1:${port}/`);
  assert.equal(got.refused, 'FORBIDDEN');
  assert.equal(got.staffState, 'unsubscribed');
  assert.equal(got.sendAfter, 'CLOSED');
  assert.deepEqual(got.staffUsers, ['Ann'], 'nobody else in staff');
  assert.deepEqual(got.heard, [['mallory', JSON.stringify({ user: 'Ann', text: 'send me your password' })]], 'stamped with who she is');
  assert.deepEqual([...new Set(got.presence)].sort(), ['Ann', 'mallory'], 'presence names who authenticate says');
  assert.equal(got.annState, 1);
  assert.equal(got.annOpens, 1, 'the victim was not disturbed');
  assert.deepEqual(unexpected(errors), []);
  await ctx.close();
  await kill9(relay);
});

test('offline -> reload -> online: messages queued while the relay is down survive a reload and arrive once', async () => {
  const port = await freePort();
  const journal = join(tmp, 'offline.journal');
  let relay = await startRelay(port, journal);
  const url = `ws://127.0.0.1:${port}/`;
  const opts = { reconnect: { minDelay: 20, maxDelay: 200 }, heartbeat: false, queue: { persist: 'offline-test' } };
  const node = new Socket(url, { WebSocket, reconnect: opts.reconnect, heartbeat: false, hello: { room: 'offline', user: 'node' } });
  sockets.add(node);
  const got = [];
  node.onmessage = (e) => { if (e.channel === 0) got.push(e.data); };
  node.onerror = () => {};
  await new Promise((r) => node.addEventListener('open', r, { once: true }));

  const { page, ctx, errors } = await newPage();
  const boot = async ({ url, opts }) => {
    const sb = await import('/js/index.js');
    await sb.init();
    const s = new sb.Socket(url, { ...opts, hello: { room: 'offline', user: 'page' } });
    s.onerror = () => {};
    window.sock = s;
    await s.ready;
    return s.stats().queued;
  };
  assert.equal(await page.evaluate(boot, { url, opts }), 0);
  await page.evaluate(async () => {
    await new Promise((r) => (window.sock.readyState === 1 ? r() : window.sock.addEventListener('open', r, { once: true })));
    for (let i = 0; i < 5; i++) window.sock.send(`before-${i}`);
  });
  await until(() => got.length === 5, 5000, 'messages before the outage');
  // Their acks too: an unacked message is still the page's to resend, and
  // would (rightly) come back from IndexedDB with the 40 queued below.
  await until(async () => (await page.evaluate(() => window.sock.stats().inFlight)) === 0, 5000, 'acks of the first messages');

  await kill9(relay);
  const queued = await page.evaluate(async () => {
    await new Promise((r) => (window.sock.readyState !== 1 ? r() : window.sock.addEventListener('reconnecting', r, { once: true })));
    for (let i = 0; i < 40; i++) window.sock.send(`offline-${i}`);
    await window.sock.persisted();
    return window.sock.stats().queued;
  });
  assert.equal(queued, 40);

  await page.reload();
  assert.equal(await page.evaluate(boot, { url, opts }), 40, 'the outbox came back from IndexedDB');
  relay = await startRelay(port, journal);
  await until(() => got.length >= 45, 15000, 'queued messages after the relay came back');
  await sleep(300);
  assert.deepEqual(got, [...Array.from({ length: 5 }, (_, i) => `before-${i}`), ...Array.from({ length: 40 }, (_, i) => `offline-${i}`)]);
  await until(async () => (await page.evaluate(() => window.sock.stats().queued)) === 0, 5000, 'acks');
  assert.deepEqual(unexpected(errors), []);
  node.close();
  await page.evaluate(() => window.sock.close());
  await ctx.close();
  await kill9(relay);
});

test('fallback: the dev server\'s plain echo endpoint, text and binary', async () => {
  const { page, ctx, errors } = await newPage();
  const res = await page.evaluate(async (base) => {
    const sb = await import('/js/index.js');
    await sb.init();
    const s = new sb.Socket(`${base}/echo`, { binaryType: 'arraybuffer' });
    const got = [];
    const done = new Promise((r) => { s.onmessage = (e) => { got.push(e.data); if (got.length === 2) r(); }; });
    s.send('hello plain');
    s.send(new Uint8Array([1, 2, 3]));
    await done;
    const out = { mode: s.mode, protocol: s.protocol, text: got[0], bin: Array.from(new Uint8Array(got[1])) };
    s.close();
    return out;
  }, server.url.replace('http', 'ws'));
  assert.deepEqual(res, { mode: 'plain', protocol: '', text: 'hello plain', bin: [1, 2, 3] });
  assert.deepEqual(unexpected(errors), []);
  await ctx.close();
});

test('garbage and bombs from a server close with a clear error; the page keeps running', async () => {
  const zlib = await import('node:zlib');
  const bomb = zlib.deflateRawSync(Buffer.alloc(32 << 20));
  let n = 0;
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => PROTOCOL });
  wss.on('connection', (ws) => handshake(ws, () => {
    const k = n++ % 3;
    if (k === 0) ws.send(Buffer.from('garbage, not a frame'));
    else if (k === 1) ws.send(Buffer.concat([Buffer.from([0x19, 0x01, 0x00]), Buffer.from([bomb.length & 0x7f | 0x80, (bomb.length >> 7) & 0x7f | 0x80, bomb.length >> 14]), bomb]));
    else ws.send(Buffer.from([0x10, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f]));
  }));
  const http = createHttpServer();
  http.on('upgrade', (q, s, h) => wss.handleUpgrade(q, s, h, (ws) => wss.emit('connection', ws, q)));
  await new Promise((ok) => http.listen(0, '127.0.0.1', ok));
  const { page, ctx, errors } = await newPage();
  const codes = await page.evaluate(async (url) => {
    const sb = await import('/js/index.js');
    await sb.init();
    const s = new sb.Socket(url, { reconnect: { minDelay: 10, maxDelay: 20 }, heartbeat: false });
    const codes = [];
    await new Promise((r) => {
      s.onerror = (e) => { if (e.error?.code !== 'CONNECTION_LOST') codes.push(e.error.code); if (codes.length === 3) r(); };
    });
    s.close();
    return codes;
  }, `ws://127.0.0.1:${http.address().port}/`);
  assert.deepEqual(codes, ['BAD_VERSION', 'TOO_LARGE', 'TOO_LARGE']);
  assert.equal(await page.evaluate(() => 1 + 1), 2);
  assert.deepEqual(unexpected(errors), []);
  await ctx.close();
  for (const c of wss.clients) c.terminate();
  wss.close();
  http.close();
});

test('chat demo: two tabs see each other join, talk, and the echo demo runs in plain mode', async () => {
  const a = await newPage();
  const b = await newPage();
  for (const [p, name] of [[a.page, 'ann'], [b.page, 'bob']]) {
    await p.evaluate((n) => { localStorage.setItem('chat-name', n); }, name);
    await p.goto(`${server.url}/web/chat.html`);
    await p.waitForFunction(() => document.getElementById('state').textContent === 'open');
  }
  await a.page.waitForFunction(() => [...document.querySelectorAll('#users li')].map((x) => x.textContent).join() === 'ann,bob');
  await b.page.fill('#text', 'hi ann');
  await b.page.click('#send');
  await a.page.waitForFunction(() => [...document.querySelectorAll('#messages div')].some((d) => d.textContent === 'bob: hi ann'));
  await b.ctx.close();
  await a.page.waitForFunction(() => [...document.querySelectorAll('#messages div')].some((d) => d.textContent === 'bob left'));
  assert.deepEqual(unexpected(a.errors), []);
  await a.page.goto(`${server.url}/web/echo.html`);
  await a.page.waitForFunction(() => document.getElementById('mode').textContent === 'mode: plain');
  await a.page.click('#send');
  await a.page.waitForFunction(() => document.getElementById('log').textContent.includes('← text: hello, echo'));
  assert.deepEqual(unexpected(a.errors), []);
  await a.ctx.close();
});

test('back online: the socket is replaced at once, not after a backoff delay', async () => {
  const { page, ctx, errors } = await newPage();
  await page.evaluate(async (base) => {
    const sb = await import('/js/index.js');
    await sb.init();
    window.changes = [];
    const s = new sb.Socket(`${base}/relay`, { hello: { room: 'online-test' }, reconnect: { minDelay: 60000, maxDelay: 60000 } });
    s.addEventListener('statechange', (e) => window.changes.push(`${e.state}:${e.reason}`));
    s.onerror = () => {};
    window.sock = s;
    await new Promise((r) => s.addEventListener('open', r, { once: true }));
  }, server.url.replace('http', 'ws'));
  await ctx.setOffline(true);
  await page.waitForFunction(() => navigator.onLine === false);
  await ctx.setOffline(false);
  // With a 60 s backoff floor, only the online rule can bring it back this fast.
  await page.waitForFunction(() => window.changes.includes('connecting:online') && window.sock.state === 'open', null, { timeout: 10000 });
  assert.deepEqual(unexpected(errors), []);
  await page.evaluate(() => window.sock.close());
  await ctx.close();
});
