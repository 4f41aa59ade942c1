// syncInvoice: fetch one invoice by id just in time, fix its billing period (before any blob is written), save its
// PDF at once (the link lives 30 minutes), its tax receipts and its JSON, record one ledger part per line-item set
// with its route and request, and queue their exports. A redelivery resumes where the last one stopped: a saved
// PDF is not fetched again.
import { createHash } from 'node:crypto';
import { applyEdits, modify } from 'jsonc-parser';
import { withOperation } from '../http/errors.js';
import { rawTopLevelValue } from '../http/json-items.js';
import { redactText } from '../http/redact.js';
import { type Invoice, type InvoicePart, invoiceParts, partRequest, taxReceipts } from '../partner-center/index.js';
import {
  decodeNotes,
  decodeReceipts,
  encodeReceipts,
  type InvoiceEntity,
  type NewInvoiceEntity,
  type SavedReceipt,
} from '../storage/invoices.js';
import { invoiceJsonPath, invoicePdfPath, lineItemsPath, receiptPdfPath } from '../storage/layout.js';
import { uploadStreamToBlob, writeJsonBlob } from '../storage/ndjson-writer.js';
import { type PartEntity, resetProgress, TERMINAL } from '../storage/parts.js';
import type { InvocationInfo, SyncDeps } from './deps.js';
import { sendExportMessage } from './export/context.js';
import { finalizeInvoiceIfDone } from './finalize.js';
import { type InvoiceSyncMessage, PART_ID_PATTERN } from './messages.js';
import { decidePeriod } from './period.js';
import { troubleClock } from './retry-clock.js';
import { routePart } from './routing.js';

/** The invoice JSON exactly as received, minus the signed link (it is a credential for 30 minutes). */
export function withoutSignedLink(raw: string): string {
  const edits = modify(raw, ['pdfDownloadLink'], undefined, {});
  return applyEdits(raw, edits);
}

export type SyncInvoiceOutcome = 'synced' | 'resumed' | 'already-complete' | 'finalized' | 'not-ready';

/** The ledger entity of an invoice first seen now, from the invoice as the API sent it. */
export function newInvoiceEntity(
  invoice: Invoice,
  raw: string,
  o: {
    billingPeriod: string;
    billingPeriodSource: NewInvoiceEntity['billingPeriodSource'];
    state: 'discovered' | 'queued';
    at: string;
    correlationId: string;
  },
): NewInvoiceEntity {
  return {
    invoiceId: invoice.id,
    billingPeriod: o.billingPeriod,
    billingPeriodSource: o.billingPeriodSource,
    invoiceDate: String(invoice.invoiceDate ?? ''),
    documentType: String(invoice.documentType ?? ''),
    invoiceType: String(invoice.invoiceType ?? ''),
    amendsOf: typeof invoice.amendsOf === 'string' ? invoice.amendsOf : undefined,
    currencyCode: String(invoice.currencyCode ?? ''),
    totalCharges: totalChargesOf(invoice, raw),
    state: o.state,
    attempts: 0,
    discoveredAt: o.at,
    updatedAt: o.at,
    correlationId: o.correlationId,
  };
}

/** totalCharges exactly as the JSON text has it (a JS number would turn 12345678901234567.89 into ...568). */
function totalChargesOf(invoice: Invoice, raw: string): string {
  const text = rawTopLevelValue(raw, 'totalCharges');
  if (text !== undefined && text !== 'null') return text.replace(/^"|"$/g, '');
  return invoice.totalCharges === undefined || invoice.totalCharges === null ? '' : String(invoice.totalCharges);
}

export async function syncInvoice(
  deps: SyncDeps,
  message: InvoiceSyncMessage,
  invocation: InvocationInfo,
): Promise<SyncInvoiceOutcome> {
  const { ledger } = deps.storage;
  const id = message.invoiceId;
  // Sent when an export finished the last part: the manifest, the dataset and the resting state, nothing fetched.
  if (message.reason === 'finalize') {
    const done = await finalizeInvoiceIfDone(deps, id);
    deps.log.info(done ? 'Invoice finalized' : 'Invoice not ready to finalize; its parts finish it later', {
      invoiceId: id,
      correlationId: message.correlationId,
    });
    return done ? 'finalized' : 'not-ready';
  }
  const known = await ledger.getInvoice(id);
  const fullResync = message.reason === 'full';
  if (known?.state === 'complete' && !fullResync) {
    deps.log.info('Invoice already complete; nothing to do', { invoiceId: id, correlationId: known.correlationId });
    return 'already-complete';
  }
  const correlationId = known?.correlationId ?? message.correlationId ?? invocation.invocationId;
  if (known) {
    await ledger.updateInvoice(id, (current) => ({
      attempts: current.attempts + 1,
      // An operator's full resync starts the invoice over, whatever state it rests in.
      ...(fullResync ? { state: 'queued' as const } : {}),
      updatedAt: new Date(deps.now()).toISOString(),
    }));
  }

  // Already saved and split into parts: only its unfinished parts need work.
  if (known?.pdfSha256 && known.partsTotal !== undefined && !fullResync) {
    const parts = await ledger.listParts(id);
    if (parts.length === known.partsTotal) {
      await resumeParts(deps, known, parts, message.reason);
      return 'resumed';
    }
  }

  // Just in time: the by-id call is what issues the 30-minute pdfDownloadLink.
  const linkFetchedAt = deps.now();
  const { invoice, raw } = await withOperation(`fetch invoice ${id} by id`, () =>
    deps.partnerCenter.getInvoice(id, { correlationId }),
  );
  const entity = await fixFacts(deps, known, invoice, raw, correlationId);
  const period = entity.billingPeriod;
  const log = { invoiceId: id, correlationId, billingPeriod: period };

  if (!entity.pdfSha256 || fullResync) {
    const pdf = await deps.partnerCenter.openInvoicePdf(id, { invoice, correlationId });
    const saved = await uploadStreamToBlob(
      deps.storage.container.getBlockBlobClient(invoicePdfPath(period, id)),
      pdf.stream,
      {
        contentType: 'application/pdf',
        maxBytes: deps.settings.MAX_PDF_BYTES,
      },
    );
    await ledger.updateInvoice(id, () => ({
      pdfSha256: saved.sha256,
      pdfBytes: saved.bytes,
      pdfSavedAt: new Date(deps.now()).toISOString(),
    }));
    // The age of the link when its PDF was durable: the 30-minute expiry is what this must stay well under.
    deps.log.event('PdfSaved', {
      ...log,
      bytes: saved.bytes,
      sha256: saved.sha256,
      source: pdf.source,
      pdfAgeMs: deps.now() - (pdf.linkIssuedAt?.getTime() ?? linkFetchedAt),
      ...(pdf.note ? { note: pdf.note } : {}),
    });
  }

  const notes = new Set(decodeNotes(entity));
  const receipts = await saveReceipts(deps, entity, invoice, correlationId, fullResync, notes);
  const invoiceFile = await withOperation(`write invoice.json of ${id}`, () =>
    writeJsonBlob(deps.storage.container.getBlockBlobClient(invoiceJsonPath(period, id)), withoutSignedLink(raw)),
  );

  const { parts, skipped } = invoiceParts(invoice);
  for (const s of skipped) notes.add(`${s.reason}: skipped`);
  const nowIso = new Date(deps.now()).toISOString();
  await withOperation(`record the parts of invoice ${id}`, async () => {
    for (const part of parts) await recordPart(deps, entity, invoice, part, fullResync, nowIso, log);
  });

  await ledger.updateInvoice(id, () => ({
    state: 'pdf_saved',
    partsTotal: parts.length,
    receipts: encodeReceipts(receipts),
    invoiceFile: JSON.stringify({
      path: invoiceJsonPath(period, id),
      bytes: invoiceFile.bytes,
      sha256: invoiceFile.sha256,
    }),
    notes: notes.size > 0 ? JSON.stringify([...notes]) : undefined,
    lastError: undefined,
    updatedAt: nowIso,
  }));
  deps.log.event('InvoiceStateChanged', { ...log, state: 'pdf_saved', receipts: receipts.length });

  const stored = await ledger.getInvoice(id);
  if (stored) await resumeParts(deps, stored, await ledger.listParts(id), message.reason);
  return 'synced';
}

/**
 * Decides the facts every later stage reads (billing period, totals, type) from the by-id response, and stores
 * them before the first blob is written. Once fixed, the period never changes: a later by-id answer that disagrees
 * is reported, not followed (the files already live under the fixed one).
 */
async function fixFacts(
  deps: SyncDeps,
  known: InvoiceEntity | undefined,
  invoice: Invoice,
  raw: string,
  correlationId: string,
): Promise<InvoiceEntity> {
  const { ledger } = deps.storage;
  const decided = decidePeriod(
    invoice,
    known ? { period: known.billingPeriod, source: known.billingPeriodSource ?? 'invoice-date' } : undefined,
  );
  const nowIso = new Date(deps.now()).toISOString();
  if (!known) {
    await ledger.tryInsertInvoice(
      newInvoiceEntity(invoice, raw, {
        billingPeriod: decided.period,
        billingPeriodSource: decided.source,
        state: 'queued',
        at: nowIso,
        correlationId,
      }),
    );
  }
  const fresh = newInvoiceEntity(invoice, raw, {
    billingPeriod: decided.period,
    billingPeriodSource: decided.source,
    state: 'queued',
    at: nowIso,
    correlationId,
  });
  return ledger.updateInvoice(invoice.id, (current) => {
    if (current.billingPeriodFixed && current.billingPeriod !== decided.period) {
      deps.log.warn('Invoice reports a different billing period than the one its files were filed under; keeping it', {
        invoiceId: invoice.id,
        billingPeriod: current.billingPeriod,
        reported: decided.period,
        correlationId,
      });
    }
    const period = current.billingPeriodFixed
      ? { billingPeriod: current.billingPeriod, billingPeriodSource: current.billingPeriodSource }
      : { billingPeriod: decided.period, billingPeriodSource: decided.source };
    return {
      ...period,
      billingPeriodFixed: true,
      invoiceDate: fresh.invoiceDate || current.invoiceDate,
      documentType: fresh.documentType || current.documentType,
      invoiceType: fresh.invoiceType || current.invoiceType,
      amendsOf: fresh.amendsOf ?? current.amendsOf,
      currencyCode: fresh.currencyCode || current.currencyCode,
      totalCharges: fresh.totalCharges || current.totalCharges,
      // A full sync goes through the states again, whatever the invoice rested in (failed, mismatch, ...).
      state: 'queued',
      updatedAt: nowIso,
    };
  });
}

async function saveReceipts(
  deps: SyncDeps,
  entity: InvoiceEntity,
  invoice: Invoice,
  correlationId: string,
  again: boolean,
  notes: Set<string>,
): Promise<SavedReceipt[]> {
  const saved = new Map(decodeReceipts(entity).map((r) => [r.id, r]));
  const { receipts, skipped } = taxReceipts(invoice);
  for (const s of skipped) notes.add(`${s.reason}: skipped`);
  for (const { id: receiptId } of receipts) {
    if (saved.has(receiptId) && !again) continue;
    const path = receiptPdfPath(entity.billingPeriod, entity.invoiceId, receiptId);
    const written = await withOperation(`save tax receipt ${receiptId} of invoice ${entity.invoiceId}`, async () => {
      const opened = await deps.partnerCenter.openReceiptPdf(entity.invoiceId, receiptId, { correlationId });
      return uploadStreamToBlob(deps.storage.container.getBlockBlobClient(path), opened.stream, {
        contentType: 'application/pdf',
        maxBytes: deps.settings.MAX_PDF_BYTES,
      });
    });
    saved.set(receiptId, { id: receiptId, path, bytes: written.bytes, sha256: written.sha256 });
  }
  return [...saved.values()];
}

/** A part id a table key and a queue message can carry; an unsafe one (an odd provider) gets a stable hashed id. */
function safePartId(part: InvoicePart): string {
  if (PART_ID_PATTERN.test(part.partId)) return part.partId;
  return `x-${createHash('sha256').update(part.partId).digest('hex').slice(0, 16)}`;
}

const SEGMENT = /^[a-z0-9_]{1,64}$/;

async function recordPart(
  deps: SyncDeps,
  entity: InvoiceEntity,
  invoice: Invoice,
  part: InvoicePart,
  again: boolean,
  nowIso: string,
  log: Record<string, string>,
): Promise<void> {
  const partId = safePartId(part);
  const nameable = SEGMENT.test(part.provider) && SEGMENT.test(part.lineItemType) && partId === part.partId;
  const route = nameable
    ? routePart(invoice, part, entity.billingPeriod, deps.settings)
    : ({
        api: 'none',
        reason: `billingProvider/invoiceLineItemType cannot name a file: ${redactText(part.partId).slice(0, 80)}`,
      } as const);
  const supported = route.api !== 'none';
  const request = supported && part.paging ? partRequest(invoice, part, deps.settings.LINE_ITEM_PAGE_SIZE) : undefined;
  const { part: stored } = await deps.storage.ledger.upsertPartIfAbsent({
    invoiceId: entity.invoiceId,
    partId,
    // An unsupported part has no file; its raw provider/type names never become a blob path or a key.
    provider: nameable ? part.provider : 'unsupported',
    lineItemType: nameable ? part.lineItemType : 'unsupported',
    api: route.api === 'v2' ? 'v2' : 'v1',
    v2Kind: route.api === 'v2' ? route.v2Kind : undefined,
    routeReason: route.reason,
    request: request ? JSON.stringify(request) : undefined,
    state: supported ? 'queued' : 'unsupported',
    blobPath: supported ? lineItemsPath(entity.billingPeriod, entity.invoiceId, part.provider, part.lineItemType) : '',
    rows: 0,
    bytes: 0,
    attempts: 0,
    updatedAt: nowIso,
  });
  if (again && supported) {
    // An operator asked for a full resync: every part starts again from its first page, on its route of today.
    await deps.storage.ledger.updatePart(entity.invoiceId, partId, () => ({
      ...resetProgress(),
      state: 'queued',
      api: route.api === 'v2' ? 'v2' : 'v1',
      v2Kind: route.api === 'v2' ? route.v2Kind : undefined,
      sha256: undefined,
      operationLocation: undefined,
      lastError: undefined,
      updatedAt: nowIso,
    }));
  }
  deps.log.info('Part routed', { ...log, partId: stored.partId, api: route.api, reason: route.reason });
}

/**
 * Queues every part that needs work: unfinished ones (a redelivered or stuck sync), failed ones on a retry, and
 * unsettled ones when settling. Each gets the next turn of its message chain, so a message of an older chain that
 * is still in the queue is dropped when it arrives. A part whose lease is live is left to its owner.
 */
async function resumeParts(
  deps: SyncDeps,
  entity: InvoiceEntity,
  parts: PartEntity[],
  reason: InvoiceSyncMessage['reason'],
): Promise<void> {
  const { ledger } = deps.storage;
  const now = deps.now();
  const nowIso = new Date(now).toISOString();
  for (const part of parts) {
    const action = resumeAction(part, reason);
    if (action === 'none') continue;
    let turn: number | undefined;
    await ledger.updatePart(entity.invoiceId, part.partId, (current) => {
      turn = undefined;
      if (current.leaseOwner && Date.parse(current.leaseUntil ?? '') > now) return undefined;
      if (resumeAction(current, reason) !== action) return undefined;
      turn = current.turn + 1;
      return {
        turn,
        ...(action === 'reopen'
          ? { state: 'queued' as const, operationLocation: undefined, firstAttemptAt: undefined }
          : {}),
        ...(action === 'reexport' ? { ...resetProgress(), state: 'queued' as const } : {}),
        dueAt: nowIso,
        updatedAt: nowIso,
      };
    });
    if (turn === undefined) continue;
    await sendExportMessage(deps, {
      invoiceId: entity.invoiceId,
      partId: part.partId,
      turn,
      correlationId: entity.correlationId,
      ...(action === 'recheck' ? { recheck: true } : {}),
    });
  }
  await ledger.updateInvoice(entity.invoiceId, (current) =>
    current.state === 'exporting' ? undefined : { state: 'exporting', updatedAt: new Date(deps.now()).toISOString() },
  );
  await finalizeInvoiceIfDone(deps, entity.invoiceId);
}

type ResumeAction = 'none' | 'continue' | 'reopen' | 'recheck' | 'reexport';

/**
 * What a part needs on this kind of sync: unfinished parts continue; a retry reopens failed ones, a settle run
 * unsettled ones; a reconciliation re-check asks complete billing parts again (v2 by its data version, v1 anew).
 */
function resumeAction(part: PartEntity, reason: InvoiceSyncMessage['reason']): ResumeAction {
  if (!TERMINAL.has(part.state)) return 'continue';
  const operator = reason === 'resync';
  if ((reason === 'settle' || operator) && part.state === 'unsettled') return 'reopen';
  if ((reason === 'retry' || operator) && part.state === 'failed') return 'reopen';
  if (reason === 'reconcile' && part.state === 'complete' && part.lineItemType === 'billing') {
    return part.api === 'v2' ? 'recheck' : 'reexport';
  }
  return 'none';
}

/**
 * Records that a sync message gave up (a permanent failure, or its last delivery): an invoice still being synced
 * becomes `failed` with its error, and its retry clock starts; an invoice in any other state is left as it is.
 */
export async function recordSyncFailure(deps: SyncDeps, invoiceId: string, lastError: string): Promise<boolean> {
  let failed = false;
  const entity = await deps.storage.ledger.getInvoice(invoiceId);
  if (!entity) return false;
  await deps.storage.ledger.updateInvoice(invoiceId, (current) => {
    failed = ['discovered', 'queued', 'pdf_saved', 'exporting', 'failed'].includes(current.state);
    if (!failed) return undefined;
    return {
      state: 'failed',
      lastError,
      ...troubleClock(current, deps.now()),
      updatedAt: new Date(deps.now()).toISOString(),
    };
  });
  return failed;
}
