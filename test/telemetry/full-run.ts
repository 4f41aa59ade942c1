// One full pass of the real app with faults (throttling, 5xx, resets, an expired signed PDF link, a rejected SAS,
// an invoice that never syncs, one that never settles, a refresh token 70 days old whose rotation cannot be saved,
// then the day's unbilled snapshots of a refused currency and of a served one),
// capturing everything that leaves the process: logger calls, the Functions host log handler, Azure SDK logs,
// stdout/stderr, the ledger, every blob. Shared by the redaction and the telemetry tests.
import { randomUUID } from 'node:crypto';
import { AzureLogger, getLogLevel, setLogLevel } from '@azure/logger';
import { createSyncDeps } from '../../src/app/create-deps.js';
import { invocationLogger } from '../../src/app/invocation-logger.js';
import { type PassResult, runPass } from '../../src/app/run-pass.js';
import {
  authorityMetadataFor,
  cloudDiscoveryMetadataFor,
  originRewritingHttpClient,
  originRewritingNetworkClient,
  type SecretStore,
  type StoredSecret,
} from '../../src/auth/index.js';
import { loadSettings } from '../../src/config.js';
import type { PartEntity } from '../../src/storage/parts.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import type { EventProperties, SyncLogger } from '../../src/telemetry/logger.js';
import {
  apiFault,
  CLIENT_ID,
  graphThrottle,
  type InvoiceSpec,
  PARTNER_TENANT_ID,
  type Simulator,
  throttle,
} from '../simulator/index.js';
import type { Azurite } from '../support/azurite.js';
import { hostWith } from '../support/sim-env.js';

export const AUTHORITY_HOST = 'https://login.simulator.test';
export const SECRET_NAME = 'partner-center-refresh-token';
const DAY = 86_400_000;

export const FAILING_INVOICE = 'G0FAIL0001';
export const DATASET: InvoiceSpec[] = [
  {
    id: 'D0LEG00001',
    kind: 'legacy',
    billingPeriod: '2023-02',
    receipts: 1,
    parts: [
      { provider: 'office', lineItemType: 'billing_line_items', rows: 30 },
      { provider: 'azure', lineItemType: 'usage_line_items', rows: 20 },
    ],
  },
  {
    id: 'G0OLD00001',
    kind: 'modern',
    billingPeriod: '2023-05',
    parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 25 }],
  },
  {
    id: 'G0V2A00001',
    kind: 'modern',
    billingPeriod: '2026-09',
    parts: [
      { provider: 'one_time', lineItemType: 'billing_line_items', rows: 30 },
      { provider: 'one_time', lineItemType: 'usage_line_items', rows: 20 },
    ],
  },
  {
    id: 'G0V2B00001',
    kind: 'modern',
    billingPeriod: '2026-10',
    parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 15 }],
  },
  {
    // Its line items are 4.20 short of its totalCharges: a reconciliation mismatch.
    id: 'G0MISS0001',
    kind: 'modern',
    billingPeriod: '2023-08',
    chargesAdjustment: 4.2,
    parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 8 }],
  },
  {
    id: FAILING_INVOICE,
    kind: 'modern',
    billingPeriod: '2023-04',
    parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 10 }],
  },
];

const AUTHENTICATION_FAILED = (message: string) =>
  `<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>${message}</Message></Error>`;

export function addFaults(sim: Simulator): void {
  sim.faults.add(throttle(0, { path: '/lineitems', times: 2 }));
  sim.faults.add(throttle(undefined, { path: '/lineitems' }));
  sim.faults.add(apiFault(503, 'ServiceUnavailable', { path: '/lineitems' }));
  sim.faults.add({ host: 'partnercenter', path: '/lineitems', kind: 'reset' });
  sim.faults.add({ host: 'partnercenter', path: '/lineitems', kind: 'resetMidBody' });
  sim.faults.add(throttle(0, { path: /^\/v1\/invoices\/?$/ }));
  sim.faults.add(graphThrottle(0));
  // The first signed PDF link is refused as expired: the client fetches the invoice again for a fresh link.
  sim.faults.add({
    host: 'blob',
    path: '/statements/',
    kind: 'status',
    status: 403,
    headers: { 'content-type': 'application/xml' },
    body: AUTHENTICATION_FAILED('Signed expiry time has to be after signed start time'),
  });
  // The first export blob read is refused as an expired SAS: a fresh manifest comes from the operation.
  sim.faults.add({
    host: 'blob',
    path: /fastpath/,
    kind: 'status',
    status: 403,
    headers: { 'content-type': 'application/xml' },
    body: AUTHENTICATION_FAILED('Signature not valid in the specified time frame'),
  });
  sim.faults.add({ host: 'blob', path: /fastpath/, kind: 'status', status: 500, body: 'InternalError' });
  // One invoice's by-id call always fails: it ends `failed` after host.json maxDequeueCount deliveries (2 here).
  sim.faults.add(apiFault(500, 500, { path: new RegExp(`^/v1/invoices/${FAILING_INVOICE}$`), times: Infinity }));
  // The next v2 export never has data: its part ends `unsettled` past SETTLE_DEADLINE_HOURS.
  sim.faults.add({ kind: 'v2NoData', polls: 1000 });
}

/** Key Vault as it is when the function's identity lost write access: reads work, the rotated token is not saved. */
class ReadOnlySecretStore implements SecretStore {
  readonly attemptedWrites: string[] = [];
  constructor(private readonly secret: StoredSecret) {}
  async get(): Promise<StoredSecret | undefined> {
    return { ...this.secret };
  }
  async set(_name: string, value: string): Promise<void> {
    this.attemptedWrites.push(value);
    throw new Error(`Forbidden: caller is not authorized to set secret ${SECRET_NAME} (value ${value.slice(0, 4)}...)`);
  }
}

export interface CapturedRun {
  deps: SyncDeps;
  result: PassResult;
  /** The parts of the unbilled snapshots taken after the pass (they export through the same path). */
  unbilledParts: PartEntity[];
  /** Every SyncLogger call: level, message, properties. */
  logLines: { level: string; message: string; properties?: EventProperties }[];
  events: { name: string; properties: EventProperties }[];
  /** Every InvocationContext log call of the queue host (what the Functions host sends to App Insights). */
  hostLog: string[];
  /** Azure SDK logs (core-rest-pipeline's log policy, identity, storage) at info level. */
  sdkLog: string[];
  /** Everything written to process stdout/stderr during the run. */
  processOutput: string[];
  /** Every blob's content, by path. */
  blobs: Map<string, string>;
  /** The ledger entities as stored (invoices and parts). */
  ledger: string;
  clientSecret: string;
  refreshTokens: string[];
}

export async function fullRunWithFaults(sim: Simulator, azurite: Azurite): Promise<CapturedRun> {
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
  const clientSecret = `sim~secret.${randomUUID()}`;
  const seeded = sim.seedRefreshToken();
  const store = new ReadOnlySecretStore({ value: seeded, updatedOn: new Date(Date.now() - 70 * DAY) });
  const settings = loadSettings(
    {
      AzureWebJobsStorage: azurite.connectionString,
      INVOICE_CONTAINER: `inv${suffix}`,
      LEDGER_TABLE: `ledger${suffix}`,
      PARTNER_CENTER_API_URL: sim.partnerCenterUrl,
      GRAPH_API_URL: sim.graphUrl,
      AUTH_MODE: 'client-secret',
      PARTNER_TENANT_ID,
      PARTNER_CLIENT_ID: CLIENT_ID,
      PARTNER_CLIENT_SECRET: clientSecret,
      AUTHORITY_HOST,
      REFRESH_TOKEN_SECRET_NAME: SECRET_NAME,
      REFRESH_TOKEN_WARN_DAYS: '60',
      ALLOW_INSECURE_LOOPBACK: 'true',
      LOCAL_CONCURRENCY: '2',
      LINE_ITEM_PAGE_SIZE: '10',
      HTTP_MAX_RETRIES: '3',
      SETTLE_DEADLINE_HOURS: '1',
    },
    hostWith({ maxDequeueCount: 2 }),
  );
  const origins = { [AUTHORITY_HOST]: sim.authorityUrl };
  const authority = `${AUTHORITY_HOST}/${PARTNER_TENANT_ID}`;

  const logLines: CapturedRun['logLines'] = [];
  const events: CapturedRun['events'] = [];
  const log: SyncLogger = {
    info: (message, properties) => logLines.push({ level: 'info', message, properties }),
    warn: (message, properties) => logLines.push({ level: 'warn', message, properties }),
    error: (message, properties) => logLines.push({ level: 'error', message, properties }),
    event: (name, properties) => {
      logLines.push({ level: 'event', message: name, properties });
      events.push({ name, properties });
    },
  };
  let offset = 0;
  const deps = await createSyncDeps(settings, {
    // As in Azure (src/sync/runtime.ts): lines of an invocation go to its InvocationContext; tee keeps the capture.
    log: invocationLogger(log, { tee: true }),
    now: () => Date.now() + offset,
    graphPollSeconds: 0,
    v2NoDataBaseSeconds: 0,
    retryDelayMs: 5,
    maxRetryDelayMs: 20,
    credentialOptions: {
      httpClient: originRewritingHttpClient(origins),
      networkClient: originRewritingNetworkClient(origins),
      authorityMetadata: authorityMetadataFor(authority),
      cloudDiscoveryMetadata: cloudDiscoveryMetadataFor(authority),
      disableInstanceDiscovery: true,
      secretStore: store,
    },
  });

  const hostLog: string[] = [];
  const sdkLog: string[] = [];
  const processOutput: string[] = [];
  const previousLevel = getLogLevel();
  const previousSdkLog = AzureLogger.log;
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  const tap = (original: typeof process.stdout.write) =>
    function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      processOutput.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof process.stdout.write;
  setLogLevel('info');
  AzureLogger.log = (...args: unknown[]) => sdkLog.push(args.map(String).join(' '));
  process.stdout.write = tap(stdoutWrite);
  process.stderr.write = tap(stderrWrite);
  let result: PassResult;
  const unbilledParts: PartEntity[] = [];
  try {
    addFaults(sim);
    result = await runPass(deps, {
      retryVisibilitySeconds: 0,
      logHandler: (level, ...args) =>
        hostLog.push(`${level} ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}`),
      // Twenty minutes pass per message on the app's clock, so the no-data part passes its settle deadline.
      onOutcome: () => {
        offset += 20 * 60_000;
      },
    });
    // Unbilled snapshots on the simulator's clock: one currency the service refuses (a 403 on every unbilled
    // export: both snapshots fail), then one it serves (both saved).
    sim.faults.clear();
    const onSimClock = (currency: string): SyncDeps => ({
      ...deps,
      now: sim.clock.now,
      settings: { ...deps.settings, UNBILLED_CURRENCIES: [currency] },
    });
    sim.faults.add({
      host: 'graph',
      path: '/unbilled/',
      kind: 'status',
      status: 403,
      times: Infinity,
      body: JSON.stringify({ error: { code: 'Forbidden', message: 'Missing role PartnerBilling.Read.All.' } }),
    });
    await runPass(onSimClock('EUR'), { skipDetect: true, unbilledSnapshots: true, retryVisibilitySeconds: 0 });
    sim.faults.clear();
    await runPass(onSimClock('USD'), { skipDetect: true, unbilledSnapshots: true, retryVisibilitySeconds: 0 });
    for await (const snapshot of deps.storage.ledger.listSnapshots()) {
      unbilledParts.push(...(await deps.storage.ledger.listParts(snapshot.snapshotKey)));
    }
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
    AzureLogger.log = previousSdkLog;
    setLogLevel(previousLevel);
    sim.faults.clear();
  }

  const blobs = new Map<string, string>();
  for await (const blob of deps.storage.container.listBlobsFlat()) {
    const bytes = await deps.storage.container.getBlobClient(blob.name).downloadToBuffer();
    blobs.set(blob.name, bytes.toString('latin1'));
  }
  const ledger = JSON.stringify({ invoices: result.invoices, parts: result.parts });
  return {
    deps,
    result,
    unbilledParts,
    logLines,
    events,
    hostLog,
    sdkLog,
    processOutput,
    blobs,
    ledger,
    clientSecret,
    refreshTokens: [seeded, ...store.attemptedWrites],
  };
}
