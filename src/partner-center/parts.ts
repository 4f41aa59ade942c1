// Maps an invoice's invoiceDetails entries to line-item parts and the v1 request each one needs (ref §5.1-§5.2).
import type { Invoice, InvoiceDetail } from './schemas.js';

export type LineItemType = 'billing' | 'usage';
export type PagingKind = 'offset' | 'seek';

export interface InvoicePart {
  /** `{provider}-{lineItemType}`, e.g. `onetime-billing`; stable, used as the ledger/blob key. */
  partId: string;
  /** Normalised request provider (`office`, `azure`, `onetime`, `marketplace`, or the unknown value normalised). */
  provider: string;
  /** `billing` or `usage` when supported; the normalised raw value otherwise. */
  lineItemType: LineItemType | string;
  detail: InvoiceDetail;
  supported: boolean;
  /** Why the part cannot be read through v1 (only when `supported` is false). */
  reason?: string;
  paging?: PagingKind;
}

const normalise = (value: string | null | undefined) => (value ?? '').toLowerCase().replace(/[_\s-]/g, '');

function lineItemTypeOf(raw: string | null | undefined): string {
  const v = normalise(raw);
  if (v === 'billinglineitems' || v === 'billing') return 'billing';
  if (v === 'usagelineitems' || v === 'usage') return 'usage';
  return v || 'none';
}

/** One part per distinct request; never throws for an invoice with unknown providers or types. */
export function invoiceParts(invoice: Invoice): InvoicePart[] {
  const parts = new Map<string, InvoicePart>();
  for (const detail of invoice.invoiceDetails ?? []) {
    const rawProvider = normalise(detail.billingProvider) || 'none';
    const lineItemType = lineItemTypeOf(detail.invoiceLineItemType);
    // Billed daily-rated usage is served as provider=onetime whatever the detail says (ref §5.2).
    const provider = rawProvider === 'marketplace' && lineItemType === 'usage' ? 'onetime' : rawProvider;
    const partId = `${provider}-${lineItemType}`;
    if (parts.has(partId)) continue;
    const part: InvoicePart = { partId, provider, lineItemType, detail, supported: true };
    if (lineItemType !== 'billing' && lineItemType !== 'usage') {
      part.supported = false;
      part.reason = `unknown invoiceLineItemType '${detail.invoiceLineItemType ?? ''}'`;
    } else if (provider === 'office' || provider === 'azure') {
      if (provider === 'office' && lineItemType === 'usage') {
        part.supported = false;
        part.reason = 'Office has no usage line items (the service answers "Invoice Line Item type is not valid")';
      } else {
        part.paging = 'offset';
      }
    } else if (provider === 'onetime' || provider === 'marketplace') {
      if (lineItemType === 'usage' && !invoice.currencyCode) {
        part.supported = false;
        part.reason = 'billed usage needs the invoice currencyCode, which is missing';
      } else {
        part.paging = 'seek';
      }
    } else {
      part.supported = false;
      part.reason = `unknown billingProvider '${detail.billingProvider ?? ''}'`;
    }
    parts.set(partId, part);
  }
  return [...parts.values()];
}

/** The first-page request path (under /v1) and query for a supported part. */
export function partRequest(invoice: Invoice, part: InvoicePart, pageSize: number): { path: string; query: string } {
  if (!part.supported || !part.paging) throw new Error(`part ${part.partId} cannot be read via v1: ${part.reason}`);
  const id = encodeURIComponent(invoice.id);
  const type = part.lineItemType === 'usage' ? 'UsageLineItems' : 'BillingLineItems';
  if (part.paging === 'offset') {
    const provider = part.provider === 'office' ? 'Office' : 'Azure';
    return { path: `/v1/invoices/${id}/lineitems/${provider}/${type}`, query: `size=${pageSize}` };
  }
  const query = new URLSearchParams({
    provider: part.provider,
    invoicelineitemtype: type.toLowerCase(),
  });
  if (part.lineItemType === 'usage') {
    query.set('currencycode', String(invoice.currencyCode));
    query.set('period', 'previous');
  }
  query.set('size', String(pageSize));
  return { path: `/v1/invoices/${id}/lineitems`, query: query.toString() };
}
