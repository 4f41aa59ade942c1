// Properties of the page scan over generated JSON: every row lands once, byte for byte, whatever the layout
// (indentation, CRLF, a BOM), and a page cut short is refused. fc.assert runs inside a plain test so the test's
// name stays the same from run to run (docs/mutation.md: per-test coverage).
import { fc } from '@fast-check/vitest';
import { expect, test } from 'vitest';
import { ndjsonItems, rawTopLevelValue, splitJsonItems, topLevelMembers } from '../../src/http/json-items.js';

// Strings with the characters that end or fake a row boundary: quotes, backslashes, brackets, commas, line breaks.
const awkward = fc
  .array(fc.constantFrom('a', '"', '\\', '{', '}', '[', ']', ',', ':', ' ', '\n', '\r', '\t', 'é', '😀', '\u2028'), {
    maxLength: 8,
  })
  .map((cs) => cs.join(''));
const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    awkward,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(awkward, tie('v'), { maxKeys: 4 }),
  ),
})).v;
const layout = fc.record({ indent: fc.constantFrom(0, 1, 2, '\t'), crlf: fc.boolean(), bom: fc.boolean() });

function render(page: unknown, { indent, crlf, bom }: { indent: number | string; crlf: boolean; bom: boolean }) {
  const text = JSON.stringify(page, null, indent);
  // JSON.stringify escapes line breaks inside strings, so every raw \n here is between tokens.
  return `${bom ? '\uFEFF' : ''}${crlf ? text.replace(/\n/g, '\r\n') : text}`;
}

test('every generated item lands as one line, in order, equal to the item, for any layout', () => {
  fc.assert(
    fc.property(fc.array(value, { maxLength: 8 }), value, layout, (items, extra, how) => {
      const page = { before: extra, items, after: { items: [extra] } };
      const text = render(page, how);
      const { ndjson, rows, envelope } = ndjsonItems(Buffer.from(text, 'utf8'));
      expect(rows).toBe(items.length);
      const out = ndjson.toString('utf8');
      expect(out.endsWith('\n') || items.length === 0).toBe(true);
      const lines = items.length === 0 ? [] : out.slice(0, -1).split('\n');
      expect(lines).toHaveLength(items.length);
      for (const line of lines) expect(line).not.toMatch(/\r/);
      expect(lines.map((l) => JSON.parse(l))).toEqual(JSON.parse(JSON.stringify(items)));
      // Without indentation each line is the item's own text, byte for byte.
      if (how.indent === 0) expect(lines).toEqual(items.map((item) => JSON.stringify(item)));
      expect(envelope).toEqual({ ...JSON.parse(JSON.stringify(page)), items: [] });
      // The text splitter cuts the same rows.
      expect(splitJsonItems(text).items).toEqual(lines);
    }),
    { numRuns: 300 },
  );
});

test('a page cut short anywhere is refused, never read as fewer rows', () => {
  fc.assert(
    fc.property(fc.array(value, { minLength: 1, maxLength: 5 }), layout, fc.nat(), (items, how, at) => {
      const text = render({ items, links: {} }, how);
      const bytes = Buffer.from(text, 'utf8');
      const cut = bytes.subarray(0, at % bytes.length);
      expect(() => ndjsonItems(cut)).toThrow(SyntaxError);
    }),
    { numRuns: 300 },
  );
});

test('a page with one byte removed is refused, or read as JSON.parse reads it', () => {
  fc.assert(
    fc.property(fc.array(value, { minLength: 1, maxLength: 5 }), fc.nat(), (items, at) => {
      const text = JSON.stringify({ items });
      const bytes = Buffer.from(text, 'utf8');
      const k = at % bytes.length;
      const broken = Buffer.concat([bytes.subarray(0, k), bytes.subarray(k + 1)]);
      let parsed: unknown;
      try {
        parsed = JSON.parse(broken.toString('utf8'));
      } catch {
        expect(() => ndjsonItems(broken)).toThrow(SyntaxError);
        return;
      }
      // Still JSON (a digit or a space removed): the rows are what JSON.parse reads.
      const { ndjson, rows } = ndjsonItems(broken);
      const rowsOf = (parsed as { items?: unknown }).items;
      const expected = Array.isArray(rowsOf) ? rowsOf : [];
      expect(rows).toBe(expected.length);
      const lines = rows === 0 ? [] : ndjson.toString('utf8').slice(0, -1).split('\n');
      expect(lines.map((l) => JSON.parse(l))).toEqual(expected);
    }),
    { numRuns: 300 },
  );
});

test('topLevelMembers and rawTopLevelValue give each top-level value verbatim, for any layout', () => {
  fc.assert(
    fc.property(fc.dictionary(awkward, value, { maxKeys: 6 }), layout, (object, how) => {
      const text = render(object, { ...how, bom: false });
      const members = topLevelMembers(text);
      expect(members.map((m) => m.key)).toEqual(Object.keys(object));
      for (const m of members) {
        const raw = text.slice(m.valueStart, m.valueEnd);
        expect(raw).toBe(raw.trim());
        expect(JSON.parse(raw)).toEqual(JSON.parse(JSON.stringify(object[m.key])));
        expect(rawTopLevelValue(text, m.key)).toBe(raw);
        if (how.indent === 0) expect(raw).toBe(JSON.stringify(object[m.key]));
      }
    }),
    { numRuns: 300 },
  );
});

// Any run of JSON whitespace, line breaks mixed with spaces and tabs, as a hand-edited or odd serializer writes it.
const whitespace = fc.array(fc.constantFrom(' ', '\t', '\n', '\r'), { maxLength: 3 }).map((cs) => cs.join(''));
/** The JSON text's tokens (JSON.stringify output: strings are well formed), joined by the given whitespace runs. */
function spaced(text: string, runs: string[]): string {
  const tokens = text.match(/"(?:[^"\\]|\\.)*"|[{}[\],:]|[^"{}[\],:\s]+/g) ?? [];
  return tokens.map((token, k) => (k === 0 ? token : `${runs[k % runs.length]}${token}`)).join('');
}

test('whitespace around and inside an item: the row is the item as sent, its line breaks removed, nothing around it', () => {
  fc.assert(
    fc.property(
      fc.array(value, { minLength: 1, maxLength: 6 }),
      fc.array(whitespace, { minLength: 1, maxLength: 7 }),
      fc.array(whitespace, { minLength: 4, maxLength: 4 }),
      (items, inside, around) => {
        const [afterOpen, beforeComma, afterComma, beforeClose] = around as [string, string, string, string];
        const texts = items.map((item) => spaced(JSON.stringify(item), inside));
        const page = `{"items":[${afterOpen}${texts.join(`${beforeComma},${afterComma}`)}${beforeClose}]}`;
        const { ndjson, rows } = ndjsonItems(Buffer.from(page, 'utf8'));
        expect(rows).toBe(items.length);
        // Inside an item, a line break is removed (a row is one line) and every other byte kept; raw line breaks
        // never occur inside a JSON string, so what is removed is whitespace between tokens.
        expect(ndjson.toString('utf8')).toBe(texts.map((t) => `${t.replace(/[\r\n]/g, '')}\n`).join(''));
      },
    ),
    { numRuns: 300 },
  );
});
