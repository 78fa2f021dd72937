// Bundle js/ into dist/: switchboard.mjs (ESM) and switchboard.iife.js (global
// `switchboard`), both with the wasm inlined; switchboard.slim.mjs (ESM, loads
// switchboard.wasm from beside itself); the .d.ts files; and the same per
// job (.ci/jobs.mjs), switchboard-<job>.mjs/.iife.js/.slim.mjs/.d.ts, on
// that job's own core (dist/switchboard-<job>.wasm, written by CMake); and
// the Node relay, switchboard-server.mjs/.d.ts (switchboard/server) and its
// CLI switchboard-relay.mjs (bin switchboard-relay).
import { build } from 'esbuild';
import { readFile, readdir, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { jobs, entrySource, entryTypes } from './jobs.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

// Replaces js/wasm-source.js. Default bundles carry the module inline as
// base64: decoding it is ~0.6 ms and needs no second request. (Inlining it
// gzipped saves ~10 KB on the wire but DecompressionStream's plumbing cost
// 5-9 ms at init; docs/decisions.md.) The slim bundle carries nothing and
// fetches switchboard.wasm next to itself, for strict-CSP and caching setups.
const errorsImport = "import { SwitchboardError } from './errors.js';\n";
const inlineSource = (wasm) => errorsImport + `
const B64 = ${JSON.stringify(wasm.toString('base64'))};
export async function loadWasmBytes(opts = {}) {
  if (opts.wasmModule) return opts.wasmModule;
  if (opts.wasmBinary) return opts.wasmBinary;
  if (opts.wasmURL) return fetchWasm(opts.wasmURL);
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(B64);
  const bin = atob(B64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
export async function fetchWasm(url) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new SwitchboardError('NOT_FOUND', 'switchboard: cannot load ' + url + ': HTTP ' + res.status);
  return res;
}
`;

const slimSource = (file) => errorsImport + `
export async function loadWasmBytes(opts = {}) {
  if (opts.wasmModule) return opts.wasmModule;
  if (opts.wasmBinary) return opts.wasmBinary;
  return fetchWasm(opts.wasmURL || new URL('./${file}', import.meta.url));
}
export async function fetchWasm(url) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new SwitchboardError('NOT_FOUND', 'switchboard: cannot load ' + url + ': HTTP ' + res.status);
  return res;
}
`;

const wasmSource = (contents) => ({
  name: 'wasm-source',
  setup(b) {
    b.onResolve({ filter: /[\\/]?wasm-source\.js$/ }, () => ({ path: 'wasm-source', namespace: 'sb-wasm' }));
    b.onLoad({ filter: /.*/, namespace: 'sb-wasm' }, () => ({ contents, loader: 'js', resolveDir: join(root, 'js') }));
  },
});

const common = {
  bundle: true,
  minify: true,
  // Private fields and static blocks stay as written (es2020 lowered them to
  // WeakMap helpers: +0.9 KB gzipped); every browser in README's list has them.
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'warning',
};
const entry = { entryPoints: [join(root, 'js', 'index.js')] };
const whole = inlineSource(await readFile(join(dist, 'switchboard.wasm')));
await build({ ...common, ...entry, plugins: [wasmSource(whole)], format: 'esm', outfile: join(dist, 'switchboard.mjs') });
await build({ ...common, ...entry, plugins: [wasmSource(whole)], format: 'iife', globalName: 'switchboard', outfile: join(dist, 'switchboard.iife.js') });
await build({ ...common, ...entry, plugins: [wasmSource(slimSource('switchboard.wasm'))], format: 'esm', outfile: join(dist, 'switchboard.slim.mjs') });

await mkdir(dist, { recursive: true });
for (const f of await readdir(join(root, 'js'))) {
  if (f.endsWith('.d.ts')) await copyFile(join(root, 'js', f), join(dist, f));
}

// One job: its entry on its own core, inline or beside it (slim).
for (const job of Object.keys(jobs)) {
  const stdin = { contents: entrySource(job), resolveDir: join(root, 'js'), sourcefile: `switchboard-${job}.js` };
  const out = join(dist, `switchboard-${job}`);
  const own = inlineSource(await readFile(out + '.wasm'));
  await build({ ...common, stdin, plugins: [wasmSource(own)], format: 'esm', outfile: out + '.mjs' });
  await build({ ...common, stdin, plugins: [wasmSource(own)], format: 'iife', globalName: 'switchboard', outfile: out + '.iife.js' });
  await build({ ...common, stdin, plugins: [wasmSource(slimSource(`switchboard-${job}.wasm`))], format: 'esm', outfile: out + '.slim.mjs' });
  await writeFile(out + '.d.ts', `// switchboard/${job}: ${job} alone, on a core holding only what it calls.\n` + entryTypes(job));
}

// The relay for Node (docs/decisions.md, "The relay ships in the package"):
// one ESM file, not minified (stack traces stay readable), ws and
// better-sqlite3 and ioredis left to the user's node_modules, the whole core found
// beside it (js/server/core-path.mjs swapped: dist/switchboard-relay.wasm). The
// CLI loads that file rather than carrying a second copy.
const node = { bundle: true, platform: 'node', format: 'esm', target: 'node18', legalComments: 'none', logLevel: 'warning', external: ['ws', 'better-sqlite3', 'ioredis'] };
const besideCore = {
  name: 'core-path',
  setup(b) {
    b.onResolve({ filter: /[\\/]core-path\.mjs$/ }, () => ({ path: 'core-path', namespace: 'sb-core-path' }));
    b.onLoad({ filter: /.*/, namespace: 'sb-core-path' }, () => ({ contents: "export const WHOLE_CORE = new URL('./switchboard-relay.wasm', import.meta.url);\n", loader: 'js' }));
  },
};
const serverEntry = {
  name: 'server-entry',
  setup(b) {
    b.onResolve({ filter: /^\.\/index\.mjs$/ }, () => ({ path: './switchboard-server.mjs', external: true }));
  },
};
await build({ ...node, entryPoints: [join(root, 'js', 'server', 'index.mjs')], plugins: [besideCore], outfile: join(dist, 'switchboard-server.mjs') });
await build({ ...node, entryPoints: [join(root, 'js', 'server', 'relay-cli.mjs')], plugins: [serverEntry], outfile: join(dist, 'switchboard-relay.mjs') });
await copyFile(join(root, 'js', 'server', 'index.d.ts'), join(dist, 'switchboard-server.d.ts'));
