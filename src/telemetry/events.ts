// The names and dimensions of the events the sync writes (`event:<Name> {json}` lines in App Insights `traces`);
// the KQL in docs/queries and the infra alerts read exactly these.

/** Every business and operations event, with the dimensions an operator can count on. */
export const SYNC_EVENTS = {
  InvoiceDiscovered: ['invoiceId', 'billingPeriod', 'documentType', 'correlationId'],
  InvoiceQueued: ['invoiceId', 'reason', 'correlationId'],
  PdfSaved: ['invoiceId', 'billingPeriod', 'bytes', 'source', 'pdfAgeMs', 'correlationId'],
  InvoiceStateChanged: ['invoiceId', 'state', 'correlationId'],
  PartExported: [
    'invoiceId',
    'partId',
    'provider',
    'lineItemType',
    'api',
    'rows',
    'bytes',
    'durationMs',
    'attempts',
    'correlationId',
  ],
  PartProgress: ['invoiceId', 'partId', 'api', 'rows', 'blocks', 'bytes', 'correlationId'],
  PartUnsettled: ['invoiceId', 'partId', 'api'],
  PartDataChanged: ['invoiceId', 'partId', 'previousEtag', 'newEtag', 'keptAs', 'correlationId'],
  PartGaveUp: ['invoiceId', 'partId', 'outcome', 'error'],
  ReconciliationMismatch: [
    'invoiceId',
    'billingPeriod',
    'currency',
    'invoiceTotal',
    'lineItemTotal',
    'difference',
    'tolerance',
    'correlationId',
  ],
  HttpRequest: ['host', 'method', 'endpoint', 'status', 'attempt', 'durationMs', 'throttled', 'correlationId'],
  RefreshTokenAge: ['ageDays', 'warnAfterDays', 'daysLeft'],
  UnbilledSnapshotSaved: [
    'snapshotKey',
    'billingPeriod',
    'snapshotDate',
    'currency',
    'usageRows',
    'billingRows',
    'usageTotal',
    'billingTotal',
    'correlationId',
  ],
  UnbilledSnapshotFailed: [
    'snapshotKey',
    'billingPeriod',
    'snapshotDate',
    'currency',
    'error',
    'runs',
    'correlationId',
  ],
} as const;

export type SyncEventName = keyof typeof SYNC_EVENTS;

/**
 * The high-volume events: one per HTTP attempt, and one per staged page (PartProgress, which the CLI's progress
 * reads). They stay on the Functions host's sampled trace path; queries weigh their rows with itemCount. Every
 * other event is what alerts and metrics count, and is sent unsampled (src/telemetry/azure-monitor.ts) as a
 * customEvents row.
 */
export const SAMPLED_EVENTS: readonly SyncEventName[] = ['HttpRequest', 'PartProgress'];

/** Whether an event must never be sampled away (every event but the per-attempt and per-page ones). */
export function isUnsampledEvent(name: string): boolean {
  return !(SAMPLED_EVENTS as readonly string[]).includes(name);
}
