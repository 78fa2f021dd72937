// Every demo page linked from the hub opens, does its one job when used the
// way a visitor would, and leaves a screenshot in build/screenshots/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { browser, server, useBrowserAndServer, watchErrors } from './harness.mjs';

const SHOTS = fileURLToPath(new URL('../../build/screenshots/', import.meta.url));
mkdirSync(SHOTS, { recursive: true });
useBrowserAndServer();

async function open(path, context = null) {
  const page = await (context || browser).newPage({ viewport: { width: 1200, height: 900 } });
  const errors = watchErrors(page);
  await page.goto(`${server.url}${path}`);
  return { page, errors };
}

test('hub links every demo, and every link resolves', async () => {
  const { page, errors } = await open('/');
  const links = await page.$$eval('#demos a', (as) => as.map((a) => a.getAttribute('href')));
  assert.ok(links.length >= 6, `only ${links.length} demos linked`);
  for (const href of links) {
    const res = await fetch(`${server.url}${href}`);
    assert.equal(res.status, 200, href);
  }
  await page.screenshot({ path: `${SHOTS}index.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('compression playground: compress the sample, both implementations round-trip', async () => {
  const { page, errors } = await open('/web/gzip.html');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'core loaded');
  await page.click('#run');
  await page.waitForFunction(() => document.querySelectorAll('#results tr').length === 3);
  const cells = await page.$$eval('#results td', (tds) => tds.map((t) => t.textContent));
  assert.ok(cells.filter((c) => c === 'exact').length === 2, cells.join(' | '));
  assert.ok(cells.some((c) => c.includes('each decompresses the other')));
  await page.click('#messages');
  await page.waitForFunction(() => document.getElementById('msgstats').childElementCount === 4);
  const stats = await page.textContent('#msgstats');
  const shared = Number(/shared window \(×([\d.]+)\)/.exec(stats)[1]);
  assert.ok(shared > 2.4, stats);
  await page.screenshot({ path: `${SHOTS}compress.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('queue demo: a lossy link still delivers every message once', async () => {
  const { page, errors } = await open('/web/queue.html');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'core loaded');
  await page.fill('#count', '200');
  await page.click('#send');
  await page.waitForFunction(() => document.getElementById('verdict').textContent.includes('complete'), null, { timeout: 60000 });
  // What the page claims, checked: every message, none twice, none out of order.
  const verdict = await page.textContent('#verdict');
  assert.match(verdict, / 0 duplicates · 0 out of order/, verdict);
  assert.match(verdict, /\b200\b/, verdict);
  await page.screenshot({ path: `${SHOTS}queue.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

// A chart has drawn live data once its largest value is above min.
const chartShows = (page, id, min = 0) => page.waitForFunction(
  ([i, m]) => Number(document.getElementById(i).dataset.max) > m, [id, min], { timeout: 15000 });

test('bridge demo: parent and cross-origin child talk; a spoof is rejected and logged', async () => {
  const { page, errors } = await open('/web/bridge.html');
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('connected'));
  await page.click('#burst');
  await page.waitForFunction(() => document.getElementById('burstResult').textContent.includes(' of 1,000'));
  assert.match(await page.textContent('#burstResult'), /^1000 of 1,000 calls answered/);
  await chartShows(page, 'chartRate', 100);
  await chartShows(page, 'chartLatency');
  await page.fill('#messageInput', 'hello child');
  await page.click('#send');
  // The message reaches the cross-origin child (its own log says so).
  const child = page.frames().find((f) => f.url().includes('bridge-child.html') && !f.url().includes('spoof'));
  await child.waitForFunction(() => document.getElementById('received').textContent.includes('parent: hello child'));
  await page.click('#spoofForeign');
  // The spoofing frame forges a hello and a call, twice: all four are
  // counted and logged as refused for their origin.
  await page.waitForFunction(() => document.getElementById('spoofCount').textContent === '4');
  const spoofs = await page.textContent('#spoofs');
  assert.equal(spoofs.match(/ignored (hello|call) on "demo" from http:\/\/localhost:\d+: origin-rejected/g)?.length, 4, spoofs);
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${SHOTS}bridge.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('tabs demo: a chat line written in one tab shows in another', async () => {
  // Tabs of one browser profile: pages of one context.
  const ctx = await browser.newContext();
  const a = await open('/web/tabs.html', ctx);
  const b = await open('/web/tabs.html', ctx);
  for (const { page } of [a, b]) await page.waitForFunction(() => window.tabsDemo?.ready === true);
  await a.page.fill('#user', 'ann');
  await a.page.fill('#text', 'hello from tab A');
  await a.page.click('#send');
  await b.page.waitForFunction(() => document.getElementById('messages').textContent.includes('hello from tab A'));
  await a.page.click('#burst');
  await chartShows(b.page, 'chartRate', 50);
  await chartShows(b.page, 'chartTabs', 1);
  await b.page.screenshot({ path: `${SHOTS}tabs.png`, fullPage: true });
  assert.deepEqual([...a.errors, ...b.errors], []);
  await ctx.close();
});

test('SSE dashboard: events flow, the drop button reconnects and resumes', async () => {
  const { page, errors } = await open('/web/sse.html');
  await page.waitForFunction(() => Number(document.getElementById('count').textContent) > 5);
  await page.click('#drop');
  await page.waitForFunction(() => document.getElementById('retries').textContent === '1');
  await page.waitForFunction(() => document.getElementById('badge').textContent === 'open');
  await page.screenshot({ path: `${SHOTS}sse.png`, fullPage: true });
  // The cut stream is reported by Chromium as an incomplete chunked body: that is the drop itself.
  assert.deepEqual(errors.filter((e) => !e.includes('ERR_INCOMPLETE_CHUNKED_ENCODING')), []);
  await page.close();
});

test('SSE dashboard in three tabs: one connection for three tabs, and the stream goes on when the holder closes', async () => {
  const ctx = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < 3; i++) tabs.push(await open('/web/sse.html', ctx));
  const text = (t) => t.page.textContent('#sharing');
  for (const t of tabs) await t.page.waitForFunction(() => /^1 connection for 3 tabs · held by /.test(document.getElementById('sharing').textContent));
  const held = await Promise.all(tabs.map(text));
  assert.equal(held.filter((x) => x.includes('held by this tab')).length, 1, held.join('\n'));
  const h = held.findIndex((x) => x.includes('held by this tab'));
  await tabs[h].page.screenshot({ path: `${SHOTS}sse-shared.png`, fullPage: true });
  await tabs[h].page.close();
  const rest = tabs.filter((_, i) => i !== h);
  for (const t of rest) await t.page.waitForFunction(() => /^1 connection for 2 tabs · held by /.test(document.getElementById('sharing').textContent));
  const before = await Promise.all(rest.map((t) => t.page.textContent('#count')));
  for (const [i, t] of rest.entries()) await t.page.waitForFunction((n) => Number(document.getElementById('count').textContent) > n + 3, Number(before[i]));
  for (const t of rest) assert.equal(await t.page.textContent('#gaps'), '0 / 0');
  assert.deepEqual([...rest[0].errors, ...rest[1].errors].filter((e) => !e.includes('ERR_INCOMPLETE_CHUNKED_ENCODING')), []);
  await ctx.close();
});

test('chat demo over the relay: two users, a message crosses', async () => {
  const ctx = await browser.newContext();
  const a = await open('/web/chat.html', ctx);
  const b = await open('/web/chat.html', ctx);
  for (const { page } of [a, b]) await page.waitForFunction(() => document.getElementById('state').textContent === 'open');
  await b.page.fill('#text', 'hi from the demo test');
  await b.page.click('#send');
  await a.page.waitForFunction(() => document.getElementById('messages').textContent.includes('hi from the demo test'));
  await b.page.click('#burst');
  await chartShows(a.page, 'chartRate', 50);
  await chartShows(a.page, 'chartSaved');
  await a.page.screenshot({ path: `${SHOTS}chat.png`, fullPage: true });
  assert.deepEqual([...a.errors, ...b.errors], []);
  await ctx.close();
});

test('chat demo shared by three tabs: "1 connection for 3 tabs", which tab holds it, and it keeps working when that tab closes', async () => {
  const ctx = await browser.newContext();
  await ctx.addInitScript(() => localStorage.setItem('chat-name', 'ada'));
  const tabs = [];
  for (let i = 0; i < 3; i++) tabs.push(await open('/web/chat.html', ctx));
  const badge = (t) => t.page.evaluate(() => document.getElementById('conn').textContent);
  for (const t of tabs) await t.page.waitForFunction(() => document.getElementById('conn').textContent.startsWith('1 connection for 3 tabs'));
  const held = await Promise.all(tabs.map(badge));
  assert.equal(held.filter((b) => b.endsWith('held by this tab')).length, 1, held.join(' | '));
  await tabs[0].page.screenshot({ path: `${SHOTS}chat-shared.png`, fullPage: true });
  const leader = tabs[held.findIndex((b) => b.endsWith('held by this tab'))];
  const rest = tabs.filter((t) => t !== leader);
  await leader.page.close();
  for (const t of rest) await t.page.waitForFunction(() => document.getElementById('conn').textContent.startsWith('1 connection for 2 tabs'));
  await rest[0].page.fill('#text', 'still here after the holder closed');
  await rest[0].page.click('#send');
  for (const t of rest) await t.page.waitForFunction(() => document.getElementById('messages').textContent.includes('still here after the holder closed'));
  assert.deepEqual(rest.flatMap((t) => t.errors), []);
  await ctx.close();
});

test('echo demo: the same Socket against a plain server, in fallback mode', async () => {
  const { page, errors } = await open('/web/echo.html');
  await page.waitForFunction(() => document.getElementById('mode').textContent === 'mode: plain');
  await page.click('#send');
  await page.waitForFunction(() => document.getElementById('log').textContent.includes('← text:'));
  await page.screenshot({ path: `${SHOTS}echo.png`, fullPage: true });
  // Chromium logs the first attempt, which offers switchboard.v1 to a server
  // that picks no subprotocol; the Socket then falls back (docs/socket.md).
  assert.deepEqual(errors.filter((e) => !e.includes("'Sec-WebSocket-Protocol'")), []);
  await page.close();
});
