// Bundle js/ into dist/: switchboard.mjs (ESM) and switchboard.iife.js (global
// `switchboard`), both with the wasm inlined, plus the .d.ts files.
import { build } from 'esbuild';
import { readFile, readdir, copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const wasm = await readFile(join(dist, 'switchboard.wasm'));

// Replaces js/wasm-source.js: the bytes travel inside the bundle, gzipped
// then base64'd (a third smaller on the wire than base64 of the raw module),
// and are inflated with the platform's DecompressionStream; wasmURL and
// wasmBinary still work (strict-CSP pages serve the .wasm on its own).
const inlineSource = `
const B64 = ${JSON.stringify(gzipSync(wasm, { level: 9 }).toString('base64'))};
export async function loadWasmBytes(opts = {}) {
  if (opts.wasmModule) return opts.wasmModule;
  if (opts.wasmBinary) return opts.wasmBinary;
  if (opts.wasmURL) return fetchWasm(opts.wasmURL);
  const bin = atob(B64);
  const gz = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) gz[i] = bin.charCodeAt(i);
  const stream = new Blob([gz]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
export async function fetchWasm(url) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error('switchboard: cannot load ' + url + ': HTTP ' + res.status);
  return res;
}
`;

const inlineWasm = {
  name: 'inline-wasm',
  setup(b) {
    b.onResolve({ filter: /[\\/]?wasm-source\.js$/ }, () => ({ path: 'wasm-source', namespace: 'sb-inline' }));
    b.onLoad({ filter: /.*/, namespace: 'sb-inline' }, () => ({ contents: inlineSource, loader: 'js' }));
  },
};

const common = {
  entryPoints: [join(root, 'js', 'index.js')],
  bundle: true,
  minify: true,
  target: 'es2020',
  legalComments: 'none',
  plugins: [inlineWasm],
  logLevel: 'warning',
};
await build({ ...common, format: 'esm', outfile: join(dist, 'switchboard.mjs') });
await build({ ...common, format: 'iife', globalName: 'switchboard', outfile: join(dist, 'switchboard.iife.js') });

await mkdir(dist, { recursive: true });
for (const f of await readdir(join(root, 'js'))) {
  if (f.endsWith('.d.ts')) await copyFile(join(root, 'js', f), join(dist, f));
}
