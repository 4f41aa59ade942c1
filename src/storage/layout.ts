// The blob layout of the invoice container (docs/architecture.md "Blob layout") and the id checks that keep
// every path inside its invoice folder. Every blob name the app writes is built here.
import { assertSafeId, describeValue } from '../ids.js';

const SEGMENT_PATTERN = /^[a-z0-9_]+$/;
const PERIOD_PATTERN = /^\d{4}-(0[1-9]|1[0-2])$/;

/** A blob path segment or period that would not stay inside its folder. */
export class InvalidPathError extends Error {
  override name = 'InvalidPathError';
  readonly retriable = false;
}

function assertSegment(kind: string, value: string): void {
  if (!SEGMENT_PATTERN.test(value)) {
    throw new InvalidPathError(`Unsafe ${kind} ${describeValue(value)}: expected lowercase letters, digits or '_'.`);
  }
}

function assertPeriod(period: string): void {
  if (!PERIOD_PATTERN.test(period)) {
    throw new InvalidPathError(`Invalid billing period ${describeValue(period)}: expected YYYY-MM.`);
  }
}

// ref §1.3: `...5897767Z`, `...T00:00:00` (no zone, read as UTC) and `...1292512+00:00` all occur.
const DATE_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Parse a Partner Center date to epoch ms. A missing zone means UTC (the API reports UTC); fractions longer
 * than milliseconds are truncated, since `Date.parse` rejects or misreads 7-digit fractions on some runtimes.
 */
export function parsePartnerCenterDate(value: string): number {
  const match = DATE_PATTERN.exec(value.trim());
  if (!match) throw new Error(`Unrecognised date ${describeValue(value)}`);
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = match;
  const ms = Number(fraction.slice(0, 3).padEnd(3, '0'));
  let time = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  if (zone && zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    time -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))) * 60_000;
  }
  const check = new Date(time);
  if (Number.isNaN(time) || Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31) {
    throw new Error(`Unrecognised date ${describeValue(value)}`);
  }
  return check.getTime();
}

/**
 * The UTC calendar month of a Partner Center date, `YYYY-MM`. The API reports UTC (a date without a zone is UTC);
 * an offset, where one appears, names the same instant, so `2024-08-31T19:00:00-05:00` is September.
 */
export function monthOfDate(value: string): string {
  return new Date(parsePartnerCenterDate(value)).toISOString().slice(0, 7);
}

/** `billing_period=YYYY-MM/invoice_id={id}/` (with the trailing slash, so it is also a listing prefix). */
export function invoiceFolder(period: string, invoiceId: string): string {
  assertPeriod(period);
  assertSafeId(invoiceId);
  return `billing_period=${period}/invoice_id=${invoiceId}/`;
}

export function invoiceJsonPath(period: string, invoiceId: string): string {
  return `${invoiceFolder(period, invoiceId)}invoice.json`;
}

export function invoicePdfPath(period: string, invoiceId: string): string {
  return `${invoiceFolder(period, invoiceId)}invoice.pdf`;
}

export function receiptPdfPath(period: string, invoiceId: string, receiptId: string): string {
  assertSafeId(receiptId, 'receipt id');
  return `${invoiceFolder(period, invoiceId)}receipts/${receiptId}.pdf`;
}

/**
 * `.../lineitems/provider={provider}/line_item_type={type}/rows.ndjson`. `version` (optional, e.g. `v2`)
 * selects `rows.{version}.ndjson`, for a side-by-side copy that must not replace the main export.
 */
export function lineItemsPath(
  period: string,
  invoiceId: string,
  provider: string,
  lineItemType: string,
  version?: string,
): string {
  assertSegment('provider', provider);
  assertSegment('line item type', lineItemType);
  if (version !== undefined) assertSegment('version', version);
  const file = version === undefined ? 'rows.ndjson' : `rows.${version}.ndjson`;
  return `${invoiceFolder(period, invoiceId)}lineitems/provider=${provider}/line_item_type=${lineItemType}/${file}`;
}

/**
 * `.../billing_lines.parquet`: the typed dataset of the invoice's billing lines (src/dataset/), beside the verbatim
 * NDJSON. A name of its own at the invoice level: the glob `billing_period=STAR/invoice_id=STAR/billing_lines.parquet`
 * matches exactly these files, and the NDJSON glob (`.../lineitems/.../rows.ndjson`) never matches it.
 */
export function billingLinesPath(period: string, invoiceId: string): string {
  return `${invoiceFolder(period, invoiceId)}billing_lines.parquet`;
}

export function manifestPath(period: string, invoiceId: string): string {
  return `${invoiceFolder(period, invoiceId)}manifest.json`;
}

/**
 * `unbilled/billing_period=YYYY-MM/snapshot=YYYY-MM-DD/currency=CUR/` (trailing slash): one unbilled snapshot. Under
 * `unbilled/`, which the storage lifecycle rule `delete-unbilled` clears after UNBILLED_RETENTION_DAYS; the billed
 * globs (`billing_period=STAR/invoice_id=STAR/...`) never match it.
 */
export function unbilledFolder(period: string, snapshotDate: string, currency: string): string {
  assertPeriod(period);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(snapshotDate)) {
    throw new InvalidPathError(`Invalid snapshot date ${describeValue(snapshotDate)}: expected YYYY-MM-DD.`);
  }
  if (!/^[A-Z]{3}$/.test(currency)) throw new InvalidPathError(`Invalid currency ${describeValue(currency)}`);
  return `unbilled/billing_period=${period}/snapshot=${snapshotDate}/currency=${currency}/`;
}

/** `unbilled/.../line_item_type={usage|billing}/rows.ndjson`: one export of the snapshot, verbatim lines. */
export function unbilledRowsPath(period: string, snapshotDate: string, currency: string, lineItemType: string): string {
  assertSegment('line item type', lineItemType);
  return `${unbilledFolder(period, snapshotDate, currency)}line_item_type=${lineItemType}/rows.ndjson`;
}

export function unbilledManifestPath(period: string, snapshotDate: string, currency: string): string {
  return `${unbilledFolder(period, snapshotDate, currency)}manifest.json`;
}
