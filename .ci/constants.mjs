// Writes js/constants.js from the C headers, so the glue never restates a
// number the core defines (docs/decisions.md, "Constants generated once").
//
//   node .ci/constants.mjs [SRC_DIR [OUT_FILE]]     default: src/ -> js/constants.js
//
// From src/*.h it takes
//   - every tagged enum: one frozen object, prefix stripped (enum sb_frame_flag
//     -> FrameFlag.BINARY), and one plain export per member, the C name
//     without SB_ (FRAME_F_BINARY), which esbuild inlines as a literal, so a
//     bundle pays nothing for the names; members ending in `_` (counts, masks,
//     SB_E_LAST_) are left out;
//   - enum sb_err as ErrorCode / E_<NAME> and errorName (number -> name), after
//     checking that its names, SB_E_ dropped, are exactly the strings of the
//     sb_errors[] table in src/switchboard.c, in order (the build stops if not);
//   - `#define SB_<NAME> <integer or "string">` (header guards, markers and
//     expressions are skipped) as <NAME>;
//   - each struct declared `SB_LAYOUT typedef struct sb_x {...}` (fixed-width
//     fields only): the byte offset of every field, natural alignment as on
//     wasm32, as X_<FIELD> and X.FIELD, and its size as X_SIZE. The .c files
//     assert the layouts (_Static_assert) and tests/node/constants.test.mjs
//     reads real core output at these offsets.
// The file is rewritten only when its text changes (CMake watches js/*.js).
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));

class GenError extends Error {}
const fail = (msg) => { throw new GenError(msg); };

// Comments out, string literals kept as they are ("wss://..." is no comment).
const stripComments = (s) => s.replace(/("(?:[^"\\\n]|\\.)*")|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (m, str) => str ?? ' ');
const camel = (tag) => tag.replace(/^sb_/, '').split('_').map((w) => w[0].toUpperCase() + w.slice(1)).join('');

function intValue(text, where) {
  const t = text.trim();
  const m = /^(-)?\s*(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$/.exec(t);
  if (!m) fail(`${where}: cannot evaluate ${JSON.stringify(t)} (only integer literals are supported)`);
  const v = Number(m[2]) * (m[1] ? -1 : 1);
  if (!Number.isSafeInteger(v)) fail(`${where}: ${t} is not a safe integer`);
  return v;
}

// The member names without what they all share, up to an underscore:
// SB_FRAME_F_COMPRESSED, SB_FRAME_F_SHARED -> COMPRESSED, SHARED.
function commonPrefix(names) {
  if (names.length === 1) return names[0].slice(0, names[0].lastIndexOf('_') + 1);
  let p = names[0];
  for (const n of names) while (!n.startsWith(p)) p = p.slice(0, -1);
  return p.slice(0, p.lastIndexOf('_') + 1);
}

function parseEnums(text, file) {
  const out = [];
  for (const m of text.matchAll(/\benum\s+(\w+)?\s*\{([^}]*)\}/g)) {
    const tag = m[1];
    if (!tag) fail(`${file}: an anonymous enum; give it a tag (enum sb_<name>) so it has a name in JS`);
    let next = 0;
    const members = [];
    for (const part of m[2].split(',').map((s) => s.trim()).filter(Boolean)) {
      const [, name, value] = /^(\w+)\s*(?:=\s*(.+))?$/s.exec(part) || fail(`${file}: enum ${tag}: cannot read ${JSON.stringify(part)}`);
      const v = value === undefined ? next : intValue(value, `${file}: ${name}`);
      next = v + 1;
      members.push({ name, value: v });
    }
    out.push({ tag, file, members });
  }
  return out;
}

function parseDefines(text, file) {
  const out = [];
  for (const m of text.matchAll(/^[ \t]*#[ \t]*define[ \t]+(SB_\w+)[ \t]+([^\n]+)$/gm)) {
    const value = m[2].trim();
    if (/^"(?:[^"\\]|\\.)*"$/.test(value)) out.push({ name: m[1], value: JSON.parse(value), file });
    else if (/^-?(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$/.test(value)) out.push({ name: m[1], value: intValue(value, `${file}: ${m[1]}`), hex: /^0[xX]/.test(value), file });
    // anything else (an expression) is C's business
  }
  return out;
}

const WIDTH = { uint8_t: 1, int8_t: 1, uint16_t: 2, int16_t: 2, uint32_t: 4, int32_t: 4, uint64_t: 8, int64_t: 8, float: 4, double: 8 };

function parseLayouts(text, file) {
  const out = [];
  for (const m of text.matchAll(/\bSB_LAYOUT\s+typedef\s+struct\s+(\w+)\s*\{([^}]*)\}/g)) {
    const tag = m[1];
    let off = 0;
    let align = 1;
    const fields = [];
    for (const decl of m[2].split(';').map((s) => s.trim()).filter(Boolean)) {
      const [, type, names] = /^(\w+)\s+(.+)$/s.exec(decl) || fail(`${file}: struct ${tag}: cannot read ${JSON.stringify(decl)}`);
      const w = WIDTH[type] || fail(`${file}: struct ${tag}: field type ${type} is not fixed-width (${Object.keys(WIDTH).join(', ')})`);
      for (const n of names.split(',').map((s) => s.trim())) {
        if (!/^\w+$/.test(n)) fail(`${file}: struct ${tag}: cannot read field ${JSON.stringify(n)} (no arrays or bit-fields)`);
        off = Math.ceil(off / w) * w;
        fields.push({ name: n, offset: off });
        off += w;
        align = Math.max(align, w);
      }
    }
    out.push({ tag, file, fields, size: Math.ceil(off / align) * align });
  }
  if (/\bSB_LAYOUT\b(?!\s+typedef\s+struct)/.test(text.replace(/#\s*define\s+SB_LAYOUT\b/, ''))) {
    fail(`${file}: SB_LAYOUT must be followed by "typedef struct sb_<name> {"`);
  }
  return out;
}

// The stable names of src/switchboard.c's sb_errors[] table, in order.
function errorTable(srcDir) {
  const file = join(srcDir, 'switchboard.c');
  const text = stripComments(readFileSync(file, 'utf8'));
  const m = /\bsb_errors\s*\[\s*\]\s*=\s*\{([\s\S]*?)\};/.exec(text) || fail(`${file}: no sb_errors[] table`);
  return [...m[1].matchAll(/\{\s*"([^"]*)"\s*,/g)].map((x) => x[1]);
}

function checkErrors(en, table) {
  const where = `enum sb_err (${en.file}) and sb_errors[] (switchboard.c)`;
  const members = en.members.filter((x) => !x.name.endsWith('_'));
  const last = en.members.find((x) => x.name === 'SB_E_LAST_');
  const problems = [];
  members.forEach((x, i) => {
    const name = x.name.replace(/^SB_(E_)?/, '');
    if (x.value !== -i) problems.push(`${x.name} is ${x.value}, expected ${-i} (codes are 0, -1, -2, ... in order)`);
    if (table[i] === undefined) problems.push(`${x.name} = ${x.value} has no sb_errors[${i}] entry`);
    else if (table[i] !== name) problems.push(`${x.name} = ${x.value} is named "${name}" in JS, but sb_errors[${i}] says "${table[i]}"`);
  });
  for (let i = members.length; i < table.length; i++) problems.push(`sb_errors[${i}] "${table[i]}" has no enum member`);
  if (!last || last.value !== -members.length) problems.push(`SB_E_LAST_ must be ${-members.length}`);
  if (problems.length) fail(`${where} disagree:\n  ${problems.join('\n  ')}`);
}

export function generate(srcDir = join(root, 'src')) {
  const headers = readdirSync(srcDir).filter((f) => f.endsWith('.h')).sort();
  if (!headers.length) fail(`${srcDir}: no headers`);
  const enums = [];
  const defines = [];
  const layouts = [];
  for (const h of headers) {
    const raw = readFileSync(join(srcDir, h), 'utf8');
    const text = stripComments(raw);
    enums.push(...parseEnums(text, h));
    defines.push(...parseDefines(text, h));
    layouts.push(...parseLayouts(text, h));
  }
  const err = enums.find((e) => e.tag === 'sb_err') || fail('no enum sb_err in src/*.h');
  const table = errorTable(srcDir);
  checkErrors(err, table);

  // Every plain export comes before the first object: esbuild inlines a
  // constant from another module only if no code (a call, even a pure one)
  // runs before its declaration, and the objects are calls.
  const names = new Map(); // export name -> where it comes from, to refuse a clash
  const lines = [];
  const objects = [];
  const exp = (name, value, from, to = lines) => {
    if (names.has(name)) fail(`js/constants.js: ${name} from ${from} clashes with ${names.get(name)}`);
    if (!/^[A-Za-z_$][\w$]*$/.test(name)) fail(`${from}: ${name} is not a JS name`);
    names.set(name, from);
    to.push(`export const ${name} = ${value};`);
  };
  const lit = (v, hex) => (typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : hex ? `0x${v.toString(16)}` : String(v));
  const frozen = (pairs) => `/* @__PURE__ */ Object.freeze({ ${pairs.map(([k, v]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : `'${k}'`}: ${v}`).join(', ')} })`;

  for (const e of enums) {
    const from = `enum ${e.tag} (src/${e.file})`;
    const members = e.members.filter((x) => !x.name.endsWith('_'));
    if (!members.length) continue;
    lines.push('', `// ${from}`);
    const isErr = e === err;
    const prefix = isErr ? null : commonPrefix(members.map((x) => x.name));
    const key = (n) => (isErr ? n.replace(/^SB_(E_)?/, '') : n.slice(prefix.length));
    for (const x of members) exp(x.name.replace(/^SB_/, ''), lit(x.value), from);
    objects.push('', `// ${from}`);
    exp(isErr ? 'ErrorCode' : camel(e.tag), frozen(members.map((x) => [key(x.name), lit(x.value)])), from, objects);
    if (isErr) {
      exp('errorName', frozen(members.map((x) => [String(x.value), lit(key(x.name))])), `${from}, sb_errors[] (src/switchboard.c)`, objects);
    }
  }
  const defs = defines.filter((d) => !/_H$/.test(d.name));
  if (defs.length) lines.push('', '// #define SB_<NAME> (src/*.h)');
  for (const d of defs) exp(d.name.replace(/^SB_/, ''), lit(d.value, d.hex), `#define ${d.name} (src/${d.file})`);
  for (const l of layouts) {
    const from = `struct ${l.tag} (src/${l.file})`;
    const up = l.tag.replace(/^sb_/, '').toUpperCase();
    lines.push('', `// ${from}: byte offsets, ${l.size} bytes`);
    for (const f of l.fields) exp(`${up}_${f.name.toUpperCase()}`, String(f.offset), from);
    exp(`${up}_SIZE`, String(l.size), from);
    objects.push('', `// ${from}: byte offsets`);
    exp(camel(l.tag), frozen(l.fields.map((f) => [f.name.toUpperCase(), String(f.offset)])), from, objects);
  }
  return '// Generated by `node .ci/constants.mjs` from src/*.h and src/switchboard.c:\n' +
    '// do not edit, and do not commit (it is a build output). What each form\n' +
    '// means: .ci/constants.mjs; why: docs/decisions.md.\n' + lines.join('\n') +
    '\n\n// ---- the same, one frozen object per enum and per struct ----\n' + objects.join('\n') + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [srcDir = join(root, 'src'), out = join(root, 'js', 'constants.js')] = process.argv.slice(2);
  let text;
  try {
    text = generate(srcDir);
  } catch (e) {
    if (!(e instanceof GenError)) throw e;
    console.error(`constants: ${e.message}`);
    process.exit(1);
  }
  const shown = relative(process.cwd(), out) || out;
  if (existsSync(out) && readFileSync(out, 'utf8') === text) {
    console.log(`constants: ${shown} is current`);
  } else {
    writeFileSync(out, text);
    console.log(`constants: wrote ${shown}`);
  }
}
