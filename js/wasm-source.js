// Where the wasm bytes come from when running from the source tree (Node
// tests, the relay server, the dev server's unbundled pages). The bundles in
// dist/ replace this module with one that carries the wasm inline.
import { SwitchboardError } from './errors.js';

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

export async function loadWasmBytes(opts = {}) {
  if (opts.wasmModule) return opts.wasmModule;
  if (opts.wasmBinary) return opts.wasmBinary;
  let url = opts.wasmURL;
  if (!url && isNode && process.env.SWITCHBOARD_WASM) url = process.env.SWITCHBOARD_WASM;
  if (!url) url = new URL('../dist/switchboard.wasm', import.meta.url);
  return fetchWasm(url);
}

export async function fetchWasm(url) {
  const href = String(url);
  if (isNode && !/^https?:/.test(href)) {
    const { readFile } = await import('node:fs/promises');
    return readFile(href.startsWith('file:') ? new URL(href) : href);
  }
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new SwitchboardError('NOT_FOUND', `switchboard: cannot load ${href}: HTTP ${res.status}`);
  return res;
}
