// Download size, peers side by side: what an app that imports a job's API
// ships, bundled by esbuild (minified, ES2022, tree-shaken) and gzipped -9.
// switchboard's entries carry their wasm core inline (base64), as from npm;
// "core + glue" is the same job in slim mode (switchboard-<job>.slim.mjs +
// switchboard-<job>.wasm), as `npm test` budgets it.
// Peers are the dev dependencies installed here; socket.io-client and
// broadcast-channel are not, so they are not in the table.
//
//   node bench/size.mjs        (after npm run build)
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { jobs } from '../.ci/jobs.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const gz = (b) => gzipSync(b, { level: 9 }).length;

async function bundled(contents) {
  const r = await build({
    stdin: { contents, resolveDir: root, sourcefile: 'app.js' },
    bundle: true, minify: true, format: 'esm', target: 'es2022', platform: 'browser',
    write: false, logLevel: 'silent',
    alias: { switchboard: './dist/switchboard.mjs', ...Object.fromEntries(Object.keys(jobs).map((j) => [`switchboard/${j}`, `./dist/switchboard-${j}.mjs`])) },
  });
  return gz(r.outputFiles[0].contents);
}

const rows = [
  ['gzip + gunzip', "import { init, gzip, gunzip } from 'switchboard/gzip'; export { init, gzip, gunzip };", 'gzip', [
    ['pako', "import { gzip, ungzip } from 'pako'; export { gzip, ungzip };"],
    ['fflate', "import { gzipSync, gunzipSync } from 'fflate'; export { gzipSync, gunzipSync };"],
  ]],
  ['iframe RPC', "import { init, connectFrame, connectParent } from 'switchboard/bridge'; export { init, connectFrame, connectParent };", 'bridge', [
    ['penpal', "import { connect, WindowMessenger } from 'penpal'; export { connect, WindowMessenger };"],
    ['comlink', "import { wrap, expose, windowEndpoint } from 'comlink'; export { wrap, expose, windowEndpoint };"],
  ]],
  ['SSE client', "import { init, EventStream } from 'switchboard/sse'; export { init, EventStream };", 'sse', [
    ['eventsource-parser (parser only)', "import { createParser } from 'eventsource-parser'; export { createParser };"],
  ]],
  ['tab sync', "import { init, SharedState, TabGroup } from 'switchboard/tabs'; export { init, SharedState, TabGroup };", 'tabs', []],
  ['WebSocket client', "import { init, Socket } from 'switchboard/socket'; export { init, Socket };", 'socket', []],
  ['everything', "export * from 'switchboard';", null, []],
];

console.log('| job | switchboard (inline core) | core + glue | peers |');
console.log('| --- | ---: | ---: | --- |');
for (const [label, ours, job, peers] of rows) {
  const mine = await bundled(ours);
  const base = `${root}dist/switchboard${job ? `-${job}` : ''}`;
  const split = gz(readFileSync(`${base}.wasm`)) + gz(readFileSync(`${base}.slim.mjs`));
  const theirs = [];
  for (const [name, src] of peers) theirs.push(`${name} ${await bundled(src)} B`);
  console.log(`| ${label} | ${mine} B | ${split} B | ${theirs.join(', ') || '—'} |`);
}
