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
import { type InvoiceSpec, type Simulator, type SimulatorOptions, startSimulator } from '../test/simulator/index.js';
import { type Azurite, startAzurite } from '../test/support/azurite.js';
import { simulatorEnvironment } from '../test/support/sim-env.js';
import { type CpuCost, measureCpuCosts } from './cpu-costs.js';
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
let workerNote = 'workers run under tsx';

async function buildWorker() {
  try {
    const esbuild = await import('esbuild');
    const outfile = path.join(TMP, 'worker.mjs');
    await esbuild.build({
      entryPoints: [path.join(ROOT, 'bench', 'worker.ts')],
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      logLevel: 'silent',
    });
    workerCommand = [outfile];
    workerNote = 'workers are bench/worker.ts bundled by esbuild (node_modules external) and run by plain node';
  } catch (error) {
    process.stderr.write(`esbuild unavailable (${(error as Error).message.split('\n')[0]}); workers run under tsx\n`);
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
  return (
    `${int(first.start - result.exportStartedAt)} ms before the first page request (lease, invoice.json), ` +
    `${int(last - first.start)} ms from first page request to last page received, ` +
    `${int(result.exportEndedAt - last)} ms after it (last stage, commit, verify read-back, manifest)`
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
  return withSimulator({ dataset: { invoices: [invoice] } }, async (sim) => {
    const settings = await passEnv(sim, azurite, name, { LINE_ITEM_PAGE_SIZE: '2000' });
    const result = await runWorker<PassResult>({ kind: 'pass', settings, concurrency: 1 });
    checkPass(result, `export of ${rows} rows`);
    const exported = eventsNamed(result, 'PartExported')[0];
    if (!exported) throw new Error(`export of ${rows} rows: no PartExported event`);
    // The source's own speed: the same pages fetched raw (no parsing, no storage) from another process.
    const source = measureSource
      ? await runWorker<BaselineResult>({
          kind: 'source-raw',
          partnerCenterUrl: sim.partnerCenterUrl,
          token: sim.issueToken({ audience: 'partnercenter', ttlSeconds: 3600 }),
          invoiceId: invoice.id,
          rows,
          pageSize: 2000,
        })
      : undefined;
    return { invoice, result, exported: exported.properties, source };
  });
}

async function figuresThroughputAndMemory(azurite: Azurite) {
  const bigRows = scaled(1_000_000);
  const smallRows = scaled(100_000);
  process.stderr.write(`Figure 1/4: exporting ${int(bigRows)} v1 rows (zero latency), then the storage baseline...\n`);
  const big = await exportBigV1Part(azurite, 'big', bigRows);
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
  });
  await dropContainer(azurite, 'bench-big');
  await dropContainer(azurite, 'bench-baseline');
  const baselineRate = baseline.rows / (baseline.ms / 1000);
  const ratio = exportRate / baselineRate;
  record({
    id: '1',
    name: `Export throughput vs storage ceiling (${int(bigRows)} rows, v1, 0 ms latency)`,
    value: fmt(ratio),
    target: '>= 0.70',
    pass: ratio >= 0.7,
    detail:
      `export ${int(exportRate)} rows/s (${fmt(exportSeconds, 1)} s stage+commit+verify, ${mib(Number(big.exported.bytes))}); ` +
      `stageBlock/commitBlockList alone ${int(baselineRate)} rows/s (${fmt(baseline.ms / 1000, 1)} s, ${baseline.blocks} blocks, ${mib(baseline.bytes)}); ` +
      `whole export phase ${fmt(big.result.exportMs / 1000, 1)} s`,
  });

  process.stderr.write(`Figure 4: exporting ${int(smallRows)} rows for the memory comparison...\n`);
  const small = await exportBigV1Part(azurite, 'small', smallRows, true);
  if (small.source) {
    const sourceRate = small.source.rows / (small.source.ms / 1000);
    const first = figures.find((f) => f.id === '1');
    if (first) {
      first.detail +=
        `; the simulator alone serves ${int(sourceRate)} rows/s (${int(smallRows)} rows fetched raw, no parsing, no storage), ` +
        `${fmt(sourceRate / baselineRate)} x the storage ceiling, so the source caps this ratio at about ${fmt(Math.min(1, sourceRate / baselineRate))}`;
    }
  }
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

async function figureLatencyBound(azurite: Azurite) {
  const latencyMs = 200;
  // Small pages: the simulator renders each page after its latency sleep, and that render time is not latency
  // (with 250-row pages it added ~29 ms to each 200 ms page). The time spent fetching is reported as well.
  const pageSize = 100;
  const pages = Math.max(2, scaled(60));
  process.stderr.write(`Figure 2: ${pages} seek pages at ${latencyMs} ms per page...\n`);
  const invoice = modernV1Invoice('G900000001', pages * pageSize);
  const result = await withSimulator({ latencyMs, dataset: { invoices: [invoice] } }, async (sim) => {
    const settings = await passEnv(sim, azurite, 'latency', { LINE_ITEM_PAGE_SIZE: String(pageSize) });
    return runWorker<PassResult>({ kind: 'pass', settings, concurrency: 1 });
  });
  checkPass(result, 'latency-bound export');
  await dropContainer(azurite, 'bench-latency');
  const timedPages = result.pageRequests.filter((r) => r.kind === 'lineitems');
  const pageRequests = timedPages.length;
  const floorMs = pageRequests * latencyMs;
  const fetchMs = timedPages.reduce((sum, r) => sum + (r.end - r.start), 0);
  const exported = eventsNamed(result, 'PartExported')[0]?.properties;
  const ratio = result.exportMs / floorMs;
  record({
    id: '2',
    name: `Latency-bound export vs floor (${pageRequests} seek pages x ${latencyMs} ms)`,
    value: fmt(ratio),
    target: '<= 1.15',
    pass: ratio <= 1.15,
    detail:
      `${pageSize} rows per page; export phase ${int(result.exportMs)} ms (queue receive to delete), floor ${int(floorMs)} ms; ` +
      `stage+commit+verify ${int(Number(exported?.durationMs))} ms = ${fmt(Number(exported?.durationMs) / floorMs)} x floor; ` +
      `page requests took ${int(fetchMs / pageRequests)} ms each on average (latency + simulator render + transfer), ` +
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
  const result = await withSimulator({ latencyMs, dataset: { invoices } }, async (sim) => {
    const settings = await passEnv(sim, azurite, 'parallel', {
      LINE_ITEM_PAGE_SIZE: String(pageSize),
      LOCAL_CONCURRENCY: String(concurrency),
    });
    return runWorker<PassResult>({ kind: 'pass', settings, concurrency });
  });
  checkPass(result, 'parallel export');
  await dropContainer(azurite, 'bench-parallel');
  const exported = eventsNamed(result, 'PartExported');
  if (exported.length !== 8) throw new Error(`parallel export: ${exported.length} of 8 parts exported`);
  const timedPages = result.pageRequests.filter((r) => r.kind === 'lineitems');
  const pageRequests = timedPages.length;
  const floorMs = (pageRequests * latencyMs) / concurrency;
  const fetchMs = timedPages.reduce((sum, r) => sum + (r.end - r.start), 0);
  const ratio = result.exportMs / floorMs;
  const pass = ratio <= 1.25 && result.exportMaxInFlight <= concurrency;
  record({
    id: '3',
    name: `8 parts at concurrency ${concurrency} vs floor (${pageRequests} pages x ${latencyMs} ms / ${concurrency})`,
    value: `${fmt(ratio)}, max ${result.exportMaxInFlight} in flight`,
    target: `<= 1.25, <= ${concurrency} in flight`,
    pass,
    detail:
      `${pageSize} rows per page; export phase ${int(result.exportMs)} ms, floor ${int(floorMs)} ms; page requests took ${int(fetchMs / pageRequests)} ms each on average, ` +
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
  process.stderr.write('Figure 6: building (tsc) and timing the import of the Functions entry points...\n');
  const outDir = path.join(TMP, 'dist');
  await rm(outDir, { recursive: true, force: true });
  await run(
    process.execPath,
    [
      path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      outDir,
      '--sourceMap',
      'false',
    ],
    { cwd: ROOT },
  );
  const entries = ['detectInvoices', 'syncInvoice', 'exportLineItems'].map((n) =>
    path.join(outDir, 'functions', `${n}.js`),
  );
  const runs = 5;
  const tscTimes = await coldImportMs(entries, runs);
  const distBytes = await dirBytes(outDir, (n) => n.endsWith('.js'));
  let bundleNote = 'not bundled (esbuild not found)';
  let bundleMs: number | undefined;
  try {
    const esbuild = await import('esbuild');
    const bundleDir = path.join(TMP, 'bundle');
    await rm(bundleDir, { recursive: true, force: true });
    await esbuild.build({
      entryPoints: ['detectInvoices', 'syncInvoice', 'exportLineItems'].map((n) =>
        path.join(ROOT, 'functions', `${n}.ts`),
      ),
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outdir: bundleDir,
      minify: true,
      // jsonc-parser's UMD build requires its files dynamically; its ESM build bundles.
      mainFields: ['module', 'main'],
      // Provided by the Functions host at run time.
      external: ['@azure/functions-core'],
      logLevel: 'silent',
      // CommonJS dependencies call require(); give the ESM bundle one.
      banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
    });
    const bundleBytes = await dirBytes(bundleDir, (n) => n.endsWith('.js'));
    const bundled = await coldImportMs(
      ['detectInvoices', 'syncInvoice', 'exportLineItems'].map((n) => path.join(bundleDir, `${n}.js`)),
      runs,
    );
    bundleMs = percentile(bundled, 50);
    bundleNote = `esbuild bundle (minified, all dependencies inlined) ${mib(bundleBytes)}, import median ${int(bundleMs)} ms`;
  } catch (error) {
    bundleNote = `bundling failed: ${(error as Error).message.split('\n')[0]}`;
  }
  const median = percentile(tscTimes, 50);
  record({
    id: '6',
    name: 'Cold start: import of the 3 Functions entry points (tsc output, fresh node)',
    value: `${int(median)} ms median of ${runs}`,
    target: 'reported',
    detail: `runs ${tscTimes.map((t) => int(t)).join(', ')} ms; dist .js ${mib(distBytes)} (node_modules not counted); ${bundleNote}`,
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
    parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows }],
  };
  const result = await withSimulator(
    { dataset: { invoices: [invoice] }, v2: { pollsBeforeDone: 0, retryAfterSeconds: 0, rowsPerBlob } },
    async (sim) => {
      const settings = await passEnv(sim, azurite, 'vtwo', { LINE_ITEM_PAGE_SIZE: '2000' });
      return runWorker<PassResult>({ kind: 'pass', settings, concurrency: 1 });
    },
  );
  checkPass(result, 'v2 export');
  await dropContainer(azurite, 'bench-vtwo');
  const exported = eventsNamed(result, 'PartExported')[0]?.properties;
  if (exported?.api !== 'v2') throw new Error('v2 export: no v2 PartExported event');
  const part = invoice.parts?.[0];
  if (!part) throw new Error('no part');
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
  });
  await dropContainer(azurite, 'bench-vtwo-baseline');
  const exportRate = rows / (Number(exported.durationMs) / 1000);
  const baselineRate = rows / (baseline.ms / 1000);
  const ratio = exportRate / baselineRate;
  record({
    id: '7',
    name: `v2 copy: ${int(rows)} rows gzip JSON Lines -> NDJSON vs gunzip + write alone`,
    value: fmt(ratio),
    target: 'reported (no target in the issue)',
    detail: `export ${int(exportRate)} rows/s (${fmt(Number(exported.durationMs) / 1000, 1)} s stage+commit+verify, ${mib(Number(exported.bytes))}); gunzip + stageBlock alone ${int(baselineRate)} rows/s (${fmt(baseline.ms / 1000, 1)} s, ${mib(baseline.bytes)}); peak RSS ${mib(result.maxRssBytes)}`,
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
    `Storage: Azurite 3.35 (disk mode, temp folder, separate process); Partner Center / Graph: the simulator in the parent process (loopback HTTP); each export runs in its own child process (${workerNote}).`,
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
  } finally {
    await azurite.stop();
  }
  if (want('6')) await figureColdStart();
  cpuCosts = measureCpuCosts();
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
