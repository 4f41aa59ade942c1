// Public surface of the telemetry module: event names, the HTTP and refresh-token reporters, log wrappers
// (redaction, correlation ids) and the run summary computed from events.
export { isUnsampledEvent, SAMPLED_EVENTS, SYNC_EVENTS, type SyncEventName } from './events.js';
export { httpRequestEvents, httpRequestProperties } from './http-events.js';
export { correlatingLogger, redactingLogger } from './loggers.js';
export { REFRESH_TOKEN_LIFETIME_DAYS, type RefreshTokenAgeOptions, withRefreshTokenAge } from './refresh-token-age.js';
export { type EndpointStats, formatSummary, TelemetryCollector, type TelemetrySummary } from './summary.js';
