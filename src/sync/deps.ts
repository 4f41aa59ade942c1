// The one object the jobs depend on, built once per process: the same jobs run in a Function, the CLI and tests.
import type { Settings } from '../config.js';
import type { GraphBillingClient } from '../graph/index.js';
import type { PartnerCenterClient } from '../partner-center/index.js';
import type { Storage } from '../storage/index.js';
import type { SyncLogger } from '../telemetry/logger.js';

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
