// A Vite app that installed the switchboard tarball: plain ESM imports, no
// plugin, no config; the wasm travels inside the bundle. It uses the whole
// runtime and one job on its own (switchboard/bridge, with its own small core).
import { init, gzip, gunzip, SwitchboardError } from 'switchboard';
import * as bridge from 'switchboard/bridge';

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
  const { port1, port2 } = new MessageChannel();
  const [a] = await Promise.all([bridge.connect(port1), bridge.connect(port2, { methods: { add: (x, y) => x + y } })]);
  const sum = await a.call('add', 2, 40);
  const noGzip = typeof bridge.gzip === 'undefined';
  out.textContent = back === text && code === 'CORRUPT' && sum === 42 && noGzip ? 'ok' : `mismatch ${code} ${sum} ${noGzip}`;
} catch (e) {
  out.textContent = `error: ${e.message}`;
}
