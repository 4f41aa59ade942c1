// Queue message contracts: ids, never data (a queue message is at most 64 KiB). Validated strictly before any
// I/O, so a malformed or hostile message fails with a clear error and touches nothing.
import { z } from 'zod';
import { INVOICE_ID_PATTERN } from '../ids.js';

export const PART_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const invoiceId = z.string().regex(INVOICE_ID_PATTERN, 'invoiceId must be 1-64 letters, digits or dashes');

/**
 * Why an invoice is (re)queued: first sight, no progress, a v2 wait past its deadline, a retry of a failed one, a
 * re-check of one whose line items did not add up; or an operator: `resync` re-runs what is not complete, `full`
 * re-exports everything from the first page. `finalize`: its parts are finished (sent by the export that finished
 * the last one), so only the manifest, the dataset and the resting state are left; nothing is fetched.
 */
export const SYNC_REASONS = ['new', 'stuck', 'settle', 'retry', 'reconcile', 'resync', 'full', 'finalize'] as const;
export type SyncReason = (typeof SYNC_REASONS)[number];

export const invoiceSyncMessageSchema = z
  .object({
    invoiceId,
    reason: z.enum(SYNC_REASONS).default('new'),
    correlationId: z.string().uuid().optional(),
  })
  .strict();
export type InvoiceSyncMessage = z.infer<typeof invoiceSyncMessageSchema>;

export const lineItemExportMessageSchema = z
  .object({
    invoiceId,
    partId: z.string().regex(PART_ID_PATTERN, 'partId must be lower-case letters, digits, "_" or "-"'),
    /**
     * The message chain's turn. Every message that continues a part's export (a hand-over, a later poll) carries
     * the next turn; a message whose turn is behind the part's is a stale duplicate and is dropped. Where the export
     * stands lives in the ledger only.
     */
    turn: z.number().int().min(0).max(1_000_000_000).default(0),
    correlationId: z.string().uuid().optional(),
    /** Re-check a complete v2 part for changed data (a new manifest eTag) within the settle window. */
    recheck: z.boolean().optional(),
  })
  .strict();
export type LineItemExportMessage = z.infer<typeof lineItemExportMessageSchema>;

export class MalformedMessageError extends Error {
  override name = 'MalformedMessageError';
}

/**
 * Parse a queue payload as the Functions host hands it over (already base64-decoded and, when it was JSON,
 * already parsed). Throws MalformedMessageError with every problem listed.
 */
export function parseMessage<T>(schema: z.ZodType<T>, payload: unknown, queue: string): T {
  let value = payload;
  if (typeof payload === 'string') {
    try {
      value = JSON.parse(payload);
    } catch {
      throw new MalformedMessageError(
        `Malformed ${queue} message: not JSON (starts with ${JSON.stringify(payload.slice(0, 40))}). ` +
          'Messages are base64-encoded JSON such as {"invoiceId":"G000123456"}.',
      );
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
    throw new MalformedMessageError(`Malformed ${queue} message: ${problems}`);
  }
  return parsed.data;
}
