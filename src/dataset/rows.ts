// One NDJSON line item → one typed dataset row. Fields are read from the row's raw text (numbers keep every digit
// the API sent; JSON.parse would round them to doubles) and looked up by name case-insensitively (v2 is PascalCase).
import { topLevelMembers } from '../http/json-items.js';
import { describeValue } from '../ids.js';
import { parsePartnerCenterDate } from '../storage/layout.js';
import { COLUMNS, type Column, DECIMAL_PRECISION, DECIMAL_SCALE, ROW_KINDS, type RowKind } from './columns.js';

/** A top-level value as the row sent it. */
export type RawValue =
  | { kind: 'string'; value: string }
  | { kind: 'number' | 'boolean' | 'json'; text: string }
  | { kind: 'null' };

/** A row that the dataset cannot state exactly (a number with too many digits, a date that does not parse, ...). */
export class DatasetRowError extends Error {
  override name = 'DatasetRowError';
}

/**
 * The row's top-level members, keys lower-cased (the first of two keys that differ only in case wins, as in the
 * reconciliation's read-back). Nested objects and arrays are kept as their JSON text, numbers as the text the API
 * sent. The row is validated by JSON.parse first; the members are then cut from its text (topLevelMembers).
 */
export function rowMembers(line: string): Map<string, RawValue> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new DatasetRowError(`the row is not valid JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new DatasetRowError('the row is not a JSON object');
  }
  const members = new Map<string, RawValue>();
  for (const member of topLevelMembers(line)) {
    const key = lowerCased(member.key);
    if (members.has(key)) continue;
    const text = line.slice(member.valueStart, member.valueEnd);
    const first = text.charCodeAt(0);
    members.set(
      key,
      first === QUOTE
        ? { kind: 'string', value: text.includes('\\') ? (JSON.parse(text) as string) : text.slice(1, -1) }
        : first === OPEN_BRACE || first === OPEN_BRACKET
          ? { kind: 'json', text }
          : text === 'null'
            ? { kind: 'null' }
            : { kind: text === 'true' || text === 'false' ? 'boolean' : 'number', text },
    );
  }
  return members;
}

/**
 * Keys lower-cased once: every row of a file repeats the same few dozen keys, and toLowerCase allocates a new string
 * per call. Bounded, so a file of ever-new keys cannot grow it without limit.
 */
const LOWER_KEYS = new Map<string, string>();
const LOWER_KEYS_MAX = 4096;
function lowerCased(key: string): string {
  let lower = LOWER_KEYS.get(key);
  if (lower === undefined) {
    lower = key.toLowerCase();
    if (LOWER_KEYS.size >= LOWER_KEYS_MAX) LOWER_KEYS.clear();
    LOWER_KEYS.set(key, lower);
  }
  return lower;
}

const QUOTE = 0x22;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;

/** What the writer knows about the file a row comes from. */
export interface RowOrigin {
  invoiceId: string;
  /** YYYY-MM */
  billingPeriod: string;
  currencyCode: string;
  provider: string;
  source: 'v1' | 'v2';
  path: string;
}

/** A typed cell: text, an exact unscaled decimal (bigint at the column's scale), epoch ms (bigint), or null. */
export type Cell = string | bigint | null;

const V1_KINDS = new Set<string>(['LicenseBasedLineItem', 'UsageBasedLineItem', 'OneTimeInvoiceLineItem']);

/** ref §5.2: v1 rows say what they are in attributes.objectType; the request's provider decides otherwise. */
export function rowKind(members: Map<string, RawValue>, origin: RowOrigin): RowKind {
  if (origin.source === 'v2') return 'v2';
  const attributes = members.get('attributes');
  if (attributes?.kind === 'json') {
    try {
      const objectType: unknown = (JSON.parse(attributes.text) as { objectType?: unknown }).objectType;
      if (typeof objectType === 'string' && V1_KINDS.has(objectType)) return objectType as RowKind;
    } catch {
      // not an object: fall through to the provider
    }
  }
  if (origin.provider === 'office') return 'LicenseBasedLineItem';
  if (origin.provider === 'azure') return 'UsageBasedLineItem';
  return 'OneTimeInvoiceLineItem';
}

/** The same number shape the reconciliation's read-back accepts (a JSON number, or a string holding one). */
const NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

const numberText = (value: RawValue): string | undefined => {
  if (value.kind === 'number') return value.text;
  if (value.kind === 'string' && NUMBER.test(value.value)) return value.value;
  return undefined;
};

const isBlank = (value: RawValue | undefined) =>
  value === undefined || value.kind === 'null' || (value.kind === 'string' && value.value.trim() === '');

/** 10^0 .. 10^DECIMAL_PRECISION: every power unscaledDecimal multiplies by (a larger shift is refused first). */
const POW10: readonly bigint[] = Array.from({ length: DECIMAL_PRECISION + 1 }, (_, n) => 10n ** BigInt(n));
const DECIMAL_LIMIT = 10n ** BigInt(DECIMAL_PRECISION);

const DECIMAL_TEXT = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * The unscaled value of `text` at `scale`, refused when DECIMAL(38, scale) cannot hold it exactly. Worked out on the
 * digits themselves (a bigint and a power of ten): exact, and without a decimal library's object per value.
 */
export function unscaledDecimal(text: string, scale: number): bigint {
  const match = DECIMAL_TEXT.exec(text);
  if (!match) throw new Error(`${text} is not a number`);
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;
  // text = digits × 10^(exponent − fraction digits); at `scale` the unscaled value is digits × 10^shift.
  const digits = `${whole}${fraction}`.replace(/^0+/, '');
  if (digits === '') return 0n;
  const shift = Number(exponent) - fraction.length + scale;
  let unscaled: bigint;
  if (shift >= 0) {
    if (digits.length + shift > DECIMAL_PRECISION) {
      throw new Error(`${text} has more than ${DECIMAL_PRECISION - scale} integer digits`);
    }
    unscaled = BigInt(digits) * (POW10[shift] as bigint);
  } else {
    const dropped = digits.slice(Math.max(0, digits.length + shift));
    if (/[^0]/.test(dropped)) throw new Error(`${text} has more than ${scale} fraction digits`);
    unscaled = BigInt(digits.slice(0, Math.max(0, digits.length + shift)) || '0');
  }
  if (unscaled >= DECIMAL_LIMIT) {
    throw new Error(`${text} has more than ${DECIMAL_PRECISION - scale} integer digits`);
  }
  return sign === '-' ? -unscaled : unscaled;
}

function convert(column: Column, value: RawValue): Cell {
  switch (column.type) {
    case 'string':
      if (value.kind === 'null') return null;
      return value.kind === 'string' ? value.value : value.text;
    case 'decimal':
    case 'price': {
      const text = numberText(value);
      if (text === undefined) throw new Error(`${describeValue(valueText(value))} is not a number`);
      return unscaledDecimal(text, DECIMAL_SCALE[column.type]);
    }
    case 'timestamp':
      if (value.kind !== 'string') throw new Error(`${describeValue(valueText(value))} is not a date`);
      return BigInt(parsePartnerCenterDate(value.value));
    case 'int64': {
      const text = numberText(value);
      if (text === undefined || !/^-?\d+$/.test(text))
        throw new Error(`${describeValue(valueText(value))} is not an integer`);
      return BigInt(text);
    }
  }
}

const valueText = (value: RawValue): string =>
  value.kind === 'string' ? value.value : value.kind === 'null' ? 'null' : value.text;

/** The first candidate field the row has with a value (for decimals: with a number, as the reconciliation reads). */
function pick(members: Map<string, RawValue>, column: Column, names: readonly string[]): RawValue | undefined {
  const decimal = column.type === 'decimal' || column.type === 'price';
  let present: RawValue | undefined;
  for (const name of names) {
    const value = members.get(name);
    if (isBlank(value)) continue;
    if (!decimal || numberText(value as RawValue) !== undefined) return value;
    present ??= value;
  }
  // A decimal field that is there but holds no number: refused by convert with the field's text.
  return present;
}

/** Per kind, per column (COLUMNS order): the candidate fields, lower-cased as rowMembers keys them. */
const FIELDS = Object.fromEntries(
  ROW_KINDS.map((kind) => [
    kind,
    COLUMNS.map((column) =>
      'derived' in column.source ? [] : (column.source.fields[kind] ?? []).map((name) => name.toLowerCase()),
    ),
  ]),
) as unknown as Record<RowKind, readonly (readonly string[])[]>;

const monthStart = (period: string, monthsLater = 0): bigint => {
  const [year, month] = period.split('-').map(Number) as [number, number];
  return BigInt(Date.UTC(year, month - 1 + monthsLater, 1));
};

const ORG_PREFIX = /^org:/i;

/**
 * The typed cells of one row, in COLUMNS order. Throws DatasetRowError naming the file, line and column when a
 * value cannot be stated exactly in its column's type.
 */
export function typedRow(line: string, lineNumber: number, origin: RowOrigin): Cell[] {
  const where = `${origin.path} line ${lineNumber}`;
  let members: Map<string, RawValue>;
  try {
    members = rowMembers(line);
  } catch (error) {
    throw new DatasetRowError(`${where}: ${(error as Error).message}`);
  }
  const kind = rowKind(members, origin);
  const text = (name: string): string | null => {
    const value = members.get(name);
    if (isBlank(value) || value === undefined || value.kind === 'null') return null;
    return value.kind === 'string' ? value.value : value.text;
  };
  const fields = FIELDS[kind];
  const cells = new Array<Cell>(COLUMNS.length);
  for (let i = 0; i < COLUMNS.length; i++) {
    const column = COLUMNS[i] as Column;
    if ('derived' in column.source) {
      cells[i] = derived(column, kind, text, origin, lineNumber);
      continue;
    }
    const value = pick(members, column, fields[i] as readonly string[]);
    if (value === undefined) {
      cells[i] = null;
      continue;
    }
    try {
      cells[i] = convert(column, value);
    } catch (error) {
      throw new DatasetRowError(`${where}: ${column.name} (${kind}): ${(error as Error).message}`);
    }
  }
  return cells;
}

function derived(
  column: Column,
  kind: RowKind,
  text: (name: string) => string | null,
  origin: RowOrigin,
  lineNumber: number,
): Cell {
  switch (column.name) {
    case 'BillingPeriodStart':
      return monthStart(origin.billingPeriod);
    case 'BillingPeriodEnd':
      return monthStart(origin.billingPeriod, 1);
    case 'InvoiceId':
      return origin.invoiceId;
    case 'BillingCurrency':
      return text('currency') ?? origin.currencyCode;
    case 'ChargeCategory':
      return kind === 'UsageBasedLineItem' || /usage/i.test(text('chargetype') ?? '') ? 'Usage' : 'Purchase';
    case 'SubAccountId':
      return text('customerid')?.replace(ORG_PREFIX, '') ?? null;
    case 'x_LineItemKind':
      return kind;
    case 'x_Provider':
      return origin.provider;
    case 'x_SourceApi':
      return origin.source;
    case 'x_SourceFile':
      return origin.path;
    case 'x_SourceLine':
      return BigInt(lineNumber);
    default:
      throw new Error(`column ${column.name} has no derivation`);
  }
}
