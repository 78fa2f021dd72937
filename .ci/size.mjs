// Size budget, gzipped, as a page downloads it: the core (.wasm) + the ESM glue
// without an inlined copy of the core. For the whole runtime (switchboard.wasm
// + switchboard.slim.mjs) against package.json's sizeBudget.gzipBytes, and for
// each job (.ci/jobs.mjs: its own core + its glue) against sizeBudget.jobGzipBytes.
// The bundles that carry their core inline as base64 are printed too.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { jobs } from './jobs.mjs';

const root = new URL('..', import.meta.url);
const wasmBuild = process.env.SB_WASM_BUILD ? new URL(`file://${process.env.SB_WASM_BUILD}/`) : new URL('build/wasm/', root);
const gz = (f) => gzipSync(readFileSync(f instanceof URL ? f : new URL(f, root)), { level: 9 }).length;
const { gzipBytes: budget, jobGzipBytes: jobBudget, goalBytes: goal } = JSON.parse(readFileSync(new URL('package.json', root))).sizeBudget;
const over = [];

const wasm = gz('dist/switchboard.wasm');
const glue = gz('dist/switchboard.slim.mjs');
const total = wasm + glue;
console.log(`size: runtime ${total} B gzipped (switchboard.wasm ${wasm} + ESM glue ${glue}), budget ${budget} B, goal ${goal} B; ` +
  `switchboard.mjs with the wasm inlined: ${gz('dist/switchboard.mjs')} B, switchboard.iife.js: ${gz('dist/switchboard.iife.js')} B`);
if (total > budget) over.push(`runtime ${total - budget} B over ${budget}`);

for (const job of Object.keys(jobs)) {
  const w = gz(new URL(`jobs/switchboard-${job}.wasm`, wasmBuild));
  const g = gz(`build/size/${job}.glue.mjs`);
  console.log(`size: switchboard/${job} ${w + g} B gzipped (wasm ${w} + ESM glue ${g}), budget ${jobBudget} B; ` +
    `switchboard-${job}.mjs with its wasm inlined: ${gz(`dist/switchboard-${job}.mjs`)} B`);
  if (w + g > jobBudget) over.push(`switchboard/${job} ${w + g - jobBudget} B over ${jobBudget}`);
}
if (over.length) {
  console.error(`size: over the budget in package.json: ${over.join('; ')}`);
  process.exit(1);
}
