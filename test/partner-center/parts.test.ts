// The parts an invoice fans out into: a part not made is line items never exported, so every shape the API's
// invoiceDetails may take (missing, null entries, wrong types, short and odd spellings) is tried here.
import { describe, expect, test } from 'vitest';
import { invoiceParts } from '../../src/partner-center/parts.js';
import type { Invoice } from '../../src/partner-center/schemas.js';

const invoiceWith = (invoiceDetails: unknown, extra: Partial<Invoice> = {}): Invoice =>
  ({ id: 'G000123456', currencyCode: 'USD', invoiceDetails, ...extra }) as Invoice;

const summary = (invoice: Invoice) => {
  const { parts, skipped } = invoiceParts(invoice);
  return {
    parts: parts.map((p) => ({ partId: p.partId, supported: p.supported, paging: p.paging, reason: p.reason })),
    skipped,
  };
};

describe('invoiceParts', () => {
  test('an invoice without invoiceDetails (absent or null) has no parts and skips nothing', () => {
    expect(invoiceParts(invoiceWith(undefined))).toEqual({ parts: [], skipped: [] });
    expect(invoiceParts(invoiceWith(null))).toEqual({ parts: [], skipped: [] });
  });

  test('entries that are not objects are skipped by position, saying what they were; the rest still count', () => {
    const result = summary(
      invoiceWith([null, 'billing', 7, ['office'], { billingProvider: 'office', invoiceLineItemType: 'billing' }]),
    );
    expect(result.skipped).toEqual([
      { index: 0, reason: 'invoiceDetails[0] is null' },
      { index: 1, reason: 'invoiceDetails[1] is string' },
      { index: 2, reason: 'invoiceDetails[2] is number' },
      { index: 3, reason: 'invoiceDetails[3] is object' },
    ]);
    expect(result.parts).toEqual([{ partId: 'office-billing', supported: true, paging: 'offset', reason: undefined }]);
  });

  test('an entry with fields of the wrong type is skipped naming each field and problem', () => {
    const { skipped, parts } = summary(
      invoiceWith([
        { billingProvider: 5, invoiceLineItemType: ['usage'] },
        { billingProvider: 'azure', invoiceLineItemType: 'usage' },
      ]),
    );
    expect(skipped).toHaveLength(1);
    expect(skipped[0]?.index).toBe(0);
    expect(skipped[0]?.reason).toMatch(/^invoiceDetails\[0\] unusable: /);
    expect(skipped[0]?.reason).toContain('billingProvider: ');
    expect(skipped[0]?.reason).toContain('invoiceLineItemType: ');
    expect(skipped[0]?.reason).toContain('; ');
    expect(parts.map((p) => p.partId)).toEqual(['azure-usage']);
  });

  test('short, spaced and dashed spellings of the type and provider name the same part, made once', () => {
    const { parts, skipped } = summary(
      invoiceWith([
        { billingProvider: 'One Time', invoiceLineItemType: 'billing' },
        { billingProvider: 'one-time', invoiceLineItemType: 'Billing Line Items' },
        { billingProvider: 'ONE_TIME', invoiceLineItemType: 'billing_line_items' },
        { billingProvider: 'azure', invoiceLineItemType: 'Usage' },
      ]),
    );
    expect(skipped).toEqual([]);
    expect(parts.map((p) => [p.partId, p.supported, p.paging])).toEqual([
      ['onetime-billing', true, 'seek'],
      ['azure-usage', true, 'offset'],
    ]);
  });

  test('a missing or empty type or provider is a part named "none", unsupported, with the raw value in its reason', () => {
    const { parts } = summary(
      invoiceWith([
        { billingProvider: 'office', invoiceLineItemType: null },
        { billingProvider: 'office', invoiceLineItemType: '' },
        { invoiceLineItemType: 'billing_line_items' },
        { billingProvider: '', invoiceLineItemType: 'usage_line_items' },
      ]),
    );
    expect(parts).toEqual([
      { partId: 'office-none', supported: false, paging: undefined, reason: "unknown invoiceLineItemType ''" },
      { partId: 'none-billing', supported: false, paging: undefined, reason: "unknown billingProvider ''" },
      { partId: 'none-usage', supported: false, paging: undefined, reason: "unknown billingProvider ''" },
    ]);
  });

  test('marketplace usage is read as onetime usage; marketplace billing stays marketplace', () => {
    const { parts } = summary(
      invoiceWith([
        { billingProvider: 'marketplace', invoiceLineItemType: 'usage_line_items' },
        { billingProvider: 'marketplace', invoiceLineItemType: 'billing_line_items' },
        { billingProvider: 'onetime', invoiceLineItemType: 'usage_line_items' },
      ]),
    );
    expect(parts.map((p) => [p.partId, p.supported, p.paging])).toEqual([
      ['onetime-usage', true, 'seek'],
      ['marketplace-billing', true, 'seek'],
    ]);
  });

  test('billed usage needs the currency: without it the part is unsupported and says why; billing is not affected', () => {
    const details = [
      { billingProvider: 'onetime', invoiceLineItemType: 'usage_line_items' },
      { billingProvider: 'onetime', invoiceLineItemType: 'billing_line_items' },
    ];
    for (const currencyCode of [undefined, null, '']) {
      expect(summary(invoiceWith(details, { currencyCode })).parts).toEqual([
        {
          partId: 'onetime-usage',
          supported: false,
          paging: undefined,
          reason: 'billed usage needs the invoice currencyCode, which is missing',
        },
        { partId: 'onetime-billing', supported: true, paging: 'seek', reason: undefined },
      ]);
    }
  });

  test('Office usage does not exist: unsupported, quoting the service', () => {
    expect(
      summary(invoiceWith([{ billingProvider: 'office', invoiceLineItemType: 'usage_line_items' }])).parts,
    ).toEqual([
      {
        partId: 'office-usage',
        supported: false,
        paging: undefined,
        reason: 'Office has no usage line items (the service answers "Invoice Line Item type is not valid")',
      },
    ]);
  });
});
