// The npm tarball as a newcomer meets it: `npm pack`, install into fresh
// consumer projects, and use it three ways in headless Chromium: a Vite app
// importing ESM, a plain page with one <script> tag, and the slim bundle with
// a separately served .wasm under a strict CSP; a per-job entry
// (switchboard/<job>) in each of the three. Also type-checks a consumer
// TypeScript file against the packed .d.ts with tsc --strict.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
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
});

test('npm pack holds only dist/, types, README and package.json', () => {
  const files = sh('tar', ['-tzf', tarball], ROOT).trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
  for (const f of files) {
    assert.ok(/^(dist\/[\w.-]+|README\.md|package\.json|LICENSE)$/.test(f), `unexpected file in tarball: ${f}`);
  }
  const wanted = ['dist/switchboard.mjs', 'dist/switchboard.slim.mjs', 'dist/switchboard.iife.js', 'dist/switchboard.wasm', 'dist/index.d.ts', 'README.md'];
  const { exports } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
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
