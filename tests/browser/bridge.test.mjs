// The iframe bridge in headless Chromium: parent on one loopback origin, the
// child on a second one (same site, 127.0.0.1:p2) or cross-site (localhost:p2,
// which Chromium puts in its own process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browser, server, routeWasm, useBrowserAndServer, watchErrors } from './harness.mjs';

useBrowserAndServer(['--site-per-process']);

// Run against a private wasm build when asked (same variable as the Node tests).
async function hostPage() {
  const context = await browser.newContext();
  await routeWasm(context);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}/tests/browser/fixtures/bridge-host.html`);
  await page.waitForFunction(() => window.hostReady === true);
  await page.evaluate(() => {
    window.T = {
      rejects: [],
      secretCalls: 0,
      frame(src, name) {
        const f = document.createElement('iframe');
        f.src = src;
        f.name = name || '';
        document.body.append(f);
        return new Promise((resolve) => { f.onload = () => resolve(f); });
      },
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      async until(fn, ms = 15000) {
        const end = performance.now() + ms;
        while (!fn()) {
          if (performance.now() > end) throw new Error('until: timed out');
          await new Promise((r) => setTimeout(r, 10));
        }
      },
      codeOf: (p) => p.then(() => 'resolved', (e) => e.code || e.name),
    };
  });
  return { page, errors, close: () => context.close() };
}

const peerUrl = (origin, params) => {
  const q = new URLSearchParams(params);
  return `${origin}/tests/browser/fixtures/bridge-peer.html?${q}`;
};

for (const kind of ['same-site', 'cross-site']) {
  test(`${kind}: RPC round trip, structured clone, errors, timeouts, transferables, events both ways`, async () => {
    const childOrigin = kind === 'same-site' ? server.url2 : server.crossSiteUrl;
    const { page, errors, close } = await hostPage();
    const out = await page.evaluate(async ({ src, childOrigin }) => {
      const { connectFrame, CallOptions } = window.bridge;
      const f = await T.frame(src); // loaded first: the parent's probe asks for the hello
      const r = await connectFrame(f, { origin: childOrigin, channel: 'main', onReject: (d) => T.rejects.push(d) });
      const o = {};
      o.add = await r.call('add', 2, 3);
      o.origin = await r.call('origin');
      const v = await r.call('echo', { d: new Date(5), m: new Map([[1, 'a']]), u: new Uint8Array([1, 2, 3]), big: 2n ** 70n });
      o.clone = [v.d instanceof Date && v.d.getTime(), v.m instanceof Map && v.m.get(1), v.u instanceof Uint8Array && [...v.u], v.big === 2n ** 70n];
      const errOf = async (p) => { try { await p; return 'resolved'; } catch (e) { return { name: e.name, message: e.message, code: e.code, stack: e.stack, isError: e instanceof Error }; } };
      o.err = await errOf(r.call('fail', 'boom'));
      o.errAsync = await errOf(r.call('failAsync', 'async boom'));
      o.missing = await errOf(r.call('nope'));
      o.proto = [await errOf(r.call('constructor')), await errOf(r.call('toString')), await errOf(r.call('__proto__'))];
      const t0 = performance.now();
      o.timeout = await errOf(r.call('slow', 1500, new CallOptions({ timeout: 60 })));
      o.timeoutMs = performance.now() - t0;
      await T.sleep(1600); // the late answer arrives and must be dropped quietly
      o.afterLate = await r.call('add', 1, 1);
      const buf = new Uint8Array(4096).fill(1).buffer;
      o.sentLen = await r.call('byteLength', buf, new CallOptions({ transfer: [buf] }));
      o.detached = buf.byteLength; // 0 once transferred
      const back = await r.call('makeBuffer', 2048);
      o.back = [back instanceof ArrayBuffer, back.byteLength, new Uint8Array(back)[2047]];
      const got = [];
      r.on('ping', (d) => got.push(d));
      await r.call('emitBack', 'ping', { k: 1 }, 3);
      await T.until(() => got.length === 3);
      o.childToParent = got;
      r.emit('note', 'hi');
      r.emit('note', { x: 2 });
      o.parentToChild = await r.call('received'); // same port, so after the events
      o.rejects = T.rejects.length;
      o.pending = window.bridge ? r.pending.size : -1;
      r.close();
      o.afterClose = await T.codeOf(r.call('add', 1, 2));
      return o;
    }, { src: peerUrl(childOrigin, { allow: server.url, ch: 'main', ...(kind === 'same-site' ? { stacks: 1 } : {}) }), childOrigin });

    assert.equal(out.add, 5);
    assert.equal(out.origin, childOrigin);
    assert.deepEqual(out.clone, [5, 'a', [1, 2, 3], true]);
    assert.equal(out.err.name, 'TypeError');
    assert.equal(out.err.message, 'boom');
    assert.equal(out.err.code, 'E_CUSTOM');
    assert.equal(out.err.isError, true);
    // Both children are cross-origin: the stack crosses only when the child opts in.
    if (kind === 'same-site') assert.match(out.err.stack, /bridge-peer\.js/); // the child's stack, not ours
    else assert.doesNotMatch(out.err.stack, /bridge-peer\.js/);
    assert.equal(out.errAsync.name, 'RangeError');
    assert.equal(out.errAsync.message, 'async boom');
    assert.equal(out.missing.code, 'NOT_FOUND');
    assert.deepEqual(out.proto.map((e) => e.code), ['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND']);
    assert.equal(out.timeout.code, 'TIMEOUT');
    assert.ok(out.timeoutMs < 1200, `timeout fired after ${out.timeoutMs} ms`);
    assert.equal(out.afterLate, 2);
    assert.equal(out.sentLen, 4096);
    assert.equal(out.detached, 0);
    assert.deepEqual(out.back, [true, 2048, 7]);
    assert.deepEqual(out.childToParent, [{ k: 1 }, { k: 1 }, { k: 1 }]);
    assert.deepEqual(out.parentToChild, ['hi', { x: 2 }]);
    assert.equal(out.rejects, 0);
    assert.equal(out.pending, 0);
    assert.equal(out.afterClose, 'CLOSED');
    assert.deepEqual(errors, []);
    await close();
  });
}

test('connecting before the child loads; batching; the reloaded child re-handshakes', async () => {
  const { page, errors, close } = await hostPage();
  const out = await page.evaluate(async ({ src, childOrigin }) => {
    const { connectFrame } = window.bridge;
    const f = document.createElement('iframe');
    f.src = src;
    document.body.append(f); // not loaded yet: the child's own hello does it
    const r = await connectFrame(f, { origin: childOrigin, channel: 'main', batch: true });
    const seen = [];
    r.addEventListener('disconnect', (e) => seen.push('disconnect:' + e.reason));
    r.addEventListener('connect', () => seen.push('connect'));
    const o = {};
    for (let i = 0; i < 100; i++) r.emit('note', i); // one batch
    o.batched = (await r.call('received')).length;
    o.first = await r.call('loadId');
    const pending = T.codeOf(r.call('never'));
    f.src = src + '&again=1'; // reload (cross-origin: navigate the frame)
    o.pending = await pending;
    await T.until(() => seen.includes('connect'), 5000);
    o.second = await r.call('loadId');
    o.seen = [...seen];
    o.works = await r.call('add', 20, 22);
    r.close();
    return o;
  }, { src: peerUrl(server.url2, { allow: server.url, ch: 'main' }), childOrigin: server.url2 });
  assert.equal(out.batched, 100);
  assert.equal(out.pending, 'CONNECTION_LOST');
  assert.notEqual(out.first, out.second);
  assert.equal(out.seen[0].startsWith('disconnect:'), true);
  assert.equal(out.seen.at(-1), 'connect');
  assert.equal(out.works, 42);
  assert.deepEqual(errors, []);
  await close();
});

test('removing the iframe rejects pending calls with CONNECTION_LOST and fires disconnect', async () => {
  const { page, errors, close } = await hostPage();
  const out = await page.evaluate(async ({ src, childOrigin }) => {
    const { connectFrame } = window.bridge;
    const f = await T.frame(src);
    const r = await connectFrame(f, { origin: childOrigin, channel: 'main', heartbeatInterval: 250, heartbeatTimeout: 1500, timeout: 0 });
    let disconnected = null;
    r.addEventListener('disconnect', (e) => { disconnected = e.reason; });
    const a = T.codeOf(r.call('never'));
    const b = T.codeOf(r.call('slow', 5000));
    await r.call('add', 1, 1); // both calls are in flight on the child
    const t0 = performance.now();
    f.remove();
    const o = { a: await a, b: await b, ms: performance.now() - t0 };
    await T.until(() => disconnected !== null);
    o.disconnected = disconnected;
    o.after = await T.codeOf(r.call('add', 1, 2));
    return o;
  }, { src: peerUrl(server.crossSiteUrl, { allow: server.url, ch: 'main' }), childOrigin: server.crossSiteUrl });
  assert.equal(out.a, 'CONNECTION_LOST');
  assert.equal(out.b, 'CONNECTION_LOST');
  assert.ok(['bye', 'removed', 'timeout', 'port-closed'].includes(out.disconnected), out.disconnected);
  assert.equal(out.after, 'CLOSED');
  assert.deepEqual(errors, []);
  await close();
});

test('a sandboxed ("null" origin) child gets the port only when the parent opts in to sending it to "*"', async () => {
  const { page, errors, close } = await hostPage();
  const out = await page.evaluate(async (src) => {
    const { connectFrame } = window.bridge;
    const f = document.createElement('iframe');
    f.sandbox = 'allow-scripts';
    f.src = src;
    document.body.append(f);
    await new Promise((resolve) => { f.onload = resolve; });
    const o = {};
    // Without the opt-in nothing is sent: the welcome would carry the port to '*'.
    o.refused = await T.codeOf(connectFrame(f, { origin: 'null', timeout: 1000 }));
    o.refusedList = await T.codeOf(connectFrame(f, { origin: ['null', 'http://127.0.0.1:1'], timeout: 1000 }));
    const r = await connectFrame(f, { origin: 'null', opaqueTarget: '*', timeout: 5000 });
    o.add = await r.call('add', 2, 3);
    o.origin = await r.call('origin');
    r.close();
    return o;
  }, `${server.url2}/tests/browser/fixtures/bridge-sandboxed.html?allow=${encodeURIComponent(server.url)}`);
  assert.deepEqual(out, { refused: 'INVALID', refusedList: 'INVALID', add: 5, origin: 'null' });
  assert.deepEqual(errors, []);
  await close();
});

test('a child that never answers: connect rejects with TIMEOUT', async () => {
  const { page, close } = await hostPage();
  const code = await page.evaluate(async (src) => {
    const f = await T.frame(src);
    return T.codeOf(window.bridge.connectFrame(f, { origin: new URL(src).origin, timeout: 150 }));
  }, `${server.url2}/tests/browser/fixtures/blank.html`);
  assert.equal(code, 'TIMEOUT');
  await close();
});

test('security: wrong window, disallowed origin, forged handshakes and window traffic after the handshake are ignored and reported', async () => {
  const { page, errors, close } = await hostPage();
  const childSrc = peerUrl(server.url2, { allow: server.url, ch: 'main' });
  const sideSrc = peerUrl(server.url2, { allow: server.url, ch: 'side' });
  await page.evaluate(async ({ childSrc, sideSrc, childOrigin, spyA, spyB }) => {
    const { connectFrame, bridgeMonitor } = window.bridge;
    T.monitor = [];
    bridgeMonitor.addEventListener('reject', (e) => T.monitor.push(e.detail));
    T.child = await T.frame(childSrc, 'child');
    await T.frame(spyA, 'spyA'); // allowed origin, but not the window we connect to
    await T.frame(spyB, 'spyB'); // cross-site: origin not in the allowlist
    T.remote = await connectFrame(T.child, {
      origin: childOrigin, channel: 'main',
      methods: { secret: () => { T.secretCalls++; return 'leaked'; }, ok: () => 'ok' },
      onReject: (d) => T.rejects.push(d),
    });
    T.side = await T.frame(sideSrc, 'side'); // its parent side is not set up yet
    await T.until(() => T.monitor.some((r) => r.channel === 'side'));
  }, { childSrc, sideSrc, childOrigin: server.url2, spyA: `${server.url2}/tests/browser/fixtures/blank.html?spy=a`, spyB: `${server.crossSiteUrl}/tests/browser/fixtures/blank.html?spy=b` });

  const frame = (pred) => page.frames().find((f) => pred(f.url()));
  const spyA = frame((u) => u.includes('spy=a'));
  const spyB = frame((u) => u.includes('spy=b'));
  const child = frame((u) => u.includes('ch=main'));
  assert.ok(spyA && spyB && child);

  const MARK = '__switchboard_bridge';
  // Each spy tries to take over the parent's bridge and to call `secret`.
  const attack = async (spy) => spy.evaluate((MARK) => {
    const mc = new MessageChannel();
    let answered = 0;
    mc.port1.onmessage = (e) => {
      answered++;
      // a port from a spoofed welcome would be answered: try to call through it
      mc.port1.postMessage([1, 1, 'secret', []]);
    };
    parent.postMessage({ [MARK]: 1, t: 'hello', ch: 'main', n: 'f'.repeat(32) }, '*');
    parent.postMessage({ [MARK]: 1, t: 'call', ch: 'main', name: 'secret' }, '*');
    // forge the parent's welcome and offer into the real child
    parent.frames.child.postMessage({ [MARK]: 1, t: 'welcome', ch: 'main', n: 'f'.repeat(32), m: 'e'.repeat(32) }, '*', [mc.port2]);
    const mc2 = new MessageChannel();
    mc2.port1.onmessage = () => { answered++; };
    parent.frames.child.postMessage({ [MARK]: 1, t: 'offer', ch: 'main', m: 'e'.repeat(32) }, '*', [mc2.port2]);
    return new Promise((r) => setTimeout(() => r(answered), 300));
  }, MARK);
  assert.equal(await attack(spyA), 0);
  assert.equal(await attack(spyB), 0);
  // The real child, after the handshake, posting protocol messages to the window.
  await child.evaluate((MARK) => {
    parent.postMessage({ [MARK]: 1, t: 'call', ch: 'main', name: 'secret' }, '*');
    parent.postMessage([1, 1, 'secret', []], '*'); // not a bridge message at all: left alone
  }, MARK);

  const out = await page.evaluate(async (MARK) => {
    const o = {};
    // The parent forges a welcome with a wrong nonce for the 'side' child.
    const mc = new MessageChannel();
    let sideAnswered = 0;
    mc.port1.onmessage = () => sideAnswered++;
    T.side.contentWindow.postMessage({ [MARK]: 1, t: 'welcome', ch: 'side', n: '0'.repeat(32), m: '1'.repeat(32) }, new URL(T.side.src).origin, [mc.port2]);
    mc.port1.postMessage([1, 7, 'echo', ['through a forged port']]);
    // Protocol traffic on the window after the handshake, from the right parent.
    T.child.contentWindow.postMessage({ [MARK]: 1, t: 'welcome', ch: 'main', n: 'x'.repeat(32), m: 'y'.repeat(32) }, '*', [new MessageChannel().port2]);
    T.child.contentWindow.postMessage({ [MARK]: 1, t: 'call', ch: 'main', name: 'echo' }, '*');
    const late = new MessageChannel();
    late.port1.onmessage = () => { sideAnswered++; };
    T.child.contentWindow.postMessage({ [MARK]: 1, t: 'offer', ch: 'main', m: 'y'.repeat(32) }, '*', [late.port2]);
    await T.sleep(300);
    o.sideAnswered = sideAnswered;
    // The real side bridge still connects afterwards.
    const side = await window.bridge.connectFrame(T.side, { origin: new URL(T.side.src).origin, channel: 'side' });
    o.sideReports = (await side.call('reports')).map((r) => r.reason);
    o.childReports = (await T.remote.call('reports')).map((r) => r.reason);
    o.parentReports = T.rejects.map((r) => `${r.reason}@${r.origin}`);
    o.monitor = T.monitor.map((r) => `${r.reason}:${r.channel}`);
    o.secretCalls = T.secretCalls;
    o.stillWorks = await T.remote.call('add', 40, 2);
    return o;
  }, MARK);

  assert.equal(out.secretCalls, 0, 'nothing reached methods');
  assert.equal(out.sideAnswered, 0);
  assert.equal(out.stillWorks, 42);
  const a = server.url2, b = server.crossSiteUrl;
  // parent side: spy A (allowed origin, wrong window), spy B (foreign origin), child's own window traffic
  assert.deepEqual(out.parentReports.sort(), [
    `origin-rejected@${b}`, `origin-rejected@${b}`,
    `unexpected@${a}`,
    `wrong-source@${a}`, `wrong-source@${a}`,
  ].sort());
  // child side: each spy's welcome and offer (neither spy has the parent's
  // origin), three messages from the real parent on the window after the handshake
  assert.deepEqual(out.childReports.sort(), ['origin-rejected', 'origin-rejected', 'origin-rejected', 'origin-rejected', 'unexpected', 'unexpected', 'unexpected']);
  assert.ok(out.sideReports.includes('bad-nonce'), JSON.stringify(out.sideReports));
  assert.ok(out.monitor.includes('no-channel:side'), JSON.stringify(out.monitor)); // side child's hello before we listened
  assert.deepEqual(errors, []);
  await close();
});

test('workers and MessagePorts: the same API over a symmetric nonce handshake', async () => {
  const { page, errors, close } = await hostPage();
  const out = await page.evaluate(async () => {
    const { connect, CallOptions } = window.bridge;
    const o = {};
    const w = new Worker('/tests/browser/fixtures/bridge-worker.js', { type: 'module' });
    const r = await connect(w, { timeout: 15000 });
    o.mul = await r.call('mul', 6, 7);
    o.inWorker = await r.call('inWorker');
    o.fail = await T.codeOf(r.call('fail'));
    const back = new Promise((res) => r.on('x-back', res));
    r.emit('x', { deep: [1, 2] });
    o.back = await back;
    r.close();
    w.terminate();

    // two ends of one MessageChannel, both in this page
    const mc = new MessageChannel();
    const [a, b] = await Promise.all([
      connect(mc.port1, { methods: { hi: (n) => `hi ${n}` } }),
      connect(mc.port2, { methods: { twice: (n) => 2 * n } }),
    ]);
    o.ports = [await a.call('twice', 21), await b.call('hi', 'a')];
    const buf = new ArrayBuffer(64);
    o.portTransfer = [await b.call('hi', buf.byteLength, new CallOptions({ transfer: [buf] })), buf.byteLength];
    const lost = T.codeOf(b.call('never'));
    a.close(); // the other side says bye: b's pending call is lost
    o.lost = await lost;
    return o;
  });
  assert.equal(out.mul, 42);
  assert.equal(out.inWorker, true);
  assert.equal(out.fail, 'SyntaxError');
  assert.deepEqual(out.back, { deep: [1, 2] });
  assert.deepEqual(out.ports, [42, 'hi a']);
  assert.deepEqual(out.portTransfer, ['hi 64', 0]); // detached on the sender
  assert.equal(out.lost, 'CONNECTION_LOST');
  assert.deepEqual(errors, []);
  await close();
});

test('demo page: two origins, chat both ways, spoofing frames are logged', async () => {
  const context = await browser.newContext();
  await routeWasm(context);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}/web/bridge.html`);
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('connected'));
  const child = page.frames().find((f) => f.url().startsWith(`${server.url2}/web/bridge-child.html`));
  await child.waitForFunction(() => document.getElementById('status').textContent === 'connected');
  await page.fill('#messageInput', '<img src=x onerror=alert(1)>');
  await page.click('#send');
  await child.waitForFunction(() => document.getElementById('received').textContent.includes('<img src=x'));
  assert.equal(await child.evaluate(() => document.querySelectorAll('#received img').length), 0); // text, not markup
  await child.fill('#replyInput', 'hello parent');
  await child.click('#reply');
  await page.waitForFunction(() => document.getElementById('messages').textContent.includes('child: hello parent'));
  await page.click('#rpc');
  await page.waitForFunction(() => document.getElementById('messages').textContent.includes('child.stats() →'));
  await page.click('#spoofSame');
  await page.click('#spoofForeign');
  await page.waitForFunction(() => Number(document.getElementById('spoofCount').textContent) >= 4);
  const log = await page.evaluate(() => document.getElementById('spoofs').textContent);
  assert.match(log, /wrong-source/);
  assert.match(log, /origin-rejected/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('popups: connect(window.open(…)) with the child on window.opener; closing it rejects pending calls', async () => {
  const { page, errors, close } = await hostPage();
  const out = await page.evaluate(async ({ src, childOrigin }) => {
    const w = window.open(src, 'popup');
    const r = await window.bridge.connect(w, { origin: childOrigin, channel: 'main', heartbeatInterval: 250, heartbeatTimeout: 1500 });
    const o = { origin: await r.call('origin'), add: await r.call('add', 2, 2) };
    const pending = T.codeOf(r.call('never'));
    w.close();
    o.pending = await pending;
    o.after = await T.codeOf(r.call('add', 1, 1));
    return o;
  }, { src: peerUrl(server.crossSiteUrl, { allow: server.url, ch: 'main' }), childOrigin: server.crossSiteUrl });
  assert.equal(out.origin, server.crossSiteUrl);
  assert.equal(out.add, 4);
  assert.equal(out.pending, 'CONNECTION_LOST');
  assert.equal(out.after, 'CLOSED');
  assert.deepEqual(errors, []);
  await close();
});

test('a hung child is detected by the heartbeat; it re-handshakes once it recovers', async () => {
  const { page, errors, close } = await hostPage();
  const out = await page.evaluate(async ({ src, childOrigin }) => {
    const f = await T.frame(src);
    const r = await window.bridge.connectFrame(f, { origin: childOrigin, channel: 'main', heartbeatInterval: 250, heartbeatTimeout: 1500, timeout: 0 });
    const seen = [];
    r.addEventListener('disconnect', (e) => seen.push('disconnect:' + e.reason));
    r.addEventListener('connect', () => seen.push('connect'));
    const before = await r.call('loadId');
    await r.call('block', 4000);
    const pending = T.codeOf(r.call('add', 1, 1));
    const o = { pending: await pending };
    await T.until(() => seen.includes('connect'), 15000);
    o.seen = [...seen];
    o.sameDocument = (await r.call('loadId')) === before;
    r.close();
    return o;
  }, { src: peerUrl(server.crossSiteUrl, { allow: server.url, ch: 'main', hb: 250, dead: 1500 }), childOrigin: server.crossSiteUrl });
  assert.equal(out.pending, 'CONNECTION_LOST');
  assert.deepEqual(out.seen, ['disconnect:timeout', 'connect']);
  assert.equal(out.sameDocument, true);
  assert.deepEqual(errors, []);
  await close();
});

test('wildcard allowlist (http://*.localhost:port) and several candidate origins (probe path)', async () => {
  const { page, errors, close } = await hostPage();
  const port2 = new URL(server.url2).port;
  const sub = `http://a.localhost:${port2}`; // Chromium resolves *.localhost to loopback
  const out = await page.evaluate(async ({ src, wildcard, extra }) => {
    const { connectFrame } = window.bridge;
    const o = {};
    const f1 = await T.frame(src);
    const r1 = await connectFrame(f1, { origin: wildcard, channel: 'main' });
    o.one = await r1.call('origin');
    r1.close();
    const f2 = await T.frame(src + '&second=1');
    const r2 = await connectFrame(f2, { origin: [extra, wildcard], channel: 'main' });
    o.two = await r2.call('origin');
    r2.close();
    // the bare domain is not covered by the wildcard
    const f3 = await T.frame(src.replace('a.localhost', 'localhost') + '&third=1');
    o.bare = await T.codeOf(connectFrame(f3, { origin: wildcard, channel: 'main', timeout: 300 }));
    return o;
  }, { src: peerUrl(sub, { allow: server.url, ch: 'main' }), wildcard: `http://*.localhost:${port2}`, extra: 'https://example.com' });
  assert.equal(out.one, sub);
  assert.equal(out.two, sub);
  assert.equal(out.bare, 'TIMEOUT');
  assert.deepEqual(errors, []);
  await close();
});
