// exportLineItems: claim one invoice part and run its export (v1 line items, a Graph v2 export, or the daily v2
// re-check). A duplicate message defers itself while another invocation holds the part; a message behind the
// part's chain is dropped. Where the export stands lives in the ledger only, so a redelivered or continued message
// resumes from there and produces byte-identical output.
import { describeError } from '../../http/errors.js';
import { TERMINAL } from '../../storage/parts.js';
import type { InvocationInfo, SyncDeps } from '../deps.js';
import { requestFinalize } from '../finalize.js';
import type { LineItemExportMessage } from '../messages.js';
import { type ExportContext, sendExportMessage } from './context.js';
import { LeaseLostError, PartLease } from './lease.js';
import { exportFromPartnerCenter } from './v1-source.js';
import { exportFromGraph, type GraphOutcome, recheckGraphData } from './v2-source.js';

export type ExportOutcome = GraphOutcome | 'deferred' | 'already-done' | 'stale' | 'lost';

/** The part a message names is not in the ledger: syncInvoice records parts before it queues them. */
export class PartNotRecordedError extends Error {
  override name = 'PartNotRecordedError';
  /** Retrying cannot make the part appear: given up at once. */
  readonly retriable = false;
}

export async function exportPart(
  deps: SyncDeps,
  message: LineItemExportMessage,
  invocation: InvocationInfo,
): Promise<ExportOutcome> {
  const { invoiceId, partId } = message;
  const correlationId = message.correlationId ?? invocation.invocationId;
  const log = { invoiceId, partId, correlationId };
  const part = await deps.storage.ledger.getPart(invoiceId, partId);
  if (!part) {
    throw new PartNotRecordedError(`No ledger entry for part ${invoiceId}/${partId}; syncInvoice records parts first`);
  }
  const recheck = message.recheck === true && part.state === 'complete' && part.api === 'v2';
  if (TERMINAL.has(part.state) && !recheck) {
    // A redelivery of the message that finished the part, whose finalize request may never have been sent.
    if (await requestFinalize(deps, invoiceId, correlationId, { onlyIfOpen: true })) {
      deps.log.info('Part already finished; its invoice was left open, finalize requested', log);
      return 'already-done';
    }
    deps.log.info('Part already finished; nothing to do', { ...log, state: part.state });
    return 'already-done';
  }

  const claim = await PartLease.claim(deps, message, invocation.invocationId, message.turn);
  if (claim.kind === 'stale') {
    deps.log.info('Message is behind the part (a duplicate); dropped', {
      ...log,
      turn: message.turn,
      partTurn: claim.turn,
    });
    return 'stale';
  }
  if (claim.kind === 'held') {
    // Come back when the other invocation's lease may have ended (it is renewed while that export works).
    const waitSeconds = Math.max(1, Math.ceil((Date.parse(claim.leaseUntil) - deps.now()) / 1000) + 1);
    await sendExportMessage(deps, message, waitSeconds);
    deps.log.info('Part is being exported by another invocation; message deferred', { ...log, waitSeconds });
    return 'deferred';
  }

  const { lease } = claim;
  lease.startRenewal();
  const ctx: ExportContext = {
    deps,
    lease,
    message,
    deadline: invocation.startedAt + deps.settings.EXPORT_TIME_BUDGET_SECONDS * 1000,
    correlationId,
  };
  try {
    if (recheck) return await recheckGraphData(ctx);
    return lease.part.api === 'v2' ? await exportFromGraph(ctx) : await exportFromPartnerCenter(ctx);
  } catch (error) {
    if (error instanceof LeaseLostError) {
      // This invocation touches the part no more; losing a lease is not the part's failure, so it costs no delivery.
      // The message comes back in a moment: if another invocation owns the part now, it defers or is dropped as
      // stale; if nobody took it, it carries on from the ledger.
      deps.log.warn('Lease lost; this invocation stops and the part continues in a new delivery', {
        ...log,
        error: error.message,
      });
      await sendExportMessage(deps, message, 1);
      return 'lost';
    }
    await lease.release({ lastError: describeError(error) }).catch(() => undefined);
    throw error;
  } finally {
    lease.stopRenewal();
  }
}

/**
 * Records that a message gave up on a part (a permanent failure, or its last delivery). Only what the message
 * owns changes: nothing while another invocation holds the part; a complete part whose re-check failed stays
 * complete with its verified file (the next check is simply later); anything else unfinished becomes `failed`.
 */
export async function recordExportFailure(
  deps: SyncDeps,
  message: LineItemExportMessage,
  lastError: string,
): Promise<'failed' | 'recheck-later' | 'untouched'> {
  let outcome: 'failed' | 'recheck-later' | 'untouched' = 'untouched';
  const nowIso = new Date(deps.now()).toISOString();
  await deps.storage.ledger.updatePart(message.invoiceId, message.partId, (current) => {
    outcome = 'untouched';
    // A live lease is another invocation's (this message's own was released when its export failed). PartLease
    // writes and clears leaseOwner and leaseUntil together; an absent leaseUntil parses to NaN: no live lease.
    const heldByOther = Date.parse(String(current.leaseUntil)) > deps.now();
    if (heldByOther || message.turn !== current.turn) return undefined;
    if (current.state === 'complete') {
      outcome = 'recheck-later';
      return {
        lastError,
        operationLocation: undefined,
        nextCheckAt: new Date(deps.now() + 24 * 3_600_000).toISOString(),
        updatedAt: nowIso,
      };
    }
    if (TERMINAL.has(current.state)) return undefined;
    outcome = 'failed';
    return {
      state: 'failed',
      lastError,
      leaseOwner: undefined,
      leaseUntil: undefined,
      dueAt: undefined,
      updatedAt: nowIso,
    };
  });
  return outcome;
}
