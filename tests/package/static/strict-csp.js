// switchboard/slim under script-src 'self' 'wasm-unsafe-eval': no inline wasm,
// the module is fetched from switchboard.wasm beside the bundle.
import { init, gzip, gunzip } from './switchboard.slim.mjs';

const out = document.getElementById('out');
try {
  await init();
  const text = 'strict csp, separate wasm '.repeat(40);
  out.textContent = new TextDecoder().decode(gunzip(gzip(text))) === text ? 'ok' : 'mismatch';
} catch (e) {
  out.textContent = `error: ${e.message}`;
}
