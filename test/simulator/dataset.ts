// The simulator's invoices and line items: seeded, and generated row by row from (seed, invoice, part, index),
// so a part of any size is served with flat memory and tests can ask for the exact text of any row.

export interface PartSpec {
  /**
   * As in invoiceDetails.billingProvider: 'office' | 'azure' | 'one_time' | 'marketplace' | anything else (an
   * unknown provider is listed in invoiceDetails but its line items cannot be requested: the API answers 400).
   */
  provider: string;
  /** 'billing_line_items' | 'usage_line_items' | anything else (unknown types: listed, not requestable). */
  lineItemType: 'billing_line_items' | 'usage_line_items' | string;
  rows: number;
  /** mpnId alternates between number and string (and similar type drift), as seen in the wild. */
  drift?: boolean;
}

/**
 * How a date is written (ref §1.3: "with or without Z, 7-digit fractions, +00:00"). The instant is the same in
 * every shape; an offset shape writes the wall clock at that offset.
 * - `utc` `2026-10-08T22:40:37Z`; `utc3` / `utc6` / `utc7` with that many fraction digits (`utc7`: `.5897767Z`)
 * - `local` `2026-10-08T22:40:37` (no zone, as `2017-05-12T00:00:00`); `local3` / `local6` / `local7` likewise
 * - `+00:00`, `+02:00`, `-05:00`, ... `2026-10-09T00:40:37.5897767+02:00` (7 digits, as in the docs)
 * - `date` `2026-10-08` (date only)
 */
export type DateShape =
  | 'utc'
  | 'utc3'
  | 'utc6'
  | 'utc7'
  | 'local'
  | 'local3'
  | 'local6'
  | 'local7'
  | 'date'
  | `+${string}:${string}`
  | `-${string}:${string}`;

/** Which responses carry `billingPeriodStartDate` / `billingPeriodEndDate` (ref §2.3: by-id has them, the list example not). */
export type BillingPeriodFields = 'byIdOnly' | 'both' | 'listOnly' | 'neither';

export interface InvoiceSpec {
  id: string;
  kind: 'legacy' | 'modern';
  /** YYYY-MM */
  billingPeriod: string;
  currency?: string;
  documentType?: string;
  amendsOf?: string;
  parts?: PartSpec[];
  receipts?: number;
  /**
   * Where the invoice appears in the list: `true` top level only, `false` nowhere at the top level (an amendment
   * is then only nested in its parent's `amendments`), `'both'` nested AND at the top level. Default: `true`, or
   * for an amendment `DatasetOptions.amendments` (default nested only).
   */
  listed?: boolean | 'both';
  /** Added to totalCharges so that this invoice does NOT reconcile with its rows (default 0). */
  chargesAdjustment?: number;
  /**
   * The exact JSON text of `totalCharges`, written verbatim (e.g. `'12345678901234567.89'`, more digits than a
   * double holds). `dataset.totalCharges(id)` is then `Number(literal)`; `totalChargesText(id)` the literal.
   */
  totalCharges?: string;
  /**
   * Simulator-clock time (ms epoch or ISO) before which the invoice is listed but its line items are not published
   * yet: v1 line-item calls answer empty collections and v2 exports fail with "5000" (the Work 365 "$0" case).
   */
  linesPublishedAt?: number | string;
  /** Overrides `DatasetOptions.billingPeriodFields` for this invoice. */
  billingPeriodFields?: BillingPeriodFields;
  /** Date shapes: one for all three dates, or per field (defaults: invoiceDate `utc7`, start `utc`, end `utc7`). */
  dates?: DateShape | { invoiceDate?: DateShape; billingPeriodStartDate?: DateShape; billingPeriodEndDate?: DateShape };
  /** The instant of invoiceDate (ISO, up to 7 fraction digits); default the 8th of the next month, 22:40:37.5897767Z. */
  invoiceDate?: string;
  /**
   * Raw JSON text written verbatim into this invoice, in the list and by id: `fields` replace (or add, before
   * `links`) top-level keys; the arrays are appended to `amendments`, `taxReceipts` and `invoiceDetails`. E.g.
   * `{ fields: { id: '1234567890' } }` (a numeric id), `{ taxReceipts: ['{"id":null}'] }`, `{ invoiceDetails: ['null'] }`,
   * `{ amendments: ['{"documentType":"adjustment_note","amendsOf":"G1"}'] }` (an amendment without an id).
   */
  raw?: { fields?: Record<string, string>; amendments?: string[]; taxReceipts?: string[]; invoiceDetails?: string[] };
}

/** Whether an invoice's line items are visible at `now` (simulator clock). */
export function linesPublished(spec: InvoiceSpec | undefined, now: number): boolean {
  if (spec?.linesPublishedAt === undefined) return true;
  const at = typeof spec.linesPublishedAt === 'number' ? spec.linesPublishedAt : Date.parse(spec.linesPublishedAt);
  return now >= at;
}

export interface DatasetOptions {
  invoices?: InvoiceSpec[];
  /** Rows for parts that do not say (default 25). */
  rowsPerPart?: number;
  /** Default for invoices that do not say (default `'byIdOnly'`: the list has no billing-period fields, by id has). */
  billingPeriodFields?: BillingPeriodFields;
  /** Amendments nested under their parent only (default, as documented) or also at the top level of the list. */
  amendments?: 'nested' | 'both';
  /**
   * Raw JSON text put verbatim into the top level of the list, before the `at`-th listed item (default: at the end),
   * e.g. `{ raw: '{"id":12345}' }`, `{ raw: '"not an object"' }`, `{ raw: 'null', at: 0 }`. Pages count them.
   * Every raw text (here and in `InvoiceSpec.raw` / `totalCharges`) must be a JSON value: checked when made.
   */
  listItems?: { raw: string; at?: number }[];
  /**
   * Prefix of `customerId` on OneTime (new-commerce billing) rows, v1 and v2: default `'org:'`, as the docs' example
   * (`"customerId": "org:9060d13d-..."`); `''` writes the bare id, as legacy and usage rows always do.
   */
  oneTimeCustomerIdPrefix?: string;
  /** Unbilled (current / last month) exports: the currencies that have data and the mean rows per day. */
  unbilled?: { currencies?: string[]; rowsPerDay?: number };
}

export type V2Kind = 'reconciliation' | 'usage';
export type UnbilledPeriod = 'current' | 'last';

/** One customer of the partner: the same id, name, domain and country on every row of every invoice, v1 and v2. */
export interface Customer {
  id: string;
  name: string;
  domain: string;
  country: string;
  /** The customer's subscriptions: rows of this customer use only these. */
  subscriptions: readonly string[];
}

/** Unbilled data as a Graph unbilled export taken at a simulated instant would serve it. */
export interface UnbilledView {
  kind: V2Kind;
  currency: string;
  period: UnbilledPeriod;
  /** YYYY-MM of the data. */
  month: string;
  /** Days of `month` covered (1..days): up to the simulated today for `current`, the whole month for `last`. */
  days: number;
  rows: number;
  /** The exact JSON line of row `index` (days in order). */
  row(index: number): string;
  /** Sum of the amounts (`BillingPreTaxTotal` for usage, `TotalForCustomer` for reconciliation), 2 decimals. */
  total: number;
  /** Rows per day, index 0 = day 1. */
  perDay: readonly number[];
}

export interface Dataset {
  invoices(): InvoiceSpec[];
  /** The Invoice resource as get-by-id returns it, without pdfDownloadLink (parsed: a huge totalCharges loses digits). */
  invoiceJson(id: string): object;
  /**
   * The exact JSON text of an invoice as served: `byId` (with `pdfDownloadLink` right after currencySymbol when
   * given) or `list` (as an item of the list, amendments nested as in the list).
   */
  invoiceText(id: string, view: 'byId' | 'list', pdfDownloadLink?: string): string;
  /** The top level of the list, in order: every item's exact JSON text (invoices and injected raw items). */
  listItems(): string[];
  /** The customer table (a few dozen customers, ids from the seed). */
  customers(): readonly Customer[];
  rows(invoiceId: string, provider: string, lineItemType: string): number;
  /** The exact JSON text served for that item (one line). */
  row(invoiceId: string, provider: string, lineItemType: string, index: number): string;
  v2Rows(invoiceId: string, kind: V2Kind): number;
  /** The exact JSON line in the v2 gzip blobs. */
  v2Row(invoiceId: string, kind: V2Kind, index: number): string;
  totalCharges(id: string): number;
  /** The exact JSON text of totalCharges. */
  totalChargesText(id: string): string;
  /** Sum of the rows' total fields, in the invoice currency (what a reconciliation should find). */
  rowsTotal(id: string): number;
  /** Version of the v2 export data for an invoice (bumped by `sim.bumpV2Version`). */
  v2Version(id: string): number;
  bumpV2Version(id: string): void;
  /** Finds the part a request addresses; provider/type are matched leniently (one_time = onetime = OneTime). */
  findPart(invoiceId: string, provider: string, lineItemType: string): PartSpec | undefined;
  /** Renders rows of one part (v1 text, or the v2 line with `v2Kind`) without per-row lookups, for streaming. */
  renderer(invoiceId: string, part: PartSpec, v2?: boolean): (index: number) => string;
  /**
   * What an unbilled export of (kind, currency, period) taken at simulator time `at` serves; undefined for a
   * currency without unbilled data. `current` = the UTC month of `at`, days 1..today; `last` = the month before, whole.
   */
  unbilled(kind: V2Kind, currency: string, period: UnbilledPeriod, at: number): UnbilledView | undefined;
  /** The same by month and days covered (what a blob path names). */
  unbilledByMonth(
    kind: V2Kind,
    currency: string,
    period: UnbilledPeriod,
    month: string,
    days: number,
  ): UnbilledView | undefined;
}

export const PARTNER_TENANT_ID = '6e75cca6-47f0-47a3-a928-9d5315750bd9';
const PARTNER_ID = '6480d686-cfb4-424d-a945-6b9b9f000000';
const CURRENCY_SYMBOLS: Record<string, string> = { USD: '$', EUR: '€', GBP: '£', CHF: 'CHF', JPY: '¥' };

/** Normalises a provider: `one_time`, `OneTime`, `onetime` → `onetime`. */
export const providerKey = (provider: string) => provider.toLowerCase().replace(/[_\s-]/g, '');
/** Normalises a line-item type: `billing_line_items`, `BillingLineItems`, `billing` → `billing`. */
export const typeKey = (type: string) =>
  type
    .toLowerCase()
    .replace(/[_\s-]/g, '')
    .replace(/lineitems$/, '');

function defaultInvoices(rowsPerPart: number): InvoiceSpec[] {
  const r = rowsPerPart;
  const billing = (provider: string, rows: number, drift = false): PartSpec => ({
    provider,
    lineItemType: 'billing_line_items',
    rows,
    drift,
  });
  const usage = (provider: string, rows: number): PartSpec => ({ provider, lineItemType: 'usage_line_items', rows });
  return [
    {
      id: 'D02005YFHI',
      kind: 'legacy',
      billingPeriod: '2021-06',
      currency: 'USD',
      parts: [billing('office', r, true), billing('azure', r + 3), usage('azure', r + 5)],
      receipts: 1,
    },
    {
      id: 'D070002ISK',
      kind: 'legacy',
      billingPeriod: '2023-02',
      currency: 'EUR',
      parts: [billing('office', r + 1), billing('azure', r), usage('azure', r + 2)],
    },
    {
      id: 'G000024130',
      kind: 'modern',
      billingPeriod: '2021-05',
      currency: 'USD',
      parts: [billing('one_time', r + 2, true), usage('one_time', r + 4)],
      receipts: 2,
    },
    {
      id: 'G000024135',
      kind: 'modern',
      billingPeriod: '2023-04',
      currency: 'GBP',
      parts: [billing('one_time', r + 1), usage('one_time', r + 6)],
    },
    {
      id: 'G000024136',
      kind: 'modern',
      billingPeriod: '2023-04',
      currency: 'GBP',
      documentType: 'adjustment_note',
      amendsOf: 'G000024135',
      parts: [billing('one_time', 3)],
    },
    {
      id: 'G016907411',
      kind: 'modern',
      billingPeriod: '2025-03',
      currency: 'EUR',
      parts: [billing('one_time', r + 3), usage('one_time', r)],
      receipts: 1,
    },
    {
      id: 'G016907412',
      kind: 'modern',
      billingPeriod: '2025-03',
      currency: 'EUR',
      documentType: 'void_note',
      amendsOf: 'G016907411',
      parts: [billing('one_time', 2)],
    },
    {
      id: 'G031809528',
      kind: 'modern',
      billingPeriod: '2026-09',
      currency: 'CHF',
      documentType: 'credit_note',
      parts: [billing('one_time', 5)],
    },
    {
      id: 'G058476717',
      kind: 'modern',
      billingPeriod: '2026-10',
      currency: 'USD',
      // Values the enums did not have when the clients were written (ref §0.6).
      documentType: 'consolidated_statement',
      parts: [billing('one_time', r + 4, true), usage('marketplace', r + 1)],
      receipts: 1,
    },
    {
      id: 'G012040490',
      kind: 'modern',
      billingPeriod: '2025-11',
      currency: 'USD',
      parts: [billing('one_time', r + 2)],
      // Published before all its rows: the reconciliation report must show the gap.
      chargesAdjustment: 117.25,
    },
  ];
}

function defaultParts(spec: InvoiceSpec, rowsPerPart: number): PartSpec[] {
  if (spec.kind === 'legacy') {
    return [
      { provider: 'office', lineItemType: 'billing_line_items', rows: rowsPerPart },
      { provider: 'azure', lineItemType: 'billing_line_items', rows: rowsPerPart },
      { provider: 'azure', lineItemType: 'usage_line_items', rows: rowsPerPart },
    ];
  }
  return [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: rowsPerPart }];
}

// ---- deterministic randomness -------------------------------------------------------------------------------

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix(h);
}

function mix(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A tiny PRNG (mulberry32) for one row. */
class RowRandom {
  // A plain field, not `#state`: transpilers may lower private fields to WeakMaps, too slow for a million rows.
  state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }
  hex(length: number): string {
    let out = '';
    while (out.length < length)
      out += Math.floor(this.next() * 0x100000000)
        .toString(16)
        .padStart(8, '0');
    return out.slice(0, length);
  }
  guid(): string {
    const h = this.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
}

// ---- row shapes ----------------------------------------------------------------------------------------------

type RowShape = 'license' | 'usageBased' | 'dailyUsage' | 'oneTime' | 'dailyRated';

const OBJECT_TYPES: Record<RowShape, string> = {
  license: 'LicenseBasedLineItem',
  usageBased: 'UsageBasedLineItem',
  dailyUsage: 'DailyUsageLineItem',
  oneTime: 'OneTimeInvoiceLineItem',
  dailyRated: 'DailyRatedUsageLineItem',
};

function shapeOf(provider: string, lineItemType: string): RowShape {
  const p = providerKey(provider);
  const t = typeKey(lineItemType);
  if (p === 'office' && t === 'billing') return 'license';
  if (p === 'azure' && t === 'billing') return 'usageBased';
  if (p === 'azure' && t === 'usage') return 'dailyUsage';
  if (t === 'usage') return 'dailyRated';
  return 'oneTime';
}

// The partner's customers: [name, onmicrosoft stem, country]. Names include non-ASCII characters and quotes, as
// real ones do. Each customer keeps one id (from the seed) on every row of every invoice, v1 and v2.
const CUSTOMER_TABLE: readonly (readonly [string, string, string])[] = [
  ['Contoso Ltd', 'contoso', 'US'],
  ['Fabrikam Müller GmbH', 'fabrikam-de', 'DE'],
  ['Northwind Traders', 'northwind', 'GB'],
  ['Société Générale d’Essai', 'essai', 'FR'],
  ['株式会社サンプル', 'sample-jp', 'JP'],
  ['Tailspin "Toys" Inc.', 'tailspin', 'CH'],
  ['Adventure Works Cycles', 'adventureworks', 'US'],
  ['Alpine Ski House', 'alpineskihouse', 'AT'],
  ['Blue Yonder Airlines', 'blueyonder', 'US'],
  ['City Power & Light', 'citypower', 'CA'],
  ['Coho Winery', 'cohowinery', 'AU'],
  ['Consolidated Messenger', 'consolidatedmessenger', 'US'],
  ['Datum Corporation', 'adatum', 'IE'],
  ['Fourth Coffee', 'fourthcoffee', 'NL'],
  ['Graphic Design Institute', 'graphicdesign', 'SE'],
  ['Humongous Insurance', 'humongousins', 'US'],
  ['Litware, Inc.', 'litware', 'US'],
  ['Lucerne Publishing', 'lucernepublishing', 'CH'],
  ['Margie’s Travel', 'margiestravel', 'NZ'],
  ['Northwind Électricité SARL', 'northwind-fr', 'FR'],
  ['Proseware, Inc.', 'proseware', 'US'],
  ['Relecloud', 'relecloud', 'DK'],
  ['School of Fine Art', 'fineartschool', 'GB'],
  ['Southridge Video', 'southridgevideo', 'US'],
  ['Trey Research', 'treyresearch', 'DE'],
  ['Wide World Importers', 'wideworldimporters', 'SG'],
  ['Wingtip Toys', 'wingtiptoys', 'US'],
  ['Woodgrove Bank', 'woodgrovebank', 'GB'],
  ['Ærø Fiskeri ApS', 'aero-fiskeri', 'DK'],
  ['Łódź Logistyka Sp. z o.o.', 'lodz-logistyka', 'PL'],
  ['Προμηθευτική Α.Ε.', 'promitheftiki', 'GR'],
  ['Café São Paulo Ltda.', 'cafe-saopaulo', 'BR'],
  ['München Maschinenbau AG', 'muenchen-mb', 'DE'],
  ['Oy Pohjoinen Ab', 'pohjoinen', 'FI'],
  ['주식회사 샘플', 'sample-kr', 'KR'],
  ['The "Quoted" Company \\ Partners', 'quoted-co', 'US'],
];
const SUBSCRIPTIONS_PER_CUSTOMER = 6;

function makeCustomers(seed: number): Customer[] {
  const rnd = new RowRandom(hashString(`customers|${seed}`));
  return CUSTOMER_TABLE.map(([name, stem, country]) => ({
    id: rnd.guid(),
    name,
    domain: `${stem}.onmicrosoft.com`,
    country,
    subscriptions: Array.from({ length: SUBSCRIPTIONS_PER_CUSTOMER }, () => rnd.guid()),
  }));
}

const PRODUCTS = [
  ['CFQ7TTC0LH18', '0001', 'CFQ7TTC0K5DJ', 'Microsoft 365 Business Basic'],
  ['CFQ7TTC0LDPB', '0001', 'CFQ7TTC0K7Q8', 'Microsoft 365 Business Premium'],
  ['CFQ7TTC0LF8Q', '0002', 'CFQ7TTC0KXG7', 'Microsoft Defender for Endpoint P1'],
  ['DZH318Z0BQ3Q', '0007', 'DZH318Z0C1ZZ', 'Azure plan'],
] as const;
const METERS = [
  ['Virtual Machines', 'BS Series', 'B1s', 'Compute Hour', 'EASTUS2', 'Microsoft.Compute'],
  ['Storage', 'Standard Page Blob', 'LRS Data Stored', '1 GB/Month', 'WESTEUROPE', 'Microsoft.Storage'],
  ['Bandwidth', 'Rtn Preference: MGN', 'Data Transfer Out', '1 GB', 'NORTHEUROPE', 'Microsoft.Network'],
] as const;

const quote = (value: string) => JSON.stringify(value);
/** A JSON string for a value that needs no escaping (dates, digits, generated ids). */
const lit = (value: string) => `"${value}"`;
// Constants and pooled values repeat on every row: stringify each once (the cache stays small: they are few).
const quoted = new Map<string, string>();
const str = (value: string): string => {
  let text = quoted.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    if (quoted.size < 20_000) quoted.set(value, text);
  }
  return text;
};
/** Cents as a decimal literal: 1234 → 12.34, -5 → -0.05. */
const money = (cents: number) => {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
};
const pad2 = (n: number) => String(n).padStart(2, '0');
function monthBounds(period: string): { start: string; endDay: number; year: number; month: number } {
  const [y, m] = period.split('-').map(Number) as [number, number];
  const endDay = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return { start: `${period}-01`, endDay, year: y, month: m };
}

interface RowContext {
  seed: number;
  invoice: InvoiceSpec;
  part: PartSpec;
  partHash: number;
  shape: RowShape;
  sign: number;
  month: ReturnType<typeof monthBounds>;
  pools: Pools;
  /** Unbilled data: the day of the month of row `index` (billed rows pick a random day). */
  dayOf?: (index: number) => number;
  /** Written before the customer id on OneTime rows (default `org:`). */
  oneTimeCustomerPrefix: string;
}

const POOL = 256;
interface Pools {
  customers: Customer[];
  /** Per customer: an entitlement id (the Azure plan's), as stable as the customer. */
  entitlements: string[];
  resources: string[];
  orders: string[];
}
function makePools(seed: number): Pools {
  const rnd = new RowRandom(hashString(`pools|${seed}`));
  const many = (make: () => string) => Array.from({ length: POOL }, make);
  const customers = makeCustomers(seed);
  return {
    customers,
    entitlements: customers.map(() => rnd.guid()),
    resources: many(() => rnd.guid()),
    orders: many(() => rnd.hex(32).toUpperCase()),
  };
}

/** Writes one row's fields into `w` and returns its total in cents. */
function rowFields(ctx: RowContext, index: number, w: RowWriter): number {
  const rnd = new RowRandom(mix(ctx.partHash ^ Math.imul(index + 1, 0x9e3779b1)));
  const { invoice, part, shape } = ctx;
  const currency = invoice.currency ?? 'USD';
  // Customers come from one table: the same customer has the same id, name, domain and country on every row of
  // every invoice, and uses only its own subscriptions. Other identifiers come from seeded pools, so a million
  // rows stay cheap to generate.
  const { pools } = ctx;
  const customerIndex = rnd.int(0, pools.customers.length - 1);
  const customer = pools.customers[customerIndex] as Customer;
  const customerId = customer.id;
  const subscriptionId = customer.subscriptions[rnd.int(0, SUBSCRIPTIONS_PER_CUSTOMER - 1)] as string;
  const { start, endDay, year, month } = ctx.month;
  const randomDay = rnd.int(1, endDay);
  const day = pad2(ctx.dayOf ? ctx.dayOf(index) : randomDay);
  // Unbilled reconciliation rows are dated on their day of the month (ordered, charged); billed ones on the 1st.
  const chargeDay = ctx.dayOf ? `${invoice.billingPeriod}-${day}` : start;
  const fraction = String(rnd.int(0, 9_999_999)).padStart(7, '0');
  const drifted = part.drift === true && index % 2 === 1;
  const end = `${invoice.billingPeriod}-${pad2(endDay)}`;
  let totalCents = 0;

  if (shape === 'license' || shape === 'usageBased' || shape === 'dailyUsage') {
    const mpn = rnd.int(1_000_000, 9_999_999);
    w.add('partnerId', str(PARTNER_ID));
    w.add('customerId', str(customerId));
    w.add('customerName', str(customer.name));
    // Legacy rows carry mpnId as a number; drifting rows send a string (ref §0.6).
    w.add('mpnId', drifted ? lit(String(mpn)) : String(mpn));
    w.add('tier2MpnId', drifted ? '0' : str(''));
    w.add('invoiceNumber', str(invoice.id));
    w.add('subscriptionId', str(subscriptionId));
    if (shape === 'dailyUsage') {
      const meter = rnd.pick(METERS);
      w.add('usageDate', lit(`${invoice.billingPeriod}-${day}T00:00:00`));
      w.add('serviceName', str(meter[0]));
      w.add('serviceType', str(meter[1]));
      w.add('resourceGuid', str(pools.resources[rnd.int(0, POOL - 1)] as string));
      w.add('resourceName', str(meter[2]));
      w.add('region', str(meter[4]));
      w.add('consumedQuantity', (rnd.int(1, 2_000_000) / 10_000).toString());
      w.add('unit', str(meter[3]));
      w.add('attributes', `{"objectType":"${OBJECT_TYPES[shape]}"}`);
      return 0;
    }
    const quantity = rnd.int(1, 40) * ctx.sign;
    const unitCents = rnd.int(100, 4_000);
    totalCents = quantity * unitCents;
    w.add('orderId', str(pools.orders[rnd.int(0, POOL - 1)] as string));
    w.add('subscriptionStartDate', lit(`${start}T00:00:00Z`));
    w.add('subscriptionEndDate', lit(`${end}T00:00:00+00:00`));
    w.add('chargeStartDate', lit(`${start}T00:00:00.${fraction}Z`));
    w.add('chargeEndDate', lit(`${end}T23:59:59.${fraction}Z`));
    w.add('chargeType', str(ctx.sign < 0 ? 'Cancel' : rnd.pick(['New', 'Renew', 'Cycle fee'])));
    w.add('currency', str(currency));
    if (shape === 'license') {
      const product = rnd.pick(PRODUCTS);
      w.add('syndicationPartnerSubscriptionNumber', str((pools.orders[rnd.int(0, POOL - 1)] as string).slice(0, 10)));
      w.add('offerId', str((pools.resources[customerIndex % POOL] as string).toUpperCase()));
      w.add('durableOfferId', str((pools.resources[POOL - 1 - (customerIndex % POOL)] as string).toUpperCase()));
      w.add('offerName', str(product[3]));
      w.add('domainName', str(customer.domain));
      w.add('billingCycleType', str('Monthly'));
      w.add('subscriptionName', str(product[3]));
      w.add('subscriptionDescription', quote(`${product[3]} for ${customer.name}`));
      w.add('unitPrice', money(unitCents));
      w.add('quantity', String(quantity));
      w.add('amount', money(totalCents));
      w.add('totalOtherDiscount', '0');
      w.add('subtotal', money(totalCents));
      w.add('tax', '0');
      w.add('totalForCustomer', money(totalCents));
    } else {
      const meter = rnd.pick(METERS);
      w.add('subscriptionName', str('Azure subscription 1'));
      w.add('subscriptionDescription', str('Microsoft Azure'));
      w.add('detailLineItemId', String(index + 1));
      w.add('sku', str(meter[1]));
      w.add('includedQuantity', '0');
      w.add('overageQuantity', String(quantity));
      w.add('listPrice', money(unitCents));
      w.add('pretaxCharges', money(totalCents));
      w.add('taxAmount', '0');
      w.add('postTaxTotal', money(totalCents));
      w.add('pretaxEffectiveRate', money(unitCents));
      w.add('postTaxEffectiveRate', money(unitCents));
      w.add('serviceName', str(meter[0]));
      w.add('serviceType', str(meter[1]));
      w.add('resourceGuid', str(pools.resources[rnd.int(0, POOL - 1)] as string));
      w.add('resourceName', str(meter[2]));
      w.add('region', str(meter[4]));
      w.add('consumedQuantity', String(quantity));
      w.add('unit', str(meter[3]));
    }
    w.add('invoiceLineItemType', str('billing_line_items'));
    w.add('billingProvider', str(providerKey(part.provider) === 'office' ? 'office' : 'azure'));
    w.add('attributes', `{"objectType":"${OBJECT_TYPES[shape]}"}`);
    return totalCents;
  }

  const mpn = String(rnd.int(1_000_000, 9_999_999));
  w.add('partnerId', str(PARTNER_ID));
  if (shape === 'dailyRated') w.add('partnerName', str(''));
  // OneTime rows carry the id as `org:<guid>`, as the docs' example does (ref §5.4); the guid is the customer's.
  w.add('customerId', str(shape === 'oneTime' ? `${ctx.oneTimeCustomerPrefix}${customerId}` : customerId));
  w.add('customerName', str(customer.name));
  w.add('customerDomainName', str(customer.domain));
  w.add('customerCountry', str(customer.country));
  w.add('invoiceNumber', str(invoice.id));
  // Modern rows carry mpnId as a string; drifting rows send a number (ref §0.6).
  w.add('mpnId', drifted ? mpn : lit(mpn));
  w.add('resellerMpnId', drifted ? str('') : '0');
  if (shape === 'oneTime') {
    const product = rnd.pick(PRODUCTS);
    const quantity = rnd.int(1, 50) * ctx.sign;
    const unitCents = rnd.int(200, 3_600);
    totalCents = quantity * unitCents;
    w.add('orderId', str(pools.orders[rnd.int(0, POOL - 1)] as string));
    w.add('orderDate', lit(`${chargeDay}T22:31:42.${fraction}Z`));
    w.add('productId', str(product[0]));
    w.add('skuId', str(product[1]));
    w.add('availabilityId', str(product[2]));
    w.add('productName', str(product[3]));
    w.add('skuName', str(product[3]));
    w.add('chargeType', str(ctx.sign < 0 ? 'Cancel' : 'New'));
    w.add('unitPrice', money(unitCents));
    w.add('effectiveUnitPrice', money(unitCents));
    w.add('unitType', str('Licenses'));
    w.add('quantity', String(quantity));
    w.add('subtotal', money(totalCents));
    w.add('taxTotal', '0');
    w.add('totalForCustomer', money(totalCents));
    w.add('currency', str(currency));
    w.add('publisherName', str('Microsoft Corporation'));
    w.add('publisherId', str(''));
    w.add('subscriptionDescription', str(''));
    w.add('subscriptionId', str(subscriptionId));
    w.add('subscriptionStartDate', lit(`${start}T19:53:55.${fraction}+00:00`));
    w.add('subscriptionEndDate', lit(`${end}T19:53:55.${fraction}+00:00`));
    w.add('chargeStartDate', lit(`${chargeDay}T00:00:00Z`));
    w.add('chargeEndDate', lit(`${end}T00:00:00Z`));
    w.add('termAndBillingCycle', str('1 Month Subscription'));
    w.add('alternateId', str((pools.orders[rnd.int(0, POOL - 1)] as string).slice(20).toLowerCase()));
    w.add('priceAdjustmentDescription', str('["100.0% Tier 1 Discount"]'));
    w.add('discountDetails', str(''));
    w.add('pricingCurrency', str('USD'));
    w.add('pcToBCExchangeRate', currency === 'USD' ? '1' : '0.9231650000000001');
    w.add('pcToBCExchangeRateDate', lit(`${year}-${pad2(month)}-01T23:59:59Z`));
    w.add('billableQuantity', String(quantity));
    w.add('meterDescription', str(''));
    w.add('billingFrequency', str('Monthly'));
    w.add('reservationOrderId', str(''));
    w.add('creditReasonCode', str(''));
    w.add('promotionId', str(''));
    w.add('referenceId', str(''));
    w.add('productQualifiers', '[]');
    w.add('invoiceLineItemType', str('billing_line_items'));
    w.add('billingProvider', str(providerKey(part.provider) === 'onetime' ? 'one_time' : part.provider));
  } else {
    const meter = rnd.pick(METERS);
    totalCents = rnd.int(1, 90_000) * ctx.sign;
    w.add('productId', str('DZH318Z0BQ3Q'));
    w.add('skuId', str('0007'));
    w.add('availabilityId', str('DZH318Z0C1ZZ'));
    w.add('skuName', str(meter[1]));
    w.add('productName', str(meter[0]));
    w.add('publisherName', str('Microsoft'));
    w.add('publisherId', str(''));
    w.add('subscriptionId', str(subscriptionId));
    w.add('subscriptionDescription', str('Azure plan'));
    w.add('chargeStartDate', lit(`${start}T00:00:00Z`));
    w.add('chargeEndDate', lit(`${end}T00:00:00Z`));
    w.add('usageDate', lit(`${invoice.billingPeriod}-${day}T00:00:00Z`));
    w.add('meterType', str(meter[3]));
    w.add('meterCategory', str(meter[0]));
    w.add('meterId', str(pools.resources[rnd.int(0, POOL - 1)] as string));
    w.add('meterSubCategory', str(meter[1]));
    w.add('meterName', str(meter[2]));
    w.add('meterRegion', str(''));
    w.add('unitOfMeasure', str(meter[3]));
    w.add('resourceLocation', str(meter[4]));
    w.add('consumedService', str(meter[5]));
    w.add('resourceGroup', lit(`RG${rnd.int(1, 9)}`));
    w.add(
      'resourceUri',
      lit(`/subscriptions/${subscriptionId}/resourceGroups/RG1/providers/${meter[5]}/resources/r${index}`),
    );
    w.add('tags', str(''));
    w.add('additionalInfo', str('{ "ServiceType": "Standard_B1s", "UsageType": "ComputeHR_SW" }'));
    w.add('serviceInfo1', str(''));
    w.add('serviceInfo2', str(''));
    w.add('chargeType', str('new'));
    w.add('unitPrice', '0.0209496384791679');
    w.add('quantity', `${rnd.int(1, 900)}.200004`);
    w.add('unitType', str('1 Hour'));
    w.add('billingPreTaxTotal', money(totalCents));
    w.add('billingCurrency', str(currency));
    w.add('pricingPreTaxTotal', money(totalCents));
    w.add('pricingCurrency', str('USD'));
    w.add('entitlementId', str(pools.entitlements[customerIndex] as string));
    w.add('entitlementDescription', str('Partner Subscription'));
    w.add('pcToBCExchangeRate', '1');
    w.add('pcToBCExchangeRateDate', lit(`${year}-${pad2(month)}-01T00:00:00Z`));
    // More digits than a double holds: JSON.parse would not round-trip it, so rows must be copied verbatim.
    w.add('effectiveUnitPrice', index % 5 === 0 ? '0.1999968000511991808131' : '0.0209496384791679');
    w.add('rateOfPartnerEarnedCredit', '0');
    w.add('hasPartnerEarnedCredit', 'false');
    w.add('creditType', str(''));
    w.add('rateOfCredit', 'null');
    w.add('invoiceLineItemType', str('usage_line_items'));
    w.add('billingProvider', str('marketplace'));
  }
  w.add('attributes', `{"objectType":"${OBJECT_TYPES[shape]}"}`);
  return totalCents;
}

const PASCAL_EXCEPTIONS: Record<string, string> = {
  pcToBCExchangeRate: 'PCToBCExchangeRate',
  pcToBCExchangeRateDate: 'PCToBCExchangeRateDate',
  resourceUri: 'ResourceURI',
  unitOfMeasure: 'Unit',
};
const V2_DROPPED = new Set(['attributes', 'invoiceLineItemType', 'billingProvider']);
const pascalCache = new Map<string, string>();
const pascal = (key: string) => {
  let name = pascalCache.get(key);
  if (name === undefined) {
    name = PASCAL_EXCEPTIONS[key] ?? key.charAt(0).toUpperCase() + key.slice(1);
    pascalCache.set(key, name);
  }
  return name;
};

/** Builds a row's JSON text as fields arrive: v1 keys as they are, or v2 PascalCase keys without the v1-only fields. */
class RowWriter {
  out = '';
  constructor(readonly v2: boolean) {}
  add(key: string, text: string): void {
    if (this.v2) {
      if (V2_DROPPED.has(key)) return;
      this.out += `${this.out ? ',' : '{'}"${pascal(key)}":${text}`;
    } else {
      this.out += `${this.out ? ',' : '{'}"${key}":${text}`;
    }
  }
  finish(): string {
    return `${this.out || '{'}}`;
  }
}

// ---- dates ---------------------------------------------------------------------------------------------------

/** An instant with 100 ns ticks beyond the millisecond (the 7-digit fractions of ref §1.3). */
interface Instant {
  ms: number;
  /** 0..9999: digits 4-7 of a 7-digit fraction. */
  ticks: number;
}

const OFFSET_SHAPE = /^([+-])(\d{2}):(\d{2})$/;
const FRACTION_SHAPE = /^(utc|local)([0-7])?$/;

/** Renders an instant in a shape; throws on a shape it does not know (a typo in a test must not pass silently). */
export function renderDate(at: Instant, shape: DateShape): string {
  const offset = OFFSET_SHAPE.exec(shape);
  const offsetMinutes = offset ? (offset[1] === '-' ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3])) : 0;
  const wall = new Date(at.ms + offsetMinutes * 60_000).toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  const seconds = wall.slice(0, 19);
  const fraction7 = `${wall.slice(20, 23)}${String(at.ticks).padStart(4, '0')}`;
  if (shape === 'date') return wall.slice(0, 10);
  if (offset) return `${seconds}.${fraction7}${shape}`;
  const plain = FRACTION_SHAPE.exec(shape);
  if (!plain) throw new Error(`unknown date shape ${JSON.stringify(shape)}`);
  const digits = Number(plain[2] ?? 0);
  const text = digits > 0 ? `${seconds}.${fraction7.slice(0, digits)}` : seconds;
  return plain[1] === 'utc' ? `${text}Z` : text;
}

/** Raw injections must be JSON values (odd ones welcome): a page that does not parse would hide every other item. */
function assertJson(text: string, where: string): void {
  try {
    JSON.parse(text);
  } catch {
    throw new Error(`${where}: raw text ${JSON.stringify(text.slice(0, 80))} is not a JSON value`);
  }
}

/** Parses an ISO instant with up to 7 fraction digits into an Instant. */
function parseInstant(value: string): Instant {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`invoiceDate ${JSON.stringify(value)} is not an ISO date`);
  const fraction = /\.(\d+)/.exec(value)?.[1] ?? '';
  return { ms, ticks: Number(fraction.slice(3, 7).padEnd(4, '0')) };
}

/** `YYYY-MM` of a UTC instant, shifted by `months`. */
function monthOf(at: number, months = 0): string {
  const d = new Date(at);
  const shifted = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1));
  return shifted.toISOString().slice(0, 7);
}

// ---- the dataset ---------------------------------------------------------------------------------------------

const DEFAULT_UNBILLED_CURRENCIES = ['USD', 'EUR', 'GBP', 'CHF'];

export function createDataset(seed = 1, options: DatasetOptions = {}): Dataset {
  const rowsPerPart = options.rowsPerPart ?? 25;
  const specs = (options.invoices ?? defaultInvoices(rowsPerPart)).map((spec) => ({
    ...spec,
    parts: spec.parts ?? defaultParts(spec, rowsPerPart),
  }));
  // A typo in a date shape must fail here, not as a 500 in the middle of a test.
  for (const s of specs) {
    const shapes = typeof s.dates === 'string' ? [s.dates] : Object.values(s.dates ?? {});
    for (const shape of shapes) renderDate({ ms: 0, ticks: 0 }, shape as DateShape);
    if (s.invoiceDate !== undefined) parseInstant(s.invoiceDate);
    const raws = [
      ...Object.values(s.raw?.fields ?? {}),
      ...(s.raw?.amendments ?? []),
      ...(s.raw?.taxReceipts ?? []),
      ...(s.raw?.invoiceDetails ?? []),
      ...(s.totalCharges === undefined ? [] : [s.totalCharges]),
    ];
    for (const raw of raws) assertJson(raw, `invoice ${s.id}`);
  }
  for (const item of options.listItems ?? []) assertJson(item.raw, 'listItems');
  const byId = new Map(specs.map((s) => [s.id, s]));
  const versions = new Map<string, number>();
  const totals = new Map<string, number>();

  const spec = (id: string): InvoiceSpec => {
    const found = byId.get(id);
    if (!found) throw new Error(`unknown invoice ${id}`);
    return found;
  };
  const pools = makePools(seed);
  const oneTimeCustomerPrefix = options.oneTimeCustomerIdPrefix ?? 'org:';
  const contexts = new Map<PartSpec, RowContext>();
  const context = (invoice: InvoiceSpec, part: PartSpec): RowContext => {
    let ctx = contexts.get(part);
    if (!ctx) {
      ctx = {
        seed,
        invoice,
        part,
        partHash: hashString(`${seed}|${invoice.id}|${providerKey(part.provider)}|${typeKey(part.lineItemType)}`),
        shape: shapeOf(part.provider, part.lineItemType),
        sign: invoice.documentType === 'credit_note' || invoice.documentType === 'void_note' ? -1 : 1,
        month: monthBounds(invoice.billingPeriod),
        pools,
        oneTimeCustomerPrefix,
      };
      contexts.set(part, ctx);
    }
    return ctx;
  };
  // Lookups are cached: row() is called once per served row.
  const partCache = new Map<string, PartSpec | undefined>();
  const findPart = (invoiceId: string, provider: string, lineItemType: string): PartSpec | undefined => {
    const key = `${invoiceId}\u0000${provider}\u0000${lineItemType}`;
    if (partCache.has(key)) return partCache.get(key);
    const found = lookupPart(invoiceId, provider, lineItemType);
    partCache.set(key, found);
    return found;
  };
  const lookupPart = (invoiceId: string, provider: string, lineItemType: string): PartSpec | undefined => {
    const invoice = byId.get(invoiceId);
    if (!invoice) return undefined;
    const p = providerKey(provider);
    const t = typeKey(lineItemType);
    const parts = invoice.parts ?? [];
    const exact = parts.find((x) => providerKey(x.provider) === p && typeKey(x.lineItemType) === t);
    if (exact) return exact;
    // `provider=onetime` also serves the marketplace details (and the other way round), ref §5.1.
    if (p === 'onetime' || p === 'marketplace') {
      return parts.find(
        (x) =>
          (providerKey(x.provider) === 'onetime' || providerKey(x.provider) === 'marketplace') &&
          typeKey(x.lineItemType) === t,
      );
    }
    return undefined;
  };
  const v2Part = (invoiceId: string, kind: V2Kind): PartSpec | undefined => {
    const invoice = byId.get(invoiceId);
    if (!invoice || invoice.kind === 'legacy') return undefined;
    return findPart(invoiceId, 'onetime', kind === 'usage' ? 'usage' : 'billing');
  };
  const rowsTotal = (id: string): number => {
    const cached = totals.get(id);
    if (cached !== undefined) return cached;
    const invoice = spec(id);
    let cents = 0;
    for (const part of invoice.parts ?? []) {
      // A part the API cannot serve (unknown provider or type) bills nothing anyone can read back.
      if (!servablePart(part)) continue;
      const ctx = context(invoice, part);
      // Usage rows detail consumption the invoice already bills through its billing line items (new commerce bills
      // Azure plan meters as billing lines); adding them again would count the same charges twice.
      if (ctx.shape === 'dailyUsage' || ctx.shape === 'dailyRated') continue;
      for (let i = 0; i < part.rows; i++) cents += rowFields(ctx, i, new RowWriter(false));
    }
    const total = cents / 100;
    totals.set(id, total);
    return total;
  };
  const totalChargesText = (id: string): string => {
    const invoice = spec(id);
    if (invoice.totalCharges !== undefined) return invoice.totalCharges;
    const total = Math.round((rowsTotal(id) + (invoice.chargesAdjustment ?? 0)) * 100) / 100;
    return JSON.stringify(total);
  };
  const totalCharges = (id: string) => Number(totalChargesText(id));

  const listedTopLevel = (s: InvoiceSpec): boolean => {
    if (s.listed !== undefined) return s.listed !== false;
    return s.amendsOf ? options.amendments === 'both' : true;
  };
  const nestedInParent = (s: InvoiceSpec): boolean => {
    if (!s.amendsOf) return false;
    if (s.listed !== undefined) return s.listed === 'both' || s.listed === false;
    return true;
  };

  const pascalSegment = (value: string) =>
    value
      .split('_')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join('');

  /** The invoice's top-level fields as [key, JSON text], in the order the docs' examples use. */
  const invoiceFields = (id: string, view: 'byId' | 'list'): [string, string][] => {
    const invoice = spec(id);
    const currency = invoice.currency ?? 'USD';
    const { endDay, year, month } = monthBounds(invoice.billingPeriod);
    const typeName = invoice.kind === 'legacy' ? 'Recurring' : 'OneTime';
    const shapeOfField = (
      field: 'invoiceDate' | 'billingPeriodStartDate' | 'billingPeriodEndDate',
      fallback: DateShape,
    ): DateShape => (typeof invoice.dates === 'string' ? invoice.dates : (invoice.dates?.[field] ?? fallback));
    // Issued after its period: the 8th of the next month (an invoice for September is dated 8 October).
    const issued: Instant = invoice.invoiceDate
      ? parseInstant(invoice.invoiceDate)
      : { ms: Date.UTC(year, month, 8, 22, 40, 37, 589), ticks: 7767 };
    const periodStart: Instant = { ms: Date.UTC(year, month - 1, 1), ticks: 0 };
    const periodEnd: Instant = { ms: Date.UTC(year, month - 1, endDay, 23, 59, 59, 999), ticks: 9999 };
    const periodFields = invoice.billingPeriodFields ?? options.billingPeriodFields ?? 'byIdOnly';
    const withPeriod =
      periodFields === 'both' ||
      (view === 'byId' && periodFields === 'byIdOnly') ||
      (view === 'list' && periodFields === 'listOnly');

    const receiptRandom = new RowRandom(hashString(`${seed}|${id}|receipts`));
    const receipts = Array.from({ length: invoice.receipts ?? 0 }, () => {
      const receiptId = String(receiptRandom.int(1_000_000, 9_999_999));
      return JSON.stringify({
        id: receiptId,
        taxReceiptPdfDownloadLink: `/invoices/${id}/receipts/${receiptId}/documents/statement`,
      });
    });
    const details = (invoice.parts ?? []).map((part) =>
      JSON.stringify({
        invoiceLineItemType: part.lineItemType,
        billingProvider: part.provider,
        links: {
          self: {
            uri: `/invoices/${typeName}-${id}/lineitems/${encodeURIComponent(pascalSegment(part.provider))}/${encodeURIComponent(pascalSegment(part.lineItemType))}`,
            method: 'GET',
            headers: [],
          },
        },
        attributes: { objectType: 'InvoiceDetail' },
      }),
    );
    const amendments = specs.filter((s) => s.amendsOf === id && nestedInParent(s)).map((s) => invoiceText(s.id, view));
    const raw = invoice.raw ?? {};
    const array = (items: string[], extra: string[] | undefined) => `[${[...items, ...(extra ?? [])].join(',')}]`;

    const fields: [string, string][] = [
      ['id', JSON.stringify(id)],
      ['invoiceDate', JSON.stringify(renderDate(issued, shapeOfField('invoiceDate', 'utc7')))],
    ];
    if (withPeriod) {
      fields.push(
        [
          'billingPeriodStartDate',
          JSON.stringify(renderDate(periodStart, shapeOfField('billingPeriodStartDate', 'utc'))),
        ],
        ['billingPeriodEndDate', JSON.stringify(renderDate(periodEnd, shapeOfField('billingPeriodEndDate', 'utc7')))],
      );
    }
    fields.push(
      ['totalCharges', totalChargesText(id)],
      ['paidAmount', '0'],
      ['currencyCode', JSON.stringify(currency)],
      ['currencySymbol', JSON.stringify(CURRENCY_SYMBOLS[currency] ?? currency)],
      ['taxReceipts', array(receipts, raw.taxReceipts)],
      ['invoiceDetails', array(details, raw.invoiceDetails)],
    );
    if (amendments.length > 0 || raw.amendments?.length) fields.push(['amendments', array(amendments, raw.amendments)]);
    fields.push(['documentType', JSON.stringify(invoice.documentType ?? 'invoice')]);
    fields.push(['invoiceType', JSON.stringify(typeName)]);
    if (invoice.amendsOf) fields.push(['amendsOf', JSON.stringify(invoice.amendsOf)]);
    fields.push(
      ['links', JSON.stringify({ self: { uri: `/invoices/${typeName}-${id}`, method: 'GET', headers: [] } })],
      ['attributes', '{"objectType":"Invoice"}'],
    );
    for (const [key, text] of Object.entries(raw.fields ?? {})) {
      const at = fields.findIndex(([k]) => k === key);
      if (at >= 0) fields[at] = [key, text];
      else fields.splice(fields.length - 2, 0, [key, text]);
    }
    return fields;
  };

  const invoiceText = (id: string, view: 'byId' | 'list', pdfDownloadLink?: string): string => {
    const parts: string[] = [];
    for (const [key, text] of invoiceFields(id, view)) {
      parts.push(`${JSON.stringify(key)}:${text}`);
      // Same place as in the docs' example: right after currencySymbol.
      if (key === 'currencySymbol' && pdfDownloadLink !== undefined) {
        parts.push(`"pdfDownloadLink":${JSON.stringify(pdfDownloadLink)}`);
      }
    }
    return `{${parts.join(',')}}`;
  };

  const listItems = (): string[] => {
    const items = specs.filter(listedTopLevel).map((s) => invoiceText(s.id, 'list'));
    // Injected items go before the `at`-th listed invoice, in the order given; without `at`, at the end.
    const place = (at: number | undefined) => Math.min(Math.max(0, at ?? items.length), items.length);
    const out: string[] = [];
    for (let i = 0; i <= items.length; i++) {
      for (const item of options.listItems ?? []) if (place(item.at) === i) out.push(item.raw);
      if (i < items.length) out.push(items[i] as string);
    }
    return out;
  };

  // ---- unbilled -------------------------------------------------------------------------------------------
  const unbilledCurrencies = new Set(
    (options.unbilled?.currencies ?? DEFAULT_UNBILLED_CURRENCIES).map((c) => c.toUpperCase()),
  );
  const rowsPerDay = Math.max(1, options.unbilled?.rowsPerDay ?? 8);
  const unbilledTotals = new Map<string, number>();
  const unbilledByMonth = (
    kind: V2Kind,
    currencyCode: string,
    period: UnbilledPeriod,
    month: string,
    days: number,
  ): UnbilledView | undefined => {
    const currency = currencyCode.toUpperCase();
    if (!unbilledCurrencies.has(currency)) return undefined;
    const bounds = monthBounds(month);
    const covered = Math.max(0, Math.min(days, bounds.endDay));
    // Rows per day vary around the mean, from (seed, kind, currency, month, day) alone: a day's rows never change
    // once it is covered, so `current` only grows.
    const perDay = Array.from({ length: covered }, (_, d) => {
      const h = hashString(`${seed}|unbilled|${kind}|${currency}|${month}|${d + 1}`);
      const spread = Math.floor(rowsPerDay / 2);
      return Math.max(1, rowsPerDay - spread + (h % (2 * spread + 1)));
    });
    const starts: number[] = [];
    let rows = 0;
    for (const n of perDay) {
      starts.push(rows);
      rows += n;
    }
    const dayOf = (index: number): number => {
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if ((starts[mid] as number) <= index) lo = mid;
        else hi = mid - 1;
      }
      return lo + 1;
    };
    const invoice: InvoiceSpec = { id: '', kind: 'modern', billingPeriod: month, currency };
    const part: PartSpec = {
      provider: 'one_time',
      lineItemType: kind === 'usage' ? 'usage_line_items' : 'billing_line_items',
      rows,
    };
    const ctx: RowContext = {
      seed,
      invoice,
      part,
      partHash: hashString(`${seed}|unbilled|${kind}|${currency}|${month}`),
      shape: kind === 'usage' ? 'dailyRated' : 'oneTime',
      sign: 1,
      month: bounds,
      pools,
      dayOf,
      oneTimeCustomerPrefix,
    };
    const render = (index: number): string => {
      checkIndex(rows, index);
      const w = new RowWriter(true);
      rowFields(ctx, index, w);
      return w.finish();
    };
    const totalKey = `${kind}|${currency}|${month}|${covered}`;
    let total = unbilledTotals.get(totalKey);
    if (total === undefined) {
      let cents = 0;
      for (let i = 0; i < rows; i++) cents += rowFields(ctx, i, new RowWriter(true));
      total = cents / 100;
      unbilledTotals.set(totalKey, total);
    }
    return { kind, currency, period, month, days: covered, rows, row: render, total, perDay };
  };
  const unbilled = (kind: V2Kind, currency: string, period: UnbilledPeriod, at: number) => {
    const month = monthOf(at, period === 'current' ? 0 : -1);
    const days = period === 'current' ? new Date(at).getUTCDate() : monthBounds(month).endDay;
    return unbilledByMonth(kind, currency, period, month, days);
  };

  const checkIndex = (count: number, index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`row ${index} of ${count}`);
  };

  return {
    invoices: () => specs,
    invoiceJson: (id) => JSON.parse(invoiceText(id, 'byId')) as object,
    invoiceText,
    listItems,
    customers: () => pools.customers,
    rows: (invoiceId, provider, lineItemType) => findPart(invoiceId, provider, lineItemType)?.rows ?? 0,
    row(invoiceId, provider, lineItemType, index) {
      const part = findPart(invoiceId, provider, lineItemType);
      if (!part) throw new Error(`invoice ${invoiceId} has no ${provider}/${lineItemType} part`);
      checkIndex(part.rows, index);
      const w = new RowWriter(false);
      rowFields(context(spec(invoiceId), part), index, w);
      return w.finish();
    },
    v2Rows: (invoiceId, kind) => v2Part(invoiceId, kind)?.rows ?? 0,
    renderer(invoiceId, part, v2 = false) {
      const ctx = context(spec(invoiceId), part);
      return (index) => {
        const w = new RowWriter(v2);
        rowFields(ctx, index, w);
        return w.finish();
      };
    },
    v2Row(invoiceId, kind, index) {
      const part = v2Part(invoiceId, kind);
      if (!part) throw new Error(`invoice ${invoiceId} has no v2 ${kind} data`);
      checkIndex(part.rows, index);
      const w = new RowWriter(true);
      rowFields(context(spec(invoiceId), part), index, w);
      return w.finish();
    },
    totalCharges,
    totalChargesText,
    rowsTotal,
    v2Version: (id) => versions.get(id) ?? 1,
    bumpV2Version: (id) => {
      spec(id);
      versions.set(id, (versions.get(id) ?? 1) + 1);
    },
    findPart,
    unbilled,
    unbilledByMonth,
  };
}

/** Providers and types the line-item endpoints accept (anything else is listed but answers 400). */
export function servablePart(part: Pick<PartSpec, 'provider' | 'lineItemType'>): boolean {
  return (
    ['office', 'azure', 'onetime', 'marketplace'].includes(providerKey(part.provider)) &&
    ['billing', 'usage'].includes(typeKey(part.lineItemType))
  );
}

/** Yields the rows of a range as text chunks (a few hundred rows each), for streaming without building a page. */
export function* rowChunks(
  count: number,
  from: number,
  to: number,
  render: (index: number) => string,
  separator: string,
  rowsPerChunk = 256,
): Generator<string> {
  const end = Math.min(to, count);
  let text = '';
  let inChunk = 0;
  for (let i = from; i < end; i++) {
    text += i === from ? render(i) : separator + render(i);
    if (++inChunk === rowsPerChunk) {
      yield text;
      text = '';
      inChunk = 0;
    }
  }
  if (text) yield text;
}
