// The unbilled section of `csp-invoice-sync status` (and of the demo): the latest snapshot per billing month and
// currency, from the ledger, with its rows and exact totals per line-item type.
import Table from 'cli-table3';
import type { Ledger } from '../storage/ledger.js';
import { decodeSnapshotFiles, type SnapshotEntity } from '../storage/unbilled.js';

export interface UnbilledStatusRow {
  billingPeriod: string;
  currency: string;
  snapshotDate: string;
  state: SnapshotEntity['state'];
  usageRows: number | null;
  usageTotal: string | null;
  billingRows: number | null;
  billingTotal: string | null;
  manifestPath: string | null;
  lastError: string | null;
}

/** The latest snapshot of each (billing month, currency), newest month first. */
export async function latestUnbilledSnapshots(ledger: Pick<Ledger, 'listSnapshots'>): Promise<UnbilledStatusRow[]> {
  const latest = new Map<string, SnapshotEntity>();
  for await (const snapshot of ledger.listSnapshots()) {
    const key = `${snapshot.billingPeriod}|${snapshot.currency}`;
    const seen = latest.get(key);
    if (!seen || snapshot.snapshotDate > seen.snapshotDate) latest.set(key, snapshot);
  }
  return [...latest.values()]
    .sort((a, b) => b.billingPeriod.localeCompare(a.billingPeriod) || a.currency.localeCompare(b.currency))
    .map((s) => {
      const files = decodeSnapshotFiles(s);
      const of = (type: string) => files.find((f) => f.lineItemType === type);
      return {
        billingPeriod: s.billingPeriod,
        currency: s.currency,
        snapshotDate: s.snapshotDate,
        state: s.state,
        usageRows: of('usage')?.rows ?? null,
        usageTotal: of('usage')?.total ?? null,
        billingRows: of('billing')?.rows ?? null,
        billingTotal: of('billing')?.total ?? null,
        manifestPath: s.manifestPath ?? null,
        lastError: s.lastError ?? null,
      };
    });
}

/** A table that fits 120 columns; each failed snapshot's last error follows it on a line of its own. */
export function unbilledTable(rows: UnbilledStatusRow[], options: { color?: boolean } = {}): string {
  if (rows.length === 0) return 'Unbilled (month to date): no snapshot yet (timer UNBILLED_SCHEDULE).';
  const table = new Table({
    head: ['month', 'currency', 'snapshot', 'state', 'usage rows', 'usage total', 'billing rows', 'billing total'],
    style: { head: options.color ? ['cyan'] : [], border: options.color ? ['grey'] : [] },
  });
  const text = (v: string | number | null) => (v === null ? '-' : String(v));
  for (const r of rows) {
    table.push([
      r.billingPeriod,
      r.currency,
      r.snapshotDate,
      r.state,
      text(r.usageRows),
      text(r.usageTotal),
      text(r.billingRows),
      text(r.billingTotal),
    ]);
  }
  const errors = rows
    .filter((r) => r.lastError)
    .map((r) => `  ${r.billingPeriod} ${r.currency} ${r.snapshotDate}: ${r.lastError}`);
  return [
    'Unbilled (month to date), the latest snapshot per month and currency:',
    table.toString(),
    ...(errors.length > 0 ? ['Last errors:', ...errors] : []),
  ].join('\n');
}
