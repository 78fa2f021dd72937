// Where the bytes of a download go (docs/decisions.md, "Size budget"): the
// gzipped wasm of one core by the source file each function comes from, and
// its slim ESM glue by module. Run after `npm run build`:
//
//   node .ci/size-detail.mjs [JOB] [--functions N]
//
// JOB is a .ci/jobs.mjs name (default: the whole runtime). The core is linked
// again from build/wasm's objects with --profiling-funcs (function names kept,
// code unchanged) into build/size/; each function is given to the object that
// defines it (llvm-nm). "alone" is the gzip of a group's function bodies by
// themselves, "share" what the gzipped code section loses without them: gzip
// shares strings across groups, so neither sums exactly to the total. The
// glue is bundled as .ci/bundle.mjs bundles it (esbuild's metafile gives the
// minified bytes each module leaves in the output; "share" is that fraction
// of the gzipped bundle).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { jobs, entrySource } from './jobs.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const wasmDir = join(root, 'build', 'wasm');
const args = process.argv.slice(2);
const nFun = args.includes('--functions') ? Number(args[args.indexOf('--functions') + 1]) : 0;
const job = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--functions');
if (job && !jobs[job]) throw new Error(`no job ${job} in .ci/jobs.mjs`);
const target = job ? `switchboard-${job}` : 'switchboard';
const gz = (b) => gzipSync(b, { level: 9 }).length;

// ---- the core ---------------------------------------------------------------
const dir = join(wasmDir, 'CMakeFiles', `${target}.dir`);
const link = readFileSync(join(dir, 'link.txt'), 'utf8').trim().split('\n')[0];
const out = join(root, 'build', 'size', `${target}.wasm`);
mkdirSync(join(root, 'build', 'size'), { recursive: true });
// link.txt is one shell command line of CMake's; only the output moves.
execFileSync('bash', ['-c', `${link.replace(/ -o \S+/, ` -o ${out}`)} --profiling-funcs`], { cwd: wasmDir, stdio: 'inherit' });
// And the pass CMakeLists.txt (sb_post_opt) gives a page's cores after the
// link, names kept (-g), so the groups add up to what dist/ ships.
if (job !== 'gzip') {
  execFileSync('wasm-opt', ['-O3', '--low-memory-unused', '--enable-nontrapping-float-to-int', '--enable-bulk-memory', '-g', out, '-o', out], { stdio: 'inherit' });
}

function sections(b) {
  let p = 8;
  const u = () => { let r = 0, s = 0, x; do { x = b[p++]; r += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80); return r; };
  const str = () => { const l = u(); const s = b.subarray(p, p + l).toString(); p += l; return s; };
  let imported = 0;
  const bodies = [], names = new Map();
  let data = Buffer.alloc(0);
  while (p < b.length) {
    const id = b[p++], len = u(), end = p + len;
    if (id === 2) {
      for (let n = u(); n > 0; n--) {
        str(); str();
        const kind = b[p++];
        if (kind === 0) { u(); imported++; }
        else if (kind === 1) { p++; if (u() & 1) { u(); } u(); }
        else if (kind === 2) { if (u() & 1) { u(); } u(); }
        else p += 2;
      }
    } else if (id === 10) {
      for (let n = u(); n > 0; n--) { const l = u(); bodies.push(b.subarray(p, p + l)); p += l; }
    } else if (id === 11) {
      data = b.subarray(p, end);
    } else if (id === 0 && str() === 'name') {
      while (p < end) {
        const sub = b[p++], sl = u(), next = p + sl;
        if (sub === 1) for (let n = u(); n > 0; n--) { const i = u(); names.set(i, str()); }
        p = next;
      }
    }
    p = end;
  }
  return { bodies: bodies.map((body, i) => ({ body, name: names.get(i + imported) ?? `f${i + imported}` })), data };
}

// Which object defines each function: ours from the object list, zlib's from
// the archive the target links (members are listed per object by llvm-nm).
const owner = new Map();
const nm = (file) => execFileSync('llvm-nm', ['--defined-only', file], { encoding: 'utf8', maxBuffer: 1 << 26 });
const addOwners = (listing, label) => {
  let obj = label;
  for (const line of listing.split('\n')) {
    const member = line.match(/^(\S+\.o):$/);
    if (member) obj = label + member[1].replace(/\.c\.o$|\.o$/, '');
    const m = line.match(/ [tTwW] (\S+)$/);
    if (m && !owner.has(m[1])) owner.set(m[1], obj);
  }
};
for (const o of readFileSync(join(dir, 'objects1'), 'utf8').trim().split(/\s+/)) {
  addOwners(nm(join(wasmDir, o)), o.replace(/^.*\/src\//, 'src/').replace(/\.c\.o$/, '.c'));
}
for (const lib of readFileSync(join(dir, 'linkLibs.rsp'), 'utf8').trim().split(/\s+/).filter(Boolean)) {
  addOwners(nm(join(wasmDir, lib)), 'zlib/');
}

const { bodies, data } = sections(readFileSync(out));
const groups = new Map();
for (const f of bodies) {
  const base = f.name.replace(/\.\d+$/, '');
  const g = owner.get(base) ?? (f.name.startsWith('sb_') ? 'src/?' : 'libc, emmalloc, runtime');
  if (!groups.has(g)) groups.set(g, []);
  groups.get(g).push(f);
}
const code = Buffer.concat(bodies.map((f) => f.body));
const codeGz = gz(code);
const wasmGz = gz(readFileSync(join(root, 'dist', `${target}.wasm`)));
console.log(`${target}.wasm: ${wasmGz} B gzipped; code ${code.length} B (${codeGz} B gzipped alone), data ${data.length} B (${gz(data)} B gzipped alone)`);
const rows = [...groups].map(([g, fs]) => {
  const set = new Set(fs);
  const mine = Buffer.concat(fs.map((f) => f.body));
  const rest = Buffer.concat(bodies.filter((f) => !set.has(f)).map((f) => f.body));
  return { g, raw: mine.length, alone: gz(mine), share: codeGz - gz(rest), n: fs.length };
}).sort((a, b) => b.share - a.share);
console.log('  share   alone     raw  funcs  object');
for (const r of rows) console.log(`${String(r.share).padStart(7)} ${String(r.alone).padStart(7)} ${String(r.raw).padStart(7)} ${String(r.n).padStart(6)}  ${r.g}`);
if (nFun) {
  console.log(`largest ${nFun} functions (raw bytes, gzipped alone):`);
  for (const f of [...bodies].sort((a, b) => b.body.length - a.body.length).slice(0, nFun)) {
    console.log(`${String(f.body.length).padStart(7)} ${String(gz(f.body)).padStart(7)}  ${f.name} (${owner.get(f.name.replace(/\.\d+$/, '')) ?? '?'})`);
  }
}

// ---- the glue ---------------------------------------------------------------
const stub = {
  name: 'wasm-source',
  setup(b) {
    b.onResolve({ filter: /[\\/]?wasm-source\.js$/ }, () => ({ path: 'wasm-source', namespace: 'sb-wasm' }));
    b.onLoad({ filter: /.*/, namespace: 'sb-wasm' }, () => ({ contents: 'export async function loadWasmBytes() {}\nexport async function fetchWasm() {}\n', loader: 'js' }));
  },
};
const js = join(root, 'js');
const entry = job ? { stdin: { contents: entrySource(job), resolveDir: js, sourcefile: `${target}.js` } } : { entryPoints: [join(js, 'index.js')] };
const res = await build({ ...entry, bundle: true, minify: true, target: 'es2022', legalComments: 'none', format: 'esm', write: false, metafile: true, plugins: [stub], logLevel: 'warning' });
const bundle = res.outputFiles[0].contents;
const bundleGz = gz(bundle);
const inputs = Object.entries(Object.values(res.metafile.outputs)[0].inputs);
const minified = inputs.reduce((s, [, v]) => s + v.bytesInOutput, 0);
console.log(`${target} glue: ${bundleGz} B gzipped (${bundle.length} B minified; dist/${target}.slim.mjs is this with its fetch loader)`);
console.log('  share    min  module');
for (const [f, v] of inputs.sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput)) {
  console.log(`${String(Math.round((v.bytesInOutput / minified) * bundleGz)).padStart(7)} ${String(v.bytesInOutput).padStart(6)}  ${f.replace(/^.*?js\//, 'js/')}`);
}
