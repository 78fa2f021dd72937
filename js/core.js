// Loader and memory helpers for the wasm core. The module is a standalone
// reactor: its only import is env.emscripten_notify_memory_growth, and
// _initialize() runs once after instantiation. Nothing here decides policy.
import { SwitchboardError } from './errors.js';
import { loadWasmBytes } from './wasm-source.js';
import { WASM_ABI } from './constants.js';

const SCRATCH_KEEP = 1 << 20;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let corePromise = null;
let coreInstance = null;

class Core {
  #u8; #scratch; #scratchSize;
  constructor(instance, memory) {
    /** raw wasm exports: core.fn.sb_gzip_create() … */
    this.fn = instance.exports;
    this.memory = instance.exports.memory || memory; // the relay's core imports its memory
    this.#u8 = new Uint8Array(this.memory.buffer);
    this.#scratch = 0;
    this.#scratchSize = 0;
  }

  /** A Uint8Array over the whole heap; re-read after any call that can grow memory. */
  heap() {
    if (this.#u8.buffer !== this.memory.buffer) this.#u8 = new Uint8Array(this.memory.buffer);
    return this.#u8;
  }

  /** Pointer to a reusable scratch area of at least n bytes (valid until the next scratch()). */
  scratch(n) {
    // After one big call, give the memory back to the allocator at the next
    // small one (wasm memory itself never shrinks, but it can be reused).
    if (this.#scratchSize > SCRATCH_KEEP && n <= SCRATCH_KEEP) {
      this.fn.free(this.#scratch);
      this.#scratch = 0;
      this.#scratchSize = 0;
    }
    if (n > this.#scratchSize) {
      if (this.#scratch) this.fn.free(this.#scratch);
      const size = Math.max(n, 4096, this.#scratchSize * 2);
      const p = this.fn.malloc(size);
      if (!p) { this.#scratch = 0; this.#scratchSize = 0; throw new SwitchboardError('NO_MEMORY', 'wasm heap exhausted'); }
      this.#scratch = p;
      this.#scratchSize = size;
    }
    return this.#scratch;
  }

  /** Copy bytes into scratch; returns the pointer. */
  writeBytes(bytes) {
    // A view into the heap (e.g. a previous result) would be clobbered or
    // detached by the allocation below: copy it out first.
    if (bytes.buffer === this.memory.buffer) bytes = bytes.slice();
    const p = this.scratch(bytes.length);
    this.heap().set(bytes, p);
    return p;
  }

  /** UTF-8 encode a string straight into scratch; returns [ptr, byteLength]. */
  writeString(str) {
    // 3 bytes per UTF-16 unit is the worst case; for big strings measure
    // instead of reserving 3x.
    if (str.length > SCRATCH_KEEP) {
      const bytes = encoder.encode(str);
      return [this.writeBytes(bytes), bytes.length];
    }
    const max = str.length * 3;
    const p = this.scratch(max);
    const { written } = encoder.encodeInto(str, this.heap().subarray(p, p + max));
    return [p, written];
  }

  /** Copy out of the heap. */
  readBytes(ptr, len) {
    return this.heap().slice(ptr, ptr + len);
  }

  /** A view into the heap, no copy: use it before the next call into the core. */
  view(ptr, len) {
    return this.heap().subarray(ptr, ptr + len);
  }

  readString(ptr, len) {
    return decoder.decode(this.heap().subarray(ptr, ptr + len));
  }

  /** NUL-terminated C string. */
  cstr(ptr) {
    const h = this.heap();
    let end = ptr;
    while (h[end]) end++;
    return decoder.decode(h.subarray(ptr, end));
  }

  /** Throw a SwitchboardError for a negative sb_err; pass other values through. */
  check(rc, context) {
    if (rc >= 0) return rc;
    throw this.error(rc, context);
  }

  error(rc, context) {
    const code = /** @type {import('./index.d.ts').SwitchboardErrorCode} */ (this.cstr(this.fn.sb_errname(rc)));
    const msg = this.cstr(this.fn.sb_strerror(rc));
    return new SwitchboardError(code, context ? `${context}: ${msg}` : msg);
  }
}

async function instantiate(opts) {
  const source = await loadWasmBytes(opts);
  let memoryGrew = () => {};
  const imports = { env: { emscripten_notify_memory_growth: () => memoryGrew(), memory: opts.memory } };
  let instance;
  if (source instanceof WebAssembly.Module) {
    instance = await WebAssembly.instantiate(source, imports);
  } else if (typeof Response !== 'undefined' && source instanceof Response) {
    if (WebAssembly.instantiateStreaming) {
      try {
        ({ instance } = await WebAssembly.instantiateStreaming(source.clone(), imports));
      } catch {
        // Served with the wrong MIME type: fall back to bytes.
        ({ instance } = await WebAssembly.instantiate(await source.arrayBuffer(), imports));
      }
    } else {
      ({ instance } = await WebAssembly.instantiate(await source.arrayBuffer(), imports));
    }
  } else {
    ({ instance } = await WebAssembly.instantiate(source, imports));
  }
  const abi = instance.exports.sb_wasm_abi ? /** @type {() => number} */ (instance.exports.sb_wasm_abi)() : -1;
  if (abi !== WASM_ABI) {
    throw new SwitchboardError('BAD_VERSION', `switchboard.wasm ABI ${abi}, this glue needs ${WASM_ABI}`);
  }
  /** @type {() => void} */ (instance.exports._initialize)();
  const core = new Core(instance, opts.memory);
  memoryGrew = () => { core.heap(); };
  return core;
}

/**
 * Load the wasm core once. Idempotent: later calls return the same promise.
 * @param {{wasmURL?: string|URL, wasmBinary?: ArrayBuffer|Uint8Array, wasmModule?: WebAssembly.Module}} [opts]
 */
export function init(opts = {}) {
  if (!corePromise) {
    corePromise = instantiate(opts).then(
      (c) => { coreInstance = c; },
      (e) => { corePromise = null; throw e; },
    );
  }
  return corePromise;
}

/**
 * A core of its own, apart from the one init() loads for the glue: the
 * relay runs its sessions on one (its own heap; with opts.memory, a
 * WebAssembly.Memory for a core that imports it, dist/switchboard-relay.wasm).
 * @param {{wasmURL?: string|URL, wasmBinary?: ArrayBuffer|Uint8Array, wasmModule?: WebAssembly.Module, memory?: WebAssembly.Memory}} [opts]
 */
export function createCore(opts = {}) {
  return instantiate(opts);
}

/** The loaded core; throws NOT_INITIALIZED before `await init()`. */
export function core() {
  if (!coreInstance) throw new SwitchboardError('NOT_INITIALIZED', 'call `await switchboard.init()` first');
  return coreInstance;
}

/** Accept string | ArrayBuffer | ArrayBufferView and return bytes (no copy when possible). */
export function toBytes(data) {
  if (typeof data === 'string') return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && data instanceof SharedArrayBuffer)) return new Uint8Array(data);
  throw new SwitchboardError('INVALID', 'expected a string, ArrayBuffer or TypedArray');
}

export { SwitchboardError };
