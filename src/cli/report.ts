// Human-readable tables of the ledger for the CLI (`run` summary, `status`) and the demo.
import Table from 'cli-table3';
import type { InvoiceEntity } from '../storage/invoices.js';
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

export function invoiceTable(
  invoices: InvoiceEntity[],
  parts: PartEntity[],
  options: { color?: boolean } = {},
): string {
  const table = new Table({
    head: ['invoice', 'period', 'type', 'state', 'parts (v1/v2)', 'rows', 'line items', 'pdf', 'last error'],
    style: { head: options.color ? ['cyan'] : [], border: options.color ? ['grey'] : [] },
    wordWrap: true,
    colWidths: [null, null, null, null, null, null, null, null, 48],
  });
  const byInvoice = new Map<string, PartEntity[]>();
  for (const part of parts) byInvoice.set(part.invoiceId, [...(byInvoice.get(part.invoiceId) ?? []), part]);
  for (const invoice of [...invoices].sort((a, b) => a.invoiceId.localeCompare(b.invoiceId))) {
    const own = byInvoice.get(invoice.invoiceId) ?? [];
    const done = own.filter((p) => p.state === 'complete');
    const v1 = own.filter((p) => p.api === 'v1').length;
    const v2 = own.filter((p) => p.api === 'v2').length;
    table.push([
      invoice.invoiceId + (invoice.amendsOf ? `\n(amends ${invoice.amendsOf})` : ''),
      invoice.billingPeriod,
      invoice.documentType || '-',
      invoice.state,
      `${done.length}/${own.length} (${v1}/${v2})`,
      String(own.reduce((n, p) => n + (p.rows ?? 0), 0)),
      formatBytes(own.reduce((n, p) => n + (p.bytes ?? 0), 0)),
      invoice.pdfBytes ? formatBytes(invoice.pdfBytes) : '-',
      invoice.lastError ?? own.find((p) => p.lastError && p.state !== 'complete')?.lastError ?? '',
    ]);
  }
  return table.toString();
}

export function stateCounts(invoices: InvoiceEntity[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const invoice of invoices) counts[invoice.state] = (counts[invoice.state] ?? 0) + 1;
  return counts;
}
