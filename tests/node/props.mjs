// Seeded generators and a property runner for the glue property tests
// (tests/node/*-props.test.mjs). Every run is reproducible from its seed:
// SB_PROP_SEED=<n> replays one, SB_PROP_RUNS=<n> changes how many runs a
// property makes. A failure names the property, the run and the seed.

/** mulberry32: a small, fast, seedable PRNG with helpers for generators. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    seed,
    float: next,
    int: (n) => Math.floor(next() * n),                 // 0 .. n-1
    range: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    bool: (p = 0.5) => next() < p,
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    bytes: (n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256); return b; },
    /** Strings that stress UTF-8 and JSON: ASCII, quotes, escapes, BMP, astral, lone surrogates. */
    string: (max = 12) => {
      const parts = ['a', 'Z', '0', ' ', '"', '\\', '\n', '\u0000', 'é', '✓', '😀', '\ud800', '{', '}', ':', ','];
      let s = '';
      const n = Math.floor(next() * (max + 1));
      for (let i = 0; i < n; i++) s += parts[Math.floor(next() * parts.length)];
      return s;
    },
  };
  /** A random JSON-able value (depth-bounded). */
  r.json = (depth = 2) => {
    switch (r.int(depth > 0 ? 7 : 5)) {
      case 0: return null;
      case 1: return r.bool();
      case 2: return r.pick([0, -1, 1.5, 2 ** 53, -(2 ** 31), r.int(1000)]);
      case 3: return r.string();
      case 4: return r.string(3);
      case 5: return Array.from({ length: r.int(4) }, () => r.json(depth - 1));
      default: return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.string(4), r.json(depth - 1)]));
    }
  };
  /** One mutation of valid bytes: flip, set, insert, delete, truncate, extend, splice, duplicate. */
  r.mutate = (src, others = []) => {
    let b = Array.from(src);
    const rounds = 1 + r.int(3);
    for (let k = 0; k < rounds; k++) {
      const i = b.length ? r.int(b.length) : 0;
      switch (r.int(9)) {
        case 0: if (b.length) b[i] ^= 1 << r.int(8); break;
        case 1: if (b.length) b[i] = r.pick([0, 0x7f, 0x80, 0xff, r.int(256)]); break;
        case 2: b.splice(i, 0, r.int(256)); break;
        case 3: b.splice(i, 1 + r.int(3)); break;
        case 4: b = b.slice(0, i); break;
        case 5: b = b.concat(Array.from(r.bytes(1 + r.int(8)))); break;
        case 6: if (others.length) { const o = Array.from(r.pick(others)); b = b.slice(0, i).concat(o.slice(r.int(o.length + 1))); } break;
        case 7: b = b.concat(b.slice(0, 1 + r.int(Math.max(1, b.length)))); break;
        default: b.splice(i, 0, 0xff, 0xff, 0xff, 0xff, 0x0f); break; // an over-long varint
      }
    }
    return new Uint8Array(b);
  };
  return r;
}

const envRuns = Number(process.env.SB_PROP_RUNS) || 0;
const envSeed = process.env.SB_PROP_SEED !== undefined ? Number(process.env.SB_PROP_SEED) >>> 0 : null;

/**
 * Run `fn(rng, run)` `runs` times with seeds derived from one base seed
 * (random unless SB_PROP_SEED is set; then only that seed runs). A failure
 * is rethrown with the seed that reproduces it.
 */
export async function property(name, runs, fn) {
  const base = envSeed ?? ((Date.now() ^ (process.pid << 8)) >>> 0);
  const seeds = envSeed !== null ? [envSeed] : Array.from({ length: envRuns || runs }, (_, i) => (base + i * 0x9e3779b9) >>> 0);
  for (let i = 0; i < seeds.length; i++) {
    try {
      await fn(rng(seeds[i]), i);
    } catch (e) {
      const msg = `property "${name}" failed on run ${i + 1}/${seeds.length}: reproduce with SB_PROP_SEED=${seeds[i]}`;
      console.error(msg);
      throw Object.assign(new Error(`${msg}\n${e?.stack || e}`), { cause: e });
    }
  }
}

/**
 * Collect every uncaught exception and unhandled rejection of the process
 * from now on; `check()` asserts there were none (and keeps watching).
 */
export function watchUncaught() {
  const seen = [];
  const onErr = (e) => seen.push(e);
  process.on('uncaughtException', onErr);
  process.on('unhandledRejection', onErr);
  return {
    seen,
    check(context = '') {
      if (seen.length) {
        const e = seen.splice(0);
        throw new Error(`${e.length} uncaught exception(s)/unhandled rejection(s) ${context}: ${e.map((x) => x?.stack || String(x)).join('\n---\n')}`);
      }
    },
    stop() { process.off('uncaughtException', onErr); process.off('unhandledRejection', onErr); },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wait for a condition (a bound on waiting, not an assertion about time). */
export async function until(cond, what = 'condition', ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

export function varint(v) {
  const out = [];
  while (v >= 128) { out.push((v % 128) + 128); v = Math.floor(v / 128); }
  out.push(v);
  return out;
}

export function readVar(buf, pos) {
  let v = 0; let mul = 1; let b;
  do { b = buf[pos.i++]; v += (b & 0x7f) * mul; mul *= 128; } while (b & 0x80);
  return v;
}
