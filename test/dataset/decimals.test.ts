// Exact decimals for the dataset's DECIMAL(38, s) columns, worked out on the digits: the same value a decimal library
// gives, for every shape of JSON number (signs, leading zeros, fractions, exponents), and the same refusals.
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { unscaledDecimal } from '../../src/dataset/rows.js';
import { Decimal } from '../../src/money.js';

/** The reference: the decimal library's arithmetic, as the dataset first did it. */
function reference(text: string, scale: number): bigint | string {
  const scaled = new Decimal(text).times(new Decimal(10).pow(scale));
  if (!scaled.isInteger()) return 'fraction';
  if (scaled.abs().gte(new Decimal(10).pow(38))) return 'integer';
  return BigInt(scaled.toFixed(0));
}

function actual(text: string, scale: number): bigint | string {
  try {
    return unscaledDecimal(text, scale);
  } catch (error) {
    const message = (error as Error).message;
    return message.includes('fraction digits') ? 'fraction' : message.includes('integer digits') ? 'integer' : message;
  }
}

const jsonNumber = fc
  .tuple(
    fc.boolean(),
    fc.stringMatching(/^(0|[1-9]\d{0,40})$/),
    fc.option(fc.stringMatching(/^\d{1,32}$/), { nil: undefined }),
    fc.option(fc.integer({ min: -60, max: 60 }), { nil: undefined }),
  )
  .map(
    ([negative, whole, fraction, exponent]) =>
      `${negative ? '-' : ''}${whole}${fraction === undefined ? '' : `.${fraction}`}${exponent === undefined ? '' : `e${exponent}`}`,
  );

describe('unscaledDecimal', () => {
  test.prop([jsonNumber, fc.constantFrom(18, 28)], { numRuns: 2000 })(
    'equals the decimal library on every JSON number, refusals included',
    (text, scale) => {
      expect(actual(text, scale)).toEqual(reference(text, scale));
    },
  );

  test.each([
    ['13702.86', 18, 13702860000000000000000n],
    ['-0.000000000000000001', 18, -1n],
    ['1.5E+3', 18, 1500000000000000000000n],
    ['0.00', 18, 0n],
    ['-0', 28, 0n],
    ['99999999999999999999.999999999999999999', 18, 99999999999999999999999999999999999999n],
  ])('%s at scale %i is %s', (text, scale, expected) => {
    expect(unscaledDecimal(text, scale)).toBe(expected);
  });

  test.each([
    ['0.0000000000000000001', 18, 'has more than 18 fraction digits'],
    ['100000000000000000000', 18, 'has more than 20 integer digits'],
    ['1e999999999', 18, 'has more than 20 integer digits'],
    ['12,5', 18, 'is not a number'],
  ])('%s at scale %i is refused: %s', (text, scale, message) => {
    expect(() => unscaledDecimal(text, scale)).toThrow(`${text} ${message}`);
  });
});
