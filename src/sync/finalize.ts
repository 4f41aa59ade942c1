// Completion: once every part of an invoice is finished, write `manifest.json` beside its files (what is stored,
// with sizes and hashes as recorded when each file was written, and how the line items add up against the
// invoice) and set the invoice's resting state. The manifest is written conditionally on the one it replaces and
// from the parts as they are at write time: an overlapping finalize with an older view can never win.
import { RestError } from '@azure/storage-blob';
import { type DatasetInput, syncBillingLines } from '../dataset/index.js';
import { OperationError } from '../http/errors.js';
import { amountText, Decimal, parseAmount, sumAmounts } from '../money.js';
import {
  decodeNotes,
  decodeReceipts,
  decodeSavedFile,
  type InvoiceEntity,
  type InvoiceState,
  type Reconciliation,
} from '../storage/invoices.js';
import { invoicePdfPath, manifestPath } from '../storage/layout.js';
import { writeJsonBlob } from '../storage/ndjson-writer.js';
import { decodeHistory, type PartEntity, PENDING, type PreviousVersion } from '../storage/parts.js';
import { sendQueueMessage } from '../storage/queues.js';
import { isSnapshotKey } from '../storage/unbilled.js';
import type { SyncDeps } from './deps.js';
import type { InvoiceSyncMessage } from './messages.js';
import { clearTroubleClock, troubleClock } from './retry-clock.js';
import { type UnbilledComparison, unbilledComparison } from './unbilled/compare.js';
import { finalizeSnapshotIfDone } from './unbilled/finalize.js';

export const MANIFEST_VERSION = 2;

export interface ManifestArtifact {
  kind: 'invoice' | 'pdf' | 'receipt' | 'lineitems' | 'dataset';
  path: string;
  bytes: number;
  sha256: string;
  provider?: string;
  lineItemType?: string;
  rows?: number;
  source?: 'v1' | 'v2';
  v2Etag?: string;
  total?: string;
  /** Earlier versions of this file, kept when the v2 data changed after it was first exported. */
  previousVersions?: PreviousVersion[];
  /** The dataset (billing_lines.parquet): its schema version and the NDJSON files it was made from. */
  schemaVersion?: number;
  inputs?: DatasetInput[];
}

export type ManifestStatus = 'complete' | 'mismatch' | 'unsettled' | 'failed';

export interface InvoiceManifest {
  manifestVersion: number;
  invoiceId: string;
  status: ManifestStatus;
  billingPeriod: string;
  invoiceDate: string;
  documentType: string;
  amendsOf?: string;
  currencyCode: string;
  totals: { totalCharges: string };
  artifacts: ManifestArtifact[];
  parts: { partId: string; state: string; api: string; note?: string }[];
  /** What the invoice carried that could not be used (a receipt without an id, a detail that is not an object). */
  notes?: string[];
  reconciliation: Reconciliation;
  /** Accrual against bill: the last unbilled snapshot of the period and currency against what was billed. */
  unbilledComparison?: UnbilledComparison;
  correlationId: string;
  generatedAt: string;
}

/**
 * The billing line items' exact sum against the invoice's totalCharges. Usage rows detail what billing rows
 * charge, so they are never added. Reported as measured, never forced.
 */
export function buildReconciliation(
  entity: Pick<InvoiceEntity, 'totalCharges'>,
  parts: Pick<PartEntity, 'lineItemType' | 'state' | 'lineTotal'>[],
  tolerance: number,
): Reconciliation {
  const invoiceTotal = parseAmount(entity.totalCharges);
  const billing = parts.filter((p) => p.lineItemType === 'billing' && p.state === 'complete');
  const amounts = billing.map((p) => parseAmount(p.lineTotal)).filter((a): a is Decimal => a !== undefined);
  const lineItemTotal = amounts.length === 0 ? undefined : sumAmounts(amounts);
  const difference = invoiceTotal && lineItemTotal ? invoiceTotal.minus(lineItemTotal) : undefined;
  const limit = new Decimal(tolerance);
  return {
    invoiceTotalCharges: invoiceTotal ? amountText(invoiceTotal) : null,
    lineItemTotal: lineItemTotal ? amountText(lineItemTotal) : null,
    difference: difference ? amountText(difference) : null,
    matches: difference ? difference.abs().lte(limit) : null,
    tolerance: amountText(limit),
    basis:
      'exact sum of the billing line items (totalForCustomer, else postTaxTotal, else amount) against the invoice ' +
      'totalCharges; usage rows detail what billing rows charge and are not added',
  };
}

function statusOf(parts: PartEntity[], reconciliation: Reconciliation): ManifestStatus {
  if (parts.some((p) => p.state === 'failed')) return 'failed';
  if (parts.some((p) => p.state === 'unsettled')) return 'unsettled';
  if (reconciliation.matches === false) return 'mismatch';
  return 'complete';
}

function artifactsOf(entity: InvoiceEntity, parts: PartEntity[]): ManifestArtifact[] {
  const artifacts: ManifestArtifact[] = [];
  const invoiceFile = decodeSavedFile(entity.invoiceFile);
  if (invoiceFile) artifacts.push({ kind: 'invoice', ...invoiceFile });
  if (entity.pdfSha256) {
    const path = invoicePdfPath(entity.billingPeriod, entity.invoiceId);
    artifacts.push({ kind: 'pdf', path, bytes: entity.pdfBytes ?? 0, sha256: entity.pdfSha256 });
  }
  for (const receipt of decodeReceipts(entity)) {
    artifacts.push({ kind: 'receipt', path: receipt.path, bytes: receipt.bytes, sha256: receipt.sha256 });
  }
  for (const part of parts.filter((p) => p.state === 'complete')) {
    const history = decodeHistory(part.history);
    artifacts.push({
      kind: 'lineitems',
      path: part.blobPath,
      bytes: part.bytes,
      sha256: part.sha256 ?? '',
      provider: part.provider,
      lineItemType: part.lineItemType,
      rows: part.rows,
      source: part.source ?? part.api,
      ...(part.v2Etag ? { v2Etag: part.v2Etag } : {}),
      ...(part.lineTotal !== undefined ? { total: part.lineTotal } : {}),
      ...(history.length > 0 ? { previousVersions: history } : {}),
    });
  }
  return artifacts;
}

const isConditionFailure = (error: unknown) =>
  error instanceof RestError && (error.statusCode === 412 || error.statusCode === 409);

/** Parts changed since `before` (another part moved while this manifest was being written). */
const moved = (before: PartEntity[], after: PartEntity[]) =>
  before.length !== after.length || before.some((p, i) => p.partId !== after[i]?.partId || p.etag !== after[i]?.etag);

/** The invoice and its parts when every part is finished and its files are saved; undefined while not. */
async function finishedInvoice(
  deps: SyncDeps,
  invoiceId: string,
): Promise<{ entity: InvoiceEntity; parts: PartEntity[] } | undefined> {
  const { ledger } = deps.storage;
  const entity = await ledger.getInvoice(invoiceId);
  if (!entity?.pdfSha256 || !entity.billingPeriodFixed) return undefined;
  if (entity.state === 'discovered' || entity.state === 'queued') return undefined;
  const parts = await ledger.listParts(invoiceId);
  if (parts.length < (entity.partsTotal ?? 0) || parts.some((p) => PENDING.has(p.state))) return undefined;
  return { entity, parts };
}

/**
 * Asks for the invoice to be finalized, in a message of its own on `invoice-sync` (reason `finalize`), when its
 * parts are all finished: an export that finishes a part returns at once, so its slot goes to the next export
 * while the manifest and the dataset (CPU-heavy for a large invoice) are written by the sync function. Sent by
 * whichever export finished a part; two sent at once finalize twice, which changes nothing (see below). If the send
 * fails, the export's message is retried and asks again (`onlyIfOpen`); stuck detection is the last resort.
 * Returns whether it sent one. An unbilled snapshot is finalized at once instead, and never counts as sent.
 *
 * `onlyIfOpen`: only for an invoice still `exporting` with every part finished, i.e. one whose request was never
 * sent (its export stopped between committing the part and sending it): what a redelivered message checks.
 */
export async function requestFinalize(
  deps: SyncDeps,
  invoiceId: string,
  correlationId?: string,
  options: { onlyIfOpen?: boolean } = {},
): Promise<boolean> {
  // An unbilled snapshot's finalize writes one small JSON file (no dataset): done here, as before.
  if (isSnapshotKey(invoiceId)) {
    if (!options.onlyIfOpen) await finalizeSnapshotIfDone(deps, invoiceId);
    return false;
  }
  const finished = await finishedInvoice(deps, invoiceId);
  if (!finished || (options.onlyIfOpen && finished.entity.state !== 'exporting')) return false;
  await sendQueueMessage(deps.storage.queues.invoiceSync, {
    invoiceId,
    reason: 'finalize',
    ...(correlationId ? { correlationId } : {}),
  } satisfies InvoiceSyncMessage);
  return true;
}

/** Writes the manifest and the resting state once every part is finished; false while parts are still pending. */
export async function finalizeInvoiceIfDone(deps: SyncDeps, invoiceId: string): Promise<boolean> {
  // The parts of an unbilled snapshot go through the same export path; their owner finalizes its own way.
  if (isSnapshotKey(invoiceId)) return finalizeSnapshotIfDone(deps, invoiceId);
  const { ledger, container } = deps.storage;
  for (let attempt = 0; attempt < 10; attempt++) {
    const finished = await finishedInvoice(deps, invoiceId);
    if (!finished) return false;
    const { entity, parts } = finished;

    const reconciliation = buildReconciliation(entity, parts, deps.settings.RECONCILIATION_TOLERANCE);
    // The typed dataset is part of the verification: written from the committed billing parts, and it must add up.
    const dataset = await syncBillingLines(container, entity, parts, reconciliation);
    if (dataset.state === 'raced') continue; // another finalize committed it in between: start again
    const datasetProblem = dataset.state === 'invalid' ? dataset.problem : undefined;
    const status = datasetProblem ? 'failed' : statusOf(parts, reconciliation);
    const notes = [...decodeNotes(entity), ...(datasetProblem ? [datasetProblem] : [])];
    const accrual = await unbilledComparison(deps, entity, parts);
    const manifest: InvoiceManifest = {
      manifestVersion: MANIFEST_VERSION,
      invoiceId,
      status,
      billingPeriod: entity.billingPeriod,
      invoiceDate: entity.invoiceDate,
      documentType: entity.documentType,
      ...(entity.amendsOf ? { amendsOf: entity.amendsOf } : {}),
      currencyCode: entity.currencyCode,
      totals: { totalCharges: entity.totalCharges },
      artifacts: [...artifactsOf(entity, parts), ...('artifact' in dataset ? [dataset.artifact] : [])],
      parts: parts.map((p) => ({
        partId: p.partId,
        state: p.state,
        api: p.source ?? p.api,
        ...(p.state !== 'complete' && (p.lastError ?? p.routeReason) ? { note: p.lastError ?? p.routeReason } : {}),
      })),
      ...(notes.length > 0 ? { notes } : {}),
      reconciliation,
      ...(accrual ? { unbilledComparison: accrual } : {}),
      correlationId: entity.correlationId,
      generatedAt: new Date(deps.now()).toISOString(),
    };

    const blob = container.getBlockBlobClient(manifestPath(entity.billingPeriod, invoiceId));
    const existing = await blob.getProperties().catch((error: unknown) => {
      if (error instanceof RestError && error.statusCode === 404) return undefined;
      throw error;
    });
    try {
      await writeJsonBlob(blob, JSON.stringify(manifest, null, 2), {
        conditions: existing?.etag ? { ifMatch: existing.etag } : { ifNoneMatch: '*' },
      });
    } catch (error) {
      if (isConditionFailure(error)) continue; // another finalize wrote in between: start again from fresh parts
      throw new OperationError(`write manifest.json of invoice ${invoiceId}`, error);
    }
    if (moved(parts, await ledger.listParts(invoiceId))) continue; // a part moved while this was written

    await settleInvoice(deps, entity, parts, status, reconciliation, datasetProblem);
    return true;
  }
  throw new Error(`Finalizing invoice ${invoiceId} kept racing with other writers; a later message will finish it`);
}

async function settleInvoice(
  deps: SyncDeps,
  entity: InvoiceEntity,
  parts: PartEntity[],
  status: ManifestStatus,
  reconciliation: Reconciliation,
  datasetProblem?: string,
): Promise<void> {
  const nowIso = new Date(deps.now()).toISOString();
  const failedPart = parts.find((p) => p.state === 'failed');
  const trouble = status === 'failed' || status === 'mismatch';
  // Two parts may finish at once and both get here: only the writer that changes the state reports it.
  let changedFrom: InvoiceState | undefined;
  const changed = await deps.storage.ledger.updateInvoice(entity.invoiceId, (current) => {
    changedFrom = current.state === status ? undefined : current.state;
    return {
      state: status,
      reconciliation: JSON.stringify(reconciliation),
      partsComplete: parts.filter((p) => p.state === 'complete').length,
      completedAt: status === 'complete' ? (current.completedAt ?? nowIso) : undefined,
      lastError: failedPart
        ? `part ${failedPart.partId}: ${failedPart.lastError ?? 'failed'}`
        : datasetProblem
          ? `dataset: ${datasetProblem}`
          : status === 'mismatch'
            ? `line items ${reconciliation.lineItemTotal} vs totalCharges ${reconciliation.invoiceTotalCharges} ${current.currencyCode} (difference ${reconciliation.difference})`
            : undefined,
      // The retry clock keeps running across retries that end in trouble again; a healthy end stops it.
      ...(trouble ? troubleClock(current, deps.now()) : clearTroubleClock()),
      updatedAt: nowIso,
    };
  });
  if (changedFrom === undefined) return;
  deps.log.event('InvoiceStateChanged', {
    invoiceId: entity.invoiceId,
    billingPeriod: entity.billingPeriod,
    state: changed.state,
    previousState: changedFrom,
    parts: parts.length,
    rows: parts.reduce((n, p) => n + p.rows, 0),
    currency: entity.currencyCode,
    invoiceTotal: reconciliation.invoiceTotalCharges,
    lineItemTotal: reconciliation.lineItemTotal,
    difference: reconciliation.difference,
    reconciliationMatches: reconciliation.matches,
    correlationId: entity.correlationId,
  });
  if (status === 'mismatch') {
    deps.log.event('ReconciliationMismatch', {
      invoiceId: entity.invoiceId,
      billingPeriod: entity.billingPeriod,
      currency: entity.currencyCode,
      invoiceTotal: reconciliation.invoiceTotalCharges,
      lineItemTotal: reconciliation.lineItemTotal,
      difference: reconciliation.difference,
      tolerance: reconciliation.tolerance,
      correlationId: entity.correlationId,
    });
  }
}
