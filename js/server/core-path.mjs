// Where the relay finds the whole core, relative to this file: in the
// repository js/server/ -> dist/switchboard.wasm. The package's bundle
// (dist/switchboard-server.mjs, .ci/bundle.mjs) replaces this module with
// one that points beside itself, at dist/switchboard.wasm too.
export const WHOLE_CORE = new URL('../../dist/switchboard.wasm', import.meta.url);
