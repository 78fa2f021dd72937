// Download size, peers side by side: what an app that imports a job's API
// ships, bundled by esbuild (minified, ES2022, tree-shaken) and gzipped -9.
// switchboard's entries carry their wasm core inline (base64), as from npm;
// "core + glue" is the same job in slim mode (switchboard-<job>.slim.mjs +
// switchboard-<job>.wasm), as `npm test` budgets it.
// Peers are the dev dependencies installed here (exact versions in
// package.json), each with the import an app writes for the same job (the
// socket, tabs and sse peers as bench/lib/peers.mjs loads them into the
// benches' pages). The raw platform APIs ship 0 B, so each peer's ratio is
// to switchboard's inline-core figure (below 1: the peer is smaller).
//
//   node bench/size.mjs        (after npm run build)
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { jobs } from '../.ci/jobs.mjs';
import { PEERS } from './lib/peers.mjs';

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
    ['@microsoft/fetch-event-source', PEERS['fetch-event-source'][1]],
    ['eventsource', PEERS.eventsource[1]],
    ['eventsource-parser (parser only)', "import { createParser } from 'eventsource-parser'; export { createParser };"],
  ]],
  ['tab sync', "import { init, SharedState, TabGroup } from 'switchboard/tabs'; export { init, SharedState, TabGroup };", 'tabs', [
    ['broadcast-channel', PEERS['broadcast-channel'][1]],
  ]],
  ['WebSocket client', "import { init, Socket } from 'switchboard/socket'; export { init, Socket };", 'socket', [
    ['socket.io-client', PEERS['socket.io-client'][1]],
    ['partysocket', PEERS.partysocket[1]],
  ]],
  ['everything', "export * from 'switchboard';", null, []],
];

const version = (pkg) => JSON.parse(readFileSync(`${root}node_modules/${pkg}/package.json`, 'utf8')).version;
console.log(`command: node bench/size.mjs`);
console.log('| job | switchboard (inline core) | core + glue | peers (ratio to switchboard inline) |');
console.log('| --- | ---: | ---: | --- |');
for (const [label, ours, job, peers] of rows) {
  const mine = await bundled(ours);
  const base = `${root}dist/switchboard${job ? `-${job}` : ''}`;
  const split = gz(readFileSync(`${base}.wasm`)) + gz(readFileSync(`${base}.slim.mjs`));
  const theirs = [];
  for (const [name, src] of peers) {
    const pkg = name.split(' ')[0];
    const b = await bundled(src);
    theirs.push(`${name} ${version(pkg)}: ${b} B (${(b / mine).toFixed(2)}×)`);
  }
  console.log(`| ${label} | ${mine} B | ${split} B | ${theirs.join(', ') || '—'} |`);
}
