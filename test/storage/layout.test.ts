import { describe, expect, it } from 'vitest';
import { assertSafeId as assertSafeInvoiceId, InvalidIdError as InvalidInvoiceIdError } from '../../src/ids.js';
import {
  billingLinesPath,
  InvalidPathError,
  invoiceFolder,
  invoiceJsonPath,
  invoicePdfPath,
  lineItemsPath,
  manifestPath,
  monthOfDate,
  parsePartnerCenterDate,
  receiptPdfPath,
  unbilledFolder,
  unbilledManifestPath,
  unbilledRowsPath,
} from '../../src/storage/layout.js';

describe('invoice ids', () => {
  it.each(['../x', 'G1/..', 'a b', '', 'x'.repeat(70), 'a/b', '%2e', '%2e%2e', '.', '-G1', 'G1\n', 'G1\\x', 'Ｇ1'])(
    'rejects %j',
    (id) => {
      expect(() => assertSafeInvoiceId(id)).toThrow(InvalidInvoiceIdError);
      expect(() => invoiceFolder('2024-01', id)).toThrow(/Unsafe invoice id/);
    },
  );

  it('rejects non-strings and says what is allowed', () => {
    expect(() => assertSafeInvoiceId(42)).toThrow(InvalidInvoiceIdError);
    expect(() => assertSafeInvoiceId('../x')).toThrow(
      /Unsafe invoice id "\.\.\/x": expected 1-64 letters, digits or dashes/,
    );
  });

  it.each(['G000024135', 'D02005YFHI', 'T000001234', 'a', 'x'.repeat(64), 'ABC-123'])('accepts %s', (id) => {
    expect(() => assertSafeInvoiceId(id)).not.toThrow();
  });
});

describe('paths', () => {
  it('follow the documented layout', () => {
    expect(invoiceFolder('2024-01', 'G1')).toBe('billing_period=2024-01/invoice_id=G1/');
    expect(invoiceJsonPath('2024-01', 'G1')).toBe('billing_period=2024-01/invoice_id=G1/invoice.json');
    expect(invoicePdfPath('2024-01', 'G1')).toBe('billing_period=2024-01/invoice_id=G1/invoice.pdf');
    expect(receiptPdfPath('2024-01', 'G1', '123456')).toBe('billing_period=2024-01/invoice_id=G1/receipts/123456.pdf');
    expect(lineItemsPath('2024-01', 'G1', 'onetime', 'billing')).toBe(
      'billing_period=2024-01/invoice_id=G1/lineitems/provider=onetime/line_item_type=billing/rows.ndjson',
    );
    expect(lineItemsPath('2024-01', 'G1', 'azure', 'usage', 'v2')).toBe(
      'billing_period=2024-01/invoice_id=G1/lineitems/provider=azure/line_item_type=usage/rows.v2.ndjson',
    );
    expect(manifestPath('2024-01', 'G1')).toBe('billing_period=2024-01/invoice_id=G1/manifest.json');
  });

  it('validate every segment', () => {
    expect(() => receiptPdfPath('2024-01', 'G1', '../r')).toThrow(/Unsafe receipt id/);
    expect(() => lineItemsPath('2024-01', 'G1', 'Office', 'billing')).toThrow(/provider/);
    expect(() => lineItemsPath('2024-01', 'G1', 'office', 'bill/ing')).toThrow(/line item type/);
    expect(() => lineItemsPath('2024-01', 'G1', 'office', 'billing', '../v')).toThrow(/version/);
    expect(() => invoiceFolder('2024-1', 'G1')).toThrow(/billing period/);
    expect(() => invoiceFolder('../2024-01', 'G1')).toThrow(/billing period/);
  });
});

describe('path errors', () => {
  it('are permanent InvalidPathErrors that quote the value and say what is allowed', () => {
    const error = (() => {
      try {
        lineItemsPath('2024-01', 'G1', 'Office', 'billing');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidPathError);
    expect(error).toMatchObject({ name: 'InvalidPathError', retriable: false });
    expect((error as Error).message).toBe('Unsafe provider "Office": expected lowercase letters, digits or \'_\'.');
    expect(() => lineItemsPath('2024-01', 'G1', 'office', 'bill-ing')).toThrow(
      'Unsafe line item type "bill-ing": expected lowercase letters, digits or \'_\'.',
    );
    expect(() => lineItemsPath('2024-01', 'G1', 'office', 'billing', 'V2')).toThrow(
      'Unsafe version "V2": expected lowercase letters, digits or \'_\'.',
    );
    expect(() => lineItemsPath('2024-01', 'G1', 'office', 'billing', '')).toThrow(/Unsafe version ""/);
    expect(() => invoiceFolder('2024-13', 'G1')).toThrow(
      new InvalidPathError('Invalid billing period "2024-13": expected YYYY-MM.'),
    );
    expect(() => manifestPath('2024-00', 'G1')).toThrow(InvalidPathError);
    // The period is the whole segment: nothing may follow the month.
    for (const period of ['2024-011', '2024-01x', '2024-01/..']) {
      expect(() => invoiceFolder(period, 'G1'), period).toThrow(/Invalid billing period/);
    }
  });

  it('segments may hold lowercase letters, digits and underscores only', () => {
    expect(lineItemsPath('2024-12', 'G1', 'market_place2', 'usage_v1')).toBe(
      'billing_period=2024-12/invoice_id=G1/lineitems/provider=market_place2/line_item_type=usage_v1/rows.ndjson',
    );
    for (const bad of ['', 'a b', 'a.b', 'a/b', '..', 'aé']) {
      expect(() => lineItemsPath('2024-01', 'G1', bad, 'billing'), bad).toThrow(InvalidPathError);
    }
  });
});

describe('the other documented paths', () => {
  it('billing lines sit at the invoice level, beside the NDJSON, never under lineitems/', () => {
    expect(billingLinesPath('2024-01', 'G1')).toBe('billing_period=2024-01/invoice_id=G1/billing_lines.parquet');
    expect(() => billingLinesPath('2024-01', '../G1')).toThrow(/Unsafe invoice id/);
    expect(() => billingLinesPath('24-01', 'G1')).toThrow(/billing period/);
  });

  it('unbilled snapshots live under unbilled/, by period, snapshot day and currency', () => {
    expect(unbilledFolder('2026-11', '2026-11-30', 'EUR')).toBe(
      'unbilled/billing_period=2026-11/snapshot=2026-11-30/currency=EUR/',
    );
    expect(unbilledRowsPath('2026-11', '2026-11-30', 'EUR', 'usage')).toBe(
      'unbilled/billing_period=2026-11/snapshot=2026-11-30/currency=EUR/line_item_type=usage/rows.ndjson',
    );
    expect(unbilledRowsPath('2026-12', '2026-12-01', 'USD', 'billing')).toBe(
      'unbilled/billing_period=2026-12/snapshot=2026-12-01/currency=USD/line_item_type=billing/rows.ndjson',
    );
    expect(unbilledManifestPath('2026-11', '2026-11-30', 'EUR')).toBe(
      'unbilled/billing_period=2026-11/snapshot=2026-11-30/currency=EUR/manifest.json',
    );
  });

  it('an unbilled path refuses a bad period, day, currency or line item type, saying which', () => {
    expect(() => unbilledFolder('2026-13', '2026-11-30', 'EUR')).toThrow(
      new InvalidPathError('Invalid billing period "2026-13": expected YYYY-MM.'),
    );
    for (const day of ['20261130', '2026-11-3', '2026-11-300', 'x2026-11-30', '2026-11-30x', '2026-1a-30']) {
      expect(() => unbilledFolder('2026-11', day, 'EUR'), day).toThrow(
        new InvalidPathError(`Invalid snapshot date ${JSON.stringify(day)}: expected YYYY-MM-DD.`),
      );
    }
    for (const currency of ['eur', 'EU', 'EURO', 'xEUR', 'EURx', 'E1R', '']) {
      expect(() => unbilledFolder('2026-11', '2026-11-30', currency), currency).toThrow(
        new InvalidPathError(`Invalid currency ${JSON.stringify(currency)}`),
      );
    }
    expect(() => unbilledManifestPath('2026-11', '2026-11-30', 'usd')).toThrow(InvalidPathError);
    expect(() => unbilledRowsPath('2026-11', '2026-11-30', 'EUR', '../usage')).toThrow(
      'Unsafe line item type "../usage": expected lowercase letters, digits or \'_\'.',
    );
    expect(() => unbilledRowsPath('2026-11', '2026-11-30', 'eur', 'usage')).toThrow(/Invalid currency "eur"/);
  });
});

describe('parsePartnerCenterDate', () => {
  const utc = (...parts: number[]) => Date.UTC(parts[0] ?? 0, (parts[1] ?? 1) - 1, ...parts.slice(2));

  it.each([
    ['2018-02-08T22:40:37.5897767Z', utc(2018, 2, 8, 22, 40, 37, 589)],
    ['2018-02-08T22:40:37.5Z', utc(2018, 2, 8, 22, 40, 37, 500)],
    ['2018-02-08T22:40:37.05Z', utc(2018, 2, 8, 22, 40, 37, 50)],
    ['2018-02-08T22:40:37.123Z', utc(2018, 2, 8, 22, 40, 37, 123)],
    ['2018-02-08T22:40:37Z', utc(2018, 2, 8, 22, 40, 37)],
    ['2018-02-08t22:40:37z', utc(2018, 2, 8, 22, 40, 37)],
    ['2018-02-08 22:40:37', utc(2018, 2, 8, 22, 40, 37)],
    ['2018-02-08T22:40', utc(2018, 2, 8, 22, 40)],
    ['2017-05-12T00:00:00', utc(2017, 5, 12)],
    ['2024-07-15', utc(2024, 7, 15)],
    ['  2024-07-15T01:02:03Z  ', utc(2024, 7, 15, 1, 2, 3)],
    ['2024-07-15T01:02:03 Z', utc(2024, 7, 15, 1, 2, 3)],
    ['2019-01-03T19:53:55.1292512+00:00', utc(2019, 1, 3, 19, 53, 55, 129)],
    ['2024-03-01T00:30:00+02:00', utc(2024, 2, 29, 22, 30)],
    ['2024-03-01T00:30:00+0200', utc(2024, 2, 29, 22, 30)],
    ['2024-08-31T19:00:00-05:00', utc(2024, 9, 1, 0, 0)],
    ['2024-08-31T19:00:00-05:30', utc(2024, 9, 1, 0, 30)],
    ['2024-08-31T19:00:00+05:45', utc(2024, 8, 31, 13, 15)],
    ['2024-08-31T19:00:00 -01:15', utc(2024, 8, 31, 20, 15)],
    ['2024-12-31T23:59:59.9999999Z', utc(2024, 12, 31, 23, 59, 59, 999)],
    ['2024-01-01T00:00:00Z', utc(2024, 1, 1)],
    ['2024-12-31', utc(2024, 12, 31)],
  ])('%s', (value, expected) => {
    expect(parsePartnerCenterDate(value)).toBe(expected);
  });

  it.each([
    'yesterday',
    '',
    '2024-07',
    '2024-7-15',
    '2024-07-15T',
    '2024-07-15T1:02',
    '2024-07-15T01:02:03.',
    '2024-07-15T01:02:03+2',
    '2024-07-15T01:02:03+02:0',
    '2024-07-15T01:02:03Q',
    'x2024-07-15',
    '2024-07-15x',
    '2024-00-15',
    '2024-13-01',
    '2024-07-00',
    '2024-07-32',
    '2024-99-99T00:00:00Z',
  ])('refuses %j, quoting it', (value) => {
    expect(() => parsePartnerCenterDate(value)).toThrow(`Unrecognised date ${JSON.stringify(value)}`);
  });

  it('monthOfDate is the UTC month, YYYY-MM exactly', () => {
    expect(monthOfDate('2024-08-31T19:00:00-05:00')).toBe('2024-09');
    expect(monthOfDate('2024-03-01T00:30:00+02:00')).toBe('2024-02');
    expect(monthOfDate('2024-01-01')).toBe('2024-01');
    expect(() => monthOfDate('2024-13-01')).toThrow('Unrecognised date "2024-13-01"');
  });
});
