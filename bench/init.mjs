// Cold init() time in headless Chromium: a fresh page each run, the bundle
// already loaded, timing only `await init()` (decode + compile + instantiate).
//   node bench/init.mjs [--runs 15]
import { launchBrowser, startDevServer } from '../tests/browser/harness.mjs';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 15;
const server = await startDevServer();
const browser = await launchBrowser();
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const results = { 'inline (default)': [], 'wasmURL (separate .wasm)': [] };
for (let i = 0; i < runs; i++) {
  for (const mode of Object.keys(results)) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${server.url}/tests/browser/fixtures/blank.html`);
    await page.addScriptTag({ url: '/dist/switchboard.iife.js' });
    const ms = await page.evaluate(async (m) => {
      const t = performance.now();
      await window.switchboard.init(m.startsWith('wasmURL') ? { wasmURL: '/dist/switchboard.wasm' } : {});
      return performance.now() - t;
    }, mode);
    results[mode].push(ms);
    await ctx.close();
  }
}
for (const [mode, a] of Object.entries(results)) console.log(`init() ${mode}: median ${median(a).toFixed(2)} ms, min ${Math.min(...a).toFixed(2)} ms (${runs} cold pages)`);
await browser.close();
await server.close();
