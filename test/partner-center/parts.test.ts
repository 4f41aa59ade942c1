// The parts an invoice fans out into: a part not made is line items never exported, so every shape the API's
// invoiceDetails may take (missing, null entries, wrong types, short and odd spellings) is tried here.
import { describe, expect, test } from 'vitest';
import { invoiceParts, partRequest, taxReceipts } from '../../src/partner-center/parts.js';
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

  test('a problem inside a nested field names its whole path', () => {
    const { skipped } = summary(
      invoiceWith([{ billingProvider: 'azure', invoiceLineItemType: 'usage', links: { next: { uri: 7 } } }]),
    );
    expect(skipped).toHaveLength(1);
    expect(skipped[0]?.reason).toMatch(/^invoiceDetails\[0\] unusable: links\.next\.uri: /);
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
    // The first entry that names a part is the one kept (its detail, links included).
    const kept = invoiceParts(
      invoiceWith([
        { billingProvider: 'One Time', invoiceLineItemType: 'billing_line_items' },
        { billingProvider: 'onetime', invoiceLineItemType: 'BillingLineItems' },
      ]),
    ).parts;
    expect(kept.map((p) => p.detail.billingProvider)).toEqual(['One Time']);
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

describe('taxReceipts', () => {
  test('an invoice without receipts has none and skips none', () => {
    expect(taxReceipts(invoiceWith([]))).toEqual({ receipts: [], skipped: [] });
    expect(taxReceipts(invoiceWith([], { taxReceipts: null }))).toEqual({ receipts: [], skipped: [] });
  });

  test('each usable receipt keeps its link; entries without a usable id are skipped, saying what was sent', () => {
    const invoice = invoiceWith([], {
      taxReceipts: [
        { id: 'R1', taxReceiptPdfDownloadLink: 'https://example.blob.core.windows.net/r1.pdf' },
        { id: 42 },
        { id: 'R3', taxReceiptPdfDownloadLink: '' },
        null,
        'R4',
        { id: '../R5' },
        {},
      ],
    });
    expect(taxReceipts(invoice)).toEqual({
      receipts: [{ id: 'R1', pdfLink: 'https://example.blob.core.windows.net/r1.pdf' }, { id: '42' }, { id: 'R3' }],
      skipped: [
        { index: 3, reason: 'taxReceipts[3] is null' },
        { index: 4, reason: 'taxReceipts[4] is string' },
        { index: 5, reason: 'taxReceipts[5] has no usable id ("../R5")' },
        { index: 6, reason: 'taxReceipts[6] has no usable id (none)' },
      ],
    });
  });
});

describe('partRequest', () => {
  test('a part that v1 cannot read is refused with its reason, before any request is built', () => {
    const invoice = invoiceWith([
      { billingProvider: 'office', invoiceLineItemType: 'usage_line_items' },
      { billingProvider: 'azure', invoiceLineItemType: 'usage_line_items' },
    ]);
    const [officeUsage, azureUsage] = invoiceParts(invoice).parts;
    expect(() => partRequest(invoice, officeUsage as never, 100)).toThrow(
      'part office-usage cannot be read via v1: Office has no usage line items',
    );
    // Supported but without a paging kind (a part built by hand): refused too.
    expect(() => partRequest(invoice, { ...(azureUsage as object), paging: undefined } as never, 100)).toThrow(
      /part azure-usage cannot be read via v1/,
    );
    expect(partRequest(invoice, azureUsage as never, 100).path).toBe(
      '/v1/invoices/G000123456/lineitems/Azure/UsageLineItems',
    );
  });

  test('seek parts: usage asks for the currency and the previous period, billing does not', () => {
    const invoice = invoiceWith([
      { billingProvider: 'onetime', invoiceLineItemType: 'billing_line_items' },
      { billingProvider: 'onetime', invoiceLineItemType: 'usage_line_items' },
    ]);
    const [billing, usage] = invoiceParts(invoice).parts;
    expect(partRequest(invoice, billing as never, 100)).toEqual({
      path: '/v1/invoices/G000123456/lineitems',
      query: 'provider=onetime&invoicelineitemtype=billinglineitems&size=100',
      paging: 'seek',
    });
    expect(partRequest(invoice, usage as never, 100).query).toBe(
      'provider=onetime&invoicelineitemtype=usagelineitems&currencycode=USD&period=previous&size=100',
    );
  });
});
