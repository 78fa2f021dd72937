// switchboard/slim under script-src 'self' 'wasm-unsafe-eval': no inline wasm,
// the module is fetched from switchboard.wasm beside the bundle; and one job
// in slim mode (switchboard/slim/gzip), which fetches switchboard-gzip.wasm.
import { init, gzip, gunzip } from './switchboard.slim.mjs';
import * as gzipJob from './switchboard-gzip.slim.mjs';

const out = document.getElementById('out');
try {
  await Promise.all([init(), gzipJob.init()]);
  const text = 'strict csp, separate wasm '.repeat(40);
  const whole = new TextDecoder().decode(gunzip(gzip(text))) === text;
  const job = new TextDecoder().decode(gzipJob.gunzip(gzip(text))) === text && typeof gzipJob.Socket === 'undefined';
  const fetched = performance.getEntriesByType('resource').map((r) => new URL(r.name).pathname);
  const both = fetched.includes('/switchboard.wasm') && fetched.includes('/switchboard-gzip.wasm');
  out.textContent = whole && job && both ? 'ok' : `mismatch ${whole} ${job} ${fetched}`;
} catch (e) {
  out.textContent = `error: ${e.message}`;
}
