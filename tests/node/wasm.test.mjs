// The wasm boundary of the whole core: one import, and every SB_EXPORT
// function of src/*.h exported, so a missing export fails here rather than as
// `undefined is not a function` in a page. (The job cores export what their
// glue calls, checked by .ci/jobs.mjs at build time and by each job's Node
// tests, which npm test runs again on that job's core.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { init } from '../../js/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const wasmPath = process.env.SWITCHBOARD_WASM || `${root}dist/switchboard.wasm`;
const mod = new WebAssembly.Module(readFileSync(wasmPath));

test('the module is a standalone reactor with a single import', () => {
  const imports = WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`);
  assert.deepEqual(imports, ['env.emscripten_notify_memory_growth']);
  const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
  for (const name of ['_initialize', 'memory', 'malloc', 'free', 'sb_wasm_abi']) assert.ok(exports.includes(name), name);
});

const declared = (marker) => {
  const names = [];
  for (const f of readdirSync(`${root}src`).filter((n) => n.endsWith('.h'))) {
    for (const line of readFileSync(`${root}src/${f}`, 'utf8').split('\n')) {
      const m = new RegExp(`^${marker} .*?([a-z0-9_]+)\\(`).exec(line);
      if (m) names.push(m[1]);
    }
  }
  return names;
};

test('every SB_EXPORT declaration is exported', () => {
  const exports = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  const names = declared('SB_EXPORT');
  assert.ok(names.length > 10);
  const missing = names.filter((n) => !exports.has(n));
  assert.deepEqual(missing, []);
});

// The server role is the relay's alone: a browser core that exported its
// constructor would link all of it (docs/decisions.md).
test('SB_RELAY_EXPORT declarations: in the relay core, in no browser core', () => {
  const names = declared('SB_RELAY_EXPORT');
  assert.ok(names.includes('sb_session_create'));
  const relay = new Set(WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(`${root}dist/switchboard-relay.wasm`))).map((e) => e.name));
  assert.deepEqual(names.filter((n) => !relay.has(n)), []);
  const browser = WebAssembly.Module.exports(mod).map((e) => e.name);
  assert.deepEqual(names.filter((n) => browser.includes(n)), []);
});

test('init() is idempotent and concurrent calls share one load', async () => {
  const [a, b] = [init(), init()];
  assert.equal(a, b);
  await a;
  assert.equal(init(), a);
});
