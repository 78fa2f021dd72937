// Size budget: gzipped bytes a page downloads for the whole runtime, the ESM
// bundle with the wasm inlined (the default way to load it), against
// package.json's sizeBudget. The .wasm served alone is printed too.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const root = new URL('..', import.meta.url);
const gz = (f) => gzipSync(readFileSync(new URL(f, root)), { level: 9 }).length;
const budget = JSON.parse(readFileSync(new URL('package.json', root))).sizeBudget.gzipBytes;
const wasm = gz('dist/switchboard.wasm');
const esm = gz('dist/switchboard.mjs');
const iife = gz('dist/switchboard.iife.js');
console.log(`size: switchboard.wasm ${wasm} B gz; switchboard.mjs (wasm inlined) ${esm} B gz; iife ${iife} B gz; budget ${budget} B`);
if (esm > budget) {
  console.error(`size: switchboard.mjs is ${esm - budget} B over the budget`);
  process.exit(1);
}
