// The shared Socket leader's write hold (js/share-hold.js) alone: which tab
// it asks and when a write waits, with time driven by hand.
import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Hold } from '../../js/share-hold.js';

// (each test's clock far past the last one's: the glue's clock never runs backwards)
let epoch = Date.now();
beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: (epoch += 1e7) }));
afterEach(() => mock.timers.reset());

/** A leader (tab 1) among tabs `ids`, recording its posts and releases. */
function leader(ids) {
  const share = { me: 1, leader: 0, gen: 0, quitting: false, posts: [], group: { tabs: [{ id: 1, self: true }, ...ids.map((id) => ({ id }))] } };
  share.post = (m) => share.posts.push(m);
  const hold = new Hold(share);
  let released = 0;
  hold.release = () => released++;
  return { share, hold, released: () => released };
}

test('the tab heard from last is asked; one that does not answer in 100 ms is passed over for the next', () => {
  const { share, hold, released } = leader([2, 3]);
  hold.got(2);
  mock.timers.tick(10);
  hold.got(3);
  assert.equal(hold.ask(), 3);
  assert.equal(hold.write(++share.gen), true, 'the write waits');
  mock.timers.tick(100);
  assert.deepEqual(share.posts, [{ t: 'ask', from: 1, gen: 1, ask: 2 }]);
  assert.equal(released(), 0, 'still waiting, for the next tab');
  hold.got(2);
  hold.confirm(1, 1);
  assert.equal(released(), 1);
  assert.equal(hold.ask(), 2, 'the one that answered in time first');
});

test('a tab that timed out and then answers is waited for again, ranked by when it last answered in time', () => {
  const { share, hold, released } = leader([3]);
  hold.got(3);
  assert.equal(hold.ask(), 3);
  assert.equal(hold.write(++share.gen), true);
  mock.timers.tick(100);
  assert.equal(released(), 1, 'no other tab: the write goes');
  assert.equal(hold.ask(), 3, 'still asked');
  assert.equal(hold.write(++share.gen), false, 'but not waited for');
  hold.got(3); // its late answer
  assert.equal(hold.ask(), 3);
  assert.equal(hold.write(++share.gen), true, 'waited for again');
  hold.confirm(share.gen, share.gen);
  assert.equal(released(), 2);

  // With another tab that answers in time, the late one is asked after it.
  const b = leader([2, 3]);
  b.hold.got(3);
  mock.timers.tick(10);
  b.hold.got(2);
  mock.timers.tick(10);
  b.hold.got(3);
  assert.equal(b.hold.ask(), 3);
  assert.equal(b.hold.write(++b.share.gen), true);
  mock.timers.tick(100); // 3 times out: 2 is asked
  b.hold.got(3); // late
  b.hold.got(2);
  b.hold.confirm(b.share.gen, b.share.gen);
  assert.equal(b.hold.ask(), 2, 'the tab that answered in time');
});

test('a write waits 400 ms at most, however many tabs time out', () => {
  const { share, hold, released } = leader([2, 3, 4, 5, 6, 7]);
  for (const id of [2, 3, 4, 5, 6, 7]) { hold.got(id); mock.timers.tick(1); }
  hold.ask();
  assert.equal(hold.write(++share.gen), true);
  for (let t = 0; t < 390; t += 10) mock.timers.tick(10); // (one tick per step: a timer set in a tick counts from its end)
  mock.timers.tick(9);
  assert.equal(released(), 0);
  mock.timers.tick(1);
  assert.equal(released(), 1);
  assert.equal(share.posts.length, 3, 'three more tabs asked, one per 100 ms');
});

test('the asked tab leaving passes the question on at once; the replaced leader is asked last', () => {
  const { share, hold } = leader([2, 3]);
  share.leader = 3;
  hold.got(2);
  mock.timers.tick(10);
  hold.got(3);
  assert.equal(hold.ask(), 2, 'not the leader this one replaced');
  assert.equal(hold.write(++share.gen), true);
  share.group.tabs = share.group.tabs.filter((t) => t.id !== 2);
  hold.presence(share.group.tabs);
  assert.deepEqual(share.posts, [{ t: 'ask', from: 1, gen: 1, ask: 3 }]);
});
