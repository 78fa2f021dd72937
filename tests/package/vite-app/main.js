// A Vite app that installed the switchboard tarball: plain ESM import, no
// plugin, no config; the wasm travels inside the bundle.
import { init, gzip, gunzip, SwitchboardError } from 'switchboard';

const out = document.getElementById('out');
try {
  await init();
  const text = JSON.stringify({ hello: 'vite', n: [1, 2, 3] }).repeat(20);
  const back = new TextDecoder().decode(gunzip(gzip(text)));
  let code = '';
  try {
    gunzip(new Uint8Array([1, 2, 3]));
  } catch (e) {
    code = e instanceof SwitchboardError ? e.code : 'wrong error type';
  }
  out.textContent = back === text && code === 'CORRUPT' ? 'ok' : `mismatch ${code}`;
} catch (e) {
  out.textContent = `error: ${e.message}`;
}
