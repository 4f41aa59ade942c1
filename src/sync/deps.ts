// The one object the jobs depend on, built once per process: the same jobs run in a Function, the CLI and tests.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { InvocationContext } from '@azure/functions';
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

/** The Functions invocation the current async call chain belongs to (set by the handlers). */
export const invocationScope = new AsyncLocalStorage<Pick<InvocationContext, 'log' | 'warn' | 'error'>>();

const formatLine = (message: string, properties?: EventProperties) =>
  properties && Object.keys(properties).length > 0 ? `${message} ${JSON.stringify(properties)}` : message;

/**
 * In Azure: every line, including those from process-wide objects such as the HTTP clients, goes through the
 * invocation it belongs to, so the host files it under that function run in App Insights. Outside an invocation
 * it falls back to `outside`.
 */
export function invocationLogger(outside: SyncLogger, options: { tee?: boolean } = {}): SyncLogger {
  // `tee` also writes lines of an invocation to `outside` (local runs and tests that capture both).
  const route = (
    toInvocation: (c: Pick<InvocationContext, 'log' | 'warn' | 'error'>) => void,
    toOutside: () => void,
  ) => {
    const current = invocationScope.getStore();
    if (current) toInvocation(current);
    if (!current || options.tee) toOutside();
  };
  return {
    info: (m, p) =>
      route(
        (c) => c.log(formatLine(m, p)),
        () => outside.info(m, p),
      ),
    warn: (m, p) =>
      route(
        (c) => c.warn(formatLine(m, p)),
        () => outside.warn(m, p),
      ),
    error: (m, p) =>
      route(
        (c) => c.error(formatLine(m, p)),
        () => outside.error(m, p),
      ),
    event: (name, p) =>
      route(
        (c) => c.log(formatLine(`event:${name}`, p)),
        () => outside.event(name, p),
      ),
  };
}
