// detectInvoices: list every invoice, record new ones in the ledger BEFORE queueing them, and re-queue invoices
// that were never queued (a failed enqueue), are stuck (a lost message, a crashed worker) or are still settling.
import { randomUUID } from 'node:crypto';
import { redactText } from '../http/redact.js';
import { INVOICE_ID_PATTERN } from '../ids.js';
import { billingPeriodOf, parsePartnerCenterDate } from '../storage/layout.js';
import type { InvoiceEntity, NewInvoiceEntity } from '../storage/ledger.js';
import { sendQueueMessage } from '../storage/queues.js';
import type { SyncDeps } from './deps.js';
import type { InvoiceSyncMessage, LineItemExportMessage } from './messages.js';

export interface DetectResult {
  listed: number;
  /** v2 parts of recent complete invoices queued to check whether their data changed. */
  rechecked: number;
  discovered: number;
  queued: number;
  requeued: number;
  rejected: { id: string; reason: string }[];
}

const ACTIVE_STATES = new Set(['queued', 'pdf_saved', 'exporting']);

/** Why an already-known invoice should be queued again, or undefined when it should be left alone. */
export function requeueReason(entity: InvoiceEntity, now: number, deps: Pick<SyncDeps, 'settings'>) {
  if (entity.state === 'discovered') return 'new' as const;
  if (entity.state === 'unsettled') return 'settle' as const;
  const idleMs = now - Date.parse(entity.updatedAt);
  if (ACTIVE_STATES.has(entity.state) && idleMs > deps.settings.STUCK_AFTER_MINUTES * 60_000) return 'stuck' as const;
  return undefined;
}

export async function detectInvoices(deps: SyncDeps): Promise<DetectResult> {
  const { ledger, queues } = deps.storage;
  const runId = randomUUID();
  const result: DetectResult = { listed: 0, rechecked: 0, discovered: 0, queued: 0, requeued: 0, rejected: [] };
  deps.log.info('Listing invoices', { runId });
  for await (const listed of deps.partnerCenter.listInvoices({ correlationId: runId })) {
    result.listed++;
    if (listed.kind === 'rejected') {
      result.rejected.push({ id: listed.idAsSent, reason: listed.reason });
      deps.log.error('Invoice skipped: unusable list item (unsafe id, no id or bad shape)', {
        invoiceId: listed.idAsSent,
        reason: listed.reason,
      });
      continue;
    }
    const { invoice } = listed;
    const id = String(invoice.id);
    if (!INVOICE_ID_PATTERN.test(id)) {
      // A hostile or malformed id never reaches a blob path or a queue; every other invoice carries on.
      const reason = 'invoice id fails the id pattern (letters, digits, dashes; at most 64)';
      result.rejected.push({ id: redactText(id).slice(0, 80), reason });
      deps.log.error('Invoice skipped: unsafe id', { invoiceId: JSON.stringify(id).slice(0, 80), reason });
      continue;
    }
    let billingPeriod: string;
    try {
      billingPeriod = billingPeriodOf(invoice);
    } catch (error) {
      const reason = `no usable billing period or invoice date (${(error as Error).message})`;
      result.rejected.push({ id, reason });
      deps.log.error('Invoice skipped: no date to file it under', { invoiceId: id, reason });
      continue;
    }
    const now = deps.now();
    const nowIso = new Date(now).toISOString();
    const correlationId = randomUUID();
    const inserted = await ledger.tryInsertInvoice(
      newInvoiceEntity(invoice, { billingPeriod, state: 'discovered', attempts: 0, at: nowIso, correlationId }),
    );
    if (inserted) {
      result.discovered++;
      deps.log.event('InvoiceDiscovered', {
        invoiceId: id,
        billingPeriod,
        documentType: String(invoice.documentType ?? ''),
        amendsOf: typeof invoice.amendsOf === 'string' ? invoice.amendsOf : undefined,
        correlationId,
      });
    }
    const entity = await ledger.getInvoice(id);
    if (!entity) continue;
    if (entity.state === 'complete') {
      result.rechecked += await queueRechecks(deps, entity, now);
      continue;
    }
    const reason = requeueReason(entity, now, deps);
    if (!reason) continue;
    const message: InvoiceSyncMessage = { invoiceId: id, reason, correlationId: entity.correlationId };
    await sendQueueMessage(queues.invoiceSync, message);
    // Only after the message is durable does the ledger say so; bumping updatedAt restarts the stuck clock.
    await ledger.updateInvoice(id, (current) => ({
      ...(current.state === 'discovered' ? { state: 'queued' as const } : {}),
      queuedAt: nowIso,
      updatedAt: nowIso,
    }));
    if (reason === 'new') result.queued++;
    else result.requeued++;
    deps.log.event('InvoiceQueued', { invoiceId: id, reason, correlationId: entity.correlationId });
  }
  deps.log.info('Invoice listing done', { runId, ...summary(result) });
  return result;
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
    const message: LineItemExportMessage = {
      invoiceId: entity.invoiceId,
      partId: part.partId,
      hop: 0,
      recheck: true,
      correlationId: entity.correlationId,
    };
    await sendQueueMessage(deps.storage.queues.lineItemExport, message);
    queued++;
  }
  return queued;
}

/** The ledger entity of an invoice first seen now, from the invoice as the API sent it. */
export function newInvoiceEntity(
  invoice: { id: string } & Record<string, unknown>,
  o: { billingPeriod: string; state: 'discovered' | 'queued'; attempts: number; at: string; correlationId: string },
): NewInvoiceEntity {
  return {
    invoiceId: invoice.id,
    billingPeriod: o.billingPeriod,
    invoiceDate: String(invoice.invoiceDate ?? ''),
    documentType: String(invoice.documentType ?? ''),
    invoiceType: String(invoice.invoiceType ?? ''),
    amendsOf: typeof invoice.amendsOf === 'string' ? invoice.amendsOf : undefined,
    currencyCode: String(invoice.currencyCode ?? ''),
    totalCharges: String(invoice.totalCharges ?? ''),
    state: o.state,
    attempts: o.attempts,
    discoveredAt: o.at,
    updatedAt: o.at,
    correlationId: o.correlationId,
  };
}

const summary = (r: DetectResult) => ({
  rechecked: r.rechecked,
  listed: r.listed,
  discovered: r.discovered,
  queued: r.queued,
  requeued: r.requeued,
  rejected: r.rejected.length,
});
