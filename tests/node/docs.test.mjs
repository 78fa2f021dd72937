// docs/api.md is generated from the doc comments in js/*.d.ts; it must be
// current, and every module the package exports must have types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('docs/api.md is current with js/*.d.ts (node .ci/api-doc.mjs)', () => {
  try {
    execFileSync(process.execPath, ['.ci/api-doc.mjs', '--check'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    assert.fail(String(e.stderr));
  }
});

test('every module re-exported by js/index.js has a .d.ts re-exported by js/index.d.ts', () => {
  const mods = (f) => [...readFileSync(`${root}js/${f}`, 'utf8').matchAll(/from '\.\/([\w-]+)\.js'/g)].map((m) => m[1]);
  const js = new Set(mods('index.js').filter((m) => m !== 'core' && m !== 'errors'));
  const dts = new Set(mods('index.d.ts'));
  for (const m of js) {
    assert.ok(dts.has(m), `js/index.d.ts does not re-export ./${m}.js`);
    readFileSync(`${root}js/${m}.d.ts`);
  }
});
