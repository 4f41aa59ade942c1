// The shapes the client relies on: an invoice is validated in place (key order and unknown fields kept), numeric
// ids become their decimal text, and a body of the wrong shape is a non-retriable error that says where.
import { describe, expect, test } from 'vitest';
import { asCollection, asInvoice, InvalidResponseError, idText } from '../../src/partner-center/schemas.js';
import { thrownBy } from '../support/thrown.js';

const refusal = (fn: () => unknown) => thrownBy(fn, InvalidResponseError);

describe('asInvoice', () => {
  test('returns the same object, numeric id and amendsOf turned into their decimal text, the rest untouched', () => {
    const value = { zeta: 1, id: 12345, amendsOf: 678, alpha: { x: [1] } };
    const invoice = asInvoice(value);
    expect(invoice).toBe(value);
    expect(Object.keys(invoice)).toEqual(['zeta', 'id', 'amendsOf', 'alpha']);
    expect(invoice).toEqual({ zeta: 1, id: '12345', amendsOf: '678', alpha: { x: [1] } });
  });

  test('a number too large to be exact is not turned into text: the invoice is refused, naming the field', () => {
    const error = refusal(() => asInvoice({ id: 2 ** 60 }));
    expect(error.message).toMatch(/^unexpected invoice shape: id: /);
    expect(refusal(() => asInvoice({ id: 'G1', amendsOf: 1.5 })).message).toMatch(/amendsOf: /);
  });

  test.each([
    ['null', null],
    ['an array', [{ id: 'G1' }]],
    ['a string', 'G1'],
    ['a number', 7],
  ])('%s is refused as a shape, not a crash', (_what, value) => {
    const error = refusal(() => asInvoice(value));
    expect(error.message).toMatch(/^unexpected invoice shape: \(root\): /);
  });

  test('several problems are listed with their paths', () => {
    const { message } = refusal(() => asInvoice({ id: '', currencyCode: 5, invoiceDetails: 'x' }));
    const problems = message.replace('unexpected invoice shape: ', '').split('; ');
    expect(problems.map((p) => p.slice(0, p.indexOf(':'))).sort()).toEqual(['currencyCode', 'id', 'invoiceDetails']);
  });
});

describe('InvalidResponseError', () => {
  test('is named and never retried (the same body fails the same way again)', () => {
    const error = refusal(() => asCollection({ items: 'none' }));
    expect(error.name).toBe('InvalidResponseError');
    expect(error.retriable).toBe(false);
    expect(error.message).toMatch(/^unexpected collection page shape: items: /);
    // A nested problem names its whole path.
    expect(refusal(() => asCollection({ items: [], links: { next: { uri: 5 } } })).message).toMatch(
      /^unexpected collection page shape: links\.next\.uri: /,
    );
  });
});

describe('idText', () => {
  test('safe integers become text; everything else is returned as it is', () => {
    expect(idText(42)).toBe('42');
    expect(idText(0)).toBe('0');
    expect(idText(2 ** 60)).toBe(2 ** 60);
    expect(idText(1.5)).toBe(1.5);
    expect(idText('7')).toBe('7');
    expect(idText(null)).toBeNull();
  });
});
