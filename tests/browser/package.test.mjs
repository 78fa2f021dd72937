// The npm tarball as a newcomer meets it: `npm pack`, install into fresh
// consumer projects, and use it three ways in headless Chromium: a Vite app
// importing ESM, a plain page with one <script> tag, and the slim bundle with
// a separately served .wasm under a strict CSP; a per-job entry
// (switchboard/<job>) in each of the three. Also type-checks a consumer
// TypeScript file against the packed .d.ts with tsc --strict, and runs the
// relay the package ships (switchboard/server, npx switchboard-relay) for a
// page of an allowed origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join, extname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, watchErrors } from './harness.mjs';
import { jobs } from '../../.ci/jobs.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORK = join(ROOT, 'build', 'package-test');
// Synchronous, so node:test's per-test timeout cannot interrupt it: each
// command carries its own limit (an npm install that hangs fails the test).
const sh = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240000, killSignal: 'SIGKILL' });

let tarball;
let browser;
const servers = [];
const children = []; // process groups (npx and the relay under it)
const temps = [];    // consumer folders outside the repository

function serveDir(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };
  const srv = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    const file = normalize(join(dir, path === '/' ? 'index.html' : path));
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] || 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  servers.push(srv);
  return new Promise((ok) => srv.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${srv.address().port}`)));
}

async function pageSays(url) {
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'pending', null, { timeout: 15000 });
  const text = await page.textContent('#out');
  await page.close();
  return { text, errors };
}

before(async () => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(join(WORK, 'pack'), { recursive: true });
  const name = sh('npm', ['pack', '--silent', '--pack-destination', join(WORK, 'pack')], ROOT).trim().split('\n').pop();
  tarball = join(WORK, 'pack', name);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const s of servers) s.close();
  for (const c of children) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

test('npm pack holds only dist/, types, README and package.json', () => {
  const files = sh('tar', ['-tzf', tarball], ROOT).trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
  for (const f of files) {
    assert.ok(/^(dist\/[\w.-]+|README\.md|package\.json|LICENSE)$/.test(f), `unexpected file in tarball: ${f}`);
  }
  const wanted = ['dist/switchboard.mjs', 'dist/switchboard.slim.mjs', 'dist/switchboard.iife.js', 'dist/switchboard.wasm', 'dist/index.d.ts', 'README.md',
    'dist/switchboard-server.mjs', 'dist/switchboard-server.d.ts', 'dist/switchboard-relay.mjs'];
  const { exports, bin, dependencies, peerDependencies, peerDependenciesMeta } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  // The relay: Node only (no default condition a browser bundler could pick), ws an optional peer.
  assert.deepEqual(exports['./server'], { types: './dist/switchboard-server.d.ts', node: './dist/switchboard-server.mjs' });
  assert.deepEqual(bin, { 'switchboard-relay': './dist/switchboard-relay.mjs' });
  assert.equal(dependencies, undefined, 'the browser bundles depend on nothing');
  assert.ok(peerDependencies.ws && peerDependenciesMeta.ws.optional);
  assert.ok(peerDependencies['better-sqlite3'] && peerDependenciesMeta['better-sqlite3'].optional);
  for (const job of Object.keys(jobs)) {
    wanted.push(...['.mjs', '.iife.js', '.slim.mjs', '.wasm', '.d.ts'].map((ext) => `dist/switchboard-${job}${ext}`));
    assert.deepEqual(exports[`./${job}`], { types: `./dist/switchboard-${job}.d.ts`, default: `./dist/switchboard-${job}.mjs` }, job);
  }
  for (const f of wanted) assert.ok(files.includes(f), `missing ${f}`);
});

test('a Vite app imports switchboard as ESM with no plugin or config', async () => {
  const app = join(WORK, 'vite-app');
  cpSync(join(ROOT, 'tests/package/vite-app'), app, { recursive: true });
  sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], app);
  sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], app);
  sh('npx', ['vite', 'build', '--logLevel', 'error'], app);
  assert.ok(readdirSync(join(app, 'dist', 'assets')).some((f) => f.endsWith('.js')));
  const url = await serveDir(join(app, 'dist'));
  const { text, errors } = await pageSays(`${url}/`);
  assert.equal(text, 'ok');
  assert.deepEqual(errors, []);
});

test('one <script> tag: the IIFE from the installed package', async () => {
  const site = join(WORK, 'static');
  cpSync(join(ROOT, 'tests/package/static'), site, { recursive: true });
  sh('npm', ['init', '-y'], site);
  sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], site);
  for (const f of ['switchboard.iife.js', 'switchboard-tabs.iife.js', 'switchboard.slim.mjs', 'switchboard.wasm', 'switchboard-gzip.slim.mjs', 'switchboard-gzip.wasm']) {
    cpSync(join(site, 'node_modules/switchboard/dist', f), join(site, f));
  }
  const url = await serveDir(site);
  for (const page of ['script-tag.html', 'script-tag-job.html']) {
    const { text, errors } = await pageSays(`${url}/${page}`);
    assert.equal(text, 'ok', page);
    assert.deepEqual(errors, [], page);
  }
});

test('strict CSP: slim bundles + separately served .wasm (whole and one job)', async () => {
  const site = join(WORK, 'static');
  const url = await serveDir(site);
  const { text, errors } = await pageSays(`${url}/strict-csp.html`);
  assert.equal(text, 'ok');
  assert.deepEqual(errors, []);
});

test('the packed types type-check a consumer that uses the public API (tsc --strict)', () => {
  const proj = join(WORK, 'types');
  mkdirSync(proj, { recursive: true });
  cpSync(join(ROOT, 'tests/package/consumer.ts'), join(proj, 'consumer.ts'));
  cpSync(join(ROOT, 'tests/package/tsconfig.json'), join(proj, 'tsconfig.json'));
  sh('npm', ['init', '-y'], proj);
  sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], proj);
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    sh(process.execPath, [tsc, '--noEmit', '-p', proj], proj);
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
});

test('the relay from the tarball: npx switchboard-relay --help, then on a loopback port with --allowed-origin; a page of that origin chats through it with the installed Socket', async () => {
  // A fresh folder outside the repository: nothing of ours (node_modules,
  // dist/) on the resolution path, so only what the tarball and its peer
  // dependency bring can be found.
  const proj = mkdtempSync(join(tmpdir(), 'sb-relay-consumer-'));
  temps.push(proj);
  sh('npm', ['init', '-y'], proj);
  sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball, 'ws'], proj);
  const help = sh('npx', ['--no-install', 'switchboard-relay', '--help'], proj);
  for (const flag of ['--port N', '--host ADDR', '--allowed-origin ORIGIN', '--db FILE', '--auth MODULE']) {
    assert.match(help, new RegExp(`  ${flag}\\n .*\\(default: `), flag);
  }
  // The server entry by its name, on the core beside it in the installed package.
  const out = sh(process.execPath, ['--input-type=module', '-e',
    "import { Relay, MemoryStore, SqliteStore, LocalBus } from 'switchboard/server'; const r = await Relay.create({ store: new MemoryStore(), bus: new LocalBus() }); console.log(typeof SqliteStore.open, r.stats.sessions); r.close();"], proj);
  assert.equal(out.trim(), 'function 0');

  const site = join(proj, 'site');
  mkdirSync(site, { recursive: true });
  cpSync(join(proj, 'node_modules/switchboard/dist/switchboard-socket.mjs'), join(site, 'switchboard-socket.mjs'));
  writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><title>relay consumer</title><output id="out">pending</output>\n');
  const origin = await serveDir(site);
  const child = spawn('npx', ['--no-install', 'switchboard-relay', '--port', '0', '--host', '127.0.0.1', '--allowed-origin', origin],
    { cwd: proj, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const port = await new Promise((resolve, reject) => {
    let stdout = '';
    const t = setTimeout(() => reject(new Error(`the relay did not start: ${stderr}`)), 60000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /\{"port":(\d+)\}/.exec(stdout);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(t); reject(new Error(`the relay exited (${code}): ${stderr}`)); });
  });
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${origin}/`);
  const got = await page.evaluate(async (url) => {
    const { init, Socket } = await import('/switchboard-socket.mjs');
    await init();
    const opened = (s) => new Promise((resolve, reject) => {
      s.onopen = resolve;
      s.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason}`));
    });
    const ann = new Socket(url, { hello: { room: 'package', user: 'ann' } });
    const bob = new Socket(url, { hello: { room: 'package', user: 'bob' } });
    await Promise.all([opened(ann), opened(bob)]);
    const heard = (s) => new Promise((resolve) => { s.onmessage = (e) => { if (e.channel === 0) resolve(e.data); }; });
    const toBob = heard(bob);
    ann.send('hello from the installed package');
    const first = await toBob;
    const toAnn = heard(ann);
    bob.send('hello back');
    const reply = await toAnn;
    ann.close();
    bob.close();
    return [first, reply];
  }, `ws://127.0.0.1:${port}/`);
  await page.close();
  assert.deepEqual(got, ['hello from the installed package', 'hello back']);
  assert.deepEqual(errors, []);
  process.kill(-child.pid, 'SIGTERM');
});
