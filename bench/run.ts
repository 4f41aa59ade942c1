// `npm run bench`: the seven figures of issue 6, each a ratio or a bound measured in the same run against a
// baseline or a floor, printed as a table and written to bench/results.md. Starts and stops Azurite and the
// simulator itself; every export runs in its own child process (bench/worker.ts) so its peak RSS is its own.
// BENCH_SCALE (default 1) shrinks the row counts for a quick look; results.md is only written at scale 1.
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import Table from 'cli-table3';
import { bundleApp } from '../scripts/bundle.js';
import { readHostConfig as readHostConfigFile } from '../src/host-config.js';
import { type InvoiceSpec, type Simulator, type SimulatorOptions, startSimulator } from '../test/simulator/index.js';
import { type Azurite, startAzurite } from '../test/support/azurite.js';
import { simulatorEnvironment } from '../test/support/sim-env.js';
import { type CpuCost, measureCpuCosts } from './cpu-costs.js';
import type { SourceConfig, SourceReady } from './source-server.js';
import type { BaselineResult, Job, LoggedEvent, PassResult } from './worker.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TMP = path.join(ROOT, 'bench', 'tmp');
const SCALE = Number(process.env.BENCH_SCALE ?? '1');
const SEED = 7;
const MiB = 1024 * 1024;
const run = promisify(execFile);

interface Figure {
  id: string;
  name: string;
  value: string;
  target: string;
  /** undefined: reported, no target. */
  pass?: boolean;
  detail: string;
}

const figures: Figure[] = [];
const settingsUsed: Record<string, string> = {};
const scaled = (n: number) => Math.max(1, Math.round(n * SCALE));
const fmt = (n: number, digits = 2) => n.toFixed(digits);
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (bytes: number) => `${fmt(bytes / MiB, 1)} MiB`;

/** Other work on the machine shares its cores: each figure notes the 1-minute load average when it ended. */
const load = () => `load avg ${fmt(os.loadavg()[0] ?? 0, 1)} on ${os.cpus().length} cores`;

function record(figure: Figure) {
  figure.detail = `${figure.detail}; ${load()}`;
  figures.push(figure);
  const verdict = figure.pass === undefined ? 'reported' : figure.pass ? 'PASS' : 'FAIL';
  process.stderr.write(`  [${figure.id}] ${figure.name}: ${figure.value} (target ${figure.target}) ${verdict}\n`);
  process.stderr.write(`      ${figure.detail}\n`);
}

/**
 * The worker is bundled to plain JavaScript (dependencies stay in node_modules) and run by plain node, as the
 * Functions host runs the built app: under tsx, its loader thread and on-the-fly compiler would count in the
 * worker's RSS and CPU. Falls back to tsx when esbuild (a dependency of tsx) cannot be loaded.
 */
let workerCommand: string[] = ['--import', 'tsx', path.join(ROOT, 'bench', 'worker.ts')];
let sourceCommand: string[] = ['--import', 'tsx', path.join(ROOT, 'bench', 'source-server.ts')];
let workerNote = 'workers run under tsx';

async function buildWorker() {
  try {
    const esbuild = await import('esbuild');
    const bundle = async (name: string) => {
      const outfile = path.join(TMP, `${name}.mjs`);
      await esbuild.build({
        entryPoints: [path.join(ROOT, 'bench', `${name}.ts`)],
        bundle: true,
        packages: 'external',
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outfile,
        logLevel: 'silent',
      });
      return outfile;
    };
    workerCommand = [await bundle('worker')];
    sourceCommand = [await bundle('source-server')];
    workerNote =
      'workers are bench/worker.ts and bench/source-server.ts bundled by esbuild (node_modules external) and run by plain node';
  } catch (error) {
    process.stderr.write(`esbuild unavailable (${(error as Error).message.split('\n')[0]}); workers run under tsx\n`);
  }
}

/**
 * The simulator in a process of its own (bench/source-server.ts), for the figures that measure the exporter's own
 * speed or memory: with `replay`, each page is rendered on its first request and replayed from memory after.
 */
async function withSource<T>(
  options: SimulatorOptions,
  azurite: Azurite,
  name: string,
  extra: Record<string, string>,
  fn: (source: SourceReady, setLatency: (ms: number) => Promise<void>) => Promise<T>,
): Promise<T> {
  const configPath = path.join(TMP, `source-${process.pid}-${++jobCounter}.json`);
  const settings = { INVOICE_CONTAINER: `bench-${name}`, LEDGER_TABLE: `bench${name}ledger`, ...extra };
  for (const key of ['LINE_ITEM_PAGE_SIZE', 'LOCAL_CONCURRENCY', 'EXPORT_TIME_BUDGET_SECONDS']) {
    if (extra[key]) settingsUsed[`${key} (${name})`] = extra[key];
  }
  const config: SourceConfig = {
    options: { seed: SEED, ...options },
    connectionString: azurite.connectionString,
    settings,
  };
  await writeFile(configPath, JSON.stringify(config), { mode: 0o600 });
  const child = spawn(process.execPath, [...sourceCommand, configPath], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  // Lines the source prints after its ready line: the answers to `latency <ms>`.
  const answers: string[] = [];
  let answered: () => void = () => {};
  try {
    const ready = await new Promise<SourceReady>((resolve, reject) => {
      let text = '';
      let isReady = false;
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        for (let newline = text.indexOf('\n'); newline >= 0; newline = text.indexOf('\n')) {
          const line = text.slice(0, newline);
          text = text.slice(newline + 1);
          if (!isReady) {
            isReady = true;
            resolve(JSON.parse(line) as SourceReady);
          } else {
            answers.push(line);
            answered();
          }
        }
      });
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`source server exited with ${code} before it was ready`)));
    });
    const setLatency = async (ms: number) => {
      const expected = `latency ${ms}`;
      const done = new Promise<void>((resolve) => {
        answered = () => {
          if (answers.includes(expected)) resolve();
        };
      });
      child.stdin.write(`${expected}\n`);
      await done;
      answers.length = 0;
    };
    return await fn(ready, setLatency);
  } finally {
    child.stdin.end();
    await exited;
    await rm(configPath, { force: true });
  }
}

let jobCounter = 0;
/** Runs one job in a fresh process (tsx, same as `npm run bench`) and returns what it wrote. */
async function runWorker<T extends PassResult | BaselineResult>(job: Job): Promise<T> {
  const n = ++jobCounter;
  const jobPath = path.join(TMP, `job-${process.pid}-${n}.json`);
  const resultPath = path.join(TMP, `result-${process.pid}-${n}.json`);
  // The job carries bearer tokens for the simulator: a private file, removed right after.
  await writeFile(jobPath, JSON.stringify(job), { mode: 0o600 });
  try {
    await new Promise<void>((resolve, reject) => {
      // BENCH_PROFILE=1 writes a V8 CPU profile of every worker to bench/tmp/prof (open in Chrome DevTools).
      const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', path.join(TMP, 'prof')] : [];
      // BENCH_WORKER_FLAGS: extra node flags for the workers (e.g. --max-old-space-size=64 to test for retention).
      const flags = process.env.BENCH_WORKER_FLAGS?.split(' ').filter(Boolean) ?? [];
      const child = spawn(process.execPath, [...profile, ...flags, ...workerCommand, jobPath, resultPath], {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench worker exited with ${code}`))));
    });
    const text = await readFile(resultPath, 'utf8');
    // BENCH_DEBUG=1 keeps every worker's raw result (timelines, events) in bench/tmp for a closer look.
    if (process.env.BENCH_DEBUG) await writeFile(path.join(TMP, `debug-${job.kind}-${n}.json`), text);
    return JSON.parse(text) as T;
  } finally {
    await rm(jobPath, { force: true });
    await rm(resultPath, { force: true });
  }
}

async function withSimulator<T>(options: SimulatorOptions, fn: (sim: Simulator) => Promise<T>): Promise<T> {
  const sim = await startSimulator({ seed: SEED, ...options });
  try {
    return await fn(sim);
  } finally {
    await sim.stop();
  }
}

async function passEnv(sim: Simulator, azurite: Azurite, name: string, extra: Record<string, string> = {}) {
  const env = await simulatorEnvironment(sim, azurite, {
    INVOICE_CONTAINER: `bench-${name}`,
    LEDGER_TABLE: `bench${name}ledger`,
    ...extra,
  });
  for (const key of ['LINE_ITEM_PAGE_SIZE', 'LOCAL_CONCURRENCY', 'EXPORT_TIME_BUDGET_SECONDS']) {
    if (extra[key]) settingsUsed[`${key} (${name})`] = extra[key];
  }
  return env.settings;
}

async function dropContainer(azurite: Azurite, name: string) {
  await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(name).deleteIfExists();
}

function eventsNamed(result: PassResult, name: string): LoggedEvent[] {
  return result.events.filter((e) => e.name === name);
}

function checkPass(result: PassResult, label: string) {
  if (result.failed > 0 || result.poisoned > 0 || result.errors.length > 0) {
    throw new Error(
      `${label}: the pass had ${result.failed} failed and ${result.poisoned} poisoned messages; errors: ${result.errors.slice(0, 3).join(' | ')}`,
    );
  }
}

/** Where the export phase went: before the first page request, between first and last page, after the last one. */
function exportSplit(result: PassResult) {
  const timed = result.pageRequests.filter((r) => r.kind === 'lineitems').sort((a, b) => a.start - b.start);
  const first = timed[0];
  const last = timed.reduce((latest, r) => Math.max(latest, r.end), 0);
  if (!first) return 'no page requests';
  // The last part's PartExported event: its block list is committed and read back; finalize follows it.
  const exported = eventsNamed(result, 'PartExported').reduce((latest, e) => Math.max(latest, e.at), 0);
  const tail =
    exported > last
      ? `${int(exported - last)} ms from it to the last PartExported (last stage, commit, verify read-back), ` +
        `${int(result.exportEndedAt - exported)} ms after that (finalize: billing_lines.parquet, its check, manifest.json)`
      : `${int(result.exportEndedAt - last)} ms after it (last stage, commit, verify read-back, finalize)`;
  return (
    `${int(first.start - result.exportStartedAt)} ms before the first page request (lease, invoice.json), ` +
    `${int(last - first.start)} ms from first page request to last page received, ${tail}`
  );
}

/** Peak sampled RSS while pages were being fetched and staged, and after the last page (commit, verify read-back). */
function rssByPhase(result: PassResult) {
  const lastPage = result.pageRequests.reduce((latest, r) => Math.max(latest, r.end), 0);
  let staging = 0;
  let after = 0;
  for (const [at, rss] of result.memorySamples) {
    if (at < result.exportStartedAt) continue;
    if (at <= lastPage) staging = Math.max(staging, rss);
    else after = Math.max(after, rss);
  }
  return `${mib(staging)} while staging, ${mib(after)} after the last page (commit + verify read-back)`;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Peak RSS of one export alone in its own process (figure 4's big v1 export, figure 7's v2 export), for figure 8. */
let bigV1Rss: number | undefined;
let v2Rss: number | undefined;

// ---- figures 1 and 4: one big v1 part; throughput against the storage ceiling, RSS at two sizes --------------

const legacyBigPart = (id: string, rows: number): InvoiceSpec => ({
  id,
  kind: 'legacy',
  billingPeriod: '2024-01',
  receipts: 0,
  parts: [{ provider: 'azure', lineItemType: 'usage_line_items', rows }],
});

async function exportBigV1Part(azurite: Azurite, name: string, rows: number, measureSource = false) {
  const invoice = legacyBigPart(`D0BENCH${name.toUpperCase().padStart(3, '0')}`, rows);
  const options: SimulatorOptions = { dataset: { invoices: [invoice] }, replay: true };
  return withSource(options, azurite, name, { LINE_ITEM_PAGE_SIZE: '2000' }, async (src) => {
    const sourceJob: Job = {
      kind: 'source-raw',
      partnerCenterUrl: src.partnerCenterUrl,
      token: src.token,
      invoiceId: invoice.id,
      rows,
      pageSize: 2000,
    };
    // Every page rendered once (the same URLs the exporter asks for), so the export reads them from memory.
    const primed = await runWorker<BaselineResult>(sourceJob);
    // The replayed source alone: the same pages fetched raw again (no parsing, no storage), from another process.
    const source = measureSource ? await runWorker<BaselineResult>(sourceJob) : undefined;
    const result = await runWorker<PassResult>({
      kind: 'pass',
      settings: src.settings,
      concurrency: 1,
      watch: { azurite: azurite.pid, source: src.pid },
    });
    checkPass(result, `export of ${rows} rows`);
    const exported = eventsNamed(result, 'PartExported')[0];
    if (!exported) throw new Error(`export of ${rows} rows: no PartExported event`);
    return { invoice, result, exported: exported.properties, source, primed };
  });
}

const seconds = (ms: number | undefined) => (ms === undefined ? '?' : `${fmt(ms / 1000, 1)} s`);

/**
 * Figure 1's time and CPU, side by side: the storage's own floor for what the export does (stage, commit, and the
 * read-back its verification makes), and the CPU every process of the export used against what two cores give.
 */
function exportCpuBudget(pass: PassResult, baseline: BaselineResult, exportSeconds: number): string {
  const floorMs = baseline.readBackMs === undefined ? undefined : baseline.ms + baseline.readBackMs;
  const total =
    pass.azuriteCpuMs === undefined || pass.sourceCpuMs === undefined
      ? undefined
      : pass.exportCpuMs + pass.azuriteCpuMs + pass.sourceCpuMs;
  const cores = os.cpus().length;
  return (
    `storage alone for the same work: stage + commit ${seconds(baseline.ms)} (Azurite ${seconds(baseline.azuriteCpuMs)} of CPU), ` +
    `read-back ${seconds(baseline.readBackMs)} (Azurite ${seconds(baseline.azuriteReadBackCpuMs)} of CPU), ` +
    `together ${seconds(floorMs)}` +
    (floorMs === undefined ? '' : `, ${fmt(floorMs / 1000 / exportSeconds)} of the export's time`) +
    `; CPU in the export phase: exporter ${seconds(pass.exportCpuMs)}, Azurite ${seconds(pass.azuriteCpuMs)}, source ${seconds(pass.sourceCpuMs)}` +
    (total === undefined
      ? ''
      : `, ${fmt(total / 1000, 1)} s in all, ${fmt(total / (pass.exportMs * cores))} of what ${cores} cores give in its ${seconds(pass.exportMs)}`) +
    '; '
  );
}

async function figuresThroughputAndMemory(azurite: Azurite) {
  const bigRows = scaled(1_000_000);
  const smallRows = scaled(100_000);
  process.stderr.write(`Figure 1/4: exporting ${int(bigRows)} v1 rows (zero latency), then the storage baseline...\n`);
  const big = await exportBigV1Part(azurite, 'big', bigRows, true);
  const exportSeconds = Number(big.exported.durationMs) / 1000;
  const exportRate = bigRows / exportSeconds;
  const invoice = big.invoice;
  const part = invoice.parts?.[0];
  if (!part) throw new Error('no part');
  const baseline = await runWorker<BaselineResult>({
    kind: 'ndjson-baseline',
    connectionString: azurite.connectionString,
    container: 'bench-baseline',
    seed: SEED,
    dataset: { invoices: [invoice] },
    invoiceId: invoice.id,
    part,
    pageSize: 2000,
    readBack: true,
    azuritePid: azurite.pid,
  });
  await dropContainer(azurite, 'bench-big');
  await dropContainer(azurite, 'bench-baseline');
  const baselineRate = baseline.rows / (baseline.ms / 1000);
  const ratio = exportRate / baselineRate;
  const cpuBudget = exportCpuBudget(big.result, baseline, exportSeconds);
  record({
    id: '1',
    name: `Export throughput vs storage ceiling (${int(bigRows)} rows, v1, 0 ms latency)`,
    value: fmt(ratio),
    target: '>= 0.70',
    pass: ratio >= 0.7,
    detail:
      `export ${int(exportRate)} rows/s (${fmt(exportSeconds, 1)} s stage+commit+verify, ${mib(Number(big.exported.bytes))}); ` +
      `stageBlock/commitBlockList alone ${int(baselineRate)} rows/s (${fmt(baseline.ms / 1000, 1)} s, ${baseline.blocks} blocks, ${mib(baseline.bytes)}, ${fmt((baseline.cpuMs * 1000) / baseline.rows)} us of CPU per row in its process); ` +
      `whole export phase ${fmt(big.result.exportMs / 1000, 1)} s, in which the exporting process used ${fmt((big.result.exportCpuMs * 1000) / bigRows)} us of CPU per row (everything: HTTP client, SDKs, ledger, GC; ${fmt((big.result.exportSystemCpuMs * 1000) / bigRows)} of it in the kernel); ` +
      cpuBudget +
      `source: the simulator in its own process with replay (each page rendered once: ${int(bigRows / (big.primed.ms / 1000))} rows/s while rendering, ` +
      (big.source
        ? `then served from memory at ${int(big.source.rows / (big.source.ms / 1000))} rows/s alone (fetching them used ${fmt((big.source.cpuMs * 1000) / big.source.rows)} us of CPU per row), ${fmt(big.source.rows / (big.source.ms / 1000) / baselineRate)} x the storage ceiling, fetched raw, no parsing, no storage)`
        : 'then served from memory)'),
  });

  process.stderr.write(`Figure 4: exporting ${int(smallRows)} rows for the memory comparison...\n`);
  const small = await exportBigV1Part(azurite, 'small', smallRows);
  bigV1Rss = big.result.maxRssBytes;
  await dropContainer(azurite, 'bench-small');
  const smallRss = small.result.maxRssBytes;
  const bigRss = big.result.maxRssBytes;
  const growth = bigRss / smallRss;
  record({
    id: '4',
    name: `Peak RSS, ${int(smallRows)} vs ${int(bigRows)} rows`,
    value: `${mib(smallRss)} / ${mib(bigRss)} (x${fmt(growth)})`,
    target: 'x <= 1.25 and < 256 MiB',
    pass: growth <= 1.25 && bigRss < 256 * MiB,
    detail:
      `maxRSS of the exporting process (process.resourceUsage), simulator and Azurite in other processes; sampled peak ${mib(small.result.sampledPeakRssBytes)} / ${mib(big.result.sampledPeakRssBytes)}; ` +
      `sampled peaks small / big: V8 heap used ${mib(small.result.memoryPeaks.heapUsed)} / ${mib(big.result.memoryPeaks.heapUsed)}, ` +
      `heap reserved ${mib(small.result.memoryPeaks.heapTotal)} / ${mib(big.result.memoryPeaks.heapTotal)}, ` +
      `ArrayBuffers ${mib(small.result.memoryPeaks.arrayBuffers)} / ${mib(big.result.memoryPeaks.arrayBuffers)}; ` +
      `small: ${rssByPhase(small.result)}; big: ${rssByPhase(big.result)}`,
  });
}

// ---- figures 2 and 3: latency-bound seek paging, one part and 8 parts at concurrency 4 ------------------------

const modernV1Invoice = (id: string, rows: number): InvoiceSpec => ({
  id,
  kind: 'modern',
  // Before V2_RECONCILIATION_FROM: one_time billing goes through the v1 API, with seek paging.
  billingPeriod: '2023-06',
  receipts: 0,
  parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows }],
});

/**
 * A timed pass against the source in its own process with replay: a first pass at no latency renders every page
 * (into a container and ledger of its own, then dropped), and the timed pass reads the same pages from memory at
 * `latencyMs`. So the time over the floor is the exporter's, not the simulator's rendering.
 */
async function latencyBoundPass(
  azurite: Azurite,
  name: string,
  invoices: InvoiceSpec[],
  latencyMs: number,
  extra: Record<string, string>,
  concurrency = 1,
): Promise<PassResult> {
  const options: SimulatorOptions = { dataset: { invoices }, replay: true };
  const result = await withSource(options, azurite, name, extra, async (src, setLatency) => {
    const priming = { ...src.settings, INVOICE_CONTAINER: `bench-${name}-prime`, LEDGER_TABLE: `bench${name}prime` };
    checkPass(await runWorker<PassResult>({ kind: 'pass', settings: priming, concurrency }), `${name}: rendering`);
    await setLatency(latencyMs);
    return runWorker<PassResult>({ kind: 'pass', settings: src.settings, concurrency });
  });
  await dropContainer(azurite, `bench-${name}-prime`);
  await dropContainer(azurite, `bench-${name}`);
  return result;
}

async function figureLatencyBound(azurite: Azurite) {
  const latencyMs = 200;
  // 100-row pages, as before. The pages are rendered once beforehand and replayed (latencyBoundPass), so a request
  // takes the latency plus the transfer; the time spent fetching is reported as well.
  const pageSize = 100;
  const pages = Math.max(2, scaled(60));
  process.stderr.write(`Figure 2: ${pages} seek pages at ${latencyMs} ms per page...\n`);
  const invoice = modernV1Invoice('G900000001', pages * pageSize);
  const result = await latencyBoundPass(azurite, 'latency', [invoice], latencyMs, {
    LINE_ITEM_PAGE_SIZE: String(pageSize),
  });
  checkPass(result, 'latency-bound export');
  const timedPages = result.pageRequests.filter((r) => r.kind === 'lineitems');
  const pageRequests = timedPages.length;
  // The floor counts the pages the part has (rows / page size), not the requests made: an exporter that fetched
  // a page twice would otherwise raise its own floor.
  const expectedPages = Math.ceil((pages * pageSize) / pageSize);
  const floorMs = expectedPages * latencyMs;
  const fetchMs = timedPages.reduce((sum, r) => sum + (r.end - r.start), 0);
  const exported = eventsNamed(result, 'PartExported')[0]?.properties;
  const ratio = result.exportMs / floorMs;
  record({
    id: '2',
    name: `Latency-bound export vs floor (${expectedPages} seek pages x ${latencyMs} ms)`,
    value: fmt(ratio),
    target: '<= 1.15, one request per page',
    pass: ratio <= 1.15 && pageRequests === expectedPages,
    detail:
      `${pageSize} rows per page; ${int(pages * pageSize)} rows = ${expectedPages} pages, ${pageRequests} page requests made; export phase ${int(result.exportMs)} ms (queue receive to delete), floor ${int(floorMs)} ms; ` +
      `stage+commit+verify ${int(Number(exported?.durationMs))} ms = ${fmt(Number(exported?.durationMs) / floorMs)} x floor; ` +
      `page requests took ${int(fetchMs / pageRequests)} ms each on average (latency + transfer of a replayed page), ` +
      `so the export phase is ${fmt(result.exportMs / fetchMs)} x the time spent fetching; ${exportSplit(result)}`,
  });
}

async function figureParallelParts(azurite: Azurite) {
  const latencyMs = 200;
  const pageSize = 100;
  const concurrency = 4;
  const pagesPerPart = Math.max(2, scaled(16));
  process.stderr.write(`Figure 3: 8 parts x ${pagesPerPart} seek pages, concurrency ${concurrency}...\n`);
  const invoices = Array.from({ length: 8 }, (_, i) => modernV1Invoice(`G90000010${i}`, pagesPerPart * pageSize));
  const result = await latencyBoundPass(
    azurite,
    'parallel',
    invoices,
    latencyMs,
    { LINE_ITEM_PAGE_SIZE: String(pageSize), LOCAL_CONCURRENCY: String(concurrency) },
    concurrency,
  );
  checkPass(result, 'parallel export');
  const exported = eventsNamed(result, 'PartExported');
  if (exported.length !== 8) throw new Error(`parallel export: ${exported.length} of 8 parts exported`);
  const timedPages = result.pageRequests.filter((r) => r.kind === 'lineitems');
  const pageRequests = timedPages.length;
  // From the parts' row counts, not from the requests made (see figure 2).
  const expectedPages = invoices.length * Math.ceil((pagesPerPart * pageSize) / pageSize);
  const floorMs = (expectedPages * latencyMs) / concurrency;
  const fetchMs = timedPages.reduce((sum, r) => sum + (r.end - r.start), 0);
  const ratio = result.exportMs / floorMs;
  const pass = ratio <= 1.25 && result.exportMaxInFlight <= concurrency && pageRequests === expectedPages;
  record({
    id: '3',
    name: `8 parts at concurrency ${concurrency} vs floor (${expectedPages} pages x ${latencyMs} ms / ${concurrency})`,
    value: `${fmt(ratio)}, max ${result.exportMaxInFlight} in flight`,
    target: `<= 1.25, <= ${concurrency} in flight, one request per page`,
    pass,
    detail:
      `${pageSize} rows per page; ${expectedPages} pages in the parts, ${pageRequests} page requests made; export phase ${int(result.exportMs)} ms, floor ${int(floorMs)} ms; page requests took ${int(fetchMs / pageRequests)} ms each on average, ` +
      `so the export phase is ${fmt(result.exportMs / (fetchMs / concurrency))} x the time spent fetching per slot; ` +
      `${exportSplit(result)}; ` +
      `requests in flight counted at the client (HttpClient wrapper around the default client, a streamed body counts until read)`,
  });
}

// ---- figure 5: PDF latency under a backlog of 500 invoices ----------------------------------------------------

async function figurePdfBacklog(azurite: Azurite) {
  const count = Math.max(8, scaled(500));
  // The simulator clock runs this many times faster than real time, so the backlog spans hours of link lifetime.
  const speedup = 120;
  process.stderr.write(`Figure 5: ${count} invoices queued at once, simulator clock x${speedup}...\n`);
  const invoices: InvoiceSpec[] = Array.from({ length: count }, (_, i) => ({
    id: `G8${String(i).padStart(8, '0')}`,
    kind: 'modern',
    billingPeriod: '2023-06',
    receipts: 0,
    parts: [],
  }));
  const { result, expired, simSpanMs } = await withSimulator(
    { latencyMs: 20, invoicePageSize: 100, dataset: { invoices } },
    async (sim) => {
      const settings = await passEnv(sim, azurite, 'pdf', { LOCAL_CONCURRENCY: '4' });
      const simStart = sim.clock.now();
      let last = Date.now();
      const ticker = setInterval(() => {
        const now = Date.now();
        sim.clock.advance((now - last) * (speedup - 1));
        last = now;
      }, 10);
      try {
        const result = await runWorker<PassResult>({ kind: 'pass', settings, concurrency: 4 });
        const expired = sim.requests.filter((r) => r.host === 'blob' && r.status === 403).length;
        return { result, expired, simSpanMs: sim.clock.now() - simStart };
      } finally {
        clearInterval(ticker);
      }
    },
  );
  await dropContainer(azurite, 'bench-pdf');
  const ages = eventsNamed(result, 'PdfSaved').map((e) => Number(e.properties.pdfAgeMs));
  const failures = result.failed + result.poisoned;
  record({
    id: '5',
    name: `PDF link age at commit, ${count} invoices queued at once`,
    value: `p50 ${int(percentile(ages, 50))} ms, p99 ${int(percentile(ages, 99))} ms, ${expired} expired`,
    target: '0 expired (links live 30 min)',
    pass: expired === 0 && ages.length === count && failures === 0,
    detail:
      `${ages.length}/${count} PDFs saved in ${fmt(result.syncMs / 1000, 1)} s real = ${fmt(simSpanMs / 60_000, 0)} min on the simulator clock (x${speedup}); ` +
      `max age ${int(Math.max(...ages))} ms real (${fmt((Math.max(...ages) * speedup) / 60_000, 1)} min simulated); 20 ms latency per call; ${failures} failed messages`,
  });
}

// ---- figure 6: cold start ---------------------------------------------------------------------------------------

async function dirBytes(dir: string, filter: (name: string) => boolean): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && filter(entry.name)) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function coldImportMs(files: string[], runs: number): Promise<number[]> {
  const urls = JSON.stringify(files.map((f) => pathToFileURL(f).href));
  const script = `const t=performance.now();for(const u of ${urls})await import(u);process.stdout.write(String(performance.now()-t));`;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      // The entry points read settings lazily; give them what a Function app would have.
      env: { ...process.env, AzureWebJobsStorage: 'UseDevelopmentStorage=true' },
    });
    times.push(Number(stdout));
  }
  return times;
}

async function figureColdStart() {
  process.stderr.write('Figure 6: building the deployed package (scripts/bundle.ts) and timing its import...\n');
  // What azd deploys: `npm run build` writes dist/app with scripts/bundle.ts; the same function builds it here.
  const appDir = path.join(TMP, 'app');
  const { files } = await bundleApp(appDir);
  const entry = path.join(appDir, 'index.js');
  const runs = 5;
  const times = await coldImportMs([entry], runs);
  const bundleBytes = await dirBytes(appDir, (n) => n.endsWith('.js'));
  const median = percentile(times, 50);
  record({
    id: '6',
    name: 'Cold start: import of the deployed package (dist/app/index.js from scripts/bundle.ts, fresh node)',
    value: `${int(median)} ms median of ${runs}`,
    target: 'reported',
    detail:
      `runs ${times.map((t) => int(t)).join(', ')} ms; one esbuild bundle of every function (functions/*.ts) with every dependency inside ` +
      `(${mib(bundleBytes)} of .js; files ${files.join(', ')}), @azure/functions-core left to the host`,
  });
}

// ---- figure 7: v2 copy ------------------------------------------------------------------------------------------

async function figureV2Copy(azurite: Azurite) {
  const rows = scaled(1_000_000);
  const rowsPerBlob = 50_000;
  process.stderr.write(
    `Figure 7: v2 export of ${int(rows)} rows (gzip JSON Lines -> NDJSON), then gunzip + write alone...\n`,
  );
  const invoice: InvoiceSpec = {
    id: 'G900000200',
    kind: 'modern',
    billingPeriod: '2025-06',
    receipts: 0,
    // A usage part: finalize builds billing_lines.parquet from billing parts only, and that (another step, of
    // another module) would otherwise be most of this pass; see bench/analysis.md.
    parts: [{ provider: 'one_time', lineItemType: 'usage_line_items', rows }],
  };
  const options: SimulatorOptions = {
    dataset: { invoices: [invoice] },
    v2: { pollsBeforeDone: 0, retryAfterSeconds: 0, rowsPerBlob },
    replay: true,
  };
  const part = invoice.parts?.[0];
  if (!part) throw new Error('no part');
  const { result, primed, source, baseline } = await withSource(
    options,
    azurite,
    'vtwo',
    { LINE_ITEM_PAGE_SIZE: '2000' },
    async (src) => {
      const sourceJob: Job = {
        kind: 'source-v2',
        settings: src.settings,
        invoiceId: invoice.id,
        rows,
        v2Kind: 'usage',
      };
      const primed = await runWorker<BaselineResult>(sourceJob);
      const source = await runWorker<BaselineResult>(sourceJob);
      const result = await runWorker<PassResult>({ kind: 'pass', settings: src.settings, concurrency: 1 });
      // The same gzip blobs (taken from the source, not rendered again), gunzipped and staged alone.
      const baseline = await runWorker<BaselineResult>({
        kind: 'v2-baseline',
        connectionString: azurite.connectionString,
        container: 'bench-vtwo-baseline',
        seed: SEED,
        dataset: { invoices: [invoice] },
        invoiceId: invoice.id,
        part,
        pageSize: 2000,
        rowsPerBlob,
        sourceSettings: src.settings,
        v2Kind: 'usage',
      });
      return { result, primed, source, baseline };
    },
  );
  checkPass(result, 'v2 export');
  await dropContainer(azurite, 'bench-vtwo');
  await dropContainer(azurite, 'bench-vtwo-baseline');
  const exported = eventsNamed(result, 'PartExported')[0]?.properties;
  if (exported?.api !== 'v2') throw new Error('v2 export: no v2 PartExported event');
  v2Rss = result.maxRssBytes;
  const exportRate = rows / (Number(exported.durationMs) / 1000);
  const baselineRate = rows / (baseline.ms / 1000);
  const sourceRate = rows / (source.ms / 1000);
  const ratio = exportRate / baselineRate;
  record({
    id: '7',
    name: `v2 copy: ${int(rows)} rows gzip JSON Lines -> NDJSON vs gunzip + write alone`,
    value: fmt(ratio),
    target: '>= 0.70',
    pass: ratio >= 0.7,
    detail:
      `export ${int(exportRate)} rows/s (${fmt(Number(exported.durationMs) / 1000, 1)} s stage+commit+verify, ${mib(Number(exported.bytes))}); ` +
      `gunzip + stageBlock alone ${int(baselineRate)} rows/s (${fmt(baseline.ms / 1000, 1)} s, ${mib(baseline.bytes)}); peak RSS ${mib(result.maxRssBytes)} ` +
      `(sampled peaks: V8 heap used ${mib(result.memoryPeaks.heapUsed)}, heap reserved ${mib(result.memoryPeaks.heapTotal)}, ArrayBuffers ${mib(result.memoryPeaks.arrayBuffers)}; ${rssByPhase(result)}); ` +
      `source: the simulator in its own process with replay (blobs rendered and gzipped once at ${int(rows / (primed.ms / 1000))} rows/s, ` +
      `then served from memory at ${int(sourceRate)} rows/s alone, ${mib(source.bytes)} of gzip, ${fmt(sourceRate / baselineRate)} x the baseline)`,
  });
}

// ---- figure 8: several exports in one worker process ----------------------------------------------------------

/** Most exports running at once, from each PartExported event's end time and duration. */
function maxOverlap(events: LoggedEvent[]): number {
  const edges = events.flatMap((e) => [
    [e.at - Number(e.properties.durationMs), 1],
    [e.at, -1],
  ]);
  edges.sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
  let now = 0;
  let most = 0;
  for (const [, step] of edges) {
    now += step as number;
    most = Math.max(most, now);
  }
  return most;
}

async function figureSeveralExports(azurite: Azurite) {
  const rows = scaled(1_000_000);
  const rowsPerBlob = 50_000;
  process.stderr.write(`Figure 8: 4 exports (2 v1, 2 v2) of ${int(rows)} rows each in one worker process...\n`);
  const invoices: InvoiceSpec[] = [
    legacyBigPart('D0BENCHM01', rows),
    legacyBigPart('D0BENCHM02', rows),
    ...['G900000301', 'G900000302'].map(
      (id): InvoiceSpec => ({
        id,
        kind: 'modern',
        billingPeriod: '2025-06',
        receipts: 0,
        // Usage parts, as in figure 7: the exports' own memory, not the dataset finalize builds from billing parts.
        parts: [{ provider: 'one_time', lineItemType: 'usage_line_items', rows }],
      }),
    ),
  ];
  const options: SimulatorOptions = {
    dataset: { invoices },
    v2: { pollsBeforeDone: 0, retryAfterSeconds: 0, rowsPerBlob },
  };
  const result = await withSource(options, azurite, 'many', { LINE_ITEM_PAGE_SIZE: '2000' }, (src) =>
    runWorker<PassResult>({ kind: 'pass', settings: src.settings, concurrency: 1, hostQueues: true }),
  );
  checkPass(result, 'several exports');
  await dropContainer(azurite, 'bench-many');
  const exported = eventsNamed(result, 'PartExported');
  const apis = exported.map((e) => String(e.properties.api)).sort();
  if (apis.join(',') !== 'v1,v1,v2,v2') throw new Error(`several exports: exported ${apis.join(',') || 'nothing'}`);
  const overlap = maxOverlap(exported);
  const rss = result.maxRssBytes;
  const alone = [bigV1Rss, v2Rss].filter((v): v is number => v !== undefined);
  const aloneMax = alone.length > 0 ? Math.max(...alone) : undefined;
  const pass = rss < 400 * MiB && overlap === 4 && aloneMax !== undefined && aloneMax < 200 * MiB;
  const host = readHostConfigFile();
  record({
    id: '8',
    name: `Several exports in one process: 2 v1 + 2 v2 of ${int(rows)} rows at once (queue handlers, host.json concurrency)`,
    value: `${mib(rss)} peak RSS, ${overlap} at once; one alone ${bigV1Rss ? mib(bigV1Rss) : '?'} (v1) / ${v2Rss ? mib(v2Rss) : '?'} (v2)`,
    target: '< 400 MiB with 4 at once; one alone < 200 MiB',
    pass,
    detail:
      `one bench worker (bench/worker.ts) drives the exportLineItems queue through src/app/queue-host.ts with host.json's ` +
      `batchSize ${host.batchSize} and newBatchThreshold ${host.newBatchThreshold} (up to ${host.batchSize + host.newBatchThreshold} per queue); ` +
      `export phase ${fmt(result.exportMs / 1000, 1)} s; sampled peaks: RSS ${mib(result.sampledPeakRssBytes)}, V8 heap used ${mib(result.memoryPeaks.heapUsed)}, ` +
      `heap reserved ${mib(result.memoryPeaks.heapTotal)}, ArrayBuffers ${mib(result.memoryPeaks.arrayBuffers)}, external ${mib(result.memoryPeaks.external)}; ` +
      `source: the simulator in its own process rendering live (no replay: 4 M rows would not fit in memory usefully), so the exports are paced by it; ` +
      `one alone = peak RSS of figure 4's 1,000,000-row v1 export and of figure 7's v2 export, each in its own process`,
  });
}

// ---- report -----------------------------------------------------------------------------------------------------

function machine() {
  const cpus = os.cpus();
  return {
    cpu: `${cpus[0]?.model.trim() ?? 'unknown'} x ${cpus.length}`,
    memory: `${fmt(os.totalmem() / 1024 ** 3, 1)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
  };
}

let cpuCosts: CpuCost[] = [];

function render(startedAt: Date, totalMs: number): { table: string; markdown: string } {
  const table = new Table({
    head: ['#', 'Figure', 'Measured', 'Target', 'Result'],
    wordWrap: true,
    colWidths: [4, 46, 34, 22, 10],
  });
  for (const f of figures)
    table.push([f.id, f.name, f.value, f.target, f.pass === undefined ? '-' : f.pass ? 'PASS' : 'FAIL']);
  const m = machine();
  const md = [
    '# Benchmark results (issue 6)',
    '',
    `Run: ${startedAt.toISOString()}, \`npm run bench\`, ${fmt(totalMs / 1000, 0)} s in total${SCALE !== 1 ? ` (BENCH_SCALE=${SCALE})` : ''}.`,
    `Machine: ${m.cpu}; ${m.memory} RAM; ${m.os}; Node ${m.node}.`,
    `Storage: Azurite 3.35 (disk mode, temp folder, separate process). Partner Center / Graph: the simulator over loopback HTTP; for figures 1, 4, 7 and 8 in a process of its own (bench/source-server.ts), for 1, 4 and 7 replaying pages rendered once from memory; for 2 and 3 in a process of its own too, replaying pages rendered by a first pass at no latency, at 200 ms per response; for 5 in the bench's process (it measures the PDF links' age, not the exporter). Each export runs in its own child process (${workerNote}).`,
    '',
    'Settings: simulator seed 7; static-token auth; ' +
      Object.entries(settingsUsed)
        .map(([k, v]) => `${k}=${v}`)
        .join('; ') +
      '; other settings default (HTTP_TIMEOUT_SECONDS=180, HTTP_MAX_RETRIES=6, EXPORT_TIME_BUDGET_SECONDS=1200).',
    '',
    '| # | Figure | Measured | Target | Result |',
    '| - | ------ | -------- | ------ | ------ |',
    ...figures.map(
      (f) =>
        `| ${f.id} | ${f.name} | ${f.value} | ${f.target} | ${f.pass === undefined ? '-' : f.pass ? 'PASS' : 'FAIL'} |`,
    ),
    '',
    'What limits each missed target, and the code change recommended for it: `bench/analysis.md`.',
    '',
    '## Details',
    '',
    ...figures.map((f) => `- **${f.id}.** ${f.detail}`),
    '',
    '## Where the exporter spends CPU per row (2,000-row v1 page, `bench/cpu-costs.ts`, same run)',
    '',
    '| Step | us per row |',
    '| ---- | ---------- |',
    ...cpuCosts.map((c) => `| ${c.step} | ${fmt(c.usPerRow)} |`),
    '',
  ].join('\n');
  return { table: table.toString(), markdown: md };
}

async function main() {
  const startedAt = new Date();
  const t0 = performance.now();
  await mkdir(TMP, { recursive: true });
  const only = process.env.BENCH_ONLY?.split(',');
  const want = (id: string) => !only || only.includes(id);
  await buildWorker();
  process.stderr.write('Starting Azurite (disk mode, temp folder)...\n');
  const azurite = await startAzurite();
  try {
    if (want('1') || want('4')) await figuresThroughputAndMemory(azurite);
    if (want('2')) await figureLatencyBound(azurite);
    if (want('3')) await figureParallelParts(azurite);
    if (want('5')) await figurePdfBacklog(azurite);
    if (want('7')) await figureV2Copy(azurite);
    if (want('8')) await figureSeveralExports(azurite);
  } finally {
    await azurite.stop();
  }
  if (want('6')) await figureColdStart();
  cpuCosts = await measureCpuCosts();
  figures.sort((a, b) => a.id.localeCompare(b.id));
  const { table, markdown } = render(startedAt, performance.now() - t0);
  process.stdout.write(`${table}\n`);
  if (SCALE === 1 && !only) {
    await writeFile(path.join(ROOT, 'bench', 'results.md'), markdown);
    process.stdout.write('Written to bench/results.md\n');
  } else {
    await writeFile(path.join(TMP, 'results.md'), markdown);
    process.stdout.write('Partial or scaled run: written to bench/tmp/results.md (bench/results.md unchanged)\n');
  }
}

await main();
