// Size budget: the whole runtime as a page downloads it, gzipped:
// dist/switchboard.wasm + the ESM glue (switchboard.slim.mjs, the bundle without
// the inlined copy), against package.json's sizeBudget. The default bundle,
// which carries the wasm as base64, is printed too.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const root = new URL('..', import.meta.url);
const gz = (f) => gzipSync(readFileSync(new URL(f, root)), { level: 9 }).length;
const { gzipBytes: budget, goalBytes: goal } = JSON.parse(readFileSync(new URL('package.json', root))).sizeBudget;
const wasm = gz('dist/switchboard.wasm');
const glue = gz('dist/switchboard.slim.mjs');
const total = wasm + glue;
console.log(`size: runtime ${total} B gzipped (switchboard.wasm ${wasm} + ESM glue ${glue}), budget ${budget} B, goal ${goal} B; ` +
  `switchboard.mjs with the wasm inlined: ${gz('dist/switchboard.mjs')} B, switchboard.iife.js: ${gz('dist/switchboard.iife.js')} B`);
if (total > budget) {
  console.error(`size: ${total - budget} B over the budget in package.json`);
  process.exit(1);
}
