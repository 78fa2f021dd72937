// Bundle js/ into dist/: switchboard.mjs (ESM) and switchboard.iife.js (global
// `switchboard`), both with the wasm inlined; switchboard.slim.mjs (ESM, loads
// switchboard.wasm from beside itself); and the .d.ts files.
import { build } from 'esbuild';
import { readFile, readdir, copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const wasm = await readFile(join(dist, 'switchboard.wasm'));

// Replaces js/wasm-source.js. Default bundles carry the module inline as
// base64: decoding it is ~0.6 ms and needs no second request. (Inlining it
// gzipped saves ~10 KB on the wire but DecompressionStream's plumbing cost
// 5-9 ms at init; docs/decisions.md.) The slim bundle carries nothing and
// fetches switchboard.wasm next to itself, for strict-CSP and caching setups.
const errorsImport = "import { SwitchboardError } from './errors.js';\n";
const inlineSource = errorsImport + `
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

const slimSource = errorsImport + `
export async function loadWasmBytes(opts = {}) {
  if (opts.wasmModule) return opts.wasmModule;
  if (opts.wasmBinary) return opts.wasmBinary;
  return fetchWasm(opts.wasmURL || new URL('./switchboard.wasm', import.meta.url));
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
  entryPoints: [join(root, 'js', 'index.js')],
  bundle: true,
  minify: true,
  target: 'es2020',
  legalComments: 'none',
  logLevel: 'warning',
};
await build({ ...common, plugins: [wasmSource(inlineSource)], format: 'esm', outfile: join(dist, 'switchboard.mjs') });
await build({ ...common, plugins: [wasmSource(inlineSource)], format: 'iife', globalName: 'switchboard', outfile: join(dist, 'switchboard.iife.js') });
await build({ ...common, plugins: [wasmSource(slimSource)], format: 'esm', outfile: join(dist, 'switchboard.slim.mjs') });

await mkdir(dist, { recursive: true });
for (const f of await readdir(join(root, 'js'))) {
  if (f.endsWith('.d.ts')) await copyFile(join(root, 'js', f), join(dist, f));
}
