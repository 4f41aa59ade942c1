// A row's top-level members as the API sent them: keys lower-cased (first wins), strings decoded, numbers and
// nested values kept as their exact text, for any valid JSON object and any whitespace; anything else refused.
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { DatasetRowError, type RawValue, rowMembers } from '../../src/dataset/rows.js';

const key = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('Id', 'id', 'ID', 'total"For\\Customer', 'é', '0', '12'),
);
const space = fc.constantFrom('', ' ', '\t', '\r\n', '  \n ');
/** A number as an API may write it: more digits than a double holds, exponents, negative zero. */
const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.stringMatching(/^-?(0|[1-9]\d{0,30})(\.\d{1,30})?([eE][+-]?\d{1,3})?$/),
);
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => ({ text: JSON.stringify(v, null, 1), parsed: v })),
  numberText.map((t) => ({ text: t, parsed: 'number' as const })),
);

function expected(text: string, parsed: unknown): RawValue {
  if (parsed === 'number') return { kind: 'number', text };
  if (parsed === null) return { kind: 'null' };
  if (typeof parsed === 'string') return { kind: 'string', value: parsed };
  if (typeof parsed === 'boolean') return { kind: 'boolean', text };
  if (typeof parsed === 'number') return { kind: 'number', text };
  return { kind: 'json', text };
}

describe('rowMembers', () => {
  test.prop([fc.array(fc.tuple(key, value, space, space), { maxLength: 12 }), space], { numRuns: 500 })(
    'cuts every member from any valid object exactly as written',
    (entries, outer) => {
      const line = `${outer}{${outer}${entries
        .map(([k, v, a, b]) => `${JSON.stringify(k)}${a}:${b}${v.text}${a}`)
        .join(`,${outer}`)}}${outer}`;
      const want = new Map<string, RawValue>();
      for (const [k, v] of entries) {
        if (!want.has(k.toLowerCase())) want.set(k.toLowerCase(), expected(v.text, v.parsed));
      }
      expect(rowMembers(line)).toEqual(want);
    },
  );

  test.each(['[1,2]', '"text"', '12', 'null', '{"a":1', '{"a":1}{"b":2}', '{"a":01}', "{'a':1}", '{"a":1,}'])(
    '%s is refused',
    (line) => {
      expect(() => rowMembers(line)).toThrow(DatasetRowError);
    },
  );
});
