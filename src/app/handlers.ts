// The Functions-facing handlers: validate the trigger payload before any I/O, run the job, and on the last
// delivery attempt record the failure in the ledger before the host moves the message to the poison queue.
import type { InvocationContext, Timer } from '@azure/functions';
import { redactText } from '../http/redact.js';
import type { InvocationInfo, SyncDeps } from '../sync/deps.js';
import { detectInvoices } from '../sync/detect-invoices.js';
import { exportPart } from '../sync/export-part.js';
import { finalizeInvoiceIfDone } from '../sync/finalize.js';
import { invoiceSyncMessageSchema, lineItemExportMessageSchema, parseMessage } from '../sync/messages.js';
import { syncInvoice } from '../sync/sync-invoice.js';
import { invocationScope } from './invocation-logger.js';

function invocationInfo(context: InvocationContext, now: number): InvocationInfo {
  const dequeueCount = Number(context.triggerMetadata?.dequeueCount ?? 1);
  return {
    invocationId: context.invocationId,
    dequeueCount: Number.isFinite(dequeueCount) ? dequeueCount : 1,
    startedAt: now,
  };
}

const errorText = (error: unknown) => redactText(error instanceof Error ? error.message : String(error)).slice(0, 2000);

export interface SyncHandlers {
  detectInvoices(timer: Timer, context: InvocationContext): Promise<void>;
  syncInvoice(payload: unknown, context: InvocationContext): Promise<void>;
  exportLineItems(payload: unknown, context: InvocationContext): Promise<void>;
}

export function createHandlers(getDeps: () => Promise<SyncDeps>): SyncHandlers {
  // Every line the job writes (through deps.log) is filed under this invocation: see invocationLogger.
  const inScope =
    <A extends unknown[]>(handler: (...args: A) => Promise<void>) =>
    (...args: A): Promise<void> =>
      invocationScope.run(args[args.length - 1] as InvocationContext, () => handler(...args));
  return {
    detectInvoices: inScope(async (timer: Timer, _context: InvocationContext) => {
      const deps = await getDeps();
      if (timer.isPastDue) deps.log.warn('Timer is past due; running now');
      await detectInvoices(deps);
    }),

    syncInvoice: inScope(async (payload: unknown, context: InvocationContext) => {
      const message = parseMessage(invoiceSyncMessageSchema, payload, 'invoice-sync');
      const deps = await getDeps();
      const info = invocationInfo(context, deps.now());
      await recordingFailure(deps, info, {
        what: 'Invoice sync',
        subject: { invoiceId: message.invoiceId, correlationId: message.correlationId },
        job: () => syncInvoice(deps, message, info),
        record: (patch) => deps.storage.ledger.updateInvoice(message.invoiceId, () => patch),
        givenUp: async () =>
          deps.log.event('InvoiceStateChanged', {
            invoiceId: message.invoiceId,
            state: 'failed',
            correlationId: message.correlationId,
          }),
      });
    }),

    exportLineItems: inScope(async (payload: unknown, context: InvocationContext) => {
      const message = parseMessage(lineItemExportMessageSchema, payload, 'lineitem-export');
      const deps = await getDeps();
      const info = invocationInfo(context, deps.now());
      await recordingFailure(deps, info, {
        what: 'Part export',
        subject: { invoiceId: message.invoiceId, partId: message.partId, correlationId: message.correlationId },
        job: () => exportPart(deps, message, info),
        record: (patch) => deps.storage.ledger.updatePart(message.invoiceId, message.partId, () => patch),
        givenUp: () => finalizeInvoiceIfDone(deps, message.invoiceId),
      });
    }),
  };
}

/**
 * Runs a job. On failure: the ledger gets the (redacted) error, and on the last delivery the entity is marked
 * failed before the host moves the message to the poison queue; then the error is logged and rethrown.
 */
async function recordingFailure(
  deps: SyncDeps,
  info: InvocationInfo,
  o: {
    what: string;
    subject: { invoiceId: string; partId?: string; correlationId?: string };
    job: () => Promise<unknown>;
    record: (patch: { state?: 'failed'; lastError: string; updatedAt: string }) => Promise<unknown>;
    givenUp: () => Promise<unknown>;
  },
): Promise<void> {
  try {
    await o.job();
  } catch (error) {
    const lastAttempt = info.dequeueCount >= deps.settings.host.maxDequeueCount;
    const lastError = errorText(error);
    await o
      .record({
        ...(lastAttempt ? { state: 'failed' as const } : {}),
        lastError,
        updatedAt: new Date(deps.now()).toISOString(),
      })
      .catch(() => undefined);
    deps.log.error(lastAttempt ? `${o.what} failed for good; message goes to poison` : `${o.what} failed; will retry`, {
      ...o.subject,
      attempt: info.dequeueCount,
      error: lastError,
    });
    if (lastAttempt) await o.givenUp().catch(() => undefined);
    throw error;
  }
}
