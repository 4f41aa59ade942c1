// What one export invocation works with: the dependencies, its lease on the part, the message that started it and
// its time budget; and the one way an export continues in a later message (a hand-over or a delayed poll).

import type { PartPatch } from '../../storage/parts.js';
import { sendQueueMessage } from '../../storage/queues.js';
import type { SyncDeps } from '../deps.js';
import type { LineItemExportMessage } from '../messages.js';
import type { PartLease } from './lease.js';

export interface ExportContext {
  deps: SyncDeps;
  lease: PartLease;
  message: LineItemExportMessage;
  /** When this invocation must hand over (ms epoch): its start plus EXPORT_TIME_BUDGET_SECONDS. */
  deadline: number;
  correlationId: string;
}

/** The dimensions every line about a part carries; the correlation id is the one sent as MS-CorrelationId. */
export const partLog = (ctx: ExportContext) => ({
  invoiceId: ctx.lease.part.invoiceId,
  partId: ctx.lease.part.partId,
  correlationId: ctx.correlationId,
});

/** Queue messages wait at most this long (the Storage limit is 7 days). */
const MAX_DELAY_SECONDS = 7 * 24 * 3600 - 1;

export async function sendExportMessage(
  deps: SyncDeps,
  message: LineItemExportMessage,
  delaySeconds = 0,
): Promise<void> {
  await sendQueueMessage(deps.storage.queues.lineItemExport, message, {
    visibilityTimeoutSeconds: Math.max(0, Math.min(Math.ceil(delaySeconds), MAX_DELAY_SECONDS)),
  });
}

/**
 * Gives the part up and sends the message that continues it, `delaySeconds` from now. The part's turn moves on
 * first, so this invocation's own message (and any duplicate of it) is stale from then on, and the new message is
 * the only one that can take the part: one chain per part. If the send fails, the part has no message; stuck
 * detection (its `dueAt` has passed) re-queues it.
 */
export async function continueLater(ctx: ExportContext, delaySeconds: number, patch: PartPatch = {}): Promise<void> {
  const { deps } = ctx;
  const turn = ctx.lease.part.turn + 1;
  await ctx.lease.release({
    ...patch,
    turn,
    dueAt: new Date(deps.now() + Math.max(0, delaySeconds) * 1000).toISOString(),
  });
  await sendExportMessage(deps, { ...ctx.message, turn }, delaySeconds);
}
