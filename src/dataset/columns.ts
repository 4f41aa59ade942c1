// The typed dataset's one schema: every column of billing_lines.parquet, its Parquet type, and which field of each
// line-item kind fills it (docs/dataset.md's mapping table is checked against this list by a test).
import type { ParquetWriter } from 'hyparquet-writer';

/** The writer's own schema element type (the reader package is not a runtime dependency of ours). */
export type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number];

/** Bumped whenever a column, a type or a mapping changes: a file written under another version is rewritten. */
export const DATASET_SCHEMA_VERSION = 1;

/**
 * The line-item kinds a billing row can be (ref §5.2, §6.4): the three v1 billing models by `attributes.objectType`,
 * and the Graph v2 billed reconciliation rows (new-commerce, OneTime-like, PascalCase keys).
 */
export const ROW_KINDS = ['LicenseBasedLineItem', 'UsageBasedLineItem', 'OneTimeInvoiceLineItem', 'v2'] as const;
export type RowKind = (typeof ROW_KINDS)[number];

/**
 * - `string`: UTF-8; a JSON string as decoded, a number or boolean as its JSON text, an object or array as its JSON text.
 * - `decimal`: DECIMAL(38, 18), exact (the row's decimal text, never a binary float); a value that needs more
 *   than 18 fraction digits or 20 integer digits is refused, never rounded.
 * - `price`: DECIMAL(38, 28), for unit prices and rates, which the API sends with up to 22 fraction digits.
 * - `timestamp`: INT64 TIMESTAMP(MILLIS, UTC); a date without a zone is UTC (ref §1.3), an offset is converted.
 * - `int64`: INT64.
 */
export type ColumnType = 'string' | 'decimal' | 'price' | 'timestamp' | 'int64';

export const DECIMAL_SCALE: Record<'decimal' | 'price', number> = { decimal: 18, price: 28 };
export const DECIMAL_PRECISION = 38;

/** Where a column's value comes from. */
export type ColumnSource =
  /** The first of these fields (names compared case-insensitively) that the row has with a value; per kind. */
  | { fields: Partial<Record<RowKind, readonly string[]>> }
  /** Computed by the writer (from the invoice, the file, or other fields); `rule` says how, for the docs. */
  | { derived: string };

export interface Column {
  name: string;
  type: ColumnType;
  /** REQUIRED in Parquet: every row has a value. */
  required?: boolean;
  source: ColumnSource;
}

const all = (...names: string[]): Partial<Record<RowKind, readonly string[]>> => ({
  LicenseBasedLineItem: names,
  UsageBasedLineItem: names,
  OneTimeInvoiceLineItem: names,
  v2: names,
});
const modern = (...names: string[]): Partial<Record<RowKind, readonly string[]>> => ({
  OneTimeInvoiceLineItem: names,
  v2: names,
});

/**
 * The amount that adds up to the invoice: the same candidates, in the same order, as the reconciliation's read-back
 * of the NDJSON (src/sync/export/verify.ts), so both sums are of the same values.
 */
export const BILLED_COST_FIELDS = ['totalForCustomer', 'postTaxTotal', 'amount'] as const;

/** FOCUS columns first (FOCUS names), then the CSP-specific ones (FOCUS's `x_` prefix for custom columns). */
export const COLUMNS: readonly Column[] = [
  { name: 'BillingAccountId', type: 'string', source: { fields: all('partnerId') } },
  {
    name: 'BillingPeriodStart',
    type: 'timestamp',
    required: true,
    source: { derived: "the invoice's billing period (the `billing_period` folder): its first day, 00:00 UTC" },
  },
  {
    name: 'BillingPeriodEnd',
    type: 'timestamp',
    required: true,
    source: { derived: 'the first day of the month after the billing period, 00:00 UTC (FOCUS: exclusive)' },
  },
  {
    name: 'InvoiceId',
    type: 'string',
    required: true,
    source: { derived: "the invoice's id (the `invoice_id` folder)" },
  },
  { name: 'BilledCost', type: 'decimal', source: { fields: all(...BILLED_COST_FIELDS) } },
  {
    name: 'BillingCurrency',
    type: 'string',
    source: { derived: "the row's `currency` (v2 `Currency`), else the invoice's `currencyCode`" },
  },
  {
    name: 'ChargeCategory',
    type: 'string',
    source: { derived: '`Usage` for UsageBasedLineItem rows and rows whose chargeType names usage, else `Purchase`' },
  },
  {
    name: 'ChargeDescription',
    type: 'string',
    source: {
      fields: {
        LicenseBasedLineItem: ['offerName'],
        UsageBasedLineItem: ['resourceName'],
        OneTimeInvoiceLineItem: ['skuName'],
        v2: ['skuName'],
      },
    },
  },
  { name: 'ChargePeriodStart', type: 'timestamp', source: { fields: all('chargeStartDate') } },
  { name: 'ChargePeriodEnd', type: 'timestamp', source: { fields: all('chargeEndDate') } },
  {
    name: 'PricingQuantity',
    type: 'decimal',
    source: {
      fields: {
        LicenseBasedLineItem: ['quantity'],
        UsageBasedLineItem: ['overageQuantity'],
        OneTimeInvoiceLineItem: ['quantity'],
        v2: ['quantity'],
      },
    },
  },
  {
    name: 'PricingUnit',
    type: 'string',
    source: { fields: { UsageBasedLineItem: ['unit'], OneTimeInvoiceLineItem: ['unitType'], v2: ['unitType'] } },
  },
  {
    name: 'ListUnitPrice',
    type: 'price',
    source: {
      fields: {
        LicenseBasedLineItem: ['unitPrice'],
        UsageBasedLineItem: ['listPrice'],
        OneTimeInvoiceLineItem: ['unitPrice'],
        v2: ['unitPrice'],
      },
    },
  },
  {
    name: 'ContractedUnitPrice',
    type: 'price',
    source: {
      fields: {
        UsageBasedLineItem: ['pretaxEffectiveRate'],
        OneTimeInvoiceLineItem: ['effectiveUnitPrice'],
        v2: ['effectiveUnitPrice'],
      },
    },
  },
  {
    name: 'SubAccountId',
    type: 'string',
    source: { derived: '`customerId` without a leading `org:` (so one customer has one id on every kind of row)' },
  },
  { name: 'SubAccountName', type: 'string', source: { fields: all('customerName') } },
  { name: 'SkuId', type: 'string', source: { fields: modern('skuId') } },
  {
    name: 'ServiceName',
    type: 'string',
    source: {
      fields: {
        LicenseBasedLineItem: ['offerName'],
        UsageBasedLineItem: ['serviceName'],
        OneTimeInvoiceLineItem: ['productName'],
        v2: ['productName'],
      },
    },
  },
  { name: 'PublisherName', type: 'string', source: { fields: modern('publisherName') } },
  { name: 'ResourceId', type: 'string', source: { fields: { UsageBasedLineItem: ['resourceGuid'] } } },
  { name: 'ResourceName', type: 'string', source: { fields: { UsageBasedLineItem: ['resourceName'] } } },
  { name: 'RegionName', type: 'string', source: { fields: { UsageBasedLineItem: ['region'] } } },
  // ---- CSP-specific -------------------------------------------------------------------------------------------
  { name: 'x_CustomerId', type: 'string', source: { fields: all('customerId') } },
  {
    name: 'x_CustomerDomainName',
    type: 'string',
    source: { fields: { LicenseBasedLineItem: ['domainName'], ...modern('customerDomainName') } },
  },
  { name: 'x_CustomerCountry', type: 'string', source: { fields: modern('customerCountry') } },
  { name: 'x_SubscriptionId', type: 'string', source: { fields: all('subscriptionId') } },
  {
    name: 'x_SubscriptionDescription',
    type: 'string',
    source: { fields: all('subscriptionDescription') },
  },
  {
    name: 'x_OrderId',
    type: 'string',
    source: { fields: { LicenseBasedLineItem: ['orderId'], UsageBasedLineItem: ['orderId'], ...modern('orderId') } },
  },
  { name: 'x_ProductId', type: 'string', source: { fields: modern('productId') } },
  { name: 'x_AvailabilityId', type: 'string', source: { fields: modern('availabilityId') } },
  {
    name: 'x_SkuName',
    type: 'string',
    source: { fields: { UsageBasedLineItem: ['sku'], ...modern('skuName') } },
  },
  {
    name: 'x_OfferId',
    type: 'string',
    source: { fields: { LicenseBasedLineItem: ['offerId'] } },
  },
  { name: 'x_DurableOfferId', type: 'string', source: { fields: { LicenseBasedLineItem: ['durableOfferId'] } } },
  { name: 'x_ChargeType', type: 'string', source: { fields: all('chargeType') } },
  {
    name: 'x_Subtotal',
    type: 'decimal',
    source: {
      fields: {
        LicenseBasedLineItem: ['subtotal'],
        UsageBasedLineItem: ['pretaxCharges'],
        OneTimeInvoiceLineItem: ['subtotal'],
        v2: ['subtotal'],
      },
    },
  },
  {
    name: 'x_Tax',
    type: 'decimal',
    source: {
      fields: {
        LicenseBasedLineItem: ['tax'],
        UsageBasedLineItem: ['taxAmount'],
        OneTimeInvoiceLineItem: ['taxTotal'],
        v2: ['taxTotal'],
      },
    },
  },
  { name: 'x_BillableQuantity', type: 'decimal', source: { fields: modern('billableQuantity') } },
  {
    name: 'x_PartnerEarnedCreditPercentage',
    type: 'price',
    source: { fields: modern('partnerEarnedCreditPercentage', 'rateOfPartnerEarnedCredit') },
  },
  { name: 'x_PriceAdjustmentDescription', type: 'string', source: { fields: modern('priceAdjustmentDescription') } },
  { name: 'x_CreditReasonCode', type: 'string', source: { fields: modern('creditReasonCode') } },
  { name: 'x_PricingCurrency', type: 'string', source: { fields: modern('pricingCurrency') } },
  { name: 'x_PCToBCExchangeRate', type: 'price', source: { fields: modern('pcToBCExchangeRate') } },
  { name: 'x_BillingFrequency', type: 'string', source: { fields: modern('billingFrequency') } },
  {
    name: 'x_TermAndBillingCycle',
    type: 'string',
    source: { fields: { LicenseBasedLineItem: ['billingCycleType'], ...modern('termAndBillingCycle') } },
  },
  { name: 'x_MpnId', type: 'string', source: { fields: all('mpnId') } },
  {
    name: 'x_ResellerMpnId',
    type: 'string',
    source: {
      fields: { LicenseBasedLineItem: ['tier2MpnId'], UsageBasedLineItem: ['tier2MpnId'], ...modern('resellerMpnId') },
    },
  },
  {
    name: 'x_LineItemKind',
    type: 'string',
    required: true,
    source: {
      derived:
        "v1: the row's `attributes.objectType`, else by provider (office: LicenseBasedLineItem, azure: " +
        'UsageBasedLineItem, others: OneTimeInvoiceLineItem); v2: `v2`',
    },
  },
  {
    name: 'x_Provider',
    type: 'string',
    required: true,
    source: { derived: 'the `provider` folder of the source file' },
  },
  {
    name: 'x_SourceApi',
    type: 'string',
    required: true,
    source: { derived: '`v1` or `v2`: the API that sent the file' },
  },
  {
    name: 'x_SourceFile',
    type: 'string',
    required: true,
    source: { derived: 'the NDJSON blob the row is in (path in the container)' },
  },
  {
    name: 'x_SourceLine',
    type: 'int64',
    required: true,
    source: { derived: "the row's 1-based line number in that file" },
  },
];

/** The Parquet schema of COLUMNS (flat: a root and one leaf per column). */
export function parquetSchema(): SchemaElement[] {
  const leaves = COLUMNS.map((column): SchemaElement => {
    const repetition_type = column.required ? 'REQUIRED' : 'OPTIONAL';
    switch (column.type) {
      case 'string':
        return {
          name: column.name,
          type: 'BYTE_ARRAY',
          converted_type: 'UTF8',
          logical_type: { type: 'STRING' },
          repetition_type,
        };
      case 'decimal':
      case 'price': {
        const scale = DECIMAL_SCALE[column.type];
        return {
          name: column.name,
          // 16 bytes hold every 38-digit unscaled value.
          type: 'FIXED_LEN_BYTE_ARRAY',
          type_length: 16,
          converted_type: 'DECIMAL',
          precision: DECIMAL_PRECISION,
          scale,
          logical_type: { type: 'DECIMAL', precision: DECIMAL_PRECISION, scale },
          repetition_type,
        };
      }
      case 'timestamp':
        return {
          name: column.name,
          type: 'INT64',
          converted_type: 'TIMESTAMP_MILLIS',
          logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
          repetition_type,
        };
      default:
        return { name: column.name, type: 'INT64', repetition_type };
    }
  });
  return [{ name: 'root', num_children: leaves.length }, ...leaves];
}
