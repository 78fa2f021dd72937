// The reliable-queue demo in Chromium: Outbox and Inbox over a real
// MessageChannel made lossy on purpose; the sender persisted to IndexedDB and
// restarted mid-stream. The page checks its own guarantee; the test reads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browser, server, routeWasm, useBrowserAndServer, watchErrors } from './harness.mjs';

useBrowserAndServer();

async function open() {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const errors = watchErrors(page);
  // Same switch as the Node tests: a freshly built core instead of dist/.
  await routeWasm(page);
  await page.goto(`${server.url}/web/queue.html`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'core loaded');
  return { page, errors };
}

const verdict = (page) => page.textContent('#verdict');

test('lossy, duplicating, reordering link: every message exactly once, in order', async () => {
  const { page, errors } = await open();
  await page.fill('#loss', '25');
  await page.fill('#dup', '15');
  await page.fill('#count', '400');
  await page.click('#send');
  await page.waitForFunction(() => document.getElementById('verdict').textContent.includes('complete'), null, { timeout: 60000 });
  const v = await verdict(page);
  assert.match(v, /^400 of 400 delivered · 0 duplicates · 0 out of order · complete$/);
  assert.equal(await page.getAttribute('#verdict', 'class'), 'ok');
  const stats = await page.textContent('#stats');
  assert.match(stats, /[1-9]\d*link lost/, 'the link really lost messages');
  assert.match(stats, /[1-9]\d*duplicates dropped/, 'and the inbox dropped duplicates');
  assert.deepEqual(errors, []);
  await page.close();
});

test('link down, burst, sender persisted to IndexedDB and restarted, link up: nothing lost', async () => {
  const { page, errors } = await open();
  await page.fill('#loss', '10');
  await page.fill('#count', '100');
  await page.click('#send');
  await page.click('#toggle'); // down, probably with frames in flight
  await page.click('#send');
  await page.click('#restart');
  await page.waitForFunction(() => document.getElementById('log').textContent.includes('sender restarted from IndexedDB'));
  await page.click('#toggle'); // up
  await page.waitForFunction(() => document.getElementById('verdict').textContent.includes('complete'), null, { timeout: 60000 });
  assert.match(await verdict(page), /^200 of 200 delivered · 0 duplicates · 0 out of order · complete$/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a full queue under drop-oldest reports each drop', async () => {
  const { page, errors } = await open();
  await page.fill('#loss', '0');
  await page.fill('#dup', '0');
  await page.fill('#cap', '50');
  await page.selectOption('#overflow', 'drop-oldest');
  // cap and policy apply to a new sender: restart picks them up
  await page.click('#restart');
  await page.waitForFunction(() => document.getElementById('log').textContent.includes('sender restarted'));
  await page.click('#toggle'); // down: nothing leaves, so the queue fills
  await page.fill('#count', '80');
  await page.click('#send');
  await page.click('#toggle');
  await page.waitForFunction(() => document.getElementById('verdict').textContent.includes('complete'), null, { timeout: 60000 });
  assert.match(await verdict(page), /^50 of 80 delivered, 30 reported dropped\/expired · 0 duplicates · 0 out of order · complete$/);
  assert.match(await page.textContent('#log'), /drop: message \d+ \(QUEUE_FULL\)/);
  assert.deepEqual(errors, []);
  await page.close();
});
