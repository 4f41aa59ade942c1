// One measured run in its own process (so its peak RSS is its own): a sync pass through the app's real jobs, or a
// storage baseline writing the same bytes straight to Azurite. `tsx bench/worker.ts <job.json> <result.json>`.
// The simulator and Azurite run in other processes; this one holds only the code being measured.
import { readFile, writeFile } from 'node:fs/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { BlobServiceClient, type BlockBlobClient } from '@azure/storage-blob';
import { createSyncDeps } from '../src/app/create-deps.js';
import { createHandlers } from '../src/app/handlers.js';
import { queueBindings } from '../src/app/queue-bindings.js';
import { LocalQueueHost, type QueueBinding } from '../src/app/queue-host.js';
import { loadSettings } from '../src/config.js';
import { blobUrl } from '../src/graph/index.js';
import { blockId } from '../src/storage/ndjson-writer.js';
import { detectInvoices } from '../src/sync/detect-invoices.js';
import type { EventProperties, SyncLogger } from '../src/telemetry/logger.js';
import { createDataset, type DatasetOptions, type PartSpec } from '../test/simulator/dataset.js';
import { CountingHttpClient, type TimedRequest } from './counting-http-client.js';
import { cpuMsBetween, processCpuMs } from './process-cpu.js';

export interface PassJob {
  kind: 'pass';
  settings: Record<string, string>;
  /** Export handlers running at once (the queue host's concurrency). */
  concurrency: number;
  /**
   * Read the export queue as the Functions host does with this app's host.json: batchSize messages at a time,
   * a new batch once the running ones fall to newBatchThreshold, up to batchSize + newBatchThreshold at once
   * (`concurrency` is then ignored).
   */
  hostQueues?: boolean;
  /** Processes whose CPU time during the export phase the result reports (read from /proc). */
  watch?: { azurite?: number; source?: number };
}

export interface NdjsonBaselineJob {
  kind: 'ndjson-baseline' | 'v2-baseline';
  connectionString: string;
  container: string;
  seed: number;
  dataset: DatasetOptions;
  invoiceId: string;
  part: PartSpec;
  /** Rows per staged block (the export's page size). */
  pageSize: number;
  /** v2 only: rows per gzip blob, as the simulator splits them. */
  rowsPerBlob?: number;
  /** v2 only: take the gzip blobs from this (replaying) source instead of rendering them again. */
  sourceSettings?: Record<string, string>;
  v2Kind?: 'usage' | 'reconciliation';
  /** Also download the committed blob whole after the timed part (timed on its own). */
  readBack?: boolean;
  /** The Azurite process, whose CPU in the timed part and in the read-back the result reports. */
  azuritePid?: number;
}

/** Line-item pages fetched straight from the simulator with fetch: how fast the source itself can serve. */
export interface SourceJob {
  kind: 'source-raw';
  partnerCenterUrl: string;
  token: string;
  invoiceId: string;
  rows: number;
  pageSize: number;
}

/** A v2 export's blobs fetched raw (started and polled through the app's Graph client): the source's own speed. */
export interface SourceV2Job {
  kind: 'source-v2';
  settings: Record<string, string>;
  invoiceId: string;
  rows: number;
  v2Kind: 'usage' | 'reconciliation';
}

export type Job = PassJob | NdjsonBaselineJob | SourceJob | SourceV2Job;

export interface LoggedEvent {
  name: string;
  at: number;
  properties: EventProperties;
}

export interface PassResult {
  kind: 'pass';
  syncMs: number;
  exportMs: number;
  /** CPU time (user + system) of this whole process during the export phase. */
  exportCpuMs: number;
  /** Of exportCpuMs, the time in the kernel (socket copies: the loopback HTTP traffic, file reads). */
  exportSystemCpuMs: number;
  /** CPU the watched Azurite and source processes used in the export phase (when the job named them). */
  azuriteCpuMs?: number;
  sourceCpuMs?: number;
  events: LoggedEvent[];
  warnings: string[];
  errors: string[];
  failed: number;
  poisoned: number;
  maxInFlight: number;
  exportMaxInFlight: number;
  exportStartedAt: number;
  exportEndedAt: number;
  requests: number;
  pageRequests: TimedRequest[];
  maxRssBytes: number;
  sampledPeakRssBytes: number;
  memoryPeaks: typeof peaks;
  memorySamples: [number, number, number][];
}

export interface BaselineResult {
  kind: 'baseline';
  ms: number;
  /** CPU (user + kernel) this process used in the timed part. */
  cpuMs: number;
  /** Storage baselines: the time to download the committed blob whole after the timed part. */
  readBackMs?: number;
  /** CPU the Azurite process used in the timed part and in the read-back (when the job named it). */
  azuriteCpuMs?: number;
  azuriteReadBackCpuMs?: number;
  rows: number;
  bytes: number;
  blocks: number;
  maxRssBytes: number;
}

let sampledPeakRss = 0;
/** Peaks of the parts of memory (sampled), to tell a V8 heap that grows from buffers held outside it. */
const peaks = { heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
/** [performance.now(), rss, arrayBuffers] every 20 ms, to place the peak in a phase of the export. */
const samples: [number, number, number][] = [];
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  samples.push([performance.now(), m.rss, m.arrayBuffers]);
  sampledPeakRss = Math.max(sampledPeakRss, m.rss);
  peaks.heapUsed = Math.max(peaks.heapUsed, m.heapUsed);
  peaks.heapTotal = Math.max(peaks.heapTotal, m.heapTotal);
  peaks.external = Math.max(peaks.external, m.external);
  peaks.arrayBuffers = Math.max(peaks.arrayBuffers, m.arrayBuffers);
}, 20);
sampler.unref();

async function runPassJob(job: PassJob): Promise<PassResult> {
  const events: LoggedEvent[] = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  const log: SyncLogger = {
    info: () => {},
    warn: (message) => warnings.push(message),
    error: (message) => errors.push(message),
    event: (name, properties) => events.push({ name, at: performance.now(), properties }),
  };
  const http = new CountingHttpClient();
  const deps = await createSyncDeps(loadSettings(job.settings), { log, httpClient: http, graphPollSeconds: 0 });
  await deps.storage.ensure();
  await detectInvoices(deps);
  const handlers = createHandlers(async () => deps);
  const bindings = queueBindings(deps.storage, handlers);
  const { host } = deps.settings;
  const drain = async (binding: QueueBinding, concurrency: number, hostQueues = false) =>
    new LocalQueueHost([binding], {
      maxDequeueCount: host.maxDequeueCount,
      ...(hostQueues
        ? {
            batchSize: host.batchSize,
            newBatchThreshold: host.newBatchThreshold,
            concurrency: host.batchSize + host.newBatchThreshold,
          }
        : { concurrency }),
      retryVisibilitySeconds: 1,
      // The export phase is what is timed: poll delayed messages (v2 waits) often.
      pollIntervalMs: 20,
    }).drain({ maxDurationMs: 9 * 60_000 });

  // Phase 1: every invoice's PDF, JSON and parts; the export messages wait in their queue.
  const syncStart = performance.now();
  const synced = await drain(bindings.syncInvoice, deps.settings.LOCAL_CONCURRENCY);
  const syncMs = performance.now() - syncStart;

  // Phase 2: the line-item exports, and the finalize requests they send to invoice-sync (manifest, dataset), timed
  // together: an invoice is done when its finalize is. Each queue has slots of its own, as in the Functions host.
  http.resetPeak();
  const exportStartedAt = performance.now();
  const cpuBefore = process.cpuUsage();
  const azuriteBefore = processCpuMs(job.watch?.azurite);
  const sourceBefore = processCpuMs(job.watch?.source);
  let exportsDone = false;
  const exports = drain(bindings.exportLineItems, job.concurrency, job.hostQueues).finally(() => {
    exportsDone = true;
  });
  const finalizes = (async () => {
    const total = { failed: 0, poisoned: 0 };
    for (;;) {
      const last = exportsDone;
      const stats = await drain(bindings.syncInvoice, job.concurrency, job.hostQueues);
      total.failed += stats.failed;
      total.poisoned += stats.poisoned;
      // Once the exports are done no request can follow: a drain that started after that is the last one.
      if (last) return total;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const [exportStats, finalizeStats] = await Promise.all([exports, finalizes]);
  const exported = {
    failed: exportStats.failed + finalizeStats.failed,
    poisoned: exportStats.poisoned + finalizeStats.poisoned,
  };
  const cpu = process.cpuUsage(cpuBefore);
  const azuriteCpuMs = cpuMsBetween(azuriteBefore, processCpuMs(job.watch?.azurite));
  const sourceCpuMs = cpuMsBetween(sourceBefore, processCpuMs(job.watch?.source));
  const exportEndedAt = performance.now();
  return {
    kind: 'pass',
    syncMs,
    exportMs: exportEndedAt - exportStartedAt,
    exportCpuMs: (cpu.user + cpu.system) / 1000,
    azuriteCpuMs,
    sourceCpuMs,
    exportSystemCpuMs: cpu.system / 1000,
    events,
    warnings,
    errors,
    failed: synced.failed + exported.failed,
    poisoned: synced.poisoned + exported.poisoned,
    maxInFlight: Math.max(http.maxInFlight),
    exportMaxInFlight: http.maxInFlight,
    exportStartedAt,
    exportEndedAt,
    requests: http.total,
    pageRequests: http.timeline,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    sampledPeakRssBytes: sampledPeakRss,
    memoryPeaks: peaks,
    memorySamples: samples,
  };
}

/** The blocks the export writes for this part: `pageSize` rows per block, each row plus a newline. */
function* ndjsonBlocks(job: NdjsonBaselineJob): Generator<Buffer> {
  const dataset = createDataset(job.seed, job.dataset);
  const render = dataset.renderer(job.invoiceId, job.part, job.kind === 'v2-baseline');
  for (let first = 0; first < job.part.rows; first += job.pageSize) {
    const rows: string[] = [];
    for (let i = first; i < Math.min(job.part.rows, first + job.pageSize); i++) rows.push(render(i));
    yield Buffer.from(`${rows.join('\n')}\n`, 'utf8');
  }
}

/** The gzip JSON Lines blobs the simulator serves for this part (rowsPerBlob rows each). */
function v2GzipBlobs(job: NdjsonBaselineJob): Buffer[] {
  const dataset = createDataset(job.seed, job.dataset);
  const render = dataset.renderer(job.invoiceId, job.part, true);
  const perBlob = job.rowsPerBlob ?? 50_000;
  const blobs: Buffer[] = [];
  for (let first = 0; first < job.part.rows; first += perBlob) {
    const lines: string[] = [];
    for (let i = first; i < Math.min(job.part.rows, first + perBlob); i++) lines.push(render(i));
    blobs.push(gzipSync(`${lines.join('\n')}\n`));
  }
  return blobs;
}

/** A v2 export started and polled through the app's Graph client until it succeeds: its manifest. */
async function succeededV2Manifest(
  settings: Record<string, string>,
  invoiceId: string,
  v2Kind: 'usage' | 'reconciliation',
) {
  const log: SyncLogger = { info: () => {}, warn: () => {}, error: () => {}, event: () => {} };
  const deps = await createSyncDeps(loadSettings(settings), { log, graphPollSeconds: 0 });
  const started = await deps.graph.startExport(v2Kind, invoiceId);
  let state = await deps.graph.checkOperation(started.operationLocation);
  for (let polls = 0; state.status === 'running' && polls < 100; polls++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    state = await deps.graph.checkOperation(started.operationLocation);
  }
  if (state.status !== 'succeeded') throw new Error(`v2 source: the export ended ${state.status}`);
  return state.manifest;
}

/** The gzip blobs of a v2 export as the source serves them (started and polled through the app's Graph client). */
async function fetchV2Blobs(
  settings: Record<string, string>,
  invoiceId: string,
  v2Kind: 'usage' | 'reconciliation',
): Promise<Buffer[]> {
  const manifest = await succeededV2Manifest(settings, invoiceId, v2Kind);
  const blobs: Buffer[] = [];
  for (const blob of manifest.blobs) {
    const response = await fetch(blobUrl(manifest, blob));
    if (!response.ok) throw new Error(`v2 source: blob ${blob.name}: HTTP ${response.status}`);
    blobs.push(Buffer.from(await response.arrayBuffer()));
  }
  return blobs;
}

function cpuMsSince(before: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

async function readBlobBack(blob: BlockBlobClient, staged: number, azuritePid: number | undefined) {
  const started = performance.now();
  const azuriteBefore = processCpuMs(azuritePid);
  let bytes = 0;
  const download = await blob.download(0);
  for await (const chunk of download.readableStreamBody as AsyncIterable<Buffer>) bytes += chunk.length;
  if (bytes !== staged) throw new Error(`baseline read-back: ${bytes} bytes, ${staged} staged`);
  return {
    readBackMs: performance.now() - started,
    azuriteReadBackCpuMs: cpuMsBetween(azuriteBefore, processCpuMs(azuritePid)),
  };
}

async function runBaselineJob(job: NdjsonBaselineJob): Promise<BaselineResult> {
  const container = BlobServiceClient.fromConnectionString(job.connectionString).getContainerClient(job.container);
  await container.createIfNotExists();
  const blob = container.getBlockBlobClient(`${job.kind}/${job.invoiceId}.ndjson`);
  // Bytes are prepared before the clock starts: the baseline is the storage (and gunzip) cost alone.
  const prepared =
    job.kind === 'v2-baseline'
      ? job.sourceSettings
        ? await fetchV2Blobs(job.sourceSettings, job.invoiceId, job.v2Kind ?? 'reconciliation')
        : v2GzipBlobs(job)
      : [...ndjsonBlocks(job)];
  let blocks = 0;
  let bytes = 0;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const azuriteBefore = processCpuMs(job.azuritePid);
  const stage = async (body: Buffer) => {
    await blob.stageBlock(blockId(1, blocks), body, body.length);
    blocks++;
    bytes += body.length;
  };
  if (job.kind === 'v2-baseline') {
    for (const gz of prepared) {
      const text = gunzipSync(gz);
      // Split the JSON Lines into blocks of pageSize lines, as the export pages them.
      let start = 0;
      let lines = 0;
      for (let at = text.indexOf(10); at !== -1; at = text.indexOf(10, at + 1)) {
        if (++lines === job.pageSize) {
          await stage(text.subarray(start, at + 1));
          start = at + 1;
          lines = 0;
        }
      }
      if (start < text.length) await stage(text.subarray(start));
    }
  } else {
    for (const body of prepared) await stage(body);
  }
  await blob.commitBlockList(Array.from({ length: blocks }, (_, i) => blockId(1, i)));
  const ms = performance.now() - started;
  const cpuMs = cpuMsSince(cpuBefore);
  const azuriteStaged = processCpuMs(job.azuritePid);
  // The committed blob read back whole, bytes counted and nothing else: what the export's verification costs the
  // storage at least (the export reads every blob it commits back).
  const readBack = job.readBack ? await readBlobBack(blob, bytes, job.azuritePid) : undefined;
  return {
    kind: 'baseline',
    ms,
    cpuMs,
    azuriteCpuMs: cpuMsBetween(azuriteBefore, azuriteStaged),
    ...readBack,
    rows: job.part.rows,
    bytes,
    blocks,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

async function runSourceJob(job: SourceJob): Promise<BaselineResult> {
  let bytes = 0;
  let blocks = 0;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  for (let offset = 0; offset < job.rows; offset += job.pageSize) {
    const response = await fetch(
      `${job.partnerCenterUrl}/v1/invoices/${job.invoiceId}/lineitems/Azure/UsageLineItems?size=${job.pageSize}&offset=${offset}`,
      { headers: { authorization: `Bearer ${job.token}` } },
    );
    if (!response.ok) throw new Error(`source page at offset ${offset}: HTTP ${response.status}`);
    bytes += (await response.arrayBuffer()).byteLength;
    blocks++;
  }
  const ms = performance.now() - started;
  const cpuMs = cpuMsSince(cpuBefore);
  return {
    kind: 'baseline',
    ms,
    cpuMs,
    rows: job.rows,
    bytes,
    blocks,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

async function runSourceV2Job(job: SourceV2Job): Promise<BaselineResult> {
  const manifest = await succeededV2Manifest(job.settings, job.invoiceId, job.v2Kind);
  let bytes = 0;
  const t0 = performance.now();
  const cpuBefore = process.cpuUsage();
  for (const blob of manifest.blobs) {
    const response = await fetch(blobUrl(manifest, blob));
    if (!response.ok) throw new Error(`v2 source: blob ${blob.name}: HTTP ${response.status}`);
    bytes += (await response.arrayBuffer()).byteLength;
  }
  const ms = performance.now() - t0;
  return {
    kind: 'baseline',
    ms,
    cpuMs: cpuMsSince(cpuBefore),
    rows: job.rows,
    bytes,
    blocks: manifest.blobs.length,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

const [jobPath, resultPath] = process.argv.slice(2);
if (!jobPath || !resultPath) throw new Error('usage: tsx bench/worker.ts <job.json> <result.json>');
const job = JSON.parse(await readFile(jobPath, 'utf8')) as Job;
const result =
  job.kind === 'pass'
    ? await runPassJob(job)
    : job.kind === 'source-raw'
      ? await runSourceJob(job)
      : job.kind === 'source-v2'
        ? await runSourceV2Job(job)
        : await runBaselineJob(job);
await writeFile(resultPath, JSON.stringify(result));
