// Property test of the bridge's window handshake against forged postMessage
// traffic (issue 18, item 6). Node has no windows: this realm plays a page
// with two fake windows (a parent and its child, each with an origin) whose
// postMessage delivers, as a browser does, a clone of the data with the
// sender's window as `source` and its origin as `origin`, and drops it when
// the target origin does not match. Both ends of the bridge run here (one
// hub, one router, as in a page that frames itself). Forged bridge messages
// from a third window, with forged origins, and for other channels are each
// reported once (bridgeMonitor `reject` with a reason); messages of others
// are left alone; garbage from the peer's own window never throws, and what
// no handshake step expects is reported; and the pair then works (after a
// reconnect if the garbage forced one).
// A failure prints the seed: SB_PROP_SEED=<seed> replays it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { init, connect, connectParent, bridgeMonitor, BRIDGE_MARK } from '../../js/index.js';
import { property, watchUncaught, until } from './props.mjs';

await init(); // before `window` exists: the core loads from the file system

// ---- a page with windows, in Node ----------------------------------------
const page = new EventTarget();
const pending = new Set();
class FakeWindow {
  constructor(origin) { this.origin = origin; this.closed = false; this.from = null; }
  /** Deliver to this realm as coming from `from` (the window that posted). */
  postMessage(data, targetOrigin, transfer = []) {
    if (targetOrigin !== '*' && targetOrigin !== this.origin) return; // a browser drops it
    this.deliver(data, this.from, this.from.origin, transfer);
  }
  deliver(data, source, origin, ports = []) {
    const ev = Object.assign(new Event('message'), { data: structuredClone(data), source, origin, ports: [...ports] });
    const t = setTimeout(() => { pending.delete(t); page.dispatchEvent(ev); });
    pending.add(t);
  }
}
const PARENT = 'https://app.example', CHILD = 'https://widget.example', EVIL = 'https://evil.example';
const parentWin = new FakeWindow(PARENT);
const childWin = new FakeWindow(CHILD);
const evilWin = new FakeWindow(EVIL);
childWin.from = parentWin; // what the parent posts to the child comes from the parent
parentWin.from = childWin; // and the other way round
Object.assign(globalThis, {
  window: globalThis, parent: parentWin, document: { referrer: '' },
  addEventListener: page.addEventListener.bind(page), removeEventListener: page.removeEventListener.bind(page),
});

const watch = watchUncaught();
after(() => { watch.stop(); for (const t of pending) clearTimeout(t); });

const rejects = [];
bridgeMonitor.addEventListener('reject', (e) => rejects.push(e.detail));

function junk(r) {
  return r.pick([undefined, null, 0, 'x', r.string(5), 2 ** 40, [1, 2], { a: 1 }, r.string(300), new Uint8Array(3)]);
}

test('bridge windows: forged handshake messages are each reported once, others\' messages are left alone, and the pair keeps working', async () => {
  let round = 0;
  await property('bridge window messages', 10, async (r) => {
    const ch = `props-${++round}`;
    const [parentSide, childSide] = await Promise.all([
      connect(childWin, { origin: CHILD, channel: ch, methods: { who: () => 'parent' }, heartbeatInterval: 50, heartbeatTimeout: 400 }),
      connectParent({ allowedOrigins: PARENT, channel: ch, methods: { who: () => 'child', echo: (v) => v }, heartbeatInterval: 50, heartbeatTimeout: 400 }),
    ]);
    try {
      assert.equal(await parentSide.call('who'), 'child');
      // 1. Forged by others: each one must be reported, once.
      rejects.length = 0;
      let forged = 0;
      const types = ['hello', 'welcome', 'offer', 'probe', 'port', 'call', r.string(4)];
      const msg = (chan) => ({ [BRIDGE_MARK]: 1, t: r.pick(types), ch: chan, n: r.bool() ? r.string(40) : junk(r), m: junk(r) });
      for (let i = 0; i < 40; i++) {
        const mc = r.bool(0.3) ? new MessageChannel() : null;
        const ports = mc ? [mc.port2] : [];
        switch (r.int(5)) {
          case 0: evilWin.deliver(msg(ch), evilWin, EVIL, ports); forged++; break;         // another window
          case 1: childWin.deliver(msg(ch), evilWin, CHILD, ports); forged++; break;                           // the child's origin, another window
          case 2: parentWin.deliver(msg(ch), childWin, r.pick([EVIL, 'null', 'https://widget.example:444', 'http://widget.example']), ports); forged++; break; // the child's window, another origin
          case 3: evilWin.deliver(msg(r.pick(['nobody', '', `${ch}x`, 'x'.repeat(300), 42, null, undefined, { ch }])), r.pick([evilWin, childWin, null]), r.pick([EVIL, CHILD, PARENT]), ports); forged++; break; // no such channel
          default: evilWin.deliver(r.pick([{ t: 'hello', ch }, { [BRIDGE_MARK]: 2, t: 'hello', ch }, 'text', [1], null, { [BRIDGE_MARK]: '1', t: 'hello', ch }]), childWin, CHILD); // not ours
        }
        if (mc) mc.port1.close();
      }
      await until(() => rejects.length >= forged && pending.size === 0, 'the reports', 5000);
      await new Promise((ok) => setTimeout(ok, 5));
      assert.equal(rejects.length, forged, `forged ${forged}, reported ${rejects.length}: ${JSON.stringify(rejects.map((x) => x.reason))}`);
      for (const d of rejects) assert.ok(['no-channel', 'bad-origin', 'origin-rejected', 'wrong-source'].includes(d.reason), `reason ${d.reason}`);
      assert.ok(parentSide.isConnected && childSide.isConnected, 'forged messages disconnected the pair');
      assert.equal(await parentSide.call('who'), 'child');
      assert.equal(await childSide.call('who'), 'parent');
      watch.check('while others forged handshake messages');
      // 2. Garbage from the peer's own window and origin: nothing throws, and the
      // pair works again (a hello with a new nonce is a reload: it reconnects).
      // A type no handshake step has is reported ('unexpected') in any state.
      rejects.length = 0;
      let strange = 0;
      for (let i = 0; i < 20; i++) {
        const to = r.pick([parentWin, childWin]);
        const m = msg(ch);
        if (!['hello', 'welcome', 'offer', 'probe'].includes(m.t)) strange++;
        to.deliver(m, to.from, to.from.origin, r.bool(0.3) ? [new MessageChannel().port2] : []);
      }
      await until(() => pending.size === 0, 'delivery', 5000);
      await new Promise((ok) => setTimeout(ok, 5));
      assert.ok(rejects.filter((d) => d.reason === 'unexpected').length >= strange && rejects.length <= 20,
        `${strange} of unknown type, reported: ${JSON.stringify(rejects.map((x) => [x.reason, x.messageType]))}`);
      await until(() => parentSide.isConnected && childSide.isConnected, 'the pair, connected again', 5000);
      const v = { n: r.int(1000), s: r.string(8) };
      const deadline = Date.now() + 5000;
      for (;;) { // a call can meet the reconnect the garbage caused: then it fails with a code, and the next one goes through
        try { assert.deepEqual(await parentSide.call('echo', v), v); break; } catch (e) {
          assert.ok(typeof e.code === 'string', String(e));
          if (Date.now() > deadline) throw e;
          await until(() => parentSide.isConnected && childSide.isConnected, 'the pair, connected again', 5000);
        }
      }
      watch.check('after garbage from the peer');
    } finally {
      parentSide.close();
      childSide.close();
    }
  });
});
