// The model of an invoice part (one line-item export per billing provider and line-item type) as the ledger keeps
// it: its states, its progress (where the next page starts, what is staged) as ONE value with a validated codec,
// and the earlier versions kept when its data changed. Every job reads and writes a part through these types.
import { z } from 'zod';
import { manifestCheckpointSchema } from '../graph/index.js';
import { lineItemCheckpointSchema } from '../partner-center/index.js';

export const PART_STATES = [
  'queued',
  'exporting',
  'waiting',
  'complete',
  'failed',
  'unsettled',
  'unsupported',
] as const;
export type PartState = (typeof PART_STATES)[number];

/** A part in one of these states needs no more export messages (a recheck or a retry may reopen it). */
export const TERMINAL: ReadonlySet<PartState> = new Set(['complete', 'failed', 'unsettled', 'unsupported']);
/** A part in one of these states still has an export to finish; its invoice cannot be finalized yet. */
export const PENDING: ReadonlySet<PartState> = new Set(['queued', 'exporting', 'waiting']);

/** The schema version written on every part entity, so a later layout change can recognise old rows. */
export const PART_ENTITY_VERSION = 2;

// ---- progress: where the export stands, as one value ---------------------------------------------------------

/** Every page is staged; only the commit (and its verification) is left. */
export const stagedCheckpointSchema = z.strictObject({
  kind: z.literal('staged'),
  /** Rows the source said it served in all, counted by the source (the verification compares the blob with it). */
  rowsThrough: z.number().int().min(0),
});

/** The v2 position, tagged so it can sit in one union with the v1 ones. */
export const v2CheckpointSchema = z.strictObject({ kind: z.literal('manifest'), at: manifestCheckpointSchema });

/**
 * Where the next page starts: a v1 position (offset or continuation token), a v2 position (blob and line), or
 * "every page is staged". Validated whenever it is read back from the ledger.
 */
export const partCheckpointSchema = z.union([lineItemCheckpointSchema, v2CheckpointSchema, stagedCheckpointSchema]);
export type PartCheckpoint = z.infer<typeof partCheckpointSchema>;

const count = z.number().int().min(0);

/**
 * Progress of an export: the checkpoint and what is staged belong together, so they are stored, reset and read
 * back as one value. A restart can only ever restart both.
 */
export const partProgressSchema = z.strictObject({
  /** Where the next page starts; null = at the first page. */
  at: partCheckpointSchema.nullable(),
  /** Blocks staged so far = the index of the next block (a page without rows stages nothing). */
  blocks: count,
  /** Rows and bytes staged so far (the writer's own count; verification does not trust it alone). */
  rows: count,
  bytes: count,
  /**
   * Which lease epoch staged which blocks: `[fromIndex, epoch]` runs, ascending. Block ids carry the epoch, so a
   * block staged by a worker that had lost its lease is never part of what the current owner commits.
   */
  epochs: z.array(z.tuple([count, count])),
});
export type PartProgress = z.infer<typeof partProgressSchema>;

/** Nothing staged, start at the first page. */
export const START: PartProgress = Object.freeze({
  at: null,
  blocks: 0,
  rows: 0,
  bytes: 0,
  epochs: [],
}) as PartProgress;

/** The ledger property of a progress value (JSON, validated on the way in and out). */
export function encodeProgress(progress: PartProgress): string {
  return JSON.stringify(partProgressSchema.parse(progress));
}

export class CorruptProgressError extends Error {
  override name = 'CorruptProgressError';
  readonly retriable = false;
}

/** A stored progress value; absent means START. A value that does not validate is refused with a clear error. */
export function decodeProgress(text: string | undefined): PartProgress {
  if (text === undefined || text === '') return START;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CorruptProgressError(`stored progress is not JSON (starts with ${JSON.stringify(text.slice(0, 40))})`);
  }
  const parsed = partProgressSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new CorruptProgressError(`stored progress does not validate: ${problems}`);
  }
  return parsed.data;
}

/** The epoch that staged block `index` (the runs are ascending by index). */
export function epochOf(progress: Pick<PartProgress, 'epochs'>, index: number): number {
  let epoch: number | undefined;
  for (const [from, e] of progress.epochs) {
    if (from > index) break;
    epoch = e;
  }
  if (epoch === undefined) throw new CorruptProgressError(`no epoch recorded for block ${index}`);
  return epoch;
}

/** Progress after staging one page: the counters, the block's epoch and where the next page starts, together. */
export function advance(
  progress: PartProgress,
  page: { rows: number; bytes: number; next: PartCheckpoint | null; rowsThrough: number },
  epoch: number,
): PartProgress {
  const staged = page.rows > 0;
  const last = progress.epochs[progress.epochs.length - 1];
  const epochs: [number, number][] =
    staged && last?.[1] !== epoch ? [...progress.epochs, [progress.blocks, epoch]] : progress.epochs;
  return {
    at: page.next ?? { kind: 'staged', rowsThrough: page.rowsThrough },
    blocks: progress.blocks + (staged ? 1 : 0),
    rows: progress.rows + page.rows,
    bytes: progress.bytes + page.bytes,
    epochs,
  };
}

// ---- earlier versions of a part's file ------------------------------------------------------------------------

/** A file kept when the part's data changed after it was first exported (listed in the manifest). */
export const previousVersionSchema = z.strictObject({
  path: z.string(),
  v2Etag: z.string(),
  rows: count,
  bytes: count,
  sha256: z.string(),
  replacedAt: z.string(),
});
export type PreviousVersion = z.infer<typeof previousVersionSchema>;
const historySchema = z.array(previousVersionSchema);

export function decodeHistory(text: string | undefined): PreviousVersion[] {
  if (!text) return [];
  const parsed = historySchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new CorruptProgressError(`stored part history does not validate: ${parsed.error.message}`);
  return parsed.data;
}

export const encodeHistory = (history: PreviousVersion[]): string => JSON.stringify(historySchema.parse(history));

// ---- the entity ---------------------------------------------------------------------------------------------

const optionalText = z.string().optional();

export const partEntitySchema = z.object({
  invoiceId: z.string(),
  partId: z.string(),
  provider: z.string(),
  lineItemType: z.string(),
  /** The route decided by syncInvoice (v1 line items or a Graph v2 export); a failed v2 export may fall back to v1. */
  api: z.enum(['v1', 'v2']),
  v2Kind: z.enum(['reconciliation', 'usage']).optional(),
  /** JSON of UnbilledTarget (unbilled.ts): set on the parts of an unbilled snapshot, which export unbilled data. */
  unbilled: optionalText,
  /** Why this route (or why the part is unsupported). */
  routeReason: optionalText,
  /** JSON of the v1 request (LineItemRequest): how to read this part through v1, decided once at sync. */
  request: optionalText,
  state: z.enum(PART_STATES),
  /** JSON of PartProgress (encodeProgress/decodeProgress); absent = START. */
  progress: optionalText,
  /** Where the file lands; decided once from the invoice's billing period ('' for an unsupported part). */
  blobPath: z.string(),
  // What the committed file holds, read back from storage when the part completed.
  rows: count,
  bytes: count,
  sha256: optionalText,
  /** Sum of the billing rows' amounts, exact decimal text (reconciliation). */
  lineTotal: optionalText,
  /** Which API produced the committed file (may differ from `api` after a fallback). */
  source: z.enum(['v1', 'v2']).optional(),
  attempts: count,
  lastError: optionalText,
  operationLocation: optionalText,
  v2Etag: optionalText,
  firstAttemptAt: optionalText,
  /** The last time the export moved (a page staged, an operation polled): stuck detection reads it. */
  progressAt: optionalText,
  /** When the message that continues this part is due (a delayed poll, a hand-over). */
  dueAt: optionalText,
  nextCheckAt: optionalText,
  /** JSON array of PreviousVersion (encodeHistory/decodeHistory). */
  history: optionalText,
  /** The export invocation that owns the part, until when, and the claim number (block ids carry it). */
  leaseOwner: optionalText,
  leaseUntil: optionalText,
  epoch: count.default(0),
  /** The message chain's turn: a message older than the part's turn is a stale duplicate and is dropped. */
  turn: count.default(0),
  updatedAt: z.string(),
  version: z.number().int().default(PART_ENTITY_VERSION),
  /** The entity's ETag as read (never stored); finalize compares snapshots with it. */
  etag: optionalText,
});
export type PartEntity = z.output<typeof partEntitySchema>;
export type NewPartEntity = z.input<typeof partEntitySchema>;
/** What a mutate callback returns: the fields to change (`undefined` value = remove the field). */
export type PartPatch = Partial<Omit<PartEntity, 'invoiceId' | 'partId' | 'etag'>>;

/** The one patch that starts a part's export over: nothing staged, from the first page. */
export const resetProgress = (): PartPatch => ({ progress: encodeProgress(START) });

export const progressOf = (part: Pick<PartEntity, 'progress'>): PartProgress => decodeProgress(part.progress);
