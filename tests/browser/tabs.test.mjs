// SharedState + TabGroup in headless Chromium: several pages of one context
// (same origin, one BroadcastChannel namespace, one Web Locks manager)
// running the web/tabs.html demo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browser, server, routeWasm, useBrowserAndServer, watchErrors } from './harness.mjs';

useBrowserAndServer();
let rooms = 0;

async function newContext() {
  const context = await browser.newContext();
  await routeWasm(context);
  return context;
}

async function openTab(context, query) {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}/web/tabs.html?${query}`);
  await page.waitForFunction(() => window.tabsDemo?.ready === true);
  page.errorsSeen = errors;
  return page;
}

const leaderInfo = (p) => p.evaluate(() => ({ id: tabsDemo.group.id, leader: tabsDemo.group.leader, isLeader: tabsDemo.group.isLeader }));

/** Wait until exactly one page leads and every page names it; returns its index. */
async function oneLeader(pages, timeoutMs = 8000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const info = await Promise.all(pages.map(leaderInfo));
    const leaders = info.filter((i) => i.isLeader);
    if (leaders.length === 1 && info.every((i) => i.leader === leaders[0].id)) return info.indexOf(leaders[0]);
    assert.ok(leaders.length <= 1 || Date.now() < end, `more than one leader: ${JSON.stringify(info)}`);
    if (Date.now() > end) assert.fail(`no single leader: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

for (const mode of ['locks', 'lease']) {
  test(`four tabs (${mode}): writes, late tab, leader failover, concurrent writes`, async () => {
    const context = await newContext();
    const query = `room=r${++rooms}-${Date.now()}${mode === 'lease' ? '&mode=lease&heartbeatTimeout=3000' : ''}`;
    const pages = [];
    for (let i = 0; i < 4; i++) pages.push(await openTab(context, query));
    assert.equal(await pages[0].evaluate(() => tabsDemo.group.mode), mode);

    // A chat line typed in tab 0 shows up, as text, in every other tab.
    await pages[0].fill('#text', '<img src=x onerror=alert(1)> hello');
    await pages[0].click('#send');
    for (const p of pages.slice(1)) {
      await p.waitForFunction(() => document.querySelector('#messages .msg')?.textContent.includes('<img src=x onerror=alert(1)> hello'));
      assert.equal(await p.evaluate(() => document.querySelectorAll('#messages img').length), 0);
    }
    // A to-do added in tab 1 appears in every tab; ticking it in tab 2 too.
    await pages[1].fill('#todotext', 'buy milk');
    await pages[1].click('#add');
    for (const p of pages) await p.waitForFunction(() => document.querySelector('#todos .todo span')?.textContent === 'buy milk');
    await pages[2].check('#todos .todo input');
    for (const p of pages) await p.waitForFunction(() => document.querySelector('#todos .todo')?.classList.contains('done'));

    // Chat order is the same everywhere, whatever tab sent what.
    for (let i = 0; i < 4; i++) {
      await pages[i].fill('#text', `line ${i}`);
      await pages[i].click('#send');
    }
    const order = (p) => p.evaluate(() => [...document.querySelectorAll('#messages .msg')].map((m) => m.dataset.key));
    for (const p of pages) await p.waitForFunction(() => document.querySelectorAll('#messages .msg').length === 5);
    const ref = await order(pages[0]);
    for (const p of pages.slice(1)) assert.deepEqual(await order(p), ref);

    // A tab opened late has everything at once.
    const late = await openTab(context, query);
    await late.waitForFunction(() => document.querySelectorAll('#messages .msg').length === 5, null, { timeout: 5000 });
    assert.equal(await late.evaluate(() => document.querySelector('#todos .todo span')?.textContent), 'buy milk');
    pages.push(late);

    // Exactly one leader; close it: exactly one new leader among the others.
    const li = await oneLeader(pages);
    const oldId = (await leaderInfo(pages[li])).id;
    await pages[li].close({ runBeforeUnload: true });
    pages.splice(li, 1);
    const t0 = Date.now();
    const ni = await oneLeader(pages);
    const newId = (await leaderInfo(pages[ni])).id;
    assert.notEqual(newId, oldId);
    console.log(`# ${mode}: new leader after ${Date.now() - t0} ms`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await oneLeader(pages, 100), ni, 'leadership is stable');
    for (const p of pages) {
      await p.waitForFunction(() => tabsDemo.group.tabs.length === 4);
    }

    // The new leader's renderer crashes (no pagehide, no goodbye): the lock
    // is freed by the browser / the lease runs out, and one tab takes over.
    const cdp = await context.newCDPSession(pages[ni]);
    const t1 = Date.now();
    cdp.send('Page.crash').catch(() => {});
    pages.splice(ni, 1);
    const ci = await oneLeader(pages);
    assert.notEqual((await leaderInfo(pages[ci])).id, newId);
    console.log(`# ${mode}: new leader ${Date.now() - t1} ms after a crash`);
    for (const p of pages) {
      await p.waitForFunction(() => tabsDemo.group.tabs.length === 3);
    }

    // Two tabs write one key concurrently: every tab ends with the same winner.
    await Promise.all([
      pages[0].evaluate(() => tabsDemo.state.set('color', 'red')),
      pages[1].evaluate(() => tabsDemo.state.set('color', 'blue')),
      pages[2].evaluate(() => { for (let i = 0; i < 50; i++) tabsDemo.state.set('color', `green${i}`); }),
    ]);
    await pages[0].waitForFunction(() => tabsDemo.state.get('color') !== undefined);
    let values;
    for (let tries = 0; tries < 200; tries++) {
      values = await Promise.all(pages.map((p) => p.evaluate(() => tabsDemo.state.get('color'))));
      if (values.every((v) => v === values[0]) && values[0] !== undefined) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(values.every((v) => v === values[0]), `diverged: ${values}`);
    assert.ok(['red', 'blue', 'green49'].includes(values[0]));
    // A tab that blocks its event loop for longer than the lease is taken
    // for gone by the others; what it writes afterwards must still count.
    await pages[1].evaluate(() => {
      const end = performance.now() + 2500;
      while (performance.now() < end) { /* busy */ }
      tabsDemo.state.set('busy', 'back');
    });
    for (const p of pages) await p.waitForFunction(() => tabsDemo.state.get('busy') === 'back');
    await oneLeader(pages);

    // Writes still reach everyone after all that.
    await pages[2].fill('#text', 'still here');
    await pages[2].click('#send');
    for (const p of pages) await p.waitForFunction(() => [...document.querySelectorAll('#messages .msg')].some((m) => m.textContent.includes('still here')));

    for (const p of pages) assert.deepEqual(p.errorsSeen, []);
    await context.close();
  });
}

test('persistence: the last tab saves, a reload or a new tab restores', async () => {
  const context = await newContext();
  const query = `room=p${++rooms}-${Date.now()}`;
  const a = await openTab(context, query);
  const b = await openTab(context, query);
  await a.fill('#text', 'remember me');
  await a.click('#send');
  await b.fill('#todotext', 'persisted item');
  await b.click('#add');
  await a.waitForFunction(() => document.querySelectorAll('#todos .todo').length === 1);
  // Reload one tab while the other lives: it comes back with everything.
  await a.reload();
  await a.waitForFunction(() => window.tabsDemo?.ready === true);
  assert.equal(await a.evaluate(() => document.querySelectorAll('#messages .msg').length), 1);
  // Close every tab, then open one: storage alone restores the state.
  await a.close({ runBeforeUnload: true });
  await b.close({ runBeforeUnload: true });
  const c = await openTab(context, query);
  assert.equal(await c.evaluate(() => document.querySelector('#messages .msg')?.textContent.includes('remember me')), true);
  assert.equal(await c.evaluate(() => document.querySelector('#todos .todo span')?.textContent), 'persisted item');
  // And a reload of the only tab restores as well.
  await c.reload();
  await c.waitForFunction(() => window.tabsDemo?.ready === true);
  assert.equal(await c.evaluate(() => tabsDemo.state.size), 3); // title, message, to-do
  assert.deepEqual(c.errorsSeen, []);
  await context.close();
});
