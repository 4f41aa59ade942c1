// detectInvoices: list every invoice and record new ones in the ledger BEFORE queueing them (an item that cannot
// be used is recorded as rejected; the rest carry on); then sweep the ledger for what needs a message: invoices
// never queued (a failed enqueue), stuck ones (no progress on the invoice or any of its parts), ones still
// settling, failed or mismatched ones whose retry is due, and complete ones whose v2 data is due a re-check.
import { randomUUID } from 'node:crypto';
import { describeError } from '../http/errors.js';
import { redactText } from '../http/redact.js';
import { isSafeId } from '../ids.js';
import { ACTIVE_INVOICE_STATES, type InvoiceEntity, type InvoiceState } from '../storage/invoices.js';
import { parsePartnerCenterDate } from '../storage/layout.js';
import type { PartEntity } from '../storage/parts.js';
import { sendQueueMessage } from '../storage/queues.js';
import type { SyncDeps } from './deps.js';
import { sendExportMessage } from './export/context.js';
import type { InvoiceSyncMessage, SyncReason } from './messages.js';
import { listedPeriod } from './period.js';
import { afterRetryQueued, retryDue } from './retry-clock.js';
import { newInvoiceEntity } from './sync-invoice.js';

export interface DetectResult {
  listed: number;
  discovered: number;
  /** New invoices queued. */
  queued: number;
  /** Known invoices queued again (stuck, settling, retried, re-reconciled). */
  requeued: number;
  /** v2 parts of recent complete invoices queued to check whether their data changed. */
  rechecked: number;
  rejected: { id: string; reason: string }[];
}

/** States the sweep looks at (complete invoices only for v2 re-checks). */
const SWEPT: InvoiceState[] = [
  'discovered',
  'queued',
  'pdf_saved',
  'exporting',
  'unsettled',
  'failed',
  'mismatch',
  'complete',
];

export async function detectInvoices(deps: SyncDeps): Promise<DetectResult> {
  const runId = randomUUID();
  const result: DetectResult = { listed: 0, discovered: 0, queued: 0, requeued: 0, rechecked: 0, rejected: [] };
  deps.log.info('Listing invoices', { runId });
  await recordListed(deps, runId, result);
  for await (const entity of deps.storage.ledger.listInvoices({ states: SWEPT })) {
    const now = deps.now();
    if (entity.state === 'complete') {
      result.rechecked += await queueRechecks(deps, entity, now);
      continue;
    }
    const reason = await requeueReason(deps, entity, now);
    if (reason) await queueInvoice(deps, entity, reason, now, result);
  }
  deps.log.info('Invoice listing done', { runId, ...summary(result) });
  return result;
}

async function recordListed(deps: SyncDeps, runId: string, result: DetectResult): Promise<void> {
  const { ledger } = deps.storage;
  for await (const item of deps.partnerCenter.listInvoices({ correlationId: runId })) {
    result.listed++;
    const nowIso = new Date(deps.now()).toISOString();
    if (item.kind === 'rejected') {
      await reject(deps, { idAsSent: item.idAsSent, reason: item.reason, parentId: item.parentId }, nowIso, result);
      continue;
    }
    const { invoice, raw } = item;
    if (!isSafeId(invoice.id)) {
      // A hostile or malformed id never reaches a blob path or a queue; every other invoice carries on.
      const reason = 'invoice id fails the id pattern (letters, digits, dashes; at most 64)';
      await reject(deps, { idAsSent: redactText(JSON.stringify(invoice.id)).slice(0, 80), reason }, nowIso, result);
      continue;
    }
    let period: ReturnType<typeof listedPeriod>;
    try {
      period = listedPeriod(invoice);
    } catch (error) {
      await reject(deps, { idAsSent: invoice.id, reason: describeError(error) }, nowIso, result);
      continue;
    }
    const correlationId = randomUUID();
    const inserted = await ledger.tryInsertInvoice(
      newInvoiceEntity(invoice, raw, {
        billingPeriod: period.period,
        billingPeriodSource: period.source,
        state: 'discovered',
        at: nowIso,
        correlationId,
      }),
    );
    if (!inserted) continue;
    result.discovered++;
    deps.log.event('InvoiceDiscovered', {
      invoiceId: invoice.id,
      billingPeriod: period.period,
      billingPeriodSource: period.source,
      documentType: String(invoice.documentType ?? ''),
      amendsOf: typeof invoice.amendsOf === 'string' ? invoice.amendsOf : undefined,
      correlationId,
    });
  }
}

async function reject(
  deps: SyncDeps,
  item: { idAsSent: string; reason: string; parentId?: string },
  at: string,
  result: DetectResult,
): Promise<void> {
  result.rejected.push({ id: item.idAsSent, reason: item.reason });
  await deps.storage.ledger.recordRejected(item, at);
  deps.log.error('Invoice list item skipped: it cannot be used', {
    invoiceId: item.idAsSent,
    reason: item.reason,
    ...(item.parentId ? { parentId: item.parentId } : {}),
  });
}

/** The latest sign of life of an invoice's work: its own updates, and every part's progress and due message. */
function lastSignOfLife(entity: InvoiceEntity, parts: PartEntity[], now: number): number {
  let last = Date.parse(entity.updatedAt);
  for (const part of parts) {
    for (const at of [part.progressAt, part.updatedAt, part.dueAt]) {
      const t = Date.parse(at ?? '');
      if (Number.isFinite(t)) last = Math.max(last, t);
    }
    // A live lease is work in progress, whatever the timestamps say.
    if (part.leaseOwner && Date.parse(part.leaseUntil ?? '') > now) last = now;
  }
  return last;
}

/** Why a known invoice should be queued again now, or undefined when it should be left alone. */
export async function requeueReason(
  deps: SyncDeps,
  entity: InvoiceEntity,
  now: number,
): Promise<SyncReason | undefined> {
  switch (entity.state) {
    case 'discovered':
      return 'new';
    case 'unsettled':
      return 'settle';
    case 'failed':
      return retryDue(entity, now, deps.settings) ? 'retry' : undefined;
    case 'mismatch':
      return retryDue(entity, now, deps.settings) ? 'reconcile' : undefined;
    default: {
      if (!ACTIVE_INVOICE_STATES.has(entity.state)) return undefined;
      const parts = await deps.storage.ledger.listParts(entity.invoiceId);
      const idleMs = now - lastSignOfLife(entity, parts, now);
      return idleMs > deps.settings.STUCK_AFTER_MINUTES * 60_000 ? 'stuck' : undefined;
    }
  }
}

async function queueInvoice(
  deps: SyncDeps,
  entity: InvoiceEntity,
  reason: SyncReason,
  now: number,
  result: DetectResult,
): Promise<void> {
  const message: InvoiceSyncMessage = { invoiceId: entity.invoiceId, reason, correlationId: entity.correlationId };
  await sendQueueMessage(deps.storage.queues.invoiceSync, message);
  // Only after the message is durable does the ledger say so; bumping updatedAt restarts the stuck clock.
  const nowIso = new Date(now).toISOString();
  await deps.storage.ledger.updateInvoice(entity.invoiceId, (current) => ({
    ...(current.state === 'discovered' ? { state: 'queued' as const } : {}),
    ...(reason === 'retry' || reason === 'reconcile' ? afterRetryQueued(current, now) : {}),
    queuedAt: nowIso,
    updatedAt: nowIso,
  }));
  if (reason === 'new') result.queued++;
  else result.requeued++;
  deps.log.event('InvoiceQueued', { invoiceId: entity.invoiceId, reason, correlationId: entity.correlationId });
}

/**
 * Within SETTLE_WINDOW_DAYS of its invoice date, a complete invoice's v2 parts are asked again for changed data
 * (a new manifest eTag) once their next check is due.
 */
async function queueRechecks(deps: SyncDeps, entity: InvoiceEntity, now: number): Promise<number> {
  let invoiceTime: number;
  try {
    invoiceTime = parsePartnerCenterDate(entity.invoiceDate);
  } catch {
    return 0;
  }
  if (now - invoiceTime > deps.settings.SETTLE_WINDOW_DAYS * 86_400_000) return 0;
  let queued = 0;
  for (const part of await deps.storage.ledger.listParts(entity.invoiceId)) {
    if (part.api !== 'v2' || part.state !== 'complete' || part.operationLocation) continue;
    if (part.nextCheckAt && Date.parse(part.nextCheckAt) > now) continue;
    let turn: number | undefined;
    await deps.storage.ledger.updatePart(entity.invoiceId, part.partId, (current) => {
      turn = undefined;
      if (current.state !== 'complete' || current.operationLocation) return undefined;
      if (current.leaseOwner && Date.parse(current.leaseUntil ?? '') > now) return undefined;
      turn = current.turn + 1;
      // The next check is pushed out now, so a timer run before this one finishes does not queue it twice.
      return { turn, nextCheckAt: new Date(now + 86_400_000).toISOString(), updatedAt: new Date(now).toISOString() };
    });
    if (turn === undefined) continue;
    await sendExportMessage(deps, {
      invoiceId: entity.invoiceId,
      partId: part.partId,
      turn,
      recheck: true,
      correlationId: entity.correlationId,
    });
    queued++;
  }
  return queued;
}

const summary = (r: DetectResult) => ({
  listed: r.listed,
  discovered: r.discovered,
  queued: r.queued,
  requeued: r.requeued,
  rechecked: r.rechecked,
  rejected: r.rejected.length,
});
