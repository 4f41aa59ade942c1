// Accrual against bill: when a billed invoice is finalized, the last complete unbilled snapshot of its billing
// period and currency is set against what was billed in that period and currency. Computed once, in finalize, and
// stored in the invoice's manifest. A difference is reported as measured (exact decimals), never forced.
import { amountText, type Decimal, parseAmount, sumAmounts } from '../../money.js';
import type { InvoiceEntity } from '../../storage/invoices.js';
import type { PartEntity } from '../../storage/parts.js';
import { decodeSnapshotFiles, type SnapshotEntity } from '../../storage/unbilled.js';
import type { SyncDeps } from '../deps.js';

export interface AmountComparison {
  unbilled: string | null;
  billed: string | null;
  /** billed − unbilled, exact; null when either side is unknown. */
  difference: string | null;
}

export interface UnbilledComparison {
  billingPeriod: string;
  currency: string;
  /** The snapshot compared: the last complete one of the period and currency. */
  snapshot: { snapshotKey: string; snapshotDate: string; manifestPath: string | null; completedAt: string | null };
  /** The invoices of the period and currency whose totals make up the billed side (this one included). */
  invoices: string[];
  /** Unbilled reconciliation total (TotalForCustomer) against the invoices' totalCharges. */
  billing: AmountComparison;
  /** Unbilled daily-rated usage total (BillingPreTaxTotal) against the invoices' billed usage line items. */
  usage: AmountComparison;
  basis: string;
}

const BASIS =
  'billing: the unbilled reconciliation rows (TotalForCustomer) of the last complete snapshot against the sum of ' +
  'totalCharges of the invoices of the same billing period and currency; usage: the unbilled daily-rated usage ' +
  '(BillingPreTaxTotal) against those invoices\u2019 billed usage line items; difference = billed \u2212 unbilled, exact';

function compare(unbilled: Decimal | undefined, billed: Decimal | undefined): AmountComparison {
  return {
    unbilled: unbilled ? amountText(unbilled) : null,
    billed: billed ? amountText(billed) : null,
    difference: unbilled && billed ? amountText(billed.minus(unbilled)) : null,
  };
}

const sumOrNone = (amounts: (Decimal | undefined)[]) => {
  const known = amounts.filter((a): a is Decimal => a !== undefined);
  return known.length === 0 ? undefined : sumAmounts(known);
};

/** The comparison for `entity` (being finalized with `parts`), or undefined when no snapshot of its month exists. */
export async function unbilledComparison(
  deps: SyncDeps,
  entity: InvoiceEntity,
  parts: PartEntity[],
): Promise<UnbilledComparison | undefined> {
  const { ledger } = deps.storage;
  const currency = entity.currencyCode.trim().toUpperCase();
  let latest: SnapshotEntity | undefined;
  for await (const snapshot of ledger.listSnapshots({ billingPeriod: entity.billingPeriod, currency })) {
    if (snapshot.state !== 'complete') continue;
    if (!latest || snapshot.snapshotDate > latest.snapshotDate) latest = snapshot;
  }
  if (!latest) return undefined;

  const invoices: { entity: InvoiceEntity; parts: PartEntity[] }[] = [{ entity, parts }];
  for await (const other of ledger.listInvoices()) {
    if (other.invoiceId === entity.invoiceId || !other.billingPeriodFixed) continue;
    if (other.billingPeriod !== entity.billingPeriod || other.currencyCode.trim().toUpperCase() !== currency) continue;
    invoices.push({ entity: other, parts: await ledger.listParts(other.invoiceId) });
  }
  invoices.sort((a, b) => a.entity.invoiceId.localeCompare(b.entity.invoiceId));
  const billedCharges = sumOrNone(invoices.map((i) => parseAmount(i.entity.totalCharges)));
  const billedUsage = sumOrNone(
    invoices.flatMap((i) =>
      i.parts.filter((p) => p.lineItemType === 'usage' && p.state === 'complete').map((p) => parseAmount(p.lineTotal)),
    ),
  );
  const files = decodeSnapshotFiles(latest);
  const unbilledOf = (type: string) => parseAmount(files.find((f) => f.lineItemType === type)?.total ?? undefined);
  return {
    billingPeriod: entity.billingPeriod,
    currency,
    snapshot: {
      snapshotKey: latest.snapshotKey,
      snapshotDate: latest.snapshotDate,
      manifestPath: latest.manifestPath ?? null,
      completedAt: latest.completedAt ?? null,
    },
    invoices: invoices.map((i) => i.entity.invoiceId),
    billing: compare(unbilledOf('billing'), billedCharges),
    usage: compare(unbilledOf('usage'), billedUsage),
    basis: BASIS,
  };
}
