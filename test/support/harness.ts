// Fresh app dependencies over their own container and ledger table (so tests on one Azurite never see each other's
// data), with every log line and event captured, and clocks a test can drive.
import { randomUUID } from 'node:crypto';
import { createSyncDeps, type DepsOverrides } from '../../src/app/create-deps.js';
import { loadSettings } from '../../src/config.js';
import type { HostConfig } from '../../src/host-config.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import type { EventProperties, SyncLogger } from '../../src/telemetry/logger.js';
import { type Simulator, type SimulatorOptions, startSimulator } from '../simulator/index.js';
import type { Azurite } from './azurite.js';
import { hostWith, simulatorEnvironment } from './sim-env.js';

export interface CapturedLine {
  level: string;
  message: string;
  properties?: EventProperties;
}

export interface CapturedLog extends SyncLogger {
  lines: CapturedLine[];
  events(name: string): EventProperties[];
}

export function captureLog(): CapturedLog {
  const lines: CapturedLine[] = [];
  const push = (level: string) => (message: string, properties?: EventProperties) =>
    lines.push({ level, message, properties });
  return {
    lines,
    info: push('info'),
    warn: push('warn'),
    error: push('error'),
    event: push('event'),
    events: (name) => lines.filter((l) => l.level === 'event' && l.message === name).map((l) => l.properties ?? {}),
  };
}

export interface Fresh {
  deps: SyncDeps;
  log: CapturedLog;
  settings: Record<string, string>;
}

export async function freshDeps(
  sim: Simulator,
  azurite: Azurite,
  o: { settings?: Record<string, string>; host?: Partial<HostConfig>; overrides?: DepsOverrides } = {},
): Promise<Fresh> {
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
  const env = await simulatorEnvironment(sim, azurite, {
    INVOICE_CONTAINER: `inv${suffix}`,
    LEDGER_TABLE: `ledger${suffix}`,
    ...o.settings,
  });
  const log = captureLog();
  const deps = await createSyncDeps(loadSettings(env.settings, hostWith(o.host ?? {})), {
    ...env.overrides,
    log,
    ...o.overrides,
  });
  await deps.storage.ensure();
  // The queues are the app's fixed names on a shared Azurite: what an earlier test left there is not this test's.
  await Promise.all(
    [deps.storage.queues.invoiceSync, deps.storage.queues.lineItemExport].map((q) => q.clearMessages()),
  );
  return { deps, log, settings: env.settings };
}

/** A clock a test moves by hand (starting at the real time, so static tokens stay valid). */
export function manualClock(start = Date.now()) {
  let offset = 0;
  return {
    now: () => start + offset + (Date.now() - start),
    advance: (ms: number) => {
      offset += ms;
    },
  };
}

/** The app's clock moves `msPerPage` with every line-item page the simulator served: a time budget per page. */
export function pagesClock(sim: Simulator, msPerPage: number) {
  const served = () => sim.requests.filter((r) => r.path.toLowerCase().includes('/lineitems')).length;
  return () => Date.now() + msPerPage * served();
}

export async function blobText(deps: SyncDeps, path: string): Promise<string> {
  return (await deps.storage.container.getBlobClient(path).downloadToBuffer()).toString('utf8');
}

export async function manifestOf(deps: SyncDeps, period: string, invoiceId: string) {
  return JSON.parse(await blobText(deps, `billing_period=${period}/invoice_id=${invoiceId}/manifest.json`));
}

/** Runs `run` against a simulator of its own, stopped afterwards whatever happens. */
export async function withSimulator<T>(options: SimulatorOptions, run: (sim: Simulator) => Promise<T>): Promise<T> {
  const sim = await startSimulator(options);
  try {
    return await run(sim);
  } finally {
    await sim.stop();
  }
}
