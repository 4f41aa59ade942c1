// Maps an invoice's invoiceDetails entries to line-item parts and the v1 request each one needs (ref §5.1-§5.2),
// and its taxReceipts entries to receipt ids. Entries are judged one by one: an unusable one is skipped and reported.
import { z } from 'zod';
import { assertSafeId, INVOICE_ID_PATTERN, isSafeId } from '../ids.js';
import { type Invoice, type InvoiceDetail, idText, invoiceDetailSchema } from './schemas.js';

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

/** An array entry that could not be used, by its position in the invoice's array. */
export interface SkippedEntry {
  index: number;
  reason: string;
}

/** How to read one part through v1: decided once by syncInvoice, stored in the ledger, read by every export. */
export interface LineItemRequest {
  /** Under `/v1`, e.g. `/v1/invoices/D02005YFHI/lineitems/Office/BillingLineItems`. */
  path: string;
  /** The first page's query without `?`, e.g. `size=2000` or `provider=onetime&invoicelineitemtype=...&size=2000`. */
  query: string;
  paging: PagingKind;
}

const ID = INVOICE_ID_PATTERN.source.replace(/^\^|\$$/g, '');
/** A stored request is checked on the way back in: it becomes a URL that carries the Partner Center token. */
export const lineItemRequestSchema: z.ZodType<LineItemRequest> = z.strictObject({
  path: z.string().regex(new RegExp(`^/v1/invoices/${ID}/lineitems(/[A-Za-z]+/[A-Za-z]+)?$`), {
    message: 'expected /v1/invoices/{id}/lineitems[/{Provider}/{Type}]',
  }),
  query: z.string().regex(/^[A-Za-z0-9=&%+._~-]*$/, { message: 'expected a URL-encoded query without ?' }),
  paging: z.enum(['offset', 'seek']),
});

/** The most rows one v1 line-item page may carry, and the service default (ref §5.1). */
export const MAX_LINE_ITEM_PAGE_SIZE = 2000;

const normalise = (value: string | null | undefined) => (value ?? '').toLowerCase().replace(/[_\s-]/g, '');

/** `billing`, `usage` (from their long names too), or the normalised value; `none` when empty. */
function lineItemTypeOf(raw: string | null | undefined): string {
  const v = normalise(raw);
  if (v === 'billinglineitems') return 'billing';
  if (v === 'usagelineitems') return 'usage';
  return v || 'none';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * One part per distinct request; never throws for an invoice with unknown providers or types. An invoiceDetails
 * entry that is not an object (null, a string) or has the wrong field types is skipped and listed in `skipped`.
 */
export function invoiceParts(invoice: Invoice): { parts: InvoicePart[]; skipped: SkippedEntry[] } {
  const parts = new Map<string, InvoicePart>();
  const skipped: SkippedEntry[] = [];
  for (const [index, entry] of (invoice.invoiceDetails ?? []).entries()) {
    if (!isObject(entry)) {
      skipped.push({ index, reason: `invoiceDetails[${index}] is ${entry === null ? 'null' : typeof entry}` });
      continue;
    }
    const checked = invoiceDetailSchema.safeParse(entry);
    if (!checked.success) {
      const problems = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      skipped.push({ index, reason: `invoiceDetails[${index}] unusable: ${problems}` });
      continue;
    }
    const detail = entry as InvoiceDetail;
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
  return { parts: [...parts.values()], skipped };
}

export interface TaxReceiptRef {
  /** Safe as a path segment (the id rule of src/ids.ts); a numeric id as its decimal text. */
  id: string;
  pdfLink?: string;
}

/** The invoice's tax receipts that can be fetched; an entry without a usable id is skipped and reported. */
export function taxReceipts(invoice: Invoice): { receipts: TaxReceiptRef[]; skipped: SkippedEntry[] } {
  const receipts: TaxReceiptRef[] = [];
  const skipped: SkippedEntry[] = [];
  for (const [index, entry] of (invoice.taxReceipts ?? []).entries()) {
    if (!isObject(entry)) {
      skipped.push({ index, reason: `taxReceipts[${index}] is ${entry === null ? 'null' : typeof entry}` });
      continue;
    }
    const id = idText(entry.id);
    if (!isSafeId(id)) {
      skipped.push({ index, reason: `taxReceipts[${index}] has no usable id (${JSON.stringify(entry.id) ?? 'none'})` });
      continue;
    }
    const link = entry.taxReceiptPdfDownloadLink;
    receipts.push({ id, ...(typeof link === 'string' && link ? { pdfLink: link } : {}) });
  }
  return { receipts, skipped };
}

/** The first-page request of a supported part; `pageSize` is clamped to 1..2000 (the service maximum). */
export function partRequest(invoice: Invoice, part: InvoicePart, pageSize: number): LineItemRequest {
  if (!part.supported || !part.paging) throw new Error(`part ${part.partId} cannot be read via v1: ${part.reason}`);
  assertSafeId(invoice.id);
  const size = Math.min(Math.max(1, Math.floor(pageSize) || 1), MAX_LINE_ITEM_PAGE_SIZE);
  const id = invoice.id;
  const type = part.lineItemType === 'usage' ? 'UsageLineItems' : 'BillingLineItems';
  if (part.paging === 'offset') {
    const provider = part.provider === 'office' ? 'Office' : 'Azure';
    return { path: `/v1/invoices/${id}/lineitems/${provider}/${type}`, query: `size=${size}`, paging: 'offset' };
  }
  const query = new URLSearchParams({
    provider: part.provider,
    invoicelineitemtype: type.toLowerCase(),
  });
  if (part.lineItemType === 'usage') {
    query.set('currencycode', String(invoice.currencyCode));
    query.set('period', 'previous');
  }
  query.set('size', String(size));
  return { path: `/v1/invoices/${id}/lineitems`, query: query.toString(), paging: 'seek' };
}
