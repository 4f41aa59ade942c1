// The v2 source: a part's rows from a Microsoft Graph billed export. The export is started, then polled one step
// per message (a Function never sleeps waiting); once it succeeds, the manifest's blobs are the pages. An expired
// SAS gets a fresh manifest from the operation; "no data yet" (5000) waits with a growing delay until the settle
// deadline; any other failure falls back to v1.
import { type Manifest, type ManifestCheckpoint, SasExpiredError } from '../../graph/index.js';
import { rootCause, withOperation } from '../../http/errors.js';
import type { Page } from '../../http/paging.js';
import { redactText } from '../../http/redact.js';
import { lineItemsPath } from '../../storage/layout.js';
import { decodeHistory, encodeHistory, type PartCheckpoint, progressOf, resetProgress } from '../../storage/parts.js';
import { decodeUnbilledTarget, encodeUnbilledTarget, type UnbilledTarget } from '../../storage/unbilled.js';
import { requestFinalize } from '../finalize.js';
import {
  describeTarget,
  manifestMonth,
  UnbilledExportFailedError,
  UnbilledMonthMismatchError,
  UnbilledPeriodPassedError,
  unbilledPeriodWord,
} from '../unbilled/target.js';
import { continueLater, type ExportContext, partLog } from './context.js';
import { RECHECK_INTERVAL_MS, type StageOutcome, stageCommitVerify } from './stage.js';
import { exportFromPartnerCenter } from './v1-source.js';

export type GraphOutcome = StageOutcome | 'waiting' | 'unsettled' | 'unchanged';

/** First wait after "no data yet", doubling per attempt, at most an hour. */
const NO_DATA_MAX_SECONDS = 3600;
/** An unbilled snapshot waits for data at most a day (SETTLE_DEADLINE_HOURS if shorter): tomorrow's takes over. */
const UNBILLED_NO_DATA_MAX_HOURS = 24;

const kindOf = (ctx: ExportContext) => (ctx.lease.part.v2Kind === 'usage' ? 'usage' : 'reconciliation');

export async function exportFromGraph(ctx: ExportContext): Promise<GraphOutcome> {
  const { deps, lease } = ctx;
  const part = lease.part;
  const unbilled = decodeUnbilledTarget(part.unbilled);
  if (!part.operationLocation) {
    const started = unbilled
      ? await startUnbilled(ctx, unbilled)
      : {
          ...(await withOperation(`start the v2 ${kindOf(ctx)} export of ${part.invoiceId}`, () =>
            deps.graph.startExport(kindOf(ctx), part.invoiceId, { correlationId: ctx.correlationId }),
          )),
          patch: {},
        };
    await continueLater(ctx, started.retryAfterSeconds, {
      ...started.patch,
      state: 'waiting',
      operationLocation: started.operationLocation,
      progressAt: new Date(deps.now()).toISOString(),
    });
    deps.log.info('v2 export started', { ...partLog(ctx), kind: kindOf(ctx) });
    return 'waiting';
  }
  const state = await withOperation(`check the v2 ${kindOf(ctx)} export of ${part.invoiceId}`, () =>
    deps.graph.checkOperation(part.operationLocation ?? '', { correlationId: ctx.correlationId }),
  );
  switch (state.status) {
    case 'running':
      await continueLater(ctx, state.retryAfterSeconds, {
        state: 'waiting',
        progressAt: new Date(deps.now()).toISOString(),
      });
      deps.log.info('Waiting for the Graph export', { ...partLog(ctx), retryAfterSeconds: state.retryAfterSeconds });
      return 'waiting';
    case 'noData':
      return noDataYet(ctx, state.message);
    case 'failed':
      if (unbilled) {
        throw new UnbilledExportFailedError(
          `The unbilled ${kindOf(ctx)} export of ${describeTarget(unbilled)} failed (${state.code}): ${redactText(state.message)}`,
        );
      }
      // The export says it cannot serve this invoice: v1 can, for any period it still answers.
      deps.log.warn('v2 export failed; falling back to the v1 line-item API', {
        ...partLog(ctx),
        code: state.code,
        message: state.message,
      });
      await lease.update(() => ({
        ...resetProgress(),
        api: 'v1',
        operationLocation: undefined,
        lastError: redactText(`v2 failed (${state.code}): ${state.message}`),
      }));
      return exportFromPartnerCenter(ctx);
    case 'succeeded':
      return exportManifest(ctx, state.manifest);
  }
}

/** Stages the manifest's blobs; a new data version under a resumed export starts the file over. */
async function exportManifest(ctx: ExportContext, first: Manifest): Promise<StageOutcome> {
  const { deps, lease } = ctx;
  const operationLocation = lease.part.operationLocation ?? '';
  const unbilled = decodeUnbilledTarget(lease.part.unbilled);
  const served = unbilled ? manifestMonth(first.rootDirectory) : undefined;
  if (unbilled && served !== undefined && served !== unbilled.billingPeriod) {
    // Filed by the month it was asked for; data of another month is never written under it.
    throw new UnbilledMonthMismatchError(
      `The unbilled ${kindOf(ctx)} export of ${describeTarget(unbilled)} served data of ${served} ` +
        `(manifest BillingMonth); nothing is written under billing_period=${unbilled.billingPeriod}`,
    );
  }
  if (lease.part.v2Etag && lease.part.v2Etag !== first.eTag && progressOf(lease.part).at !== null) {
    deps.log.warn('v2 data version changed during the export; starting the file over', {
      ...partLog(ctx),
      previousEtag: lease.part.v2Etag,
      newEtag: first.eTag,
    });
    await lease.update(resetProgress);
  }
  await lease.update(() => ({ v2Etag: first.eTag, state: 'exporting' }));
  let manifest = first;
  for (let attempt = 0; ; attempt++) {
    const current = manifest;
    try {
      return await stageCommitVerify(ctx, {
        api: 'v2',
        pages: (at: PartCheckpoint | null) => {
          if (at !== null && at.kind !== 'manifest')
            throw new TypeError(`a v2 part cannot resume from a ${at.kind} checkpoint`);
          return tagged(
            deps.graph.manifestPages(current, { checkpoint: at?.at, maxLines: deps.settings.LINE_ITEM_PAGE_SIZE }),
          );
        },
      });
    } catch (error) {
      // An expired SAS gets a fresh manifest from the operation, never a bearer token on the blob host.
      if (!(rootCause(error) instanceof SasExpiredError) || attempt >= 2) throw error;
      const again = await deps.graph.checkOperation(operationLocation, { correlationId: ctx.correlationId });
      if (again.status !== 'succeeded') throw error;
      if (again.manifest.eTag !== current.eTag) {
        await lease.update(() => ({ ...resetProgress(), v2Etag: again.manifest.eTag }));
      }
      manifest = again.manifest;
    }
  }
}

/** Starts an unbilled export for the month the part is filed under, asked for by the word that names it now. */
async function startUnbilled(ctx: ExportContext, target: UnbilledTarget) {
  const { deps } = ctx;
  const requestedAs = unbilledPeriodWord(target.billingPeriod, deps.now());
  if (!requestedAs) {
    throw new UnbilledPeriodPassedError(
      `The unbilled snapshot of ${describeTarget(target)} can no longer be taken: on ` +
        `${new Date(deps.now()).toISOString().slice(0, 10)} Graph serves only this month (current) and the last`,
    );
  }
  const asked = { ...target, requestedAs };
  const started = await withOperation(`start the unbilled ${kindOf(ctx)} export of ${describeTarget(asked)}`, () =>
    deps.graph.startUnbilledExport(
      kindOf(ctx),
      { currencyCode: target.currencyCode, billingPeriod: requestedAs },
      { correlationId: ctx.correlationId },
    ),
  );
  return { ...started, patch: { unbilled: encodeUnbilledTarget(asked) } };
}

/** The manifest reader's pages with their positions tagged as v2 checkpoints (one union in the ledger). */
async function* tagged(pages: AsyncIterable<Page<ManifestCheckpoint>>): AsyncGenerator<Page<PartCheckpoint>> {
  for await (const page of pages) yield { ...page, next: page.next && { kind: 'manifest', at: page.next } };
}

async function noDataYet(ctx: ExportContext, detail: string): Promise<GraphOutcome> {
  const { deps, lease } = ctx;
  const part = lease.part;
  const waitedMs = deps.now() - Date.parse(part.firstAttemptAt ?? new Date(deps.now()).toISOString());
  const deadlineHours = part.unbilled
    ? Math.min(deps.settings.SETTLE_DEADLINE_HOURS, UNBILLED_NO_DATA_MAX_HOURS)
    : deps.settings.SETTLE_DEADLINE_HOURS;
  if (waitedMs > deadlineHours * 3_600_000) {
    await lease.release({
      state: 'unsettled',
      operationLocation: undefined,
      dueAt: undefined,
      lastError: `No v2 data after ${deadlineHours} h: ${redactText(detail)}`,
    });
    // An unbilled snapshot reports its own failure (UnbilledSnapshotFailed); PartUnsettled is an invoice's alert.
    if (!part.unbilled) deps.log.event('PartUnsettled', { ...partLog(ctx), api: 'v2' });
    await requestFinalize(deps, part.invoiceId, ctx.correlationId);
    return 'unsettled';
  }
  // A failed operation is over: the next attempt starts a new export, after a growing delay.
  const delay = Math.min(NO_DATA_MAX_SECONDS, (deps.v2NoDataBaseSeconds ?? 30) * 2 ** Math.min(part.attempts, 7));
  await continueLater(ctx, delay, {
    state: 'waiting',
    operationLocation: undefined,
    lastError: redactText(detail),
    progressAt: new Date(deps.now()).toISOString(),
  });
  deps.log.info('v2 says no data yet; will try again', { ...partLog(ctx), delay });
  return 'waiting';
}

/**
 * Re-asks Graph for a complete part's data. Same eTag: nothing changes but the next check time. A new eTag: the
 * current file is kept under a versioned name (recorded in the part's history and the manifest) and the part is
 * exported again from the new manifest. The complete file stays readable until the new one commits.
 */
export async function recheckGraphData(ctx: ExportContext): Promise<GraphOutcome> {
  const { deps, lease } = ctx;
  const part = lease.part;
  const nextCheckAt = new Date(deps.now() + RECHECK_INTERVAL_MS).toISOString();
  if (!part.operationLocation) {
    const started = await withOperation(`start the v2 re-check of ${part.invoiceId}/${part.partId}`, () =>
      deps.graph.startExport(kindOf(ctx), part.invoiceId, { correlationId: ctx.correlationId }),
    );
    await continueLater(ctx, started.retryAfterSeconds, { operationLocation: started.operationLocation });
    return 'waiting';
  }
  const state = await withOperation(`check the v2 re-check of ${part.invoiceId}/${part.partId}`, () =>
    deps.graph.checkOperation(part.operationLocation ?? '', { correlationId: ctx.correlationId }),
  );
  if (state.status === 'running') {
    await continueLater(ctx, state.retryAfterSeconds);
    return 'waiting';
  }
  if (state.status !== 'succeeded' || state.manifest.eTag === part.v2Etag) {
    await lease.release({ operationLocation: undefined, nextCheckAt, dueAt: undefined });
    deps.log.info('v2 data re-checked', { ...partLog(ctx), changed: false, status: state.status });
    // A re-check asked for by a reconciliation retry reopened the invoice: it rests again, measured anew.
    if ((await deps.storage.ledger.getInvoice(part.invoiceId))?.state === 'exporting') {
      await requestFinalize(deps, part.invoiceId, ctx.correlationId);
    }
    return 'unchanged';
  }

  const { container, ledger } = deps.storage;
  const invoice = await ledger.getInvoice(part.invoiceId);
  if (!invoice) throw new Error(`No ledger entry for invoice ${part.invoiceId}`);
  const history = decodeHistory(part.history);
  const previousPath = lineItemsPath(
    invoice.billingPeriod,
    part.invoiceId,
    part.provider,
    part.lineItemType,
    `previous_${history.length + 1}`,
  );
  const copy = await container.getBlobClient(previousPath).beginCopyFromURL(container.getBlobClient(part.blobPath).url);
  await copy.pollUntilDone();
  history.push({
    path: previousPath,
    v2Etag: part.v2Etag ?? '',
    rows: part.rows,
    bytes: part.bytes,
    sha256: part.sha256 ?? '',
    replacedAt: new Date(deps.now()).toISOString(),
  });
  await lease.update(() => ({
    ...resetProgress(),
    state: 'exporting',
    history: encodeHistory(history),
    v2Etag: state.manifest.eTag,
  }));
  // The invoice is open again until the new version commits; finalize then rewrites its manifest.
  await ledger.updateInvoice(part.invoiceId, (current) =>
    current.state === 'exporting' ? undefined : { state: 'exporting', updatedAt: new Date(deps.now()).toISOString() },
  );
  deps.log.event('PartDataChanged', {
    ...partLog(ctx),
    previousEtag: part.v2Etag,
    newEtag: state.manifest.eTag,
    keptAs: previousPath,
  });
  return exportManifest(ctx, state.manifest);
}
