// The one object the jobs depend on, built once per process: the same jobs run in a Function, the CLI and tests.
import type { Settings } from '../config.js';
import type { GraphBillingClient } from '../graph/index.js';
import type { PartnerCenterClient } from '../partner-center/index.js';
import type { Storage } from '../storage/index.js';

export type EventProperties = Record<string, string | number | boolean | undefined | null>;

/** Structured log lines and events. In Azure they go through the Functions host to App Insights. */
export interface SyncLogger {
  info(message: string, properties?: EventProperties): void;
  warn(message: string, properties?: EventProperties): void;
  error(message: string, properties?: EventProperties): void;
  /** A named business event (invoice state change, part finished, ...) with dimensions and measurements. */
  event(name: string, properties: EventProperties): void;
}

export interface SyncDeps {
  settings: Settings;
  partnerCenter: PartnerCenterClient;
  graph: GraphBillingClient;
  storage: Storage;
  log: SyncLogger;
  /** Milliseconds since the epoch; injectable so tests can move time. */
  now(): number;
  /** First delay (seconds) before retrying a v2 export that has no data yet; doubles per attempt, capped at 1 h. */
  v2NoDataBaseSeconds?: number;
}

/** Per-invocation facts the jobs need from the trigger (or the local host). */
export interface InvocationInfo {
  invocationId: string;
  dequeueCount: number;
  /** When this invocation started (ms epoch), for the export time budget. */
  startedAt: number;
}

/** A logger that writes one JSON line per call; the CLI and tests wrap or replace it. */
export function consoleLogger(write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): SyncLogger {
  const emit = (level: string, message: string, properties?: EventProperties) =>
    write(JSON.stringify({ time: new Date().toISOString(), level, message, ...properties }));
  return {
    info: (m, p) => emit('info', m, p),
    warn: (m, p) => emit('warn', m, p),
    error: (m, p) => emit('error', m, p),
    event: (name, p) => emit('event', name, p),
  };
}
