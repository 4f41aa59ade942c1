// The stage-commit-verify loop every export runs, whatever its source: each page becomes one staged block, the
// progress (checkpoint and counters, one value) is saved after the block is durable, the block list is committed
// once every page is staged, and the committed blob is read back and checked against the source's own count.
import { withOperation } from '../../http/errors.js';
import type { Page } from '../../http/paging.js';
import { blockId, NdjsonBlockWriter } from '../../storage/ndjson-writer.js';
import {
  advance,
  encodeProgress,
  epochOf,
  type PartCheckpoint,
  type PartProgress,
  progressOf,
  resetProgress,
} from '../../storage/parts.js';
import { requestFinalize } from '../finalize.js';
import { continueLater, type ExportContext, partLog } from './context.js';
import { verifyNdjsonBlob } from './verify.js';

const label = (ctx: ExportContext) => `${ctx.lease.part.invoiceId}/${ctx.lease.part.partId}`;

/** Where a part's pages come from: v1 line items or the blobs of a v2 manifest. */
export interface PartSource {
  api: 'v1' | 'v2';
  /** Pages from `at` (null = the first page); one request per `next()`, nothing fetched ahead by the source. */
  pages(at: PartCheckpoint | null): AsyncIterator<Page<PartCheckpoint>>;
}

export type StageOutcome = 'complete' | 'continued';

/** The committed file does not hold what the source served: the part starts over from its first page. */
export class VerificationError extends Error {
  override name = 'VerificationError';
}

/** A complete v2 part is asked again for changed data at most this often, within SETTLE_WINDOW_DAYS. */
export const RECHECK_INTERVAL_MS = 24 * 3_600_000;

export async function stageCommitVerify(ctx: ExportContext, source: PartSource): Promise<StageOutcome> {
  const { deps, lease } = ctx;
  const blob = deps.storage.container.getBlockBlobClient(lease.part.blobPath);
  const writer = new NdjsonBlockWriter(blob);
  const started = deps.now();
  let progress = progressOf(lease.part);

  if (progress.at?.kind !== 'staged') {
    await lease.update(() => ({ state: 'exporting', dueAt: undefined }));
    const staged = await stagePages(ctx, writer, source, progress);
    if (staged === 'continued') return 'continued';
    progress = staged;
  }

  // What the source served in all, once every page is staged (where stagePages ends); any other progress has no
  // such count, and NaN matches no line count: it fails the verification below.
  const sourceRows = progress.at?.kind === 'staged' ? progress.at.rowsThrough : Number.NaN;
  lease.assertHeld();
  const ids = Array.from({ length: progress.blocks }, (_, i) => blockId(epochOf(progress, i), i));
  await withOperation(`commit ${lease.part.blobPath}`, () =>
    writer.commit(ids, { contentType: 'application/x-ndjson' }),
  );
  const verified = await withOperation(`verify ${lease.part.blobPath}`, () =>
    verifyNdjsonBlob(blob, lease.part.lineItemType),
  );
  if (verified.lines !== sourceRows || verified.lines !== progress.rows) {
    // The source's own count is the check that does not trust the writer: a blob that lacks pages fails it.
    await lease.update(resetProgress);
    throw new VerificationError(
      `Verification of ${lease.part.blobPath} failed: the committed blob has ${verified.lines} rows, the ` +
        `${source.api} source served ${sourceRows} and ${progress.rows} were staged; the part starts over`,
    );
  }
  await lease.release({
    state: 'complete',
    rows: verified.lines,
    bytes: verified.bytes,
    sha256: verified.sha256,
    lineTotal: verified.total,
    source: source.api,
    lastError: undefined,
    operationLocation: undefined,
    dueAt: undefined,
    nextCheckAt: source.api === 'v2' ? new Date(deps.now() + RECHECK_INTERVAL_MS).toISOString() : undefined,
  });
  deps.log.event('PartExported', {
    ...partLog(ctx),
    billingPeriod: (await deps.storage.ledger.getInvoice(lease.part.invoiceId))?.billingPeriod,
    provider: lease.part.provider,
    lineItemType: lease.part.lineItemType,
    api: source.api,
    rows: verified.lines,
    bytes: verified.bytes,
    durationMs: deps.now() - started,
    attempts: lease.part.attempts,
  });
  await requestFinalize(deps, lease.part.invoiceId, ctx.correlationId);
  return 'complete';
}

/** Blocks staged at once: the next page's block goes out while the storage service still writes this one. */
export const BLOCKS_IN_FLIGHT = 2;

/**
 * Stages pages until the last one (returns the progress with every page staged) or until the time budget is used
 * (hands over and returns 'continued'). The next page is fetched while earlier ones are staged, and up to
 * BLOCKS_IN_FLIGHT blocks are staged at once; the progress of page k is saved only once blocks 0..k are all
 * durable, in page order. Nothing is fetched once the budget is used: every page whose request was sent is staged
 * by this invocation, so a continuation token is sent once, and nothing of this invocation is still running when
 * the next message can start.
 */
async function stagePages(
  ctx: ExportContext,
  writer: NdjsonBlockWriter,
  source: PartSource,
  from: PartProgress,
): Promise<PartProgress | 'continued'> {
  const { deps, lease } = ctx;
  let progress = from;
  const pages = source.pages(progress.at);
  let pending: Promise<IteratorResult<Page<PartCheckpoint>>> | undefined = pages.next();
  // Progress is saved behind the staging: the save of page k (started once block k is durable) runs while page
  // k + 1 is staged; saves are chained, so the ledger only ever moves forward, and the first failure stops the loop.
  let saving: Promise<void> = Promise.resolve();
  let saveFailure: { error: unknown } | undefined;
  const saveProgress = (saved: PartProgress) => {
    const savedAt = new Date(deps.now()).toISOString();
    saving = saving
      .then(async () => {
        await lease.update(() => ({ progress: encodeProgress(saved), progressAt: savedAt }));
        // Rows and blocks staged so far in this part (across deliveries): the CLI's progress inside a long export.
        deps.log.event('PartProgress', {
          ...partLog(ctx),
          api: source.api,
          rows: saved.rows,
          blocks: saved.blocks,
          bytes: saved.bytes,
        });
      })
      .then(
        () => undefined,
        (error: unknown) => {
          saveFailure ??= { error };
        },
      );
  };
  const savedSoFar = async () => {
    await saving;
    if (saveFailure) throw saveFailure.error;
  };
  /** Pages in order, each with its staging (already settled for a page without rows) and the progress after it. */
  const staging: { done: Promise<void>; progress: PartProgress }[] = [];
  /** Waits for the oldest page's block to be durable, then saves the progress through that page. */
  const settleOldest = async () => {
    const oldest = staging[0];
    if (!oldest) return;
    await oldest.done;
    staging.shift();
    saveProgress(oldest.progress);
  };
  try {
    while (pending) {
      if (saveFailure) throw saveFailure.error;
      const page = progress.blocks + 1;
      const step = await withOperation(
        `read page ${page} of the ${source.api} line items of ${label(ctx)}`,
        () => pending!,
      );
      pending = undefined;
      if (step.done) throw new Error(`The ${source.api} pages of ${lease.part.blobPath} ended without a last page`);
      const current = step.value;
      const last = current.next === null;
      const handOver = !last && deps.now() >= ctx.deadline;
      if (!last && !handOver) {
        pending = pages.next();
        // Staging may fail before the prefetched page is awaited; its failure is then reported by that staging.
        pending.catch(() => {});
      }
      let done: Promise<void> = Promise.resolve();
      if (current.rows > 0) {
        lease.assertHeld();
        const block = progress.blocks;
        done = withOperation(`stage block ${block} of ${lease.part.blobPath}`, () =>
          writer.stage(blockId(lease.epoch, block), current.ndjson, current.rows),
        );
        // Awaited in page order below; a failure is reported there, not as an unhandled rejection.
        done.catch(() => {});
      }
      progress = advance(progress, { ...current, bytes: current.ndjson.length }, lease.epoch);
      staging.push({ done, progress });
      while (staging.length >= BLOCKS_IN_FLIGHT || ((last || handOver) && staging.length > 0)) await settleOldest();
      if (handOver) {
        await savedSoFar();
        await pages.return?.();
        await continueLater(ctx, 0);
        deps.log.info('Time budget used; export continues in a new message', {
          ...partLog(ctx),
          rows: progress.rows,
          blocks: progress.blocks,
        });
        return 'continued';
      }
    }
    await savedSoFar();
    return progress;
  } catch (error) {
    // Blocks already durable still count: their progress is saved in page order, up to the first that failed.
    try {
      while (staging.length > 0) await settleOldest();
      await savedSoFar();
    } catch {
      // The error that stopped the loop is the one reported.
    }
    throw error;
  } finally {
    // Waits for a page still being fetched (its generator settles first), for blocks still being staged and for a
    // progress save still under way, so no request outlives this invocation.
    await pages.return?.().catch(() => undefined);
    await Promise.allSettled(staging.map((s) => s.done));
    await saving;
  }
}
