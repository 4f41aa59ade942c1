// When an invoice in trouble (failed, or its line items do not add up) is tried again: 1 h after the trouble
// began, then 2 h, 4 h ... at most 24 h apart, for FAILED_RETRY_DAYS; after that it stays as it is, alerted.
import type { Settings } from '../config.js';
import type { InvoiceEntity, InvoicePatch } from '../storage/invoices.js';

const HOUR_MS = 3_600_000;
const MAX_INTERVAL_MS = 24 * HOUR_MS;

/** The wait before retry number `retries + 1`: 1 h, 2 h, 4 h ... capped at 24 h. */
export const retryInterval = (retries: number): number =>
  Math.min(MAX_INTERVAL_MS, HOUR_MS * 2 ** Math.min(retries, 10));

/** The clock fields of an invoice that is (still) in trouble: the clock starts at the first trouble and keeps running. */
export function troubleClock(
  current: Pick<InvoiceEntity, 'troubleSince' | 'retries' | 'nextRetryAt'>,
  now: number,
): Pick<InvoicePatch, 'troubleSince' | 'retries' | 'nextRetryAt'> {
  return {
    troubleSince: current.troubleSince ?? new Date(now).toISOString(),
    retries: current.retries ?? 0,
    nextRetryAt: current.nextRetryAt ?? new Date(now + retryInterval(0)).toISOString(),
  };
}

/** A healthy end stops the clock. */
export const clearTroubleClock = (): Pick<InvoicePatch, 'troubleSince' | 'retries' | 'nextRetryAt'> => ({
  troubleSince: undefined,
  retries: undefined,
  nextRetryAt: undefined,
});

/** Whether a troubled invoice is due for its next retry now (and still within FAILED_RETRY_DAYS). */
export function retryDue(
  entity: Pick<InvoiceEntity, 'troubleSince' | 'nextRetryAt'>,
  now: number,
  settings: Pick<Settings, 'FAILED_RETRY_DAYS'>,
): boolean {
  const since = Date.parse(entity.troubleSince ?? '');
  if (!Number.isFinite(since) || now - since > settings.FAILED_RETRY_DAYS * 24 * HOUR_MS) return false;
  const next = Date.parse(entity.nextRetryAt ?? '');
  return !Number.isFinite(next) || now >= next;
}

/** The clock after queueing one more retry. */
export function afterRetryQueued(
  entity: Pick<InvoiceEntity, 'retries'>,
  now: number,
): Pick<InvoicePatch, 'retries' | 'nextRetryAt'> {
  const retries = (entity.retries ?? 0) + 1;
  return { retries, nextRetryAt: new Date(now + retryInterval(retries)).toISOString() };
}
