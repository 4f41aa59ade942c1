// The local command line: `run` (one full pass in-process), `status` (the ledger), `resync <invoiceId>`,
// `consent` (one-time App+User sign-in). Settings are the Functions app settings, from the environment and
// local.settings.json, exactly as in Azure.
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { createSyncDeps, type DepsOverrides } from '../app/create-deps.js';
import { type PassResult, runPass } from '../app/run-pass.js';
import { loadSettings, type Settings } from '../config.js';
import { redactText } from '../http/redact.js';
import { INVOICE_ID_PATTERN } from '../ids.js';
import { sendQueueMessage } from '../storage/queues.js';
import type { SyncDeps } from '../sync/deps.js';
import { detectInvoices } from '../sync/detect-invoices.js';
import { formatSummary, TelemetryCollector } from '../telemetry/index.js';
import { consoleLogger, type EventProperties, type SyncLogger } from '../telemetry/logger.js';
import { invoiceTable, stateCounts } from './report.js';
import { latestUnbilledSnapshots, unbilledTable } from './unbilled-status.js';

/** Environment merged over the `Values` of local.settings.json (the environment wins, as in the Functions host). */
export function localEnvironment(
  cwd = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string | undefined> {
  const file = path.join(cwd, 'local.settings.json');
  if (!existsSync(file)) return { ...env };
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, string> };
  return { ...(parsed.Values ?? {}), ...env };
}

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}

const defaultIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
};

/** Progress while a pass runs: a bar on a terminal, one line per finished invoice otherwise. */
export function progressLogger(
  io: CliIo,
  logFile: SyncLogger,
): SyncLogger & { setTotal(n: number): void; stop(): void } {
  let total = 0;
  let done = 0;
  let rows = 0;
  let parts = 0;
  const bar = io.isTTY
    ? new cliProgress.SingleBar(
        {
          format: ' invoices {bar} {value}/{total} | parts {parts} | rows {rows} | {last}',
          hideCursor: true,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let started = false;
  const update = (last: string) => {
    if (bar && started) bar.update(done, { parts, rows, last });
  };
  return {
    info: (m, p) => logFile.info(m, p),
    warn: (m, p) => {
      logFile.warn(m, p);
      if (!bar) io.err(`warn: ${m}${p ? ` ${redactText(JSON.stringify(p))}` : ''}\n`);
    },
    error: (m, p) => {
      logFile.error(m, p);
      if (!bar) io.err(`error: ${m}${p ? ` ${redactText(JSON.stringify(p))}` : ''}\n`);
    },
    event: (name: string, p: EventProperties) => {
      logFile.event(name, p);
      if (name === 'PartExported') {
        parts++;
        rows += Number(p.rows ?? 0);
        update(`${p.invoiceId} ${p.partId}`);
      }
      if (name === 'InvoiceStateChanged' && ['complete', 'failed', 'unsettled'].includes(String(p.state))) {
        done++;
        update(`${p.invoiceId} ${p.state}`);
        if (!bar) io.err(`  ${p.invoiceId}: ${p.state} (${p.rows ?? 0} rows)\n`);
      }
    },
    setTotal(n: number) {
      total = n;
      if (bar) {
        bar.start(total, done, { parts, rows, last: '' });
        started = true;
      }
    },
    stop() {
      if (bar && started) bar.stop();
    },
  };
}

function fileLogger(file: string | undefined): SyncLogger {
  if (!file) return { info() {}, warn() {}, error() {}, event() {} };
  const stream = createWriteStream(file, { flags: 'a' });
  return consoleLogger((line) => stream.write(`${redactText(line)}\n`));
}

export function printSummary(io: CliIo, result: Pick<PassResult, 'invoices' | 'parts'>, color: boolean) {
  io.out(`${invoiceTable(result.invoices, result.parts, { color })}\n`);
  const counts = stateCounts(result.invoices);
  io.out(
    `${result.invoices.length} invoices: ${Object.entries(counts)
      .map(([state, n]) => `${n} ${state}`)
      .join(', ')}; ${result.parts.reduce((n, p) => n + (p.rows ?? 0), 0)} line items\n`,
  );
}

export async function runCommand(
  settings: Settings,
  options: { concurrency?: number; logFile?: string; overrides?: DepsOverrides },
  io: CliIo = defaultIo,
): Promise<{ exitCode: number; result: PassResult; deps: SyncDeps }> {
  const progress = progressLogger(io, fileLogger(options.logFile));
  // The same events App Insights receives, summed up for the end of the run.
  const telemetry = new TelemetryCollector();
  const deps = await createSyncDeps(settings, { ...options.overrides, log: telemetry.logger(progress) });
  io.err(`Syncing invoices from ${settings.PARTNER_CENTER_API_URL} into container "${settings.INVOICE_CONTAINER}"\n`);
  const started = Date.now();
  let result: PassResult;
  try {
    await deps.storage.ensure();
    const detect = await detectInvoices(deps);
    io.err(
      `Listed ${detect.listed} invoices: ${detect.discovered} new, ${detect.queued + detect.requeued} queued${
        detect.rejected.length ? `, ${detect.rejected.length} rejected (unsafe id)` : ''
      }\n`,
    );
    const pending = [];
    for await (const invoice of deps.storage.ledger.listInvoices())
      if (invoice.state !== 'complete') pending.push(invoice);
    progress.setTotal(pending.length);
    result = { ...(await runPass(deps, { skipDetect: true, concurrency: options.concurrency })), detect };
  } finally {
    progress.stop();
  }
  printSummary(io, result, io.isTTY);
  for (const line of formatSummary(telemetry.summary())) io.out(`${line}\n`);
  io.err(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return { exitCode: result.allComplete ? 0 : 2, result, deps };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

export function buildProgram(io: CliIo = defaultIo, env = localEnvironment()): Command {
  const program = new Command('csp-invoice-sync')
    .description("Keep a verified copy of a CSP partner's invoices, PDFs and line items in Azure Storage.")
    .showHelpAfterError();
  program
    .command('run')
    .description(
      'one full pass in-process: list invoices, sync new ones, export every line item; exit 0 only when all are complete',
    )
    .option('-c, --concurrency <n>', 'messages handled at once (default: LOCAL_CONCURRENCY)', positiveInt)
    .option('--log-file <path>', 'append structured JSON logs (secrets redacted) to this file')
    .action(async (opts: { concurrency?: number; logFile?: string }) => {
      const { exitCode } = await runCommand(loadSettings(env), opts, io);
      process.exitCode = exitCode;
    });
  program
    .command('status')
    .description('print the ledger: every invoice with its state, parts, rows and last error')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { json?: boolean }) => {
      const deps = await createSyncDeps(loadSettings(env), { log: fileLogger(undefined) });
      await deps.storage.ensure();
      const invoices = [];
      const parts = [];
      for await (const invoice of deps.storage.ledger.listInvoices()) {
        invoices.push(invoice);
        parts.push(...(await deps.storage.ledger.listParts(invoice.invoiceId)));
      }
      const unbilled = await latestUnbilledSnapshots(deps.storage.ledger);
      if (opts.json) io.out(`${JSON.stringify({ invoices, parts, unbilled }, null, 2)}\n`);
      else {
        printSummary(io, { invoices, parts }, io.isTTY);
        io.out(`${unbilledTable(unbilled, { color: io.isTTY })}\n`);
      }
    });
  program
    .command('resync')
    .description('queue one invoice again (PDF, receipts and every part are re-exported); `run` then processes it')
    .argument('<invoiceId>', 'the invoice id, e.g. G000123456')
    .action(async (invoiceId: string) => {
      if (!INVOICE_ID_PATTERN.test(invoiceId)) {
        throw new InvalidArgumentError(`"${invoiceId.slice(0, 80)}" is not an invoice id (letters, digits, dashes)`);
      }
      const deps = await createSyncDeps(loadSettings(env), { log: fileLogger(undefined) });
      await deps.storage.ensure();
      const existing = await deps.storage.ledger.getInvoice(invoiceId);
      if (existing) {
        await deps.storage.ledger.updateInvoice(invoiceId, () => ({
          state: 'queued',
          lastError: undefined,
          updatedAt: new Date().toISOString(),
        }));
      }
      await sendQueueMessage(deps.storage.queues.invoiceSync, { invoiceId, reason: 'resync' });
      io.out(
        `Queued ${invoiceId} for a full resync${existing ? '' : ' (not in the ledger yet: it will be fetched by id)'}.\n`,
      );
    });
  program
    .command('consent')
    .description(
      'one-time App+User sign-in of a partner user (device code, with MFA); stores the refresh token in Key Vault',
    )
    .option('--open', 'open the sign-in page in a browser')
    .action(async (opts: { open?: boolean }) => {
      const { consentFromEnv } = await import('../setup/consent-cli.js');
      const result = await consentFromEnv(env, (message) => io.err(`${message}\n`), Boolean(opts.open));
      io.out(`Stored the refresh token as secret "${result.secretName}" (issued ${result.issuedAt}).\n`);
    });
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    process.stderr.write(`error: ${redactText(error instanceof Error ? error.message : String(error))}\n`);
    process.exitCode = 1;
  }
}
