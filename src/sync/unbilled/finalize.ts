// Completion of an unbilled snapshot: once both parts are finished, either both files are committed and verified
// (manifest.json is written beside them, the snapshot is complete: UnbilledSnapshotSaved) or one gave up (no
// manifest, the snapshot is failed: UnbilledSnapshotFailed, and the next timer run retries it). Only the writer
// that changes the snapshot's state reports it.
import { RestError } from '@azure/storage-blob';
import { OperationError } from '../../http/errors.js';
import { unbilledManifestPath } from '../../storage/layout.js';
import { writeJsonBlob } from '../../storage/ndjson-writer.js';
import { type PartEntity, PENDING } from '../../storage/parts.js';
import {
  decodeSnapshotFiles,
  decodeUnbilledTarget,
  encodeSnapshotFiles,
  type SnapshotEntity,
  type SnapshotFile,
  UNBILLED_PARTS,
} from '../../storage/unbilled.js';
import type { SyncDeps } from '../deps.js';

export const UNBILLED_MANIFEST_VERSION = 1;

/** How `billing_period` of a snapshot is decided (also in the README). */
export const BILLING_PERIOD_BASIS =
  'the UTC month the snapshot was planned for (current = the month of the snapshot day, last = the month before); ' +
  'the export is asked for by the word that names that month when it starts, and a manifest whose BillingMonth ' +
  'names another month is refused';

export interface UnbilledManifest {
  manifestVersion: number;
  kind: 'unbilledSnapshot';
  snapshotKey: string;
  billingPeriod: string;
  billingPeriodBasis: string;
  snapshotDate: string;
  currency: string;
  requestedAt: string;
  files: SnapshotFile[];
  totals: { usage: string | null; billing: string | null };
  correlationId: string;
  generatedAt: string;
}

function fileOf(part: PartEntity): SnapshotFile {
  const requestedAs = decodeUnbilledTarget(part.unbilled)?.requestedAs;
  return {
    lineItemType: part.lineItemType,
    path: part.blobPath,
    rows: part.rows,
    bytes: part.bytes,
    sha256: part.sha256 ?? '',
    total: part.lineTotal ?? null,
    ...(part.v2Etag ? { v2Etag: part.v2Etag } : {}),
    ...(requestedAs ? { requestedAs } : {}),
  };
}

const isConditionFailure = (error: unknown) =>
  error instanceof RestError && (error.statusCode === 412 || error.statusCode === 409);

export async function finalizeSnapshotIfDone(deps: SyncDeps, key: string): Promise<boolean> {
  const { ledger, container } = deps.storage;
  const snapshot = await ledger.getSnapshot(key);
  if (!snapshot) return false;
  if (snapshot.state === 'complete') return true;
  const parts = await ledger.listParts(key);
  if (parts.length < UNBILLED_PARTS.length || parts.some((p) => PENDING.has(p.state))) return false;
  const nowIso = new Date(deps.now()).toISOString();
  const unfinished = parts.filter((p) => p.state !== 'complete');
  if (unfinished.length > 0) {
    const lastError = unfinished.map((p) => `${p.partId} ${p.state}: ${p.lastError ?? 'no detail'}`).join('; ');
    await settle(deps, snapshot, { state: 'failed', lastError, updatedAt: nowIso });
    return true;
  }

  const files = UNBILLED_PARTS.map((spec) => parts.find((p) => p.partId === spec.partId))
    .filter((p): p is PartEntity => p !== undefined)
    .map(fileOf);
  const totalOf = (type: string) => files.find((f) => f.lineItemType === type)?.total ?? null;
  const manifest: UnbilledManifest = {
    manifestVersion: UNBILLED_MANIFEST_VERSION,
    kind: 'unbilledSnapshot',
    snapshotKey: key,
    billingPeriod: snapshot.billingPeriod,
    billingPeriodBasis: BILLING_PERIOD_BASIS,
    snapshotDate: snapshot.snapshotDate,
    currency: snapshot.currency,
    requestedAt: snapshot.requestedAt,
    files,
    totals: { usage: totalOf('usage'), billing: totalOf('billing') },
    correlationId: snapshot.correlationId,
    generatedAt: nowIso,
  };
  const path = unbilledManifestPath(snapshot.billingPeriod, snapshot.snapshotDate, snapshot.currency);
  const blob = container.getBlockBlobClient(path);
  try {
    // Written once: a second finalize of the same snapshot (two parts finishing together) finds it there.
    await writeJsonBlob(blob, JSON.stringify(manifest, null, 2), { conditions: { ifNoneMatch: '*' } });
  } catch (error) {
    if (!isConditionFailure(error)) throw new OperationError(`write manifest.json of unbilled snapshot ${key}`, error);
  }
  await settle(deps, snapshot, {
    state: 'complete',
    files: encodeSnapshotFiles(files),
    manifestPath: path,
    completedAt: nowIso,
    lastError: undefined,
    updatedAt: nowIso,
  });
  return true;
}

async function settle(
  deps: SyncDeps,
  snapshot: SnapshotEntity,
  patch: Partial<SnapshotEntity> & { state: 'complete' | 'failed' },
): Promise<void> {
  let changed = false;
  const stored = await deps.storage.ledger.updateSnapshot(snapshot.snapshotKey, (current) => {
    changed = current.state !== patch.state;
    return changed ? patch : undefined;
  });
  if (!changed) return;
  const common = {
    snapshotKey: stored.snapshotKey,
    billingPeriod: stored.billingPeriod,
    snapshotDate: stored.snapshotDate,
    currency: stored.currency,
    correlationId: stored.correlationId,
  };
  if (stored.state === 'complete') {
    const files = decodeSnapshotFiles(stored);
    const of = (type: string) => files.find((f) => f.lineItemType === type);
    deps.log.event('UnbilledSnapshotSaved', {
      ...common,
      usageRows: of('usage')?.rows,
      billingRows: of('billing')?.rows,
      usageTotal: of('usage')?.total ?? undefined,
      billingTotal: of('billing')?.total ?? undefined,
      bytes: files.reduce((n, f) => n + f.bytes, 0),
      runs: stored.runs,
    });
  } else {
    deps.log.event('UnbilledSnapshotFailed', { ...common, error: stored.lastError, runs: stored.runs });
  }
}
