// The v1 source: a part's line items through the Partner Center line-item API, from the request syncInvoice
// stored for it (offset paging for office/azure, continuation tokens for onetime/marketplace).
import { ApiError, rootCause } from '../../http/errors.js';
import type { Page } from '../../http/paging.js';
import { type LineItemCheckpoint, type LineItemRequest, lineItemRequestSchema } from '../../partner-center/index.js';
import { type PartCheckpoint, progressOf, resetProgress } from '../../storage/parts.js';
import type { ExportContext } from './context.js';
import { partLog } from './context.js';
import { type PartSource, type StageOutcome, stageCommitVerify } from './stage.js';

export class NoV1RequestError extends Error {
  override name = 'NoV1RequestError';
  readonly retriable = false;
}

export function v1Request(ctx: ExportContext): LineItemRequest {
  const { part } = ctx.lease;
  if (!part.request) {
    throw new NoV1RequestError(
      `Part ${part.invoiceId}/${part.partId} has no v1 request recorded; it cannot be read via v1`,
    );
  }
  return lineItemRequestSchema.parse(JSON.parse(part.request));
}

function v1Source(ctx: ExportContext): PartSource {
  const request = v1Request(ctx);
  return {
    api: 'v1',
    pages(at: PartCheckpoint | null): AsyncIterator<Page<PartCheckpoint>> {
      if (at !== null && at.kind !== 'offset' && at.kind !== 'seek') {
        throw new TypeError(`a v1 part cannot resume from a ${at.kind} checkpoint`);
      }
      return ctx.deps.partnerCenter.lineItemPages(request, {
        checkpoint: at as LineItemCheckpoint | null,
        correlationId: ctx.correlationId,
      });
    },
  };
}

/**
 * Exports the part through v1. A continuation the service no longer accepts (400/410 on a resumed export) starts
 * the part again from its first page: the progress is reset as one value, and the pages are opened from the
 * progress just reset, so the checkpoint and what is staged cannot disagree.
 */
export async function exportFromPartnerCenter(ctx: ExportContext): Promise<StageOutcome> {
  const source = v1Source(ctx);
  try {
    return await stageCommitVerify(ctx, source);
  } catch (error) {
    const resumed = progressOf(ctx.lease.part).at !== null;
    const cause = rootCause(error);
    if (!(cause instanceof ApiError && resumed && (cause.status === 400 || cause.status === 410))) throw error;
    ctx.deps.log.warn('Checkpoint rejected by the service; restarting the part from its first page', {
      ...partLog(ctx),
      status: cause.status,
      error: cause.message,
    });
    await ctx.lease.update(resetProgress);
    return stageCommitVerify(ctx, source);
  }
}
