// Turns the HTTP pipeline's per-attempt reports into `HttpRequest` events: requests, retries (attempt > 1) and
// 429s by endpoint are KQL aggregations over them.
import type { RequestTelemetry } from '../http/pipeline.js';
import type { EventProperties, SyncLogger } from './logger.js';

export function httpRequestProperties(info: RequestTelemetry): EventProperties {
  return {
    host: info.host,
    method: info.method,
    endpoint: info.endpoint,
    status: info.status,
    attempt: info.attempt,
    retry: info.attempt > 1,
    durationMs: info.durationMs,
    throttled: info.throttled,
    correlationId: info.correlationId,
    requestId: info.requestId,
    ...(info.errorCode ? { errorCode: info.errorCode } : {}),
  };
}

/** The `onRequestCompleted` hook for the API clients: one `HttpRequest` event per attempt. */
export function httpRequestEvents(log: Pick<SyncLogger, 'event'>): (info: RequestTelemetry) => void {
  return (info) => log.event('HttpRequest', httpRequestProperties(info));
}
