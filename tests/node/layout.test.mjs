// Files by capability and class (docs/architecture.md, "Where each job
// lives"): no hand-written file of the glue is over 500 lines, and every job
// has its entry, types and doc under the job's name.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';
import { jobs } from '../../.ci/jobs.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const MAX_LINES = 500;

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]);
}

test(`no file of the glue is over ${MAX_LINES} lines`, () => {
  const over = [];
  for (const f of files(join(root, 'js'))) {
    const name = relative(root, f);
    // js/constants.js is generated from src/*.h (.ci/constants.mjs), not written.
    if (!/\.(m?js|d\.ts)$/.test(f) || name === 'js/constants.js') continue;
    const lines = readFileSync(f, 'utf8').split('\n').length - 1;
    if (lines > MAX_LINES) over.push(`${name}: ${lines} lines`);
  }
  assert.deepEqual(over, []);
});

test('each job has js/<job>.js, its types and docs/<job>.md', () => {
  for (const job of Object.keys(jobs)) {
    assert.ok(existsSync(join(root, 'js', `${job}.js`)), `js/${job}.js`);
    assert.ok(existsSync(join(root, 'js', `${job}.d.ts`)), `js/${job}.d.ts`);
    // The queue job's reference is the protocol's §8–§9 (docs/architecture.md).
    if (job !== 'queue') assert.ok(existsSync(join(root, 'docs', `${job}.md`)), `docs/${job}.md`);
  }
});
