// syncInvoice: fetch one invoice by id just in time, save its PDF at once (the link lives 30 minutes), its tax
// receipts and its JSON, record one ledger part per invoiceDetails entry with its route, and queue their exports.
import { applyEdits, modify } from 'jsonc-parser';
import { invoiceParts } from '../partner-center/index.js';
import { billingPeriodOf, invoiceJsonPath, invoicePdfPath, lineItemsPath, receiptPdfPath } from '../storage/layout.js';
import { uploadStreamToBlob, writeJsonBlob } from '../storage/ndjson-writer.js';
import { sendQueueMessage } from '../storage/queues.js';
import type { InvocationInfo, SyncDeps } from './deps.js';
import { newInvoiceEntity } from './detect-invoices.js';
import { finalizeInvoiceIfDone } from './finalize.js';
import type { InvoiceSyncMessage, LineItemExportMessage } from './messages.js';
import { routePart } from './routing.js';

/** Parts in these states need no export message. */
export const TERMINAL_PART_STATES = new Set(['complete', 'failed', 'unsettled', 'unsupported']);

/** The invoice JSON exactly as received, minus the signed link (it is a credential for 30 minutes). */
export function withoutSignedLink(raw: string): string {
  const edits = modify(raw, ['pdfDownloadLink'], undefined, {});
  return applyEdits(raw, edits);
}

export type SyncInvoiceOutcome = 'synced' | 'resumed' | 'already-complete';

export async function syncInvoice(
  deps: SyncDeps,
  message: InvoiceSyncMessage,
  invocation: InvocationInfo,
): Promise<SyncInvoiceOutcome> {
  const { ledger, container } = deps.storage;
  const id = message.invoiceId;
  const known = await ledger.getInvoice(id);
  if (known?.state === 'complete' && message.reason !== 'resync') {
    deps.log.info('Invoice already complete; nothing to do', { invoiceId: id, correlationId: known.correlationId });
    return 'already-complete';
  }
  const correlationId = known?.correlationId ?? message.correlationId ?? invocation.invocationId;
  const log = { invoiceId: id, correlationId };
  const startedIso = new Date(deps.now()).toISOString();
  if (known) {
    await ledger.updateInvoice(id, (current) => ({
      attempts: (current.attempts ?? 0) + 1,
      updatedAt: startedIso,
    }));
  }

  // Already saved and split into parts (a stuck or settling invoice): only its unfinished parts need work.
  if (known?.pdfSha256 && message.reason !== 'resync') {
    const parts = await ledger.listParts(id);
    if (parts.length === (known.partsTotal ?? -1)) {
      await resumeParts(deps, id, correlationId, message.reason === 'settle');
      return 'resumed';
    }
  }

  // Just in time: the by-id call is what issues the 30-minute pdfDownloadLink.
  const linkFetchedAt = deps.now();
  const { invoice, raw } = await deps.partnerCenter.getInvoice(id, { correlationId });
  const period = billingPeriodOf(invoice);
  if (!known) {
    await ledger.tryInsertInvoice(
      newInvoiceEntity(invoice, { billingPeriod: period, state: 'queued', attempts: 1, at: startedIso, correlationId }),
    );
  }

  const pdf = await deps.partnerCenter.openInvoicePdf(id, { invoice, correlationId });
  const savedPdf = await uploadStreamToBlob(container.getBlockBlobClient(invoicePdfPath(period, id)), pdf.stream, {
    contentType: 'application/pdf',
  });
  // The age of the link when its PDF was durable: the 30-minute expiry is what this must stay well under.
  const linkAgeMs = deps.now() - (pdf.linkIssuedAt?.getTime() ?? linkFetchedAt);
  deps.log.event('PdfSaved', {
    ...log,
    billingPeriod: period,
    bytes: savedPdf.bytes,
    sha256: savedPdf.sha256,
    source: pdf.source,
    pdfAgeMs: linkAgeMs,
  });

  const receipts: { id: string; sha256: string; bytes: number }[] = [];
  const taxReceipts = Array.isArray(invoice.taxReceipts) ? invoice.taxReceipts : [];
  for (const receipt of taxReceipts) {
    const receiptId = String((receipt as { id?: unknown }).id ?? '');
    const opened = await deps.partnerCenter.openReceiptPdf(id, receiptId, { correlationId });
    const saved = await uploadStreamToBlob(
      container.getBlockBlobClient(receiptPdfPath(period, id, receiptId)),
      opened.stream,
      { contentType: 'application/pdf' },
    );
    receipts.push({ id: receiptId, sha256: saved.sha256, bytes: saved.bytes });
  }

  await writeJsonBlob(container.getBlockBlobClient(invoiceJsonPath(period, id)), withoutSignedLink(raw));

  const nowIso = new Date(deps.now()).toISOString();
  const { parts } = invoiceParts(invoice);
  for (const part of parts) {
    const route = routePart(invoice, part, period, deps.settings);
    await ledger.upsertPartIfAbsent({
      invoiceId: id,
      partId: part.partId,
      provider: part.provider,
      lineItemType: part.lineItemType,
      api: route.api === 'v2' ? 'v2' : 'v1',
      v2Kind: route.api === 'v2' ? route.v2Kind : undefined,
      state: route.api === 'none' ? 'unsupported' : 'queued',
      lastError: route.api === 'none' ? route.reason : undefined,
      // An unsupported part has no file; its raw provider/type names never become a blob path.
      blobPath: route.api === 'none' ? '' : lineItemsPath(period, id, part.provider, part.lineItemType),
      blocksStaged: 0,
      rows: 0,
      bytes: 0,
      attempts: 0,
      updatedAt: nowIso,
    });
    if (message.reason === 'resync' && route.api !== 'none') {
      // An operator asked for a full resync: every part starts again from its first page.
      await ledger.updatePart(id, part.partId, () => ({
        state: 'queued',
        api: route.api === 'v2' ? 'v2' : 'v1',
        checkpoint: undefined,
        blocksStaged: 0,
        rows: 0,
        bytes: 0,
        sha256: undefined,
        operationLocation: undefined,
        lastError: undefined,
        updatedAt: nowIso,
      }));
    }
    deps.log.info('Part routed', { ...log, partId: part.partId, api: route.api, reason: route.reason });
  }

  await ledger.updateInvoice(id, () => ({
    state: 'pdf_saved',
    pdfSha256: savedPdf.sha256,
    pdfBytes: savedPdf.bytes,
    partsTotal: parts.length,
    lastError: undefined,
    updatedAt: nowIso,
  }));
  deps.log.event('InvoiceStateChanged', {
    ...log,
    billingPeriod: period,
    state: 'pdf_saved',
    receipts: receipts.length,
  });

  await resumeParts(deps, id, correlationId, false);
  return 'synced';
}

/**
 * Queue every part that still needs work (a redelivered sync re-queues; the export job is idempotent). When the
 * invoice is settling, its unsettled parts get one more try: past their deadline, one attempt per timer run.
 */
async function resumeParts(deps: SyncDeps, id: string, correlationId: string, settle: boolean): Promise<void> {
  const { ledger, queues } = deps.storage;
  const nowIso = new Date(deps.now()).toISOString();
  for (const part of await ledger.listParts(id)) {
    if (settle && part.state === 'unsettled') {
      await ledger.updatePart(id, part.partId, () => ({
        state: 'queued',
        operationLocation: undefined,
        updatedAt: nowIso,
      }));
    } else if (TERMINAL_PART_STATES.has(part.state)) {
      continue;
    }
    const exportMessage: LineItemExportMessage = { invoiceId: id, partId: part.partId, hop: 0, correlationId };
    await sendQueueMessage(queues.lineItemExport, exportMessage);
  }
  await ledger.updateInvoice(id, (current) =>
    ['pdf_saved', 'queued', 'unsettled'].includes(current.state)
      ? { state: 'exporting', updatedAt: new Date(deps.now()).toISOString() }
      : undefined,
  );
  await finalizeInvoiceIfDone(deps, id);
}
