// Origin parsing and allowlist matching in the wasm core (src/origin.c), over
// a table of tricky cases. The bridge's handshake relies on exactly this.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { init, core } from '../../js/core.js';

before(() => init());

function list(patterns) {
  const c = core();
  const l = c.fn.sb_origin_list_create(16);
  const added = patterns.map((p) => {
    const [ptr, n] = c.writeString(p);
    return c.fn.sb_origin_list_add(l, ptr, n);
  });
  return {
    added,
    match(origin) {
      const [ptr, n] = c.writeString(origin);
      const rc = c.fn.sb_origin_list_match(l, ptr, n);
      return rc >= 0 ? rc : c.cstr(c.fn.sb_errname(rc));
    },
    free: () => c.fn.sb_origin_list_destroy(l),
  };
}

function normalize(s) {
  const c = core();
  const [p, n] = c.writeString(s);
  const out = c.fn.malloc(512);
  const rc = c.fn.sb_origin_normalize(p, n, out, 512);
  const r = rc >= 0 ? c.readString(out, rc) : c.cstr(c.fn.sb_errname(rc));
  c.fn.free(out);
  return r;
}

const ALLOW = ['https://example.com', 'https://*.example.com', 'http://localhost:8080'];
// [origin, index of the entry that allows it | error code]
const CASES = [
  ['https://example.com', 0],
  ['https://example.com:443', 0],
  ['HTTPS://EXAMPLE.COM', 0],
  ['https://example.com/', 0],
  ['https://www.example.com', 1],
  ['https://a.b.c.example.com', 1],
  ['https://evil-example.com', 'ORIGIN_REJECTED'],
  ['https://example.com.evil.com', 'ORIGIN_REJECTED'],
  ['https://evil.com', 'ORIGIN_REJECTED'],
  ['https://xexample.com', 'ORIGIN_REJECTED'],
  ['https://example.co', 'ORIGIN_REJECTED'],
  ['http://example.com', 'ORIGIN_REJECTED'],      // other scheme
  ['http://www.example.com', 'ORIGIN_REJECTED'],  // wildcard keeps its scheme
  ['wss://www.example.com', 'ORIGIN_REJECTED'],
  ['https://example.com:8443', 'ORIGIN_REJECTED'], // other port
  ['https://www.example.com:8443', 'ORIGIN_REJECTED'],
  ['https://www.example.com:443', 1],             // default port is no port
  ['http://localhost:8080', 2],
  ['http://localhost', 'ORIGIN_REJECTED'],
  ['http://localhost:80', 'ORIGIN_REJECTED'],
  ['http://localhost:08080', 2],
  ['http://127.0.0.1:8080', 'ORIGIN_REJECTED'],  // same machine, other origin
  ['null', 'ORIGIN_REJECTED'],                    // opaque only when listed
  ['https://example.com/path', 'BAD_ORIGIN'],
  ['https://user@example.com', 'BAD_ORIGIN'],
  ['https://example.com:99999', 'BAD_ORIGIN'],
  ['https://exa mple.com', 'BAD_ORIGIN'],
  ['https://bücher.example.com', 'BAD_ORIGIN'],     // browsers send punycode
  ['https://xn--bcher-kva.example.com', 1],
  ['', 'BAD_ORIGIN'],
  ['*', 'BAD_ORIGIN'],                             // never an origin, only a pattern
];

test('allowlist matching: exact, wildcard subdomains, schemes, ports, lookalikes', () => {
  const l = list(ALLOW);
  assert.deepEqual(l.added, [0, 1, 2]);
  for (const [origin, want] of CASES) assert.equal(l.match(origin), want, origin);
  l.free();
});

test('a wildcard covers subdomains, not its own bare domain', () => {
  // Alone in the list, so no exact entry answers first (as it does above).
  const l = list(['https://*.example.com']);
  assert.equal(l.match('https://example.com'), 'ORIGIN_REJECTED');
  assert.equal(l.match('https://www.example.com'), 0);
  assert.equal(l.match('https://a.b.example.com'), 0);
  l.free();
});

test('"*" and "null" only when written, and "*" does not cover "null"', () => {
  const empty = list([]);
  assert.equal(empty.match('https://example.com'), 'ORIGIN_REJECTED');
  assert.equal(empty.match('null'), 'ORIGIN_REJECTED');
  empty.free();
  const star = list(['*']);
  assert.equal(star.match('https://anything.test:9'), 0);
  assert.equal(star.match('http://127.0.0.1:1'), 0);
  assert.equal(star.match('null'), 'ORIGIN_REJECTED');
  star.free();
  const nul = list(['null']);
  assert.equal(nul.match('null'), 0);
  assert.equal(nul.match('https://example.com'), 'ORIGIN_REJECTED');
  nul.free();
});

test('bad patterns are refused when added', () => {
  const l = list(['https://*.0.0.1', 'https://a.*.example.com', 'https://*example.com', 'https://example.com/app', 'example.com', '*.example.com']);
  assert.deepEqual(l.added.map((rc) => core().cstr(core().fn.sb_errname(rc))), Array(6).fill('BAD_ORIGIN'));
  l.free();
});

test('normalization', () => {
  assert.equal(normalize('HTTPS://Example.COM:443/'), 'https://example.com');
  assert.equal(normalize('http://example.com:443'), 'http://example.com:443');
  assert.equal(normalize('ws://a.test:80'), 'ws://a.test');
  assert.equal(normalize('http://[::1]:8080'), 'http://[::1]:8080');
  assert.equal(normalize('null'), 'null');
  assert.equal(normalize('https://example.com.'), 'BAD_ORIGIN');
});
