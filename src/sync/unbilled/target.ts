// What an unbilled snapshot part asks Graph for. The ledger keeps the concrete month; the word Graph takes
// (`current` or `last`) is decided from that month at the moment the export is started, so an export queued on the
// last day of a month and started after midnight still asks for the month its path names.
import type { UnbilledPeriod } from '../../graph/index.js';
import type { UnbilledTarget } from '../../storage/unbilled.js';

/** `YYYY-MM` of a UTC instant, shifted by `months`. */
export function monthOf(at: number, months = 0): string {
  const d = new Date(at);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1)).toISOString().slice(0, 7);
}

/** The word that names `month` at `at`: its UTC month is `current`, the month before is `last`, else none. */
export function unbilledPeriodWord(month: string, at: number): UnbilledPeriod | undefined {
  if (month === monthOf(at)) return 'current';
  if (month === monthOf(at, -1)) return 'last';
  return undefined;
}

/** The snapshot's month can no longer be asked for (it is neither this month nor the last). */
export class UnbilledPeriodPassedError extends Error {
  override name = 'UnbilledPeriodPassedError';
  readonly retriable = false;
}

/** Graph failed the unbilled export for good (not "no data yet"): there is no other API to fall back to. */
export class UnbilledExportFailedError extends Error {
  override name = 'UnbilledExportFailedError';
  readonly retriable = false;
}

/** The data Graph served names another month than the one the snapshot is filed under: nothing is written. */
export class UnbilledMonthMismatchError extends Error {
  override name = 'UnbilledMonthMismatchError';
  readonly retriable = false;
}

/**
 * The month a manifest's data covers, when its rootDirectory names one (`.../BillingMonth=yyyyMM/...`, ref §6.3);
 * undefined when it does not.
 */
export function manifestMonth(rootDirectory: string): string | undefined {
  const match = /\/BillingMonth=(\d{4})(\d{2})(?:\/|$)/i.exec(rootDirectory);
  return match ? `${match[1]}-${match[2]}` : undefined;
}

export const describeTarget = (target: UnbilledTarget) =>
  `${target.currencyCode} ${target.billingPeriod}${target.requestedAs ? ` (${target.requestedAs})` : ''}`;
