// The per-job builds (docs/decisions.md, "One job, one small download"): a page
// that needs one job imports `switchboard/<job>` and downloads that job's glue
// and a wasm core holding only the C that glue calls. The whole runtime stays
// `switchboard`.
//
//   node .ci/jobs.mjs names                      the job names, one a line
//   node .ci/jobs.mjs exports JOB ALL.txt OUT    the job's wasm export list
//   node .ci/jobs.mjs tests JOB                  its Node test files
//   node .ci/jobs.mjs zlib JOB                   the zlib library its core links
//
// A job's export list is every sb_* name its glue (the modules its entry pulls
// in, followed through their imports) calls, each of which must be in ALL.txt
// (the SB_EXPORT list CMake generates); the linker drops the C nothing else
// reaches. Each job's Node tests run against its own core in `npm test`.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const js = fileURLToPath(new URL('../js/', import.meta.url));

// A job's entry is the lines of js/index.js (and, for its types, of
// js/index.d.ts) that re-export its modules, after init and SwitchboardError:
// an entry cannot drift from the whole runtime's.
const lines = (file) => readFileSync(js + file, 'utf8').split('\n').filter((l) => /^export .* from '\.\//.test(l));
const pick = (file, mods) => lines(file).filter((l) => mods.some((m) => l.endsWith(` from './${m}.js';`)));
const baseTypes = "export { init, SwitchboardError } from './index.js';\nexport type { InitOptions, SwitchboardErrorCode } from './index.js';\n";

/**
 * job -> its modules in js/ (as js/index.js re-exports them), its Node tests,
 * and `zlib: 'raw'` for a job whose only deflate streams are raw (the
 * session's and the batcher's): its core links zlib without the gzip wrapper
 * (CMakeLists.txt, sbzlib_raw). A raw job whose glue asked for gzip would
 * fail its own tests, which run on its core.
 */
export const jobs = {
  bridge: { modules: ['bridge'], tests: ['bridge', 'bridge-props', 'bridge-window-props'] },
  tabs: { modules: ['tabs'], tests: ['tabs', 'tabs-props'] },
  socket: { modules: ['socket'], tests: ['socket', 'socket-props'], zlib: 'raw' },
  sse: { modules: ['sse'], tests: ['sse', 'sse-stream', 'sse-share', 'sse-props'] },
  gzip: { modules: ['gzip'], tests: ['gzip'] },
  queue: { modules: ['frame', 'queue'], tests: ['frame', 'queue', 'queue-tabs', 'frame-props'], zlib: 'raw' },
};

/** The job's entry module, resolved against js/. */
export const entrySource = (job) => pick('index.js', ['core', 'errors', ...jobs[job].modules]).join('\n') + '\n';
/** Its .d.ts, beside the per-module .d.ts files in dist/. */
export const entryTypes = (job) => baseTypes + pick('index.d.ts', jobs[job].modules).join('\n') + '\n';

function modules(job) {
  const seen = new Set();
  const walk = (src) => {
    for (const m of src.matchAll(/(?:from|import)\s*['"]\.\/([\w.-]+\.js)['"]/g)) {
      // js/constants.js is numbers generated from src/*.h (.ci/constants.mjs):
      // it calls nothing.
      if (seen.has(m[1]) || m[1] === 'constants.js') continue;
      seen.add(m[1]);
      walk(readFileSync(js + m[1], 'utf8'));
    }
  };
  walk(entrySource(job));
  return [...seen];
}

// Always there: the loader's own calls (js/core.js reads sb_wasm_abi off the
// instance before it wraps it) and the allocator.
const always = ['_initialize', 'malloc', 'free', 'sb_wasm_abi', 'sb_errname', 'sb_strerror'];

/** Every sb_* name the job's glue calls (`.sb_x` or a 'sb_x' string); each must be an SB_EXPORT. */
export function exportList(job, all) {
  const known = new Set(all);
  const names = new Set(always);
  for (const m of modules(job)) {
    // Comments call nothing: a name in one (core.js documents `core.fn.sb_…`)
    // must not link that function into every job.
    const code = readFileSync(js + m, 'utf8').replace(/\/\*[\s\S]*?\*\/|(^|[^:'"`\\])\/\/.*$/gm, '$1');
    for (const [, n] of code.matchAll(/[.'"](sb_[a-z0-9_]+)\b/g)) {
      if (names.has(n)) continue;
      if (!known.has(n)) throw new Error(`js/${m} calls ${n}, which no src/*.h marks SB_EXPORT`);
      names.add(n);
    }
  }
  return [...names].sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [cmd, job, allPath, out] = process.argv.slice(2);
  if (cmd === 'names') {
    console.log(Object.keys(jobs).join('\n'));
  } else if (cmd === 'zlib' && jobs[job]) {
    console.log(jobs[job].zlib === 'raw' ? 'sbzlib_raw' : 'sbzlib');
  } else if (cmd === 'tests' && jobs[job]) {
    console.log(jobs[job].tests.map((t) => `tests/node/${t}.test.mjs`).join('\n'));
  } else if (cmd === 'exports' && jobs[job] && allPath && out) {
    const all = readFileSync(allPath, 'utf8').split('\n').filter(Boolean).map((n) => n.replace(/^_/, ''));
    writeFileSync(out, exportList(job, all).map((n) => '_' + n).join('\n') + '\n');
  } else {
    console.error('usage: node .ci/jobs.mjs names | tests JOB | zlib JOB | exports JOB ALL.txt OUT');
    process.exit(2);
  }
}
