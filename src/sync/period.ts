// The one place that decides an invoice's billing period, the partition of every blob it has. The period is
// what the API states: `billingPeriodStartDate` of the by-id response over the list's, and the invoice date's
// month only when neither has one. Detection records a provisional period; syncInvoice fixes it before the first
// blob is written; every later stage reads it from the ledger.

import type { PeriodSource } from '../storage/invoices.js';
import { monthOfDate } from '../storage/layout.js';

export interface DatedInvoice {
  billingPeriodStartDate?: unknown;
  invoiceDate?: unknown;
}

export interface DecidedPeriod {
  period: string;
  source: PeriodSource;
}

export class NoPeriodError extends Error {
  override name = 'NoPeriodError';
  readonly retriable = false;
}

const dateText = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() !== '' ? value : undefined;

function fromDates(invoice: DatedInvoice, startSource: PeriodSource): DecidedPeriod | undefined {
  const start = dateText(invoice.billingPeriodStartDate);
  if (start) return { period: monthOfDate(start), source: startSource };
  const issued = dateText(invoice.invoiceDate);
  if (issued) return { period: monthOfDate(issued), source: 'invoice-date' };
  return undefined;
}

/** At discovery, from a list item: provisional (`list` when it has a period start, else `invoice-date`). */
export function listedPeriod(item: DatedInvoice): DecidedPeriod {
  const decided = fromDates(item, 'list');
  if (!decided) {
    throw new NoPeriodError('the list item has neither billingPeriodStartDate nor invoiceDate to file it under');
  }
  return decided;
}

/**
 * At sync, from the by-id response: its period start wins; else a period start the list stated; else the invoice
 * date's month (the by-id one, else the one recorded).
 */
export function decidePeriod(byId: DatedInvoice, recorded: DecidedPeriod | undefined): DecidedPeriod {
  const start = dateText(byId.billingPeriodStartDate);
  if (start) return { period: monthOfDate(start), source: 'by-id' };
  if (recorded?.source === 'list' || recorded?.source === 'by-id') return recorded;
  const decided = fromDates(byId, 'by-id') ?? recorded;
  if (!decided) throw new NoPeriodError('the invoice has neither billingPeriodStartDate nor invoiceDate');
  return decided;
}
