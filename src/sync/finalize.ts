// Completion: once every part of an invoice is finished, write `manifest.json` beside its files (what is stored,
// with sizes and hashes, and how the line items add up against the invoice) and set the invoice's final state.
import { createHash } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { invoiceFolder, invoiceJsonPath, invoicePdfPath, manifestPath } from '../storage/layout.js';
import type { InvoiceEntity, PartEntity } from '../storage/ledger.js';
import { writeJsonBlob } from '../storage/ndjson-writer.js';
import type { SyncDeps } from './deps.js';
import type { PreviousVersion } from './export-part.js';

export const MANIFEST_VERSION = 1;
const PENDING = new Set(['pending', 'queued', 'exporting', 'waiting']);

export interface ManifestArtifact {
  kind: 'invoice' | 'pdf' | 'receipt' | 'lineitems';
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
}

export interface InvoiceManifest {
  manifestVersion: number;
  invoiceId: string;
  status: 'complete' | 'unsettled' | 'failed';
  billingPeriod: string;
  invoiceDate: string;
  documentType: string;
  amendsOf?: string;
  currencyCode: string;
  totals: { totalCharges: string };
  artifacts: ManifestArtifact[];
  parts: { partId: string; state: string; api: string; note?: string }[];
  reconciliation: {
    invoiceTotalCharges: number | null;
    lineItemTotal: number | null;
    difference: number | null;
    matches: boolean | null;
    basis: string;
  };
  correlationId: string;
  generatedAt: string;
}

async function blobFacts(container: ContainerClient, path: string) {
  const buffer = await container.getBlobClient(path).downloadToBuffer();
  return { bytes: buffer.length, sha256: createHash('sha256').update(buffer).digest('hex') };
}

export function buildReconciliation(entity: InvoiceEntity, parts: PartEntity[]): InvoiceManifest['reconciliation'] {
  const invoiceTotal = entity.totalCharges === '' ? null : Number(entity.totalCharges);
  const billing = parts.filter((p) => p.lineItemType === 'billing' && p.state === 'complete');
  const measured = billing.filter((p) => p.lineTotal !== undefined);
  const lineItemTotal =
    measured.length === 0 ? null : Math.round(measured.reduce((sum, p) => sum + Number(p.lineTotal), 0) * 100) / 100;
  const difference =
    invoiceTotal === null || lineItemTotal === null || !Number.isFinite(invoiceTotal)
      ? null
      : Math.round((invoiceTotal - lineItemTotal) * 100) / 100;
  return {
    invoiceTotalCharges: invoiceTotal !== null && Number.isFinite(invoiceTotal) ? invoiceTotal : null,
    lineItemTotal,
    difference,
    matches: difference === null ? null : Math.abs(difference) < 0.01,
    basis:
      'sum of billing line items (totalForCustomer, else postTaxTotal) vs the invoice totalCharges; usage rows are not added',
  };
}

export async function finalizeInvoiceIfDone(deps: SyncDeps, invoiceId: string): Promise<boolean> {
  const { ledger, container } = deps.storage;
  const entity = await ledger.getInvoice(invoiceId);
  if (!entity || entity.state === 'complete' || entity.state === 'discovered' || entity.state === 'queued') {
    return false;
  }
  if (!entity.pdfSha256) return false;
  const parts = await ledger.listParts(invoiceId);
  if (parts.some((p) => PENDING.has(p.state))) return false;

  const status: InvoiceManifest['status'] = parts.some((p) => p.state === 'failed')
    ? 'failed'
    : parts.some((p) => p.state === 'unsettled')
      ? 'unsettled'
      : 'complete';
  const period = entity.billingPeriod;
  const artifacts: ManifestArtifact[] = [
    {
      kind: 'invoice',
      path: invoiceJsonPath(period, invoiceId),
      ...(await blobFacts(container, invoiceJsonPath(period, invoiceId))),
    },
    { kind: 'pdf', path: invoicePdfPath(period, invoiceId), bytes: entity.pdfBytes ?? 0, sha256: entity.pdfSha256 },
  ];
  for await (const blob of container.listBlobsFlat({ prefix: `${invoiceFolder(period, invoiceId)}receipts/` })) {
    artifacts.push({ kind: 'receipt', path: blob.name, ...(await blobFacts(container, blob.name)) });
  }
  for (const part of parts.filter((p) => p.state === 'complete')) {
    artifacts.push({
      kind: 'lineitems',
      path: part.blobPath,
      bytes: part.bytes,
      sha256: part.sha256 ?? '',
      provider: part.provider,
      lineItemType: part.lineItemType,
      rows: part.rows,
      source: part.source === 'v2' ? 'v2' : 'v1',
      ...(part.v2Etag ? { v2Etag: part.v2Etag } : {}),
      ...(part.lineTotal !== undefined ? { total: part.lineTotal } : {}),
      ...(part.history ? { previousVersions: JSON.parse(part.history) } : {}),
    });
  }
  const manifest: InvoiceManifest = {
    manifestVersion: MANIFEST_VERSION,
    invoiceId,
    status,
    billingPeriod: period,
    invoiceDate: entity.invoiceDate,
    documentType: entity.documentType,
    ...(entity.amendsOf ? { amendsOf: entity.amendsOf } : {}),
    currencyCode: entity.currencyCode,
    totals: { totalCharges: entity.totalCharges },
    artifacts,
    parts: parts.map((p) => ({
      partId: p.partId,
      state: p.state,
      api: p.api,
      ...(p.state !== 'complete' && p.lastError ? { note: p.lastError } : {}),
    })),
    reconciliation: buildReconciliation(entity, parts),
    correlationId: entity.correlationId,
    generatedAt: new Date(deps.now()).toISOString(),
  };
  await writeJsonBlob(container.getBlockBlobClient(manifestPath(period, invoiceId)), JSON.stringify(manifest, null, 2));

  const nowIso = new Date(deps.now()).toISOString();
  const failedPart = parts.find((p) => p.state === 'failed');
  // Two parts may finish at once and both get here: only the writer that changes the state reports it.
  let changedState = false;
  const changed = await ledger.updateInvoice(invoiceId, (current) => {
    changedState = current.state !== status;
    return !changedState
      ? undefined
      : {
          state: status,
          completedAt: status === 'complete' ? nowIso : undefined,
          partsComplete: parts.filter((p) => p.state === 'complete').length,
          lastError: failedPart ? `part ${failedPart.partId}: ${failedPart.lastError ?? 'failed'}` : undefined,
          updatedAt: nowIso,
        };
  });
  if (!changedState) return true;
  deps.log.event('InvoiceStateChanged', {
    invoiceId,
    billingPeriod: period,
    state: changed.state,
    parts: parts.length,
    rows: parts.reduce((n, p) => n + p.rows, 0),
    reconciliationMatches: manifest.reconciliation.matches,
    correlationId: entity.correlationId,
  });
  return true;
}
