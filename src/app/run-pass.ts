// One full sync pass in-process, with the same jobs the Functions run: detect, then drain both queues with the
// host's semantics. Used by `csp-invoice-sync run`, the demo, the benchmark and the end-to-end tests.
import type { LogHandler } from '@azure/functions';
import type { InvoiceEntity } from '../storage/invoices.js';
import type { PartEntity } from '../storage/parts.js';
import type { SyncDeps } from '../sync/deps.js';
import { type DetectResult, detectInvoices } from '../sync/detect-invoices.js';
import { takeUnbilledSnapshots, type UnbilledRunResult } from '../sync/unbilled/snapshots.js';
import { createHandlers } from './handlers.js';
import { queueBindings } from './queue-bindings.js';
import { type DrainStats, LocalQueueHost, type QueueOutcome } from './queue-host.js';

export interface PassOptions {
  /** Skip listing and only drain what is queued (used by `resync` and after a crash). */
  skipDetect?: boolean;
  /** Also take today's unbilled snapshots (what the unbilledSnapshots timer does) before draining. */
  unbilledSnapshots?: boolean;
  concurrency?: number;
  retryVisibilitySeconds?: number;
  maxDurationMs?: number;
  logHandler?: LogHandler;
  onOutcome?: (outcome: QueueOutcome) => void;
  signal?: AbortSignal;
}

export interface PassResult {
  detect?: DetectResult;
  unbilled?: UnbilledRunResult;
  drain: DrainStats;
  invoices: InvoiceEntity[];
  parts: PartEntity[];
  allComplete: boolean;
}

export async function runPass(deps: SyncDeps, options: PassOptions = {}): Promise<PassResult> {
  await deps.storage.ensure();
  const detect = options.skipDetect ? undefined : await detectInvoices(deps);
  const unbilled = options.unbilledSnapshots ? await takeUnbilledSnapshots(deps) : undefined;
  const handlers = createHandlers(async () => deps);
  const bindings = queueBindings(deps.storage, handlers);
  const host = new LocalQueueHost([bindings.syncInvoice, bindings.exportLineItems], {
    maxDequeueCount: deps.settings.host.maxDequeueCount,
    concurrency: options.concurrency ?? deps.settings.LOCAL_CONCURRENCY,
    retryVisibilitySeconds: options.retryVisibilitySeconds ?? 1,
    logHandler: options.logHandler,
    onOutcome: options.onOutcome,
  });
  const drain = await host.drain({ maxDurationMs: options.maxDurationMs, signal: options.signal });
  const invoices = await collect(deps.storage.ledger.listInvoices());
  const parts: PartEntity[] = [];
  for (const invoice of invoices) parts.push(...(await deps.storage.ledger.listParts(invoice.invoiceId)));
  return {
    detect,
    ...(unbilled ? { unbilled } : {}),
    drain,
    invoices,
    parts,
    allComplete: invoices.length > 0 && invoices.every((i) => i.state === 'complete'),
  };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
