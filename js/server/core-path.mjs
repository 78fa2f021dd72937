// Where the relay finds its core (the whole export list on a memory the
// relay gives it, its budget: CMakeLists.txt), relative to this file: in the
// repository js/server/ -> dist/switchboard-relay.wasm. The package's bundle
// (dist/switchboard-server.mjs, .ci/bundle.mjs) replaces this module with
// one that points beside itself, at dist/switchboard-relay.wasm too.
export const WHOLE_CORE = new URL('../../dist/switchboard-relay.wasm', import.meta.url);
