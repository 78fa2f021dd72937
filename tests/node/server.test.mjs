// The relay as something to put on the internet (docs/relay.md): the Origin
// allowlist at the upgrade, authenticate / authorize and the close codes
// they cause (4401, 4403), sessions bound to their user, and the CLI
// (switchboard-relay) with --auth and --allowed-origin. Clients are real
// Sockets (js/socket.js) over `ws`; a page's Origin is the header `ws` sends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { init } from '../../js/core.js';
import { Socket } from '../../js/socket.js';
import { SESSION_PROTOCOL, CLOSE_AUTH, CLOSE_FORBIDDEN, CLOSE_TRY_AGAIN, CLOSE_REPLACED } from '../../js/constants.js';
import { Relay, SqliteStore } from '../../js/server/index.mjs';
import * as hooks from './relay-auth.mjs';
import { once, serve, sleep, until } from './net.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'js/server/relay-cli.mjs');
const FAST = { reconnect: { minDelay: 20, maxDelay: 200, connectTimeout: 2000 }, heartbeat: false };
const sockets = new Set();
const children = new Set();

before(() => init());
after(() => {
  for (const s of sockets) s.close();
  for (const c of children) c.kill('SIGKILL');
});

const track = (s) => { sockets.add(s); s.onerror = () => {}; return s; };




/** A `ws` constructor that sends the Origin header a page of `origin` would. */
const withOrigin = (origin) => class extends WebSocket {
  constructor(url, protocols) { super(url, protocols, { origin }); }
};

/** The HTTP status of an upgrade request offering the subprotocol (101 = accepted). */
function upgradeStatus(url, origin) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, [SESSION_PROTOCOL], origin === undefined ? {} : { origin });
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy(); });
    ws.on('open', () => { resolve(101); ws.close(); });
    ws.on('error', () => {});
  });
}

/** A Socket that records what it gets: .got = [{channel, data}], .states = [state]. */
function client(url, opts) {
  const s = track(new Socket(url, { WebSocket, ...FAST, ...opts }));
  s.got = [];
  s.states = [];
  s.reasons = [];
  s.addEventListener('message', (e) => s.got.push({ channel: e.channel, data: e.data }));
  s.addEventListener('statechange', (e) => s.states.push(e.state));
  s.addEventListener('reconnecting', (e) => s.reasons.push(e.reason));
  s.texts = () => s.got.filter((m) => m.channel === 0).map((m) => m.data);
  s.presence = () => s.got.filter((m) => m.channel === 1).map((m) => JSON.parse(m.data));
  return s;
}

test('origin allowlist at the upgrade: a foreign Origin gets 403 and reaches nobody; a listed wildcard, the relay\'s own origin and a client without Origin are accepted', async () => {
  const logs = [];
  const relay = await Relay.create({ allowedOrigins: ['https://*.example.com', 'http://localhost:1'], log: (m) => logs.push(m) });
  const s = await serve(relay);
  const room = 'origins';
  const member = client(s.url, { hello: { room, user: 'member' } });
  await once(member, 'open');
  await until(() => member.presence().length === 1, 5000, 'its own join');
  const connections = relay.stats.connections;
  const foreign = ['https://evil.test', 'https://example.com', 'http://app.example.com', 'https://app.example.com:8443',
    `http://localhost:${s.port}`, `https://127.0.0.1:${s.port}`, 'null', 'not an origin'];
  for (const origin of foreign) assert.equal(await upgradeStatus(s.url, origin), 403, origin);
  // A Socket on a foreign page: every attempt refused, its queue delivered to nobody.
  const evil = client(s.url, { WebSocket: withOrigin('https://evil.test'), hello: { room, user: 'evil' } });
  evil.send('from evil');
  await once(evil, 'reconnecting');
  await once(evil, 'reconnecting');
  evil.close();
  await sleep(100);
  assert.equal(relay.stats.connections, connections, 'no connection was made');
  assert.deepEqual(member.got.map((m) => m.channel), [1], 'nothing but its own join reached the member');
  assert.ok(relay.stats.refused >= foreign.length + 2, `refused ${relay.stats.refused}`);
  assert.ok(logs.some((l) => /403 .*"https:\/\/evil\.test" not allowed/.test(l)), logs.join('\n'));

  for (const [name, WS] of [['wildcard', withOrigin('https://chat.app.example.com')], ['same-origin', withOrigin(`http://127.0.0.1:${s.port}`)], ['no Origin', WebSocket]]) {
    const c = client(s.url, { WebSocket: WS, hello: { room, user: name } });
    await once(c, 'open');
    c.send(`hi from ${name}`);
    await until(() => member.texts().includes(`hi from ${name}`), 5000, name);
    c.close();
  }
  assert.equal(await upgradeStatus(s.url, 'HTTPS://Deep.Sub.App.Example.COM:443'), 101, 'normalized by the core');
  member.close();
  relay.close();
  await s.kill();
});

test('origins by default: only the relay\'s own and none; a bad allowlist entry fails Relay.create', async () => {
  const relay = await Relay.create();
  const s = await serve(relay);
  assert.equal(await upgradeStatus(s.url, 'https://evil.test'), 403);
  assert.equal(await upgradeStatus(s.url, 'http://localhost:' + s.port), 403, 'another host name is another origin');
  assert.equal(await upgradeStatus(s.url, `http://127.0.0.1:${s.port}`), 101);
  assert.equal(await upgradeStatus(s.url, undefined), 101);
  relay.close();
  await s.kill();
  await assert.rejects(Relay.create({ allowedOrigins: ['https://*.10.0.0.1'] }), { code: 'BAD_ORIGIN' });
  await assert.rejects(Relay.create({ allowedOrigins: 'https://example.com' }), { code: 'INVALID' });
  await assert.rejects(Relay.create({ authenticate: 'yes' }), { code: 'INVALID' });
});

test('authenticate: no token or a bad one closes with 4401 and a static URL is not retried; a URL or hello provider is asked again and gets in; presence shows who authenticate says', async () => {
  const calls = [];
  const relay = await Relay.create({
    authenticate: (ctx) => { calls.push(ctx); return hooks.authenticate(ctx); },
    onRequest: ({ session }) => session,
  });
  const s = await serve(relay);
  const room = 'auth';
  for (const [name, url, reason] of [['no token', s.url, /^UNAUTHORIZED: credentials refused$/],
    ['bad token', `${s.url}?token=nope`, /^UNAUTHORIZED: credentials refused$/],
    ['a hook that throws', `${s.url}?token=tok-throw`, /^UNAUTHORIZED: the token service says no$/]]) {
    const n = calls.length;
    const c = client(url, { hello: { room, user: 'mallory' } });
    const closed = await once(c, 'close');
    assert.equal(closed.code, CLOSE_AUTH, name);
    assert.match(closed.reason, reason, name);
    await sleep(300); // FAST: a retry would have come within 200 ms
    assert.deepEqual(c.reasons, [], `${name}: not retried`);
    assert.equal(calls.length, n + 1, name);
    assert.equal(c.state, 'closed');
  }
  assert.equal(relay.sessions.size, 0, 'no session for a refused hello');

  // A URL provider: expired token twice, then a good one.
  const tried = [];
  const before = calls.length;
  const ann = client((attempt) => { tried.push(attempt); return `${s.url}?token=${attempt < 2 ? 'expired' : 'tok-ann'}`; },
    { hello: { room, user: 'mallory' } });
  await once(ann, 'open');
  assert.deepEqual(tried, [0, 1, 2]);
  assert.deepEqual(ann.reasons, ['peer-closed', 'peer-closed']);
  // every attempt reached authenticate (no plain-mode probe in between: the relay greeted)
  assert.deepEqual(calls.slice(before).map((c) => c.request.url), ['/?token=expired', '/?token=expired', '/?token=tok-ann']);
  await until(() => ann.presence().length, 5000, 'ann joins');
  assert.deepEqual(ann.presence()[0], { type: 'join', room: 'auth', channel: 0, user: 'Ann', users: ['Ann'] }, 'not the hello\'s self-declared user');
  assert.equal(calls.at(-1).request.url, '/?token=tok-ann');
  assert.deepEqual(calls.at(-1).hello, { room, user: 'mallory' });

  // A hello provider (the token stays out of the URL).
  const bob = client(s.url, { hello: async (attempt) => ({ room, token: attempt === 0 ? 'nope' : 'tok-bob' }) });
  await once(bob, 'open');
  assert.deepEqual(bob.reasons, ['peer-closed']);
  await until(() => ann.presence().some((p) => p.users.join() === 'Ann,bob'), 5000, 'bob joins');
  bob.send('hi ann');
  await until(() => ann.texts().includes('hi ann'), 5000, 'ann gets it');
  const who = JSON.parse(await ann.request('who'));
  assert.equal(who.user, 'Ann');
  assert.equal(who.userId, 'u-ann');
  ann.close();
  bob.close();
  relay.close();
  await s.kill();
});

test('a session is bound to its user: another user resuming it gets 4403 and the owner is not disturbed; the binding survives a restart from SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-server-'));
  const db = join(dir, 'relay.db');
  try {
    let relay = await Relay.create({ store: await SqliteStore.open(db), authenticate: hooks.authenticate });
    let s = await serve(relay);
    const room = 'bound';
    const ann = client(`${s.url}?token=tok-ann`, { hello: { room } });
    const carol = client(`${s.url}?token=tok-carol`, { hello: { room } });
    await Promise.all([once(ann, 'open'), once(carol, 'open')]);
    await until(() => ann.presence().some((p) => p.users.join() === 'Ann,carol'), 5000, 'both in the room');
    const annId = ann.session;
    const states = ann.states.length;
    const steal = async (what) => {
      const bob = client(`ws://127.0.0.1:${s.port}/?token=tok-bob`, { session: annId, hello: { room } });
      const closed = await once(bob, 'close');
      assert.equal(closed.code, CLOSE_FORBIDDEN, what);
      assert.match(closed.reason, /^FORBIDDEN: the session belongs to another user$/, what);
      assert.deepEqual(bob.reasons, [], `${what}: not retried`);
    };
    await steal('bob resumes ann\'s session');
    carol.send('still there?');
    await until(() => ann.texts().includes('still there?'), 5000, 'ann keeps receiving');
    assert.equal(ann.states.length, states, 'ann\'s connection was not touched');
    assert.equal(ann.stats().opens, 1);
    assert.ok(!ann.presence().some((p) => p.users.includes('bob')), 'bob never joined');

    // Restart from the database: ann resumes her own session, bob still may not.
    relay.close();
    await s.kill();
    await once(ann, 'reconnecting');
    relay = await Relay.create({ store: await SqliteStore.open(db), authenticate: hooks.authenticate });
    s = await serve(relay, s.port);
    await once(ann, 'open', () => true, 5000);
    assert.equal(ann.session, annId);
    assert.equal(relay.sessions.get(annId).owner, 'u-ann');
    await steal('after the restart');
    // The owner on a second device takes it over (the first is replaced: 4000).
    const again = client(`${s.url}?token=tok-ann`, { session: annId, hello: { room } });
    const replaced = once(ann, 'close');
    await once(again, 'open');
    assert.equal(again.session, annId);
    assert.equal((await replaced).code, CLOSE_REPLACED);
    again.close();
    carol.close();
    relay.close();
    await s.kill();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('authorize admits a user to a room (else 4403); a hook that does not answer in time closes with 1013', async () => {
  const relay = await Relay.create({ ...hooks });
  const s = await serve(relay);
  const bob = client(`${s.url}?token=tok-bob`, { hello: { room: 'staff' } });
  const closed = await once(bob, 'close');
  assert.equal(closed.code, CLOSE_FORBIDDEN);
  assert.match(closed.reason, /^FORBIDDEN: room "staff" refused$/);
  const ann = client(s.url, { hello: { room: 'staff', token: 'tok-ann' } });
  await once(ann, 'open');
  ann.close();
  relay.close();
  await s.kill();

  const slow = await Relay.create({ helloTimeoutMs: 200, authenticate: () => new Promise(() => {}) });
  const s2 = await serve(slow);
  const c = client(s2.url, { reconnect: false });
  const c2 = await once(c, 'close');
  assert.equal(c2.code, CLOSE_TRY_AGAIN);
  assert.match(c2.reason, /^TIMEOUT: authenticate took over 200 ms$/);
  slow.close();
  await s2.kill();
});

/** The CLI as a child process; resolves {child, port} once it listens. */
function startCli(args, cwd = ROOT) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '', err = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve({ child, port: Number(m[1]), err: () => err });
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => { children.delete(child); reject(new Error(`relay exited (${code}): ${err}`)); });
  });
}

test('switchboard-relay: --help lists every option with its default; --auth and --allowed-origin guard the relay; bad arguments exit with a message', async () => {
  const help = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  for (const [flag, def] of [['--port N', '8090'], ['--host ADDR', '127.0.0.1'], ['--allowed-origin ORIGIN', 'same-origin pages'],
    ['--db FILE', 'in memory'], ['--auth MODULE', 'anyone may connect'], ['--echo', 'off'], ['--help', ''],
    ['--max-connections N', '10000'], ['--max-connections-per-address N', '100'], ['--max-sessions N', '10000'],
    ['--max-memory MIB', '1024'], ['--rate-messages N', '1000'], ['--rate-bytes N', '8388608']]) {
    const at = help.indexOf(`  ${flag}\n`);
    assert.ok(at >= 0, `${flag} in --help`);
    if (def) assert.match(help.slice(at, help.indexOf('\n  --', at + 1)), new RegExp(`\\(default: [^)]*${def}`), flag);
  }
  const fails = (args, rc, pattern) => {
    try {
      execFileSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
      assert.fail(`${args.join(' ')} should fail`);
    } catch (e) {
      assert.equal(e.status, rc, args.join(' '));
      assert.match(e.stderr, pattern, args.join(' '));
    }
  };
  fails(['--prot', '1'], 2, /unknown argument "--prot"/);
  fails(['--port'], 2, /--port needs a value/);
  fails(['--port', 'x'], 2, /not a port/);
  fails(['--max-connections', 'lots', '--port', '0'], 1, /--max-connections lots: not a number/);
  fails(['--allowed-origin', 'https://*.1.2.3.4', '--port', '0'], 1, /BAD_ORIGIN|allowed origin/);
  const dir = mkdtempSync(join(tmpdir(), 'sb-cli-'));
  writeFileSync(join(dir, 'none.mjs'), 'export const x = 1;\n');
  fails(['--auth', join(dir, 'none.mjs'), '--port', '0'], 1, /no default export, authenticate or authorize/);
  rmSync(dir, { recursive: true, force: true });

  const { child, port } = await startCli(['--port', '0', '--auth', 'tests/node/relay-auth.mjs', '--allowed-origin', 'https://*.example.com']);
  const url = `ws://127.0.0.1:${port}/`;
  assert.equal(await upgradeStatus(url, 'https://evil.test'), 403);
  const page = withOrigin('https://app.example.com');
  const anon = client(url, { WebSocket: page, hello: { room: 'cli' } });
  assert.equal((await once(anon, 'close')).code, CLOSE_AUTH);
  const a = client(`${url}?token=tok-ann`, { WebSocket: page, hello: { room: 'cli' } });
  const b = client(url, { WebSocket: page, hello: { room: 'cli', token: 'tok-bob' } });
  await Promise.all([once(a, 'open'), once(b, 'open')]);
  await until(() => a.presence().some((p) => p.users.join() === 'Ann,bob'), 5000, 'both in the room');
  a.send('hello bob');
  await until(() => b.texts().includes('hello bob'), 5000, 'bob gets it');
  const staff = client(`${url}?token=tok-bob`, { WebSocket: page, hello: { room: 'staff' } });
  assert.equal((await once(staff, 'close')).code, CLOSE_FORBIDDEN, 'authorize from the module');
  a.close();
  b.close();
  child.kill('SIGTERM');
});
