// The dataset's schema and row mapping: docs/dataset.md's table is the code's, and each line-item kind (v1 rows of
// the three billing models, v2 rows) lands in the documented columns with exact values.
import { readFile } from 'node:fs/promises';
import { describe, expect, test } from 'vitest';
import { COLUMNS, ROW_KINDS } from '../../src/dataset/columns.js';
import { DatasetRowError, type RowOrigin, rowMembers, typedRow } from '../../src/dataset/rows.js';
import { createDataset } from '../simulator/dataset.js';

const DOC_TYPES: Record<string, string> = {
  string: 'VARCHAR',
  decimal: 'DECIMAL(38,18)',
  price: 'DECIMAL(38,28)',
  timestamp: 'TIMESTAMPTZ',
  int64: 'BIGINT',
};

/** The mapping table of docs/dataset.md: one entry per `| \`Column\` | ... |` row. */
async function docTable(): Promise<{ name: string; type: string; cells: string[] }[]> {
  const doc = await readFile(new URL('../../docs/dataset.md', import.meta.url), 'utf8');
  return doc
    .split('\n')
    .filter((line) => /^\| `\w+` \|/.test(line))
    .map((line) => {
      const [name, type, ...cells] = line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      return { name: (name ?? '').replace(/`/g, ''), type: type ?? '', cells };
    });
}

describe('docs/dataset.md', () => {
  test('lists every column in order, with its type and, per kind, the fields that fill it', async () => {
    const table = await docTable();
    expect(table.map((r) => r.name)).toEqual(COLUMNS.map((c) => c.name));
    for (const [i, column] of COLUMNS.entries()) {
      const row = table[i]!;
      expect(row.type, column.name).toBe(`${DOC_TYPES[column.type]}${column.required ? ' NOT NULL' : ''}`);
      expect(row.cells, column.name).toHaveLength(ROW_KINDS.length);
      if ('derived' in column.source) {
        expect(row.cells[0], column.name).toBe(`derived: ${column.source.derived}`);
        continue;
      }
      for (const [k, kind] of ROW_KINDS.entries()) {
        const documented = [...(row.cells[k] ?? '').matchAll(/`(\w+)`/g)].map((m) => (m[1] as string).toLowerCase());
        const coded = (column.source.fields[kind] ?? []).map((f) => f.toLowerCase());
        expect(documented, `${column.name} / ${kind}`).toEqual(coded);
      }
    }
  });
});

const dataset = createDataset(3);
const origin = (provider: string, source: 'v1' | 'v2'): RowOrigin => ({
  invoiceId: 'G000024130',
  billingPeriod: '2021-05',
  currencyCode: 'USD',
  provider,
  source,
  path: `billing_period=2021-05/invoice_id=G000024130/lineitems/provider=${provider}/line_item_type=billing/rows.ndjson`,
});
const cellsByName = (cells: ReturnType<typeof typedRow>) =>
  Object.fromEntries(COLUMNS.map((c, i) => [c.name, cells[i]]));
/** The unscaled value of a decimal text at a scale, computed with integer arithmetic on the text. */
const unscaled = (text: string, scale: number) => {
  const [whole, fraction = ''] = text.replace('-', '').split('.');
  const value = BigInt(`${whole}${fraction.padEnd(scale, '0')}`);
  return text.startsWith('-') ? -value : value;
};

describe('typed rows', () => {
  test('a legacy Office row (LicenseBasedLineItem)', () => {
    const text = dataset.row('D02005YFHI', 'office', 'billing_line_items', 1);
    const row = JSON.parse(text);
    const cells = cellsByName(typedRow(text, 2, origin('office', 'v1')));
    expect(cells).toMatchObject({
      x_LineItemKind: 'LicenseBasedLineItem',
      BilledCost: unscaled(String(row.totalForCustomer.toFixed(2)), 18),
      ServiceName: row.offerName,
      ChargeDescription: row.offerName,
      x_OfferId: row.offerId,
      x_CustomerDomainName: row.domainName,
      SubAccountId: row.customerId,
      ChargeCategory: 'Purchase',
      PricingUnit: null,
      SkuId: null,
      x_SourceLine: 2n,
      x_SourceApi: 'v1',
      // mpnId drifts (a string on odd rows of a drifting part): kept as text either way.
      x_MpnId: String(row.mpnId),
      ChargePeriodStart: BigInt(Date.parse(row.chargeStartDate)),
    });
  });

  test('a legacy Azure row (UsageBasedLineItem): postTaxTotal, overage quantity, resource', () => {
    const text = dataset.row('D02005YFHI', 'azure', 'billing_line_items', 0);
    const row = JSON.parse(text);
    const cells = cellsByName(typedRow(text, 1, origin('azure', 'v1')));
    expect(cells).toMatchObject({
      x_LineItemKind: 'UsageBasedLineItem',
      BilledCost: unscaled(row.postTaxTotal.toFixed(2), 18),
      PricingQuantity: unscaled(String(row.overageQuantity), 18),
      PricingUnit: row.unit,
      ResourceId: row.resourceGuid,
      RegionName: row.region,
      ServiceName: row.serviceName,
      ChargeCategory: 'Usage',
    });
  });

  test("a OneTime row (v1) and the same row from v2 give the same values; SubAccountId strips 'org:'", () => {
    const v1Text = dataset.row('G016907411', 'one_time', 'billing_line_items', 4);
    const v2Text = dataset.v2Row('G016907411', 'reconciliation', 4);
    const v1 = cellsByName(typedRow(v1Text, 5, origin('onetime', 'v1')));
    const v2 = cellsByName(typedRow(v2Text, 5, origin('onetime', 'v2')));
    const row = JSON.parse(v1Text);
    expect(row.customerId).toMatch(/^org:/);
    expect(v1).toMatchObject({
      x_LineItemKind: 'OneTimeInvoiceLineItem',
      SubAccountId: row.customerId.slice(4),
      x_CustomerId: row.customerId,
      SkuId: row.skuId,
      x_ProductId: row.productId,
      PricingUnit: 'Licenses',
      BillingCurrency: row.currency,
    });
    const { x_LineItemKind, x_SourceApi, ...v1Rest } = v1;
    const { x_LineItemKind: kind2, x_SourceApi: api2, ...v2Rest } = v2;
    expect([x_LineItemKind, x_SourceApi, kind2, api2]).toEqual(['OneTimeInvoiceLineItem', 'v1', 'v2', 'v2']);
    expect(v2Rest).toEqual(v1Rest);
  });

  test('numbers keep every digit; blank and null are NULL; names match case-insensitively, the first wins', () => {
    const o = origin('onetime', 'v2');
    const cells = cellsByName(
      typedRow(
        '{"EffectiveUnitPrice":0.1999968000511991808131,"TOTALFORCUSTOMER":"12345678901234567.89","totalForCustomer":1,' +
          '"UnitPrice":null,"Quantity":"","ChargeStartDate":"2021-05-01T00:00:00","ChargeEndDate":"2021-05-31T23:59:59.9999999+02:00"}',
        1,
        o,
      ),
    );
    expect(cells.ContractedUnitPrice).toBe(unscaled('0.1999968000511991808131', 28));
    expect(cells.BilledCost).toBe(unscaled('12345678901234567.89', 18));
    expect(cells.ListUnitPrice).toBeNull();
    expect(cells.PricingQuantity).toBeNull();
    expect(cells.ChargePeriodStart).toBe(BigInt(Date.UTC(2021, 4, 1)));
    expect(cells.ChargePeriodEnd).toBe(BigInt(Date.UTC(2021, 4, 31, 21, 59, 59, 999)));
    expect(cells.BillingCurrency).toBe('USD'); // no Currency on the row: the invoice's
    expect(cells.BillingPeriodStart).toBe(BigInt(Date.UTC(2021, 4, 1)));
    expect(cells.BillingPeriodEnd).toBe(BigInt(Date.UTC(2021, 5, 1)));
    expect(rowMembers('{"a":{"b":[1,{"c":2}]},"d":true}').get('a')).toEqual({
      kind: 'json',
      text: '{"b":[1,{"c":2}]}',
    });
  });

  test('a value the schema cannot state exactly is refused, naming the file, line, column and value', () => {
    const o = origin('onetime', 'v1');
    expect(() => typedRow('{"totalForCustomer":0.0000000000000000001}', 7, o)).toThrow(
      /provider=onetime\/line_item_type=billing\/rows\.ndjson line 7: BilledCost \(OneTimeInvoiceLineItem\): 0\.0000000000000000001 has more than 18 fraction digits/,
    );
    expect(() => typedRow('{"totalForCustomer":123456789012345678901}', 1, o)).toThrow(/more than 20 integer digits/);
    expect(() => typedRow('{"chargeStartDate":"last tuesday"}', 3, o)).toThrow(
      /line 3: ChargePeriodStart .*last tuesday/,
    );
    expect(() => typedRow('{"totalForCustomer":"ten"}', 1, o)).toThrow(/BilledCost .*"ten" is not a number/);
    expect(() => typedRow('{"totalForCustomer":1', 9, o)).toThrow(DatasetRowError);
    expect(() => typedRow('[1,2]', 9, o)).toThrow(/line 9: the row is not a JSON object/);
  });
});
