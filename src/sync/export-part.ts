// exportLineItems: stream one invoice part into `rows.ndjson` as one staged block per page, saving the checkpoint
// in the ledger after each block and committing the block list at the end. A redelivered, duplicated or continued
// message resumes from the ledger checkpoint and produces byte-identical output; a Function never sleeps (v2 waits
// are delayed queue messages).
import { type Manifest, SasExpiredError } from '../graph/index.js';
import { ApiError } from '../http/errors.js';
import { redactText } from '../http/redact.js';
import { invoiceParts, type LineItemCheckpoint, partRequest } from '../partner-center/index.js';
import { invoiceJsonPath, lineItemsPath } from '../storage/layout.js';
import type { PartEntity } from '../storage/ledger.js';
import { NdjsonBlockWriter } from '../storage/ndjson-writer.js';
import { sendQueueMessage } from '../storage/queues.js';
import type { InvocationInfo, SyncDeps } from './deps.js';
import { finalizeInvoiceIfDone } from './finalize.js';
import type { LineItemExportMessage } from './messages.js';
import { prefetch } from './prefetch.js';
import { TERMINAL_PART_STATES } from './sync-invoice.js';
import { verifyNdjsonBlob } from './verify.js';

export type ExportOutcome =
  | 'complete'
  | 'continued'
  | 'waiting'
  | 'deferred'
  | 'already-done'
  | 'unsettled'
  | 'unchanged';

/** A complete v2 part is asked again for changed data at most this often, within SETTLE_WINDOW_DAYS. */
export const RECHECK_INTERVAL_MS = 24 * 3_600_000;

/** The ledger checkpoint once every page is staged and only the commit is left. */
const ALL_PAGES_STAGED = 'END';
/** A lease outlives the time budget by this much, so a live worker never loses it to a duplicate. */
const LEASE_MARGIN_MS = 120_000;

interface Chunk {
  rows: string[];
  next: unknown;
}

class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

export async function exportPart(
  deps: SyncDeps,
  message: LineItemExportMessage,
  invocation: InvocationInfo,
): Promise<ExportOutcome> {
  const { ledger } = deps.storage;
  const { invoiceId, partId } = message;
  const part = await ledger.getPart(invoiceId, partId);
  if (!part) {
    throw new Error(`No ledger entry for part ${invoiceId}/${partId}; syncInvoice records parts before queueing them`);
  }
  const recheck = message.recheck === true && part.state === 'complete' && part.api === 'v2';
  if (TERMINAL_PART_STATES.has(part.state) && !recheck) {
    deps.log.info('Part already finished; nothing to do', {
      invoiceId,
      partId,
      state: part.state,
      correlationId: message.correlationId,
    });
    return 'already-done';
  }
  const owner = invocation.invocationId;
  const budgetMs = deps.settings.EXPORT_TIME_BUDGET_SECONDS * 1000;

  // Claim the part. A live lease held by someone else means a duplicate message: come back when it ends.
  const now = deps.now();
  let claimed: PartEntity;
  try {
    claimed = await ledger.updatePart(invoiceId, partId, (current) => {
      if (current.leaseOwner && current.leaseOwner !== owner && Date.parse(current.leaseUntil ?? '') > now) {
        throw new LeaseLostError(current.leaseUntil ?? '');
      }
      return {
        leaseOwner: owner,
        leaseUntil: new Date(now + budgetMs + LEASE_MARGIN_MS).toISOString(),
        attempts: (current.attempts ?? 0) + 1,
        firstAttemptAt: current.firstAttemptAt ?? new Date(now).toISOString(),
        updatedAt: new Date(now).toISOString(),
      };
    });
  } catch (error) {
    if (!(error instanceof LeaseLostError)) throw error;
    const waitSeconds = Math.max(1, Math.ceil((Date.parse(error.message) - now) / 1000));
    await requeue(deps, message, waitSeconds, message.checkpoint);
    deps.log.info('Part is being exported by another worker; message deferred', {
      invoiceId,
      partId,
      waitSeconds,
      correlationId: message.correlationId,
    });
    return 'deferred';
  }

  const context: ExportContext = {
    deps,
    message,
    part: claimed,
    owner,
    deadline: invocation.startedAt + budgetMs,
    correlationId: message.correlationId ?? owner,
  };
  try {
    if (recheck) return await recheckGraphData(context);
    return claimed.api === 'v2' ? await exportFromGraph(context) : await exportFromPartnerCenter(context);
  } catch (error) {
    await releaseLease(context, {
      lastError: redactText(error instanceof Error ? error.message : String(error)).slice(0, 2000),
    }).catch(() => {});
    throw error;
  }
}

interface ExportContext {
  deps: SyncDeps;
  message: LineItemExportMessage;
  part: PartEntity;
  owner: string;
  deadline: number;
  correlationId: string;
}

async function loadInvoice(ctx: ExportContext) {
  const { ledger, container } = ctx.deps.storage;
  const entity = await ledger.getInvoice(ctx.part.invoiceId);
  if (!entity) throw new Error(`No ledger entry for invoice ${ctx.part.invoiceId}`);
  const text = (
    await container.getBlobClient(invoiceJsonPath(entity.billingPeriod, entity.invoiceId)).downloadToBuffer()
  ).toString('utf8');
  return JSON.parse(text) as Parameters<typeof invoiceParts>[0];
}

async function exportFromPartnerCenter(ctx: ExportContext): Promise<ExportOutcome> {
  const invoice = await loadInvoice(ctx);
  const part = invoiceParts(invoice).parts.find((p) => p.partId === ctx.part.partId);
  if (!part) throw new Error(`Invoice ${ctx.part.invoiceId} no longer lists part ${ctx.part.partId}`);
  const checkpoint = parseCheckpoint(ctx.part.checkpoint);
  const pages = async function* (): AsyncGenerator<Chunk> {
    for await (const page of ctx.deps.partnerCenter.lineItemPages(
      partRequest(invoice, part, ctx.deps.settings.LINE_ITEM_PAGE_SIZE),
      {
        // Interim adapter: a seek checkpoint saved before rowsThrough existed counts the rows staged so far.
        checkpoint: withRowsThrough(checkpoint as LineItemCheckpoint | undefined, ctx.part.rows),
        correlationId: ctx.correlationId,
      },
    )) {
      // Interim adapter (the clients' Page API): the export loop still takes rows as strings.
      const rows = page.rows === 0 ? [] : page.ndjson.toString('utf8').slice(0, -1).split('\n');
      yield { rows, next: page.next };
    }
  };
  try {
    return await stageAndCommit(ctx, checkpoint === ALL_PAGES_STAGED ? emptyPages() : pages(), 'v1');
  } catch (error) {
    // A continuation token the service no longer accepts: start the part again; re-staged blocks replace old ones.
    if (error instanceof ApiError && checkpoint && (error.status === 400 || error.status === 410)) {
      ctx.deps.log.warn('Checkpoint rejected by the service; restarting the part from its first page', {
        ...partLog(ctx),
        status: error.status,
      });
      ctx.part = await updateOwnedPart(ctx, () => ({ checkpoint: undefined, blocksStaged: 0, rows: 0, bytes: 0 }));
      return stageAndCommit(ctx, pages(), 'v1');
    }
    throw error;
  }
}

function withRowsThrough(checkpoint: LineItemCheckpoint | undefined, rows: number): LineItemCheckpoint | undefined {
  if (checkpoint?.kind !== 'seek' || checkpoint.rowsThrough !== undefined) return checkpoint;
  return { ...checkpoint, rowsThrough: rows };
}

async function exportFromGraph(ctx: ExportContext): Promise<ExportOutcome> {
  const { deps, part } = ctx;
  const kind = part.v2Kind === 'usage' ? 'usage' : 'reconciliation';
  if (!part.operationLocation) {
    const started = await deps.graph.startExport(kind, part.invoiceId, { correlationId: ctx.correlationId });
    await releaseLease(ctx, { state: 'waiting', operationLocation: started.operationLocation });
    await requeue(deps, ctx.message, started.retryAfterSeconds);
    deps.log.info('v2 export started', { ...partLog(ctx), kind });
    return 'waiting';
  }
  const state = await deps.graph.checkOperation(part.operationLocation);
  switch (state.status) {
    case 'running':
      await releaseLease(ctx, { state: 'waiting' });
      await requeue(deps, ctx.message, state.retryAfterSeconds);
      return 'waiting';
    case 'noData':
      return noDataYet(ctx, state.message);
    case 'failed':
      // The export says it cannot serve this invoice: v1 can, for any period it still answers.
      deps.log.warn('v2 export failed; falling back to the v1 line-item API', {
        ...partLog(ctx),
        code: state.code,
        message: state.message,
      });
      ctx.part = await updateOwnedPart(ctx, () => ({
        api: 'v1',
        operationLocation: undefined,
        checkpoint: undefined,
        blocksStaged: 0,
        rows: 0,
        bytes: 0,
        lastError: redactText(`v2 failed (${state.code}): ${state.message}`).slice(0, 2000),
      }));
      return exportFromPartnerCenter(ctx);
    case 'succeeded':
      return exportManifest(ctx, state.manifest);
  }
}

async function exportManifest(ctx: ExportContext, first: Manifest): Promise<ExportOutcome> {
  const { deps } = ctx;
  const { invoiceId, partId } = ctx.part;
  const operationLocation = ctx.part.operationLocation ?? '';
  let manifest = first;
  if (ctx.part.v2Etag && manifest.eTag !== ctx.part.v2Etag && ctx.part.blocksStaged > 0) {
    // The data version changed under a resumed export: start over so the file is one consistent version.
    ctx.part = await updateOwnedPart(ctx, () => ({ checkpoint: undefined, blocksStaged: 0, rows: 0, bytes: 0 }));
  }
  ctx.part = await updateOwnedPart(ctx, () => ({ v2Etag: manifest.eTag, state: 'exporting' }));
  for (let attempt = 0; ; attempt++) {
    const checkpoint = parseCheckpoint(ctx.part.checkpoint);
    const lines = async function* (): AsyncGenerator<Chunk> {
      const saved = checkpoint as { blobIndex: number; line: number; rowsThrough?: number } | undefined;
      for await (const page of deps.graph.manifestPages(manifest, {
        // Interim adapter: a checkpoint saved before rowsThrough existed counts the rows staged so far.
        checkpoint: saved ? { rowsThrough: ctx.part.rows, ...saved } : undefined,
        maxLines: deps.settings.LINE_ITEM_PAGE_SIZE,
      })) {
        const rows = page.rows === 0 ? [] : page.ndjson.toString('utf8').slice(0, -1).split('\n');
        yield { rows, next: page.next };
      }
    };
    try {
      return await stageAndCommit(ctx, checkpoint === ALL_PAGES_STAGED ? emptyPages() : lines(), 'v2');
    } catch (error) {
      // An expired SAS gets a fresh manifest from the operation, never a bearer token on the blob host.
      if (!(error instanceof SasExpiredError) || attempt >= 2) throw error;
      const again = await deps.graph.checkOperation(operationLocation);
      if (again.status !== 'succeeded') throw error;
      manifest = again.manifest;
      ctx.part = (await deps.storage.ledger.getPart(invoiceId, partId)) ?? ctx.part;
    }
  }
}

async function noDataYet(ctx: ExportContext, detail: string): Promise<ExportOutcome> {
  const { deps, part } = ctx;
  const waitedMs = deps.now() - Date.parse(part.firstAttemptAt ?? new Date(deps.now()).toISOString());
  if (waitedMs > deps.settings.SETTLE_DEADLINE_HOURS * 3_600_000) {
    await releaseLease(ctx, {
      state: 'unsettled',
      operationLocation: undefined,
      lastError: `No v2 data after ${deps.settings.SETTLE_DEADLINE_HOURS} h: ${redactText(detail)}`.slice(0, 2000),
    });
    deps.log.event('PartUnsettled', { ...partLog(ctx), api: 'v2' });
    await finalizeInvoiceIfDone(deps, part.invoiceId);
    return 'unsettled';
  }
  // A failed operation is terminal: the next attempt starts a new export, after a growing delay.
  const delay = Math.min(3600, (deps.v2NoDataBaseSeconds ?? 30) * 2 ** Math.min(part.attempts ?? 0, 7));
  await releaseLease(ctx, { state: 'waiting', operationLocation: undefined, lastError: redactText(detail) });
  await requeue(deps, ctx.message, delay);
  deps.log.info('v2 says no data yet; will try again', { ...partLog(ctx), delay });
  return 'waiting';
}

/**
 * Re-asks Graph for a complete part's data. Same eTag: nothing changes but the next check time. A new eTag: the
 * current file is kept under a versioned name (recorded in the part's history and the manifest) and the part is
 * exported again from the new manifest.
 */
async function recheckGraphData(ctx: ExportContext): Promise<ExportOutcome> {
  const { deps, part } = ctx;
  const kind = part.v2Kind === 'usage' ? 'usage' : 'reconciliation';
  const nextCheckAt = new Date(deps.now() + RECHECK_INTERVAL_MS).toISOString();
  if (!part.operationLocation) {
    const started = await deps.graph.startExport(kind, part.invoiceId, { correlationId: ctx.correlationId });
    await releaseLease(ctx, { operationLocation: started.operationLocation });
    await requeue(deps, ctx.message, started.retryAfterSeconds);
    return 'waiting';
  }
  const state = await deps.graph.checkOperation(part.operationLocation);
  if (state.status === 'running') {
    await releaseLease(ctx, {});
    await requeue(deps, ctx.message, state.retryAfterSeconds);
    return 'waiting';
  }
  if (state.status !== 'succeeded' || state.manifest.eTag === part.v2Etag) {
    await releaseLease(ctx, { operationLocation: undefined, nextCheckAt });
    deps.log.info('v2 data re-checked', { ...partLog(ctx), changed: false });
    return 'unchanged';
  }

  const { container, ledger } = deps.storage;
  const invoice = await ledger.getInvoice(part.invoiceId);
  if (!invoice) throw new Error(`No ledger entry for invoice ${part.invoiceId}`);
  const history = part.history ? (JSON.parse(part.history) as PreviousVersion[]) : [];
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
  ctx.part = await updateOwnedPart(ctx, () => ({
    state: 'exporting',
    history: JSON.stringify(history),
    checkpoint: undefined,
    blocksStaged: 0,
    rows: 0,
    bytes: 0,
    sha256: undefined,
    v2Etag: state.manifest.eTag,
  }));
  // The invoice is open again until the new version commits; finalize then rewrites its manifest.
  await ledger.updateInvoice(part.invoiceId, () => ({
    state: 'exporting',
    updatedAt: new Date(deps.now()).toISOString(),
  }));
  deps.log.event('PartDataChanged', {
    invoiceId: part.invoiceId,
    partId: part.partId,
    previousEtag: part.v2Etag,
    newEtag: state.manifest.eTag,
    keptAs: previousPath,
    correlationId: ctx.correlationId,
  });
  return exportManifest(ctx, state.manifest);
}

export interface PreviousVersion {
  path: string;
  v2Etag: string;
  rows: number;
  bytes: number;
  sha256: string;
  replacedAt: string;
}

async function* emptyPages(): AsyncGenerator<Chunk> {}

async function stageAndCommit(
  ctx: ExportContext,
  chunks: AsyncIterable<Chunk>,
  source: 'v1' | 'v2',
): Promise<ExportOutcome> {
  const { deps } = ctx;
  const blob = deps.storage.container.getBlockBlobClient(ctx.part.blobPath);
  const writer = new NdjsonBlockWriter(blob);
  const started = deps.now();
  let { blocksStaged, rows, bytes } = ctx.part;
  let finished = ctx.part.checkpoint === ALL_PAGES_STAGED;
  if (!finished) {
    ctx.part = await updateOwnedPart(ctx, () => ({ state: 'exporting' }));
    // The next page is fetched while this one is written (one page ahead: memory stays bounded by two pages).
    for await (const chunk of prefetch(chunks)) {
      if (chunk.rows.length > 0) {
        const staged = await writer.stagePage(blocksStaged, chunk.rows);
        blocksStaged++;
        rows += staged.rows;
        bytes += staged.bytes;
      }
      finished = chunk.next === null;
      const checkpoint = finished ? ALL_PAGES_STAGED : JSON.stringify(chunk.next);
      ctx.part = await updateOwnedPart(ctx, () => ({ checkpoint, blocksStaged, rows, bytes }));
      if (finished) break;
      if (deps.now() >= ctx.deadline) {
        await releaseLease(ctx, {});
        await requeue(deps, { ...ctx.message, hop: ctx.message.hop + 1 }, 0, chunk.next);
        deps.log.info('Time budget used; export continues in a new message', {
          ...partLog(ctx),
          rows,
          blocksStaged,
        });
        return 'continued';
      }
    }
    if (!finished) throw new Error('Line-item pages ended without a last page');
  }

  await writer.commit(blocksStaged, { contentType: 'application/x-ndjson' });
  const verified = await verifyNdjsonBlob(blob, ctx.part.lineItemType);
  if (verified.lines !== rows) {
    throw new Error(
      `Verification failed for ${ctx.part.blobPath}: the committed blob has ${verified.lines} rows, ${rows} were staged`,
    );
  }
  const durationMs = deps.now() - started;
  await releaseLease(ctx, {
    state: 'complete',
    rows: verified.lines,
    bytes: verified.bytes,
    sha256: verified.sha256,
    lineTotal: verified.total === undefined ? undefined : String(verified.total),
    source,
    lastError: undefined,
    operationLocation: undefined,
    nextCheckAt: source === 'v2' ? new Date(deps.now() + RECHECK_INTERVAL_MS).toISOString() : undefined,
  });
  deps.log.event('PartExported', {
    ...partLog(ctx),
    billingPeriod: /billing_period=(\d{4}-\d{2})/.exec(ctx.part.blobPath)?.[1],
    provider: ctx.part.provider,
    lineItemType: ctx.part.lineItemType,
    api: source,
    rows: verified.lines,
    bytes: verified.bytes,
    durationMs,
    attempts: ctx.part.attempts,
  });
  await finalizeInvoiceIfDone(deps, ctx.part.invoiceId);
  return 'complete';
}

function parseCheckpoint(text: string | undefined): unknown {
  if (!text) return undefined;
  if (text === ALL_PAGES_STAGED) return ALL_PAGES_STAGED;
  return JSON.parse(text);
}

/** The dimensions every line about a part carries; the correlation id is the one sent as MS-CorrelationId. */
const partLog = (ctx: ExportContext) => ({
  invoiceId: ctx.part.invoiceId,
  partId: ctx.part.partId,
  correlationId: ctx.correlationId,
});

/** Update the part only while this invocation still owns it. */
async function updateOwnedPart(ctx: ExportContext, patch: (current: PartEntity) => Partial<PartEntity>) {
  const now = ctx.deps.now();
  return ctx.deps.storage.ledger.updatePart(ctx.part.invoiceId, ctx.part.partId, (current) => {
    if (current.leaseOwner !== ctx.owner) {
      throw new LeaseLostError(`lost the lease on ${ctx.part.invoiceId}/${ctx.part.partId} to ${current.leaseOwner}`);
    }
    return { ...patch(current), updatedAt: new Date(now).toISOString() };
  });
}

async function releaseLease(ctx: ExportContext, patch: Partial<PartEntity>) {
  ctx.part = await updateOwnedPart(ctx, () => ({ ...patch, leaseOwner: undefined, leaseUntil: undefined }));
}

async function requeue(deps: SyncDeps, message: LineItemExportMessage, delaySeconds: number, checkpoint?: unknown) {
  const body: LineItemExportMessage = { ...message, checkpoint: checkpoint === undefined ? undefined : checkpoint };
  await sendQueueMessage(deps.storage.queues.lineItemExport, body, {
    visibilityTimeoutSeconds: Math.max(0, Math.min(Math.ceil(delaySeconds), 7 * 24 * 3600 - 1)),
  });
}
