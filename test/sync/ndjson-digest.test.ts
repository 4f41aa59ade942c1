// The read-back's measure of a stored NDJSON file, however the download cuts it into chunks: the same SHA-256,
// bytes, line count and exact amount total as the file taken whole, for billing and usage rows, rows without an
// amount, multi-byte characters at chunk edges, and the empty file ("$0": zero, not nothing).
import { createHash } from 'node:crypto';
import { fc } from '@fast-check/vitest';
import { describe, expect, test } from 'vitest';
import { amountText, Decimal } from '../../src/money.js';
import { NdjsonDigest } from '../../src/sync/export/verify.js';

const FIELDS = {
  billing: ['totalForCustomer', 'TotalForCustomer', 'postTaxTotal', 'amount'],
  usage: ['billingPreTaxTotal', 'BillingPreTaxTotal', 'preTaxCharges'],
} as const;
type LineItemType = keyof typeof FIELDS;

const amount = fc.stringMatching(/^-?(0|[1-9]\d{0,12})(\.\d{1,9})?$/);
const text = fc.string({ unit: fc.constantFrom('a', 'é', '€', '𝄞', '"', '\\', ' ', 'Z'), maxLength: 20 });

/** A row: its amount (in one field the type reads, as a number or a numeric string) or none, and some text. */
const row = (type: LineItemType) =>
  fc.record({
    field: fc.constantFrom(...FIELDS[type]),
    amount: fc.option(amount, { nil: undefined }),
    quoted: fc.boolean(),
    note: text,
  });

function render(rows: { field: string; amount?: string; quoted: boolean; note: string }[]): Buffer {
  const lines = rows.map(({ field, amount: a, quoted, note }) => {
    const value = a === undefined ? '' : `,"${field}":${quoted ? `"${a}"` : a}`;
    return `{"description":${JSON.stringify(note)}${value},"quantity":1}\n`;
  });
  return Buffer.from(lines.join(''), 'utf8');
}

/** Cut `bytes` at the given fractions of its length (edges may fall inside a multi-byte character). */
function chunks(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of at) {
    out.push(bytes.subarray(from, cut));
    from = cut;
  }
  out.push(bytes.subarray(from));
  return out;
}

describe('NdjsonDigest', () => {
  // fc.assert inside a plain test (not test.prop, whose name carries the run's seed): the name stays the same from
  // run to run, so a record of which test covers which line stays valid.
  for (const type of ['billing', 'usage'] as const) {
    test(`${type}: any chunking gives the file's own hash, lines and exact total`, () => {
      fc.assert(
        fc.property(
          fc.array(row(type), { maxLength: 30 }),
          fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
          (rows, cuts) => {
            const bytes = render(rows);
            const digest = new NdjsonDigest(type);
            for (const chunk of chunks(bytes, cuts)) digest.update(chunk);
            const result = digest.digest();
            expect(result.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
            expect(result.bytes).toBe(bytes.length);
            expect(result.lines).toBe(rows.length);
            const amounts = rows.flatMap((r) => (r.amount === undefined ? [] : [new Decimal(r.amount)]));
            const expected =
              rows.length === 0
                ? '0'
                : amounts.length === 0
                  ? undefined
                  : amountText(amounts.reduce((a, b) => a.plus(b)));
            expect(result.total).toBe(expected);
            // The field named is the one the first row with an amount used (as that row spells it).
            expect(result.totalField).toBe(rows.find((r) => r.amount !== undefined)?.field);
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  /** The digest of `parts`, fed one by one as chunks. */
  const digestOf = (type: string, ...parts: string[]) => {
    const digest = new NdjsonDigest(type);
    for (const part of parts) digest.update(Buffer.from(part, 'utf8'));
    return digest.digest();
  };

  test('each total field of each type, by itself; an unknown type reads the billing fields', () => {
    expect(digestOf('billing', '{"postTaxTotal":2}\n')).toMatchObject({ total: '2', totalField: 'postTaxTotal' });
    expect(digestOf('billing', '{"amount":"3"}\n')).toMatchObject({ total: '3', totalField: 'amount' });
    expect(digestOf('usage', '{"billingPreTaxTotal":4}\n')).toMatchObject({ total: '4' });
    expect(digestOf('usage', '{"PreTaxCharges":5}\n')).toMatchObject({ total: '5', totalField: 'PreTaxCharges' });
    expect(digestOf('usage', '{"totalForCustomer":6}\n').total).toBeUndefined();
    expect(digestOf('tax', '{"TotalForCustomer":7}\n')).toMatchObject({ total: '7', totalField: 'TotalForCustomer' });
  });

  test('a chunk that ends on a line break carries nothing; a line across three chunks is one line', () => {
    expect(digestOf('billing', '{"amount":1}\n', '{"amount":2}\n')).toMatchObject({ lines: 2, total: '3' });
    expect(digestOf('billing', '{"amount":1}\n{"am', 'ount":2', '0}\n{"amount":3}\n')).toMatchObject({
      lines: 3,
      total: '24',
    });
    // The carried start of a line must not be read again once a later chunk completed it.
    expect(digestOf('billing', '{"amount":1', '}\n{"amount":2}\n', '\n')).toMatchObject({ lines: 2, total: '3' });
  });

  test('an empty file adds up to zero; a file whose rows carry no amount adds up to nothing', () => {
    const empty = new NdjsonDigest('billing');
    expect(empty.digest()).toMatchObject({ lines: 0, bytes: 0, total: '0' });
    const none = new NdjsonDigest('usage');
    none.update(Buffer.from('{"totalForCustomer":5}\n{"quantity":2}\n'));
    const result = none.digest();
    expect(result.lines).toBe(2);
    expect(result.total).toBeUndefined();
  });

  test('the last line counts without a final line break, and blank lines do not count', () => {
    const digest = new NdjsonDigest('billing');
    digest.update(Buffer.from('{"amount":1.5}\n\n{"amo'));
    digest.update(Buffer.from('unt":2.25}'));
    expect(digest.digest()).toMatchObject({ lines: 2, total: '3.75', totalField: 'amount' });
  });
});
