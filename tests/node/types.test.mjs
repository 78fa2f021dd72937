// Types that check (docs/decisions.md, "Files by job and class, types
// checked against the glue, one API convention"):
// tsc over js/*.js against js/*.d.ts (.ci/typecheck.mjs), and the
// SwitchboardErrorCode union of js/index.d.ts against the C error enum and
// the codes the glue raises.
import test from 'node:test';
import assert from 'node:assert/strict';
import ts from 'typescript';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { typecheck, counted } from '../../.ci/typecheck.mjs';
import { ErrorCode } from '../../js/constants.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function unionMembers() {
  const file = join(root, 'js/index.d.ts');
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const alias = sf.statements.find((s) => ts.isTypeAliasDeclaration(s) && s.name.text === 'SwitchboardErrorCode');
  assert.ok(alias, 'js/index.d.ts declares SwitchboardErrorCode');
  assert.ok(ts.isUnionTypeNode(alias.type), 'SwitchboardErrorCode is a union');
  return alias.type.types.map((t) => {
    assert.ok(ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal), `a member that is not a string literal: ${t.getText(sf)}`);
    return t.literal.text;
  });
}

// Every glue source, the relay's included; constants.js is generated.
function glueSources() {
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (/\.(m?js)$/.test(e.name) && e.name !== 'constants.js') out.push(readFileSync(join(dir, e.name), 'utf8'));
    }
  };
  walk(join(root, 'js'));
  return out.join('\n');
}

test('SwitchboardErrorCode starts with the C core\'s codes, in enum sb_err\'s order', () => {
  const members = unionMembers();
  const core = Object.keys(ErrorCode).filter((k) => ErrorCode[k] < 0); // OK is no error
  assert.deepEqual(members.slice(0, core.length), core);
});

test('the rest of SwitchboardErrorCode is exactly the codes the glue raises itself', () => {
  const members = new Set(unionMembers());
  const core = new Set(Object.keys(ErrorCode).filter((k) => ErrorCode[k] < 0));
  const src = glueSources();
  // Codes the glue names: the literals in SwitchboardError's first argument
  // (new SwitchboardError('X', …), or a conditional: a ? 'X' : 'Y').
  const raised = new Set([...src.matchAll(/SwitchboardError\(([^,]*),/g)]
    .flatMap((m) => [...m[1].matchAll(/'([A-Z][A-Z_]*)'/g)].map((x) => x[1])));
  for (const code of raised) assert.ok(members.has(code), `the glue raises ${code}, which SwitchboardErrorCode lacks`);
  for (const code of members) {
    if (!core.has(code)) assert.ok(raised.has(code), `SwitchboardErrorCode lists ${code}, which neither the C core nor the glue raises`);
  }
});

test('tsc: js/*.js type-checks, and implements js/*.d.ts (.ci/typecheck.mjs)', () => {
  const problems = counted(typecheck());
  assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
});
