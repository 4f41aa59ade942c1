import { describe, expect, it } from 'vitest';
import { assertSafeId as assertSafeInvoiceId, InvalidIdError as InvalidInvoiceIdError } from '../../src/ids.js';
import {
  invoiceFolder,
  invoiceJsonPath,
  invoicePdfPath,
  lineItemsPath,
  manifestPath,
  receiptPdfPath,
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
