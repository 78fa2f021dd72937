// Every code sample in README.md runs, as written, in headless Chromium: the
// test reads each block marked <!-- example: NAME -->, serves it as a module
// (only the example hosts are swapped for the test servers'), and checks what
// it prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { browser, server, useBrowserAndServer } from './harness.mjs';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const examples = {};
for (const m of README.matchAll(/<!-- example: ([\w-]+) -->\n```js\n([\s\S]*?)```/g)) examples[m[1]] = m[2];

let context; // closed with the browser
useBrowserAndServer([], async () => {
  context = await browser.newContext();
  const host = (u) => u.replace(/^http:\/\//, '');
  await context.route('**/__readme/*.js', (route) => {
    const name = /__readme\/([\w-]+)\.js/.exec(route.request().url())[1];
    const code = examples[name]
      .replaceAll('https://widget.example.com', server.url2)
      .replaceAll('https://app.example.com', server.url)
      .replaceAll('wss://chat.example.com', `ws://${host(server.url)}`);
    route.fulfill({ status: 200, contentType: 'text/javascript', body: code });
  });
});

// Open the example page and resolve with its console lines once `until` matches one.
async function run(name, until, { child } = {}) {
  const page = await context.newPage();
  const lines = [];
  const errors = [];
  page.on('console', (m) => lines.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  const q = new URLSearchParams({ example: name });
  if (child) q.set('child', child);
  await page.goto(`${server.url}/tests/browser/fixtures/readme.html?${q}`);
  const deadline = Date.now() + 15000;
  while (!lines.some((l) => until.test(l)) && Date.now() < deadline && !errors.length) await page.waitForTimeout(20);
  return { page, lines, errors };
}

test('README has an example for every job', () => {
  assert.deepEqual(Object.keys(examples).sort(), ['bridge-child', 'bridge-parent', 'gzip', 'socket', 'sse', 'tabs']);
});

test('README gzip example', async () => {
  const { page, lines, errors } = await run('gzip', /bytes$/);
  assert.deepEqual(errors, []);
  assert.match(lines.join('\n'), /\{"hello":"world"\} \{"type":"chat","text":"hi"\} \d+ bytes/);
  await page.close();
});

test('README iframe bridge examples (parent and cross-origin child)', async () => {
  const child = `${server.url2}/tests/browser/fixtures/readme.html?example=bridge-child`;
  const { page, lines, errors } = await run('bridge-parent', /rendered in dark/, { child });
  assert.deepEqual(errors, []);
  assert.ok(lines.includes('rendered in dark'), lines.join('\n'));
  await page.waitForFunction(() => document.querySelector('iframe').style.height === '320px');
  await page.close();
});

test('README tab sync example, in two tabs', async () => {
  const a = await run('tabs', /cart: 1 items/);
  assert.deepEqual(a.errors, []);
  // The second tab starts from a live tab's snapshot or, when that is late
  // (a loaded machine), from storage: have the first tab's save land first.
  await a.page.waitForFunction(() => localStorage.getItem('switchboard:state:cart') !== null, null, { timeout: 10000 });
  const b = await run('tabs', /cart: 2 items/);
  assert.deepEqual(b.errors, []);
  // the first tab sees the second tab's write
  const deadline = Date.now() + 5000;
  while (!a.lines.includes('cart: 2 items') && Date.now() < deadline) await a.page.waitForTimeout(20);
  assert.ok(a.lines.includes('cart: 2 items'), a.lines.join('\n'));
  // exactly one of the two tabs leads
  assert.equal(a.lines.concat(b.lines).filter((l) => l === 'this tab leads').length, 1);
  await a.page.close();
  await b.page.close();
});

test('README WebSocket example against the relay', async () => {
  const { page, lines, errors } = await run('socket', /server has it/);
  assert.deepEqual(errors, []);
  assert.ok(lines.includes('server has it true'), lines.join('\n'));
  await page.close();
});

test('README SSE example against the dev server endpoint', async () => {
  const { page, lines, errors } = await run('sse', /notification #[3-9]/);
  assert.deepEqual(errors, []);
  assert.ok(lines.some((l) => /^notification #\d+: \S/.test(l)), lines.join('\n'));
  await page.close();
});
