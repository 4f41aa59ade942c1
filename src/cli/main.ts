// The local command line: `run` (one full pass in-process), `status` (the ledger), `resync <invoiceId>`,
// `consent` (one-time App+User sign-in). Settings are the Functions app settings, from the environment and
// local.settings.json, exactly as in Azure.
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createSyncDeps, type DepsOverrides } from '../app/create-deps.js';
import { type PassResult, runPass } from '../app/run-pass.js';
import { loadSettings, type Settings } from '../config.js';
import { redactText } from '../http/redact.js';
import { INVOICE_ID_PATTERN } from '../ids.js';
import { createStorage } from '../storage/index.js';
import type { InvoiceEntity } from '../storage/invoices.js';
import type { PartEntity } from '../storage/parts.js';
import type { SyncDeps } from '../sync/deps.js';
import { detectInvoices } from '../sync/detect-invoices.js';
import { formatSummary, TelemetryCollector } from '../telemetry/index.js';
import { consoleLogger, type SyncLogger } from '../telemetry/logger.js';
import { EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { type CliIo, type ProgressOptions, progressLogger } from './progress.js';
import { invoiceTable, mismatchLines, stateCounts, statusJson } from './report.js';
import { resyncCommand } from './resync.js';
import { probeStorage } from './storage-check.js';
import { latestUnbilledSnapshots, unbilledTable } from './unbilled-status.js';

export type { CliIo } from './progress.js';
export { progressLogger } from './progress.js';

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

const defaultIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
};

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
  const mismatches = mismatchLines(result.invoices);
  if (mismatches.length > 0) {
    io.out(
      `${mismatches.length} reconciliation mismatch${mismatches.length === 1 ? '' : 'es'} ` +
        '(billing line items against the invoice totalCharges, as finalize measured them):\n' +
        `${mismatches.join('\n')}\n`,
    );
  }
}

/** run's exit code from the ledger after the pass (see exit-codes.ts). */
export function runExitCode(invoices: Pick<InvoiceEntity, 'state'>[]): number {
  if (invoices.length > 0 && invoices.every((i) => i.state === 'complete')) return EXIT.ok;
  if (invoices.length > 0 && invoices.every((i) => i.state === 'complete' || i.state === 'mismatch')) {
    return EXIT.mismatch;
  }
  return EXIT.incomplete;
}

export async function runCommand(
  settings: Settings,
  options: {
    concurrency?: number;
    logFile?: string;
    overrides?: DepsOverrides;
    progress?: ProgressOptions;
    /** Storage probe timeout (default PROBE_TIMEOUT_MS). */
    probeTimeoutMs?: number;
  },
  io: CliIo = defaultIo,
): Promise<{ exitCode: number; result: PassResult; deps: SyncDeps }> {
  const progress = progressLogger(io, fileLogger(options.logFile), options.progress);
  // The same events App Insights receives, summed up for the end of the run.
  const telemetry = new TelemetryCollector();
  const deps = await createSyncDeps(settings, { ...options.overrides, log: telemetry.logger(progress) });
  // Seconds, not the SDK's long retry, to say that storage cannot be reached.
  await probeStorage(deps.storage, { timeoutMs: options.probeTimeoutMs });
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
  if (progress.suppressed > 1) {
    io.err(`(${progress.suppressed} errors with code 2032 were not repeated; the App+User note above covers them)\n`);
  }
  io.err(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return { exitCode: runExitCode(result.invoices), result, deps };
}

/** `status`: reads the ledger with storage read access only; needs no Partner Center settings, creates nothing. */
export async function statusCommand(
  settings: Settings,
  options: { json?: boolean; probeTimeoutMs?: number },
  io: CliIo = defaultIo,
): Promise<number> {
  const storage = createStorage(settings);
  const { ledgerExists } = await probeStorage(storage, { timeoutMs: options.probeTimeoutMs });
  if (!ledgerExists) {
    io.err(
      `The ledger does not exist yet: there is no table "${settings.LEDGER_TABLE}" at ${storage.ledger.table.url}. ` +
        'Nothing has been synced into this storage account: run `csp-invoice-sync run` (or let the timer run), ' +
        'or check AzureWebJobsStorage and LEDGER_TABLE. Nothing was created.\n',
    );
    return EXIT.error;
  }
  const invoices: InvoiceEntity[] = [];
  const parts: PartEntity[] = [];
  for await (const invoice of storage.ledger.listInvoices()) {
    invoices.push(invoice);
    parts.push(...(await storage.ledger.listParts(invoice.invoiceId)));
  }
  const unbilled = await latestUnbilledSnapshots(storage.ledger);
  if (options.json) io.out(`${JSON.stringify({ ...statusJson(invoices, parts), unbilled }, null, 2)}\n`);
  else {
    if (invoices.length === 0) io.out('The ledger has no invoices yet.\n');
    else printSummary(io, { invoices, parts }, io.isTTY);
    io.out(`${unbilledTable(unbilled, { color: io.isTTY })}\n`);
  }
  return EXIT.ok;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

function yearMonth(value: string): string {
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(value)) throw new InvalidArgumentError(`expected YYYY-MM, not "${value}"`);
  return value;
}

/** A command used the wrong way (printed as one line, exit 1). */
class UsageError extends Error {
  override name = 'UsageError';
}

export interface ProgramOptions {
  /** Test and demo hooks: dependency overrides for `run` and `resync`, progress timing, the storage probe. */
  overrides?: DepsOverrides;
  progress?: ProgressOptions;
  probeTimeoutMs?: number;
}

/** The command line; each action stores its exit code in `exit.code` (main() returns it). */
export function buildProgram(
  io: CliIo = defaultIo,
  env = localEnvironment(),
  exit: { code: number } = { code: EXIT.ok },
  hooks: ProgramOptions = {},
): Command {
  const program = new Command('csp-invoice-sync')
    .description("Keep a verified copy of a CSP partner's invoices, PDFs and line items in Azure Storage.")
    .configureOutput({ writeOut: (t) => io.out(t), writeErr: (t) => io.err(t) })
    .exitOverride()
    .showHelpAfterError()
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n`);
  program
    .command('run')
    .description(
      'one full pass in-process: list invoices, sync new ones, export every line item; prints every invoice with ' +
        'its reconciliation (currency, invoice total, line-item total, difference, ✓/✗)',
    )
    .option('-c, --concurrency <n>', 'messages handled at once (default: LOCAL_CONCURRENCY)', positiveInt)
    .option('--log-file <path>', 'append structured JSON logs (secrets redacted) to this file')
    .addHelpText(
      'after',
      '\nExit codes: 0 every invoice complete, 2 some invoice failed, unsettled or in progress, ' +
        '3 none failed but some reconciliation mismatch, 1 could not run (settings, storage).\n',
    )
    .action(async (opts: { concurrency?: number; logFile?: string }) => {
      const { exitCode } = await runCommand(
        loadSettings(env),
        { ...opts, overrides: hooks.overrides, progress: hooks.progress, probeTimeoutMs: hooks.probeTimeoutMs },
        io,
      );
      exit.code = exitCode;
    });
  program
    .command('status')
    .description(
      'print the ledger: every invoice with its state, parts, rows, reconciliation and last error; needs only read ' +
        'access to storage (no Partner Center settings) and creates nothing',
    )
    .option('--json', 'print JSON instead of a table (the same fields, reconciliation included)')
    .addHelpText('after', '\nExit codes: 0 printed, 1 settings, storage unreachable or no ledger yet.\n')
    .action(async (opts: { json?: boolean }) => {
      exit.code = await statusCommand(loadSettings(env), { ...opts, probeTimeoutMs: hooks.probeTimeoutMs }, io);
    });
  program
    .command('resync')
    .description(
      'queue invoices again; `run` (or the deployed app) then re-runs what is not complete: failed and unsettled ' +
        'parts start over, complete parts are kept (--full: the PDF, receipts and every part again)',
    )
    .argument('[invoiceId]', 'one invoice id, e.g. G000123456 (refused unless the ledger or Partner Center knows it)')
    .option('--failed', 'every invoice the ledger has as failed')
    .addOption(
      new Option('--period <YYYY-MM>', 'every invoice the ledger has in this billing period').argParser(yearMonth),
    )
    .option('--full', 'export everything again from the first page, not only what is unfinished')
    .addHelpText(
      'after',
      '\nExit codes: 0 queued (or nothing to queue), 1 settings, storage, or an id Partner Center does not list.\n',
    )
    .action(async (invoiceId: string | undefined, opts: { failed?: boolean; period?: string; full?: boolean }) => {
      const chosen = [invoiceId !== undefined, Boolean(opts.failed), opts.period !== undefined].filter(Boolean).length;
      if (chosen !== 1) {
        throw new UsageError('resync needs exactly one of: an invoice id, --failed, --period YYYY-MM');
      }
      if (invoiceId !== undefined && !INVOICE_ID_PATTERN.test(invoiceId)) {
        throw new UsageError(`"${invoiceId.slice(0, 80)}" is not an invoice id (letters, digits, dashes)`);
      }
      exit.code = await resyncCommand(
        loadSettings(env),
        {
          ...(invoiceId !== undefined ? { invoiceId } : {}),
          failed: Boolean(opts.failed),
          ...(opts.period !== undefined ? { period: opts.period } : {}),
          full: Boolean(opts.full),
          overrides: hooks.overrides,
          probeTimeoutMs: hooks.probeTimeoutMs,
        },
        io,
      );
    });
  program
    .command('consent')
    .description(
      'one-time App+User sign-in of a partner user (device code, with MFA); stores the refresh token in Key Vault',
    )
    .option('--open', 'open the sign-in page in a browser')
    .addHelpText('after', '\nExit codes: 0 the refresh token is stored, 1 it is not.\n')
    .action(async (opts: { open?: boolean }) => {
      const { consentFromEnv } = await import('../setup/consent-cli.js');
      const result = await consentFromEnv(env, (message) => io.err(`${message}\n`), Boolean(opts.open));
      io.out(`Stored the refresh token as secret "${result.secretName}" (issued ${result.issuedAt}).\n`);
      exit.code = EXIT.ok;
    });
  return program;
}

/**
 * Runs the command line and returns its exit code (bin.ts sets it; tests call this in-process with their own io
 * and environment). Every failure prints one redacted line and exits 1.
 */
export async function main(
  argv = process.argv,
  io: CliIo = defaultIo,
  env?: Record<string, string | undefined>,
  hooks: ProgramOptions = {},
): Promise<number> {
  const exit = { code: EXIT.ok as number };
  try {
    await buildProgram(io, env ?? localEnvironment(), exit, hooks).parseAsync(argv);
    return exit.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version print and exit 0; a usage error was already printed by commander.
      return error.exitCode === 0 ? EXIT.ok : EXIT.error;
    }
    io.err(`error: ${redactText(error instanceof Error ? error.message : String(error))}\n`);
    return EXIT.error;
  }
}
