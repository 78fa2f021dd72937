// Size budget, gzipped, as a page downloads it in slim mode: the core (.wasm)
// + the ESM glue that fetches it. For the whole runtime (switchboard.wasm +
// switchboard.slim.mjs) against package.json's sizeBudget.gzipBytes, and for
// each job (.ci/jobs.mjs: switchboard-<job>.wasm + switchboard-<job>.slim.mjs)
// against its own sizeBudget.jobs[<job>] (what it measured, plus a little),
// or sizeBudget.jobGzipBytes for a job without one. The bundles that carry
// their core inline as base64 are printed too.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { jobs } from './jobs.mjs';

const root = new URL('..', import.meta.url);
const gz = (f) => gzipSync(readFileSync(new URL(`dist/${f}`, root)), { level: 9 }).length;
const { gzipBytes: budget, jobGzipBytes: jobBudget, jobs: perJob = {} } = JSON.parse(readFileSync(new URL('package.json', root))).sizeBudget;
const over = [];

function check(name, base, limit) {
  const wasm = gz(`${base}.wasm`);
  const glue = gz(`${base}.slim.mjs`);
  console.log(`size: ${name} ${wasm + glue} B gzipped (${base}.wasm ${wasm} + ESM glue ${glue}), budget ${limit} B; ` +
    `${base}.mjs with the wasm inlined: ${gz(`${base}.mjs`)} B, ${base}.iife.js: ${gz(`${base}.iife.js`)} B`);
  if (wasm + glue > limit) over.push(`${name} ${wasm + glue - limit} B over ${limit}`);
}

check('runtime', 'switchboard', budget);
for (const job of Object.keys(jobs)) check(`switchboard/${job}`, `switchboard-${job}`, perJob[job] ?? jobBudget);
if (over.length) {
  console.error(`size: over the budget in package.json: ${over.join('; ')}`);
  process.exit(1);
}
