// The peers of the browser benches, as the pages load them: each package's
// import bundled by esbuild (the dev dependency installed here, ES2022,
// browser conditions) into one ES module, served to the page at
// /__peer/<name>.js by a Playwright route. bench/size.mjs measures the same
// imports minified and gzipped.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** name -> [npm package, the import an app writes] */
export const PEERS = {
  'socket.io-client': ['socket.io-client', "export { io } from 'socket.io-client';"],
  partysocket: ['partysocket', "export { WebSocket } from 'partysocket';"],
  'broadcast-channel': ['broadcast-channel', "export { BroadcastChannel, createLeaderElection } from 'broadcast-channel';"],
  'fetch-event-source': ['@microsoft/fetch-event-source', "export { fetchEventSource } from '@microsoft/fetch-event-source';"],
  eventsource: ['eventsource', "export { EventSource } from 'eventsource';"],
};

const cache = new Map();

/** The bundled module of a peer, as text. */
export async function peerModule(name, { minify = false } = {}) {
  const key = `${name}:${minify}`;
  if (!cache.has(key)) {
    const r = await build({
      stdin: { contents: PEERS[name][1], resolveDir: root, sourcefile: `${name}.js` },
      bundle: true, minify, format: 'esm', target: 'es2022', platform: 'browser',
      write: false, logLevel: 'silent',
    });
    cache.set(key, r.outputFiles[0].text);
  }
  return cache.get(key);
}

/** Serve the named peers to every page of a context at /__peer/<name>.js. */
export async function routePeers(context, names) {
  const bodies = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await peerModule(n)])));
  await context.route('**/__peer/*.js', (route) => {
    const name = decodeURIComponent(/__peer\/([^/]+)\.js/.exec(route.request().url())[1]);
    if (!(name in bodies)) return route.fulfill({ status: 404, body: 'no such peer' });
    return route.fulfill({ status: 200, contentType: 'text/javascript', body: bodies[name] });
  });
}

/** The version of a peer's package installed here. */
export async function peerVersion(name) {
  const { createRequire } = await import('node:module');
  const req = createRequire(`${root}package.json`);
  const pkg = PEERS[name][0];
  try {
    return req(`${pkg}/package.json`).version;
  } catch {
    // packages whose exports map hides package.json
    const { readFileSync } = await import('node:fs');
    return JSON.parse(readFileSync(`${root}node_modules/${pkg}/package.json`, 'utf8')).version;
  }
}
