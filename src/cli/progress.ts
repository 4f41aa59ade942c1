// What a pass shows while it runs, driven only by the jobs' logger calls and events (the same ones App Insights
// gets): a bar on a terminal; off a terminal one line per finished invoice and at most one progress line per part
// every few seconds (rows and pages so far, elapsed, or "waiting for the Graph export"). An App+User-only call
// refused for an app-only token (403, code 2032) is explained once instead of once per invoice.
import cliProgress from 'cli-progress';
import { redactText } from '../http/redact.js';
import type { EventProperties, SyncLogger } from '../telemetry/logger.js';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}

export const APP_USER_HINT =
  'Partner Center answered 403 code 2032 (access denied) to a call that needs an App+User token: getting an ' +
  'invoice by id (which issues its PDF link), the statement PDF and tax receipts are App+User only, and the token ' +
  'the app used is app-only. Get one with `csp-invoice-sync consent` (a partner user signs in once, with MFA; the ' +
  'refresh token goes to Key Vault at KEY_VAULT_URL, used when APP_USER_ENABLED=true), or with ' +
  'AUTH_MODE=static-token paste a delegated (App+User) token as PARTNER_CENTER_ACCESS_TOKEN. ' +
  'Further errors with code 2032 are not repeated here; `status` lists the invoices.';

const is2032 = (text: string) => /\bcode 2032\b/.test(text);

export interface ProgressOptions {
  /** Off a terminal, the least time between two progress lines of one part (default 5 s). */
  partIntervalMs?: number;
  now?: () => number;
}

export type ProgressLogger = SyncLogger & {
  setTotal(n: number): void;
  stop(): void;
  /** Errors with code 2032 not printed after the hint. */
  readonly suppressed: number;
};

export function progressLogger(io: CliIo, logFile: SyncLogger, options: ProgressOptions = {}): ProgressLogger {
  const now = options.now ?? Date.now;
  const interval = options.partIntervalMs ?? 5000;
  let total = 0;
  let done = 0;
  let rows = 0;
  let parts = 0;
  let hinted = false;
  let suppressed = 0;
  const partSeen = new Map<string, { since: number; printedAt: number }>();
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
  const hint = () => {
    if (hinted) return;
    hinted = true;
    io.err(`\n${APP_USER_HINT}\n\n`);
  };
  /** A part's progress: on the bar at once, off a terminal at most once per interval. */
  const partProgress = (p: EventProperties, text: (elapsed: string) => string) => {
    const key = `${p.invoiceId} ${p.partId}`;
    const at = now();
    const seen = partSeen.get(key) ?? { since: at, printedAt: Number.NEGATIVE_INFINITY };
    partSeen.set(key, seen);
    const line = `${p.invoiceId} ${p.partId}: ${text(`${((at - seen.since) / 1000).toFixed(1)} s`)}`;
    update(line);
    if (!bar && at - seen.printedAt >= interval) {
      seen.printedAt = at;
      io.err(`  ${line}\n`);
    }
  };
  const line = (level: 'warn' | 'error', m: string, p?: EventProperties) => {
    const text = `${m}${p ? ` ${redactText(JSON.stringify(p))}` : ''}`;
    if (is2032(text)) {
      if (hinted) {
        suppressed++;
        return;
      }
      hint();
      suppressed++;
      return;
    }
    if (!bar) io.err(`${level}: ${text}\n`);
  };
  return {
    info: (m, p) => {
      logFile.info(m, p);
      if (p?.invoiceId && p.partId && (m === 'Waiting for the Graph export' || m === 'v2 export started')) {
        partProgress(p, (elapsed) => `waiting for the Graph export (${elapsed})`);
      }
    },
    warn: (m, p) => {
      logFile.warn(m, p);
      line('warn', m, p);
    },
    error: (m, p) => {
      logFile.error(m, p);
      line('error', m, p);
    },
    event: (name: string, p: EventProperties) => {
      logFile.event(name, p);
      if (name === 'HttpRequest' && Number(p.status) === 403 && String(p.errorCode) === '2032') hint();
      if (name === 'PartProgress') {
        partProgress(
          p,
          (elapsed) => `${p.rows} rows, ${p.blocks} page${p.blocks === 1 ? '' : 's'} so far (${p.api}), ${elapsed}`,
        );
      }
      if (name === 'PartExported') {
        parts++;
        rows += Number(p.rows ?? 0);
        update(`${p.invoiceId} ${p.partId} done`);
        partSeen.delete(`${p.invoiceId} ${p.partId}`);
      }
      if (name === 'InvoiceStateChanged' && ['complete', 'mismatch', 'failed', 'unsettled'].includes(String(p.state))) {
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
    get suppressed() {
      return suppressed;
    },
  };
}
