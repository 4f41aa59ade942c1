// The Functions-facing handlers: parse the trigger payload (inside the recording path: a malformed message is
// logged once and goes to poison at once), run the job, and decide what a failure means. A permanent failure
// (validation, a 4xx that will not change) is recorded and given up on the first delivery; a transient one is
// retried by the host, and its last delivery records the failure before the host moves the message to poison.
// Either way only what the message owns is marked, and the timer retries failed invoices later.
import type { InvocationContext, Timer } from '@azure/functions';
import { describeError, failureKind } from '../http/errors.js';
import type { InvocationInfo, SyncDeps } from '../sync/deps.js';
import { detectInvoices } from '../sync/detect-invoices.js';
import { exportPart, recordExportFailure } from '../sync/export/claim.js';
import { requestFinalize } from '../sync/finalize.js';
import {
  invoiceSyncMessageSchema,
  lineItemExportMessageSchema,
  MalformedMessageError,
  parseMessage,
} from '../sync/messages.js';
import { recordSyncFailure, syncInvoice } from '../sync/sync-invoice.js';
import { takeUnbilledSnapshots } from '../sync/unbilled/snapshots.js';
import { invocationScope } from './invocation-logger.js';

function invocationInfo(context: InvocationContext, now: number): InvocationInfo {
  const dequeueCount = Number(context.triggerMetadata?.dequeueCount ?? 1);
  return {
    invocationId: context.invocationId,
    dequeueCount: Number.isFinite(dequeueCount) ? dequeueCount : 1,
    startedAt: now,
  };
}

export interface SyncHandlers {
  detectInvoices(timer: Timer, context: InvocationContext): Promise<void>;
  unbilledSnapshots(timer: Timer, context: InvocationContext): Promise<void>;
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

    unbilledSnapshots: inScope(async (timer: Timer, _context: InvocationContext) => {
      const deps = await getDeps();
      if (timer.isPastDue) deps.log.warn('Unbilled snapshot timer is past due; running now');
      await takeUnbilledSnapshots(deps);
    }),

    syncInvoice: inScope(async (payload: unknown, context: InvocationContext) => {
      const deps = await getDeps();
      await handleMessage(deps, context, payload, {
        queue: 'invoice-sync',
        what: 'Invoice sync',
        parse: (p) => parseMessage(invoiceSyncMessageSchema, p, 'invoice-sync'),
        subject: (m) => ({ invoiceId: m.invoiceId, correlationId: m.correlationId }),
        job: (m, info) => syncInvoice(deps, m, info),
        giveUp: async (m, lastError) => {
          if (await recordSyncFailure(deps, m.invoiceId, lastError)) {
            deps.log.event('InvoiceStateChanged', {
              invoiceId: m.invoiceId,
              state: 'failed',
              error: lastError,
              correlationId: m.correlationId,
            });
          }
        },
      });
    }),

    exportLineItems: inScope(async (payload: unknown, context: InvocationContext) => {
      const deps = await getDeps();
      await handleMessage(deps, context, payload, {
        queue: 'lineitem-export',
        what: 'Part export',
        parse: (p) => parseMessage(lineItemExportMessageSchema, p, 'lineitem-export'),
        subject: (m) => ({ invoiceId: m.invoiceId, partId: m.partId, correlationId: m.correlationId }),
        job: (m, info) => exportPart(deps, m, info),
        giveUp: async (m, lastError) => {
          const outcome = await recordExportFailure(deps, m, lastError);
          deps.log.event('PartGaveUp', { invoiceId: m.invoiceId, partId: m.partId, outcome, error: lastError });
          await requestFinalize(deps, m.invoiceId, m.correlationId);
        },
      });
    }),
  };
}

interface MessageJob<M> {
  queue: string;
  what: string;
  parse(payload: unknown): M;
  subject(message: M): { invoiceId: string; partId?: string; correlationId?: string };
  job(message: M, info: InvocationInfo): Promise<unknown>;
  /** Records that this message gave up (only what it owns). */
  giveUp(message: M, lastError: string): Promise<void>;
}

async function handleMessage<M>(
  deps: SyncDeps,
  context: InvocationContext,
  payload: unknown,
  o: MessageJob<M>,
): Promise<void> {
  const info = invocationInfo(context, deps.now());
  let message: M;
  try {
    message = o.parse(payload);
  } catch (error) {
    if (!(error instanceof MalformedMessageError)) throw error;
    // Nothing in the ledger can be marked for a message that names nothing: it goes to poison now, logged once.
    deps.log.error(`${o.what} message is malformed; moved to ${o.queue}-poison`, { error: error.message });
    // The payload as the host handed it over: a string as it was, JSON as JSON (base64, as the host expects).
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    await deps.storage.queueService
      .getQueueClient(`${o.queue}-poison`)
      .sendMessage(Buffer.from(text ?? String(payload), 'utf8').toString('base64'));
    return;
  }
  try {
    await o.job(message, info);
  } catch (error) {
    const lastError = describeError(error);
    const permanent = failureKind(error) === 'permanent';
    const lastDelivery = info.dequeueCount >= deps.settings.host.maxDequeueCount;
    if (!permanent && !lastDelivery) {
      deps.log.warn(`${o.what} failed; will retry`, {
        ...o.subject(message),
        attempt: info.dequeueCount,
        error: lastError,
      });
      throw error;
    }
    await o.giveUp(message, lastError).catch((recordError: unknown) =>
      deps.log.error(`${o.what}: could not record the failure`, {
        ...o.subject(message),
        error: describeError(recordError),
      }),
    );
    if (permanent) {
      // Recorded; retrying the same request would fail the same way. The timer retries the invoice later.
      deps.log.error(`${o.what} failed permanently; recorded, not retried now`, {
        ...o.subject(message),
        attempt: info.dequeueCount,
        error: lastError,
      });
      return;
    }
    deps.log.error(`${o.what} failed for good; message goes to poison`, {
      ...o.subject(message),
      attempt: info.dequeueCount,
      error: lastError,
    });
    throw error;
  }
}
