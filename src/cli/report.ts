// Human-readable tables of the ledger for the CLI (`run` summary, `status`) and the demo, and the same facts as JSON
// for `status --json`. The reconciliation is read from the ledger (finalize decides it once), never recomputed.
import Table from 'cli-table3';
import { decodeReconciliation, type InvoiceEntity } from '../storage/invoices.js';
import type { PartEntity } from '../storage/parts.js';

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** What `status`, `run` and the demo show of an invoice's reconciliation, as finalize stored it. */
export interface ReconciliationView {
  currency: string;
  invoiceTotal: string | null;
  lineItemTotal: string | null;
  difference: string | null;
  /** true ✓, false ✗, null: not reconciled (yet), e.g. while parts are still exporting or when one failed. */
  matches: boolean | null;
  tolerance: string | null;
}

export function reconciliationView(invoice: InvoiceEntity): ReconciliationView {
  const stored = decodeReconciliation(invoice);
  return {
    currency: invoice.currencyCode,
    invoiceTotal: stored?.invoiceTotalCharges ?? null,
    lineItemTotal: stored?.lineItemTotal ?? null,
    difference: stored?.difference ?? null,
    matches: stored?.matches ?? null,
    tolerance: stored?.tolerance ?? null,
  };
}

export const matchMark = (matches: boolean | null): string => (matches === true ? '✓' : matches === false ? '✗' : '-');

/** A lastError shortened for the table when it is the App+User refusal (the run explains it once). */
function tableError(text: string | undefined): string {
  if (!text) return '';
  if (/\bcode 2032\b/.test(text)) return 'HTTP 403 code 2032: this call needs an App+User token (see `consent`)';
  return text;
}

/**
 * One row per invoice (fits 120 columns): id (and document type, amendment), period, state, parts done/total
 * (v1/v2), rows, then the reconciliation: currency, invoice total, line-item total, difference, ✓/✗. A last error
 * gets a full-width row of its own under its invoice.
 */
export function invoiceTable(
  invoices: InvoiceEntity[],
  parts: PartEntity[],
  options: { color?: boolean } = {},
): string {
  const head = [
    'invoice',
    'period',
    'state',
    'parts v1/v2',
    'rows',
    'cur',
    'invoice\ntotal',
    'line-item\ntotal',
    'difference',
    'ok',
  ];
  const table = new Table({
    head,
    style: { head: options.color ? ['cyan'] : [], border: options.color ? ['grey'] : [] },
    wordWrap: true,
    wrapOnWordBoundary: false,
    colWidths: [19, 9, 11, 13, 8, 5, 13, 13, 12, 4],
    colAligns: ['left', 'left', 'left', 'left', 'right', 'left', 'right', 'right', 'right', 'center'],
  });
  const byInvoice = new Map<string, PartEntity[]>();
  for (const part of parts) byInvoice.set(part.invoiceId, [...(byInvoice.get(part.invoiceId) ?? []), part]);
  for (const invoice of [...invoices].sort((a, b) => a.invoiceId.localeCompare(b.invoiceId))) {
    const own = byInvoice.get(invoice.invoiceId) ?? [];
    const done = own.filter((p) => p.state === 'complete');
    const v1 = own.filter((p) => (p.source ?? p.api) === 'v1').length;
    const v2 = own.filter((p) => (p.source ?? p.api) === 'v2').length;
    const r = reconciliationView(invoice);
    // A document type that is not a plain invoice, word by word when it is wider than the column.
    const typeText = invoice.documentType && invoice.documentType !== 'invoice' ? invoice.documentType : '';
    const type = typeText ? `\n${typeText.length > 17 ? typeText.replaceAll('_', '_\n') : typeText}` : '';
    table.push([
      invoice.invoiceId + type + (invoice.amendsOf ? `\namends ${invoice.amendsOf}` : ''),
      invoice.billingPeriod,
      invoice.state,
      `${done.length}/${own.length} ${v1}/${v2}`,
      String(own.reduce((n, p) => n + (p.rows ?? 0), 0)),
      r.currency || '-',
      r.invoiceTotal ?? invoice.totalCharges ?? '-',
      r.lineItemTotal ?? '-',
      r.difference ?? '-',
      matchMark(r.matches),
    ]);
    const error = tableError(
      invoice.lastError ?? own.find((p) => p.lastError && p.state !== 'complete')?.lastError ?? undefined,
    );
    if (error) table.push([{ colSpan: head.length, content: `  ${invoice.invoiceId}: ${error}` }]);
  }
  return table.toString();
}

export function stateCounts(invoices: InvoiceEntity[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const invoice of invoices) counts[invoice.state] = (counts[invoice.state] ?? 0) + 1;
  return counts;
}

/** Lines for the invoices whose line items do not add up (state `mismatch`), from the stored reconciliation. */
export function mismatchLines(invoices: InvoiceEntity[]): string[] {
  return invoices
    .filter((i) => i.state === 'mismatch')
    .sort((a, b) => a.invoiceId.localeCompare(b.invoiceId))
    .map((i) => {
      const r = reconciliationView(i);
      return (
        `  ✗ ${i.invoiceId} (${i.billingPeriod}): line items ${r.lineItemTotal ?? '-'} ${r.currency} against ` +
        `totalCharges ${r.invoiceTotal ?? i.totalCharges}, difference ${r.difference ?? '-'} (tolerance ${r.tolerance ?? '-'})`
      );
    });
}

/** `status --json`: the ledger entities with the reconciliation decoded (the same fields the table shows). */
export function statusJson(invoices: InvoiceEntity[], parts: PartEntity[]) {
  return {
    invoices: [...invoices]
      .sort((a, b) => a.invoiceId.localeCompare(b.invoiceId))
      .map(({ etag: _etag, reconciliation: _stored, ...invoice }) => ({
        ...invoice,
        reconciliation: reconciliationView({ ...invoice, reconciliation: _stored } as InvoiceEntity),
      })),
    parts: parts.map(({ etag: _etag, ...part }) => part),
  };
}
