// The model of an unbilled snapshot as the ledger keeps it: one entity per (snapshot day, billing month, currency),
// whose two parts (usage and billing, ordinary part entities keyed by the snapshot key) go through the same export
// path as an invoice's v2 parts. Its key, its state machine (checked on every write) and its blob folder live here.
import { z } from 'zod';

export const UNBILLED_STATES = ['queued', 'complete', 'failed'] as const;
export type UnbilledState = (typeof UNBILLED_STATES)[number];

/*
 * queued ──► complete      (both parts committed and verified, manifest.json written: final for that day)
 *   │  ▲
 *   ▼  │
 *  failed                  (a part gave up or had no data in time; the next timer run of the day retries it)
 */
export const UNBILLED_TRANSITIONS: Readonly<Record<UnbilledState, readonly UnbilledState[]>> = {
  queued: ['queued', 'complete', 'failed'],
  failed: ['queued', 'failed', 'complete'],
  complete: ['complete'],
};

/** The two exports of a snapshot: the part id is the line-item type, as in the blob layout. */
export const UNBILLED_PARTS = [
  { partId: 'usage', lineItemType: 'usage', v2Kind: 'usage' },
  { partId: 'billing', lineItemType: 'billing', v2Kind: 'reconciliation' },
] as const;

const SNAPSHOT_KEY = /^unbilled-(\d{4})(\d{2})(\d{2})-(\d{4})(\d{2})-([A-Z]{3})$/;
const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const CURRENCY = /^[A-Z]{3}$/;

/**
 * `unbilled-YYYYMMDD-YYYYMM-CUR`: one snapshot a day per billing month and currency. It is the ledger key of the
 * snapshot and the owner id of its parts and export messages (a valid id by src/ids.ts, never an invoice id:
 * invoice ids carry no such prefix).
 */
export function snapshotKey(snapshotDate: string, billingPeriod: string, currency: string): string {
  if (!DAY.test(snapshotDate) || !MONTH.test(billingPeriod) || !CURRENCY.test(currency)) {
    throw new Error(
      `Invalid unbilled snapshot (${JSON.stringify(snapshotDate)}, ${JSON.stringify(billingPeriod)}, ${JSON.stringify(currency)}): expected YYYY-MM-DD, YYYY-MM and a 3-letter currency`,
    );
  }
  return `unbilled-${snapshotDate.replaceAll('-', '')}-${billingPeriod.replace('-', '')}-${currency}`;
}

export const isSnapshotKey = (id: string): boolean => SNAPSHOT_KEY.test(id);

/** What a part of a snapshot asks Graph for: the currency and the concrete month (never the word `current`). */
export const unbilledTargetSchema = z.strictObject({
  currencyCode: z.string().regex(CURRENCY),
  billingPeriod: z.string().regex(MONTH),
  /** The word sent when the export was started (`current` or `last`), decided from the month at that moment. */
  requestedAs: z.enum(['current', 'last']).optional(),
});
export type UnbilledTarget = z.infer<typeof unbilledTargetSchema>;

export const decodeUnbilledTarget = (text: string | undefined): UnbilledTarget | undefined =>
  text ? unbilledTargetSchema.parse(JSON.parse(text)) : undefined;
export const encodeUnbilledTarget = (target: UnbilledTarget): string =>
  JSON.stringify(unbilledTargetSchema.parse(target));

/** What a snapshot's committed file holds, copied from its part when the snapshot completed. */
export const snapshotFileSchema = z.strictObject({
  lineItemType: z.string(),
  path: z.string(),
  rows: z.number().int().min(0),
  bytes: z.number().int().min(0),
  sha256: z.string(),
  /** Exact decimal sum of the rows' amounts (BillingPreTaxTotal for usage, TotalForCustomer for billing). */
  total: z.string().nullable(),
  v2Etag: z.string().optional(),
  requestedAs: z.enum(['current', 'last']).optional(),
});
export type SnapshotFile = z.infer<typeof snapshotFileSchema>;

const optionalText = z.string().optional();

export const snapshotEntitySchema = z.object({
  snapshotKey: z.string().regex(SNAPSHOT_KEY),
  /** UTC day the snapshot was taken for (one snapshot a day per period and currency). */
  snapshotDate: z.string().regex(DAY),
  billingPeriod: z.string().regex(MONTH),
  currency: z.string().regex(CURRENCY),
  state: z.enum(UNBILLED_STATES),
  /** Timer runs that (re)queued it: 1 for the first, +1 per retry of a failed snapshot. */
  runs: z.number().int().min(0),
  requestedAt: z.string(),
  updatedAt: z.string(),
  completedAt: optionalText,
  lastError: optionalText,
  correlationId: z.string(),
  /** JSON of SnapshotFile[]: the committed files, once complete. */
  files: optionalText,
  manifestPath: optionalText,
  etag: optionalText,
});
export type SnapshotEntity = z.output<typeof snapshotEntitySchema>;
export type SnapshotPatch = Partial<Omit<SnapshotEntity, 'snapshotKey' | 'etag'>>;

export const decodeSnapshotFiles = (entity: Pick<SnapshotEntity, 'files'>): SnapshotFile[] =>
  entity.files ? z.array(snapshotFileSchema).parse(JSON.parse(entity.files)) : [];
export const encodeSnapshotFiles = (files: SnapshotFile[]): string =>
  JSON.stringify(z.array(snapshotFileSchema).parse(files));
