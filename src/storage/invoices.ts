// The model of an invoice as the ledger keeps it: its state machine (enforced on every write), the facts decided
// once and read by every later stage (billing period, totals, the hashes of what was saved), and its retry clock.
import { z } from 'zod';

/*
 * Invoice state machine (Ledger.updateInvoice refuses any other move):
 *
 *   discovered ──► queued ──► pdf_saved ──► exporting ──► complete
 *                    ▲  │         │             │    ├──► mismatch  (line items differ from totalCharges)
 *                    │  │         │             │    ├──► unsettled (v2 still has no data at its deadline)
 *                    │  └─────────┴─────────────┴────┴──► failed    (a part or the sync gave up)
 *                    └── any state (re-queue: stuck, retry after failed, re-check after mismatch, operator resync)
 *
 * - discovered: recorded by detectInvoices BEFORE its message is sent, so a failed enqueue only delays it.
 * - queued: the message is durable; a stuck invoice (no progress for STUCK_AFTER_MINUTES) is queued again.
 * - pdf_saved: its PDF, receipts and invoice.json are saved and its parts recorded; exporting: parts under way.
 * - complete, mismatch, unsettled and failed are resting states; failed and mismatch are retried by the timer
 *   (1 h, 2 h, 4 h ... at most 24 h apart) for FAILED_RETRY_DAYS; a complete invoice's v2 data may be re-checked.
 */
export const INVOICE_STATES = [
  'discovered',
  'queued',
  'pdf_saved',
  'exporting',
  'complete',
  'mismatch',
  'unsettled',
  'failed',
] as const;
export type InvoiceState = (typeof INVOICE_STATES)[number];

const RESTING = ['complete', 'mismatch', 'unsettled', 'failed'] as const;
export const INVOICE_TRANSITIONS: Readonly<Record<InvoiceState, readonly InvoiceState[]>> = {
  discovered: ['queued', 'failed'],
  queued: ['queued', 'pdf_saved', 'exporting', ...RESTING],
  pdf_saved: ['queued', 'exporting', ...RESTING],
  exporting: ['queued', 'exporting', ...RESTING],
  complete: ['queued', 'exporting', 'complete', 'mismatch', 'unsettled', 'failed'],
  mismatch: ['queued', 'exporting', ...RESTING],
  unsettled: ['queued', 'exporting', ...RESTING],
  failed: ['queued', 'exporting', ...RESTING],
};

/** States in which an invoice has work under way; stuck detection looks only at these. */
export const ACTIVE_INVOICE_STATES: ReadonlySet<InvoiceState> = new Set(['queued', 'pdf_saved', 'exporting']);

/** Where the billing period came from, most authoritative first. */
export const PERIOD_SOURCES = ['by-id', 'list', 'invoice-date'] as const;
export type PeriodSource = (typeof PERIOD_SOURCES)[number];

const optionalText = z.string().optional();
const count = z.number().int().min(0);

/** A saved file of the invoice, hashed once when it was written (finalize reads these, never the blobs). */
export const savedFileSchema = z.strictObject({ path: z.string(), bytes: count, sha256: z.string() });
export type SavedFile = z.infer<typeof savedFileSchema>;
const receiptsSchema = z.array(savedFileSchema.extend({ id: z.string() }));
export type SavedReceipt = z.infer<typeof receiptsSchema>[number];

/** The reconciliation as the last finalize measured it (status and the CLI show it; the manifest carries it). */
export const reconciliationSchema = z.strictObject({
  invoiceTotalCharges: z.string().nullable(),
  lineItemTotal: z.string().nullable(),
  difference: z.string().nullable(),
  matches: z.boolean().nullable(),
  tolerance: z.string(),
  basis: z.string(),
});
export type Reconciliation = z.infer<typeof reconciliationSchema>;

export const invoiceEntitySchema = z.object({
  invoiceId: z.string(),
  /** `YYYY-MM`: the partition of every blob of the invoice. Provisional until `billingPeriodFixed`. */
  billingPeriod: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/),
  billingPeriodSource: z.enum(PERIOD_SOURCES).optional(),
  /** Set before the invoice's first blob is written; from then on no stage changes or re-derives the period. */
  billingPeriodFixed: z.boolean().optional(),
  invoiceDate: z.string(),
  documentType: z.string(),
  invoiceType: z.string(),
  amendsOf: optionalText,
  currencyCode: z.string(),
  /** The exact JSON text Partner Center sent (e.g. `12345678901234567.89`), never a binary float. */
  totalCharges: z.string(),
  state: z.enum(INVOICE_STATES),
  attempts: count,
  lastError: optionalText,
  discoveredAt: z.string(),
  updatedAt: z.string(),
  queuedAt: optionalText,
  completedAt: optionalText,
  correlationId: z.string(),
  pdfSha256: optionalText,
  pdfBytes: count.optional(),
  pdfSavedAt: optionalText,
  /** JSON of SavedFile: invoice.json as written. */
  invoiceFile: optionalText,
  /** JSON of SavedReceipt[]: every tax receipt saved, with its hash. */
  receipts: optionalText,
  /** JSON string[]: what the invoice carried that could not be used (a receipt without id, a null detail, ...). */
  notes: optionalText,
  partsTotal: count.optional(),
  partsComplete: count.optional(),
  /** JSON of Reconciliation, from the last finalize. */
  reconciliation: optionalText,
  /** When the invoice first became failed or mismatch in this stretch, how often it was retried, and when next. */
  troubleSince: optionalText,
  retries: count.optional(),
  nextRetryAt: optionalText,
  /** The entity's ETag as read (never stored). */
  etag: optionalText,
});
export type InvoiceEntity = z.output<typeof invoiceEntitySchema>;
export type NewInvoiceEntity = z.input<typeof invoiceEntitySchema>;
export type InvoicePatch = Partial<Omit<InvoiceEntity, 'invoiceId' | 'etag'>>;

export const decodeReceipts = (entity: Pick<InvoiceEntity, 'receipts'>): SavedReceipt[] =>
  entity.receipts ? receiptsSchema.parse(JSON.parse(entity.receipts)) : [];
export const encodeReceipts = (receipts: SavedReceipt[]): string => JSON.stringify(receiptsSchema.parse(receipts));
export const decodeSavedFile = (text: string | undefined): SavedFile | undefined =>
  text ? savedFileSchema.parse(JSON.parse(text)) : undefined;
export const decodeNotes = (entity: Pick<InvoiceEntity, 'notes'>): string[] =>
  entity.notes ? z.array(z.string()).parse(JSON.parse(entity.notes)) : [];
export const decodeReconciliation = (entity: Pick<InvoiceEntity, 'reconciliation'>): Reconciliation | undefined =>
  entity.reconciliation ? reconciliationSchema.parse(JSON.parse(entity.reconciliation)) : undefined;

/** An item of the invoice list that could not be used, kept so `status` can show it (id as sent, redacted). */
export const rejectedItemSchema = z.object({
  key: z.string(),
  idAsSent: z.string(),
  reason: z.string(),
  parentId: optionalText,
  firstSeenAt: z.string(),
  lastSeenAt: z.string(),
});
export type RejectedItem = z.infer<typeof rejectedItemSchema>;
