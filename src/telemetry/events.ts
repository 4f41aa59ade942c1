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
  PartUnsettled: ['invoiceId', 'partId', 'api'],
  HttpRequest: ['host', 'method', 'endpoint', 'status', 'attempt', 'durationMs', 'throttled', 'correlationId'],
  RefreshTokenAge: ['ageDays', 'warnAfterDays', 'daysLeft'],
} as const;

export type SyncEventName = keyof typeof SYNC_EVENTS;
