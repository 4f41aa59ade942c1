// The dataset on its own: every generated row is valid JSON of the documented shape, v1 and v2 carry the same
// values, totals reconcile except where they must not, and rows come from their index alone.
import { describe, expect, test } from 'vitest';
import { createDataset } from '../simulator/dataset.js';

const dataset = createDataset(5);

const OBJECT_TYPES: Record<string, string> = {
  'office|billing_line_items': 'LicenseBasedLineItem',
  'azure|billing_line_items': 'UsageBasedLineItem',
  'azure|usage_line_items': 'DailyUsageLineItem',
  'one_time|billing_line_items': 'OneTimeInvoiceLineItem',
  'one_time|usage_line_items': 'DailyRatedUsageLineItem',
  'marketplace|usage_line_items': 'DailyRatedUsageLineItem',
};

describe('rows', () => {
  test('every row of every default part parses, has the object type of its part and its invoice number', () => {
    for (const spec of dataset.invoices()) {
      for (const part of spec.parts ?? []) {
        const n = dataset.rows(spec.id, part.provider, part.lineItemType);
        expect(n).toBe(part.rows);
        for (let i = 0; i < n; i++) {
          const text = dataset.row(spec.id, part.provider, part.lineItemType, i);
          expect(text).not.toContain('\n');
          const row = JSON.parse(text) as { attributes: { objectType: string }; invoiceNumber: string };
          expect(row.attributes.objectType).toBe(OBJECT_TYPES[`${part.provider}|${part.lineItemType}`]);
          expect(row.invoiceNumber).toBe(spec.id);
        }
      }
    }
  });

  test('lenient part names, and an out-of-range index throws', () => {
    const a = dataset.row('G000024130', 'one_time', 'billing_line_items', 2);
    expect(dataset.row('G000024130', 'OneTime', 'BillingLineItems', 2)).toBe(a);
    expect(dataset.row('G000024130', 'onetime', 'billing', 2)).toBe(a);
    expect(() => dataset.row('G000024130', 'one_time', 'billing_line_items', 10_000)).toThrow(RangeError);
    expect(dataset.rows('G000024130', 'office', 'billing_line_items')).toBe(0);
  });

  test('v2 lines carry the same values as v1 rows, with PascalCase keys and without v1-only fields', () => {
    for (const [kind, type] of [
      ['reconciliation', 'billing_line_items'],
      ['usage', 'usage_line_items'],
    ] as const) {
      const n = dataset.v2Rows('G016907411', kind);
      expect(n).toBe(dataset.rows('G016907411', 'one_time', type));
      for (let i = 0; i < n; i++) {
        const v1 = JSON.parse(dataset.row('G016907411', 'one_time', type, i)) as Record<string, unknown>;
        const v2 = JSON.parse(dataset.v2Row('G016907411', kind, i)) as Record<string, unknown>;
        const lower = new Map(Object.entries(v2).map(([k, v]) => [k.toLowerCase(), v]));
        expect(Object.keys(v2).every((k) => /^[A-Z]/.test(k))).toBe(true);
        expect(v2).not.toHaveProperty('Attributes');
        expect(lower.get('invoicenumber')).toBe(v1.invoiceNumber);
        expect(lower.get('subscriptionid')).toBe(v1.subscriptionId);
      }
    }
    expect(dataset.v2Rows('D02005YFHI', 'reconciliation')).toBe(0);
  });

  test('rows depend on (seed, invoice, part, index) only: generation order does not matter', () => {
    const other = createDataset(5);
    const forward = Array.from({ length: 10 }, (_, i) => dataset.row('D070002ISK', 'azure', 'billing_line_items', i));
    const backward = Array.from({ length: 10 }, (_, i) =>
      other.row('D070002ISK', 'azure', 'billing_line_items', 9 - i),
    ).reverse();
    expect(backward).toEqual(forward);
  });

  test('type drift: mpnId is a number on some rows and a string on others in a drifting part', () => {
    const kinds = new Set<string>();
    for (let i = 0; i < 6; i++) {
      kinds.add(
        typeof (JSON.parse(dataset.row('G058476717', 'one_time', 'billing_line_items', i)) as { mpnId: unknown }).mpnId,
      );
    }
    expect(kinds).toEqual(new Set(['number', 'string']));
  });
});

describe('totals', () => {
  test('totalCharges equals the rows total for every invoice but G012040490', () => {
    for (const spec of dataset.invoices()) {
      const delta = Math.round((dataset.totalCharges(spec.id) - dataset.rowsTotal(spec.id)) * 100) / 100;
      expect(delta, spec.id).toBe(spec.id === 'G012040490' ? 117.25 : 0);
    }
  });

  test("the rows total is the sum of the rows' total fields, read back from the text", () => {
    for (const id of ['D02005YFHI', 'G016907411', 'G031809528']) {
      let cents = 0;
      for (const part of dataset.invoices().find((s) => s.id === id)?.parts ?? []) {
        if (part.lineItemType !== 'billing_line_items') continue; // usage details what billing lines already bill
        for (let i = 0; i < part.rows; i++) {
          const row = JSON.parse(dataset.row(id, part.provider, part.lineItemType, i)) as Record<string, number>;
          const value = row.totalForCustomer ?? row.postTaxTotal ?? 0;
          cents += Math.round(value * 100);
        }
      }
      expect(cents / 100).toBeCloseTo(dataset.rowsTotal(id), 6);
    }
    expect(dataset.totalCharges('G031809528')).toBeLessThan(0);
  });

  test('the invoice JSON carries totals, details with PascalCase links and nested amendments', () => {
    const invoice = dataset.invoiceJson('G016907411') as {
      totalCharges: number;
      invoiceDetails: { billingProvider: string; links: { self: { uri: string } } }[];
      amendments: { id: string; amendsOf: string; documentType: string }[];
      links: { self: { uri: string } };
    };
    expect(invoice.totalCharges).toBe(dataset.totalCharges('G016907411'));
    expect(invoice.invoiceDetails.map((d) => d.links.self.uri)).toEqual([
      '/invoices/OneTime-G016907411/lineitems/OneTime/BillingLineItems',
      '/invoices/OneTime-G016907411/lineitems/OneTime/UsageLineItems',
    ]);
    expect(invoice.amendments).toEqual([
      expect.objectContaining({ id: 'G016907412', amendsOf: 'G016907411', documentType: 'void_note' }),
    ]);
    expect(invoice.links.self.uri).toBe('/invoices/OneTime-G016907411');
    expect(invoice).not.toHaveProperty('pdfDownloadLink');
  });
});

describe('customers', () => {
  /** Every v1 and v2 row of every default invoice, parsed, with its source. */
  function allRows(d: ReturnType<typeof createDataset>): { where: string; row: Record<string, unknown> }[] {
    const out: { where: string; row: Record<string, unknown> }[] = [];
    for (const spec of d.invoices()) {
      for (const part of spec.parts ?? []) {
        for (let i = 0; i < part.rows; i++) {
          const row = JSON.parse(d.row(spec.id, part.provider, part.lineItemType, i)) as Record<string, unknown>;
          out.push({ where: `${spec.id} ${part.provider}/${part.lineItemType} ${i}`, row });
        }
      }
      for (const kind of ['reconciliation', 'usage'] as const) {
        for (let i = 0; i < d.v2Rows(spec.id, kind); i++) {
          const v2 = JSON.parse(d.v2Row(spec.id, kind, i)) as Record<string, unknown>;
          const row = Object.fromEntries(
            Object.entries(v2).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), v]),
          );
          out.push({ where: `${spec.id} v2 ${kind} ${i}`, row });
        }
      }
    }
    return out;
  }

  test('one table of a few dozen customers: distinct ids, names and domains, each with its own subscriptions', () => {
    const customers = dataset.customers();
    expect(customers.length).toBeGreaterThanOrEqual(24);
    for (const key of ['id', 'name', 'domain'] as const) {
      expect(new Set(customers.map((c) => c[key])).size).toBe(customers.length);
    }
    const subscriptions = customers.flatMap((c) => c.subscriptions);
    expect(new Set(subscriptions).size).toBe(subscriptions.length);
    expect(customers.every((c) => /^[0-9a-f-]{36}$/.test(c.id) && /^[A-Z]{2}$/.test(c.country))).toBe(true);
    expect(createDataset(5).customers()).toEqual(customers);
    expect(createDataset(6).customers()[0]?.id).not.toBe(customers[0]?.id);
    expect(createDataset(6).customers()[0]?.name).toBe(customers[0]?.name);
  });

  test('every row of every invoice, v1 and v2, names one table customer consistently (OneTime ids read org:<id>)', () => {
    const byId = new Map(dataset.customers().map((c) => [c.id, c]));
    const invoicesOf = new Map<string, Set<string>>();
    const rows = allRows(dataset);
    expect(rows.length).toBeGreaterThan(300);
    for (const { where, row } of rows) {
      const raw = String(row.customerId);
      const customer = byId.get(raw.replace(/^org:/, ''));
      expect(customer, where).toBeDefined();
      if (!customer) continue;
      expect(raw.startsWith('org:'), where).toBe(row.productQualifiers !== undefined || 'orderDate' in row);
      expect(row.customerName, where).toBe(customer.name);
      if ('customerDomainName' in row) expect(row.customerDomainName, where).toBe(customer.domain);
      if ('domainName' in row) expect(row.domainName, where).toBe(customer.domain);
      if ('customerCountry' in row) expect(row.customerCountry, where).toBe(customer.country);
      expect(customer.subscriptions, where).toContain(row.subscriptionId);
      const seen = invoicesOf.get(customer.id) ?? new Set<string>();
      seen.add(where.split(' ')[0] ?? '');
      invoicesOf.set(customer.id, seen);
    }
    // Customers recur across invoices, so per-customer queries find the same customer on several invoices.
    expect([...invoicesOf.values()].filter((s) => s.size >= 3).length).toBeGreaterThan(10);
  });

  test('oneTimeCustomerIdPrefix "" writes the bare id on OneTime rows too', () => {
    const bare = createDataset(5, { oneTimeCustomerIdPrefix: '' });
    const ids = new Set(bare.customers().map((c) => c.id));
    for (const { where, row } of allRows(bare)) expect(ids.has(String(row.customerId)), where).toBe(true);
  });
});
