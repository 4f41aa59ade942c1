// Process-wide wiring for the Functions host: settings are read once, dependencies built lazily on first use.
import { app } from '@azure/functions';
import { loadSettings, QUEUES, settingsSchema } from '../config.js';
import type { SyncDeps } from '../sync/deps.js';
import { azureMonitorSink } from '../telemetry/azure-monitor.js';
import { consoleLogger } from '../telemetry/logger.js';
import { createSyncDeps } from './create-deps.js';
import { createHandlers } from './handlers.js';
import { invocationLogger } from './invocation-logger.js';

let deps: Promise<SyncDeps> | undefined;

// Events, warnings and errors that alerts count, unsampled (a no-op without APPLICATIONINSIGHTS_CONNECTION_STRING);
// what an invocation queued is sent before the platform may freeze the instance.
const unsampled = azureMonitorSink();
if (unsampled.enabled) app.hook.postInvocation(() => unsampled.flush().catch(() => undefined));

export const handlers = createHandlers(() => {
  deps ??= createSyncDeps(loadSettings(), { log: invocationLogger(consoleLogger(), { unsampled }) }).catch(
    (error: unknown) => {
      deps = undefined; // a transient failure (e.g. Key Vault) must not poison the process for good
      throw error;
    },
  );
  return deps;
});

/** NCRONTAB schedule of detectInvoices: the SYNC_SCHEDULE app setting, every 6 hours by default. */
export function syncSchedule(env: Record<string, string | undefined> = process.env): string {
  return settingsSchema.shape.SYNC_SCHEDULE.parse(env.SYNC_SCHEDULE || undefined);
}

/**
 * NCRONTAB schedule of unbilledSnapshots: the UNBILLED_SCHEDULE app setting, once a day (01:30 UTC) by default;
 * an empty value turns the snapshots off (undefined: the timer is not registered).
 */
export function unbilledSchedule(env: Record<string, string | undefined> = process.env): string | undefined {
  const value = env.UNBILLED_SCHEDULE;
  if (value !== undefined && value.trim() === '') return undefined;
  return settingsSchema.shape.UNBILLED_SCHEDULE.parse(value);
}

/** The queue triggers as the registrations declare them: on host storage, one queue per job. */
export const queueTriggers = {
  syncInvoice: { queueName: QUEUES.invoiceSync, connection: 'AzureWebJobsStorage' },
  exportLineItems: { queueName: QUEUES.lineItemExport, connection: 'AzureWebJobsStorage' },
} as const;
