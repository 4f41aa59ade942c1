// zod schemas for what the v1 client relies on (ids, links, collection envelopes); everything else passes through
// untouched, so unknown fields, new enum values and type drift never fail a sync. Entries of `invoiceDetails` and
// `taxReceipts` are judged one by one where they are used (parts.ts), never as a condition of the invoice.
import { z } from 'zod';

export const linkSchema = z.looseObject({
  uri: z.string(),
  method: z.string().nullish(),
  headers: z.array(z.looseObject({ key: z.string(), value: z.string() })).nullish(),
});
export type Link = z.infer<typeof linkSchema>;

const linksSchema = z.looseObject({ self: linkSchema.nullish(), next: linkSchema.nullish() });

export const invoiceDetailSchema = z.looseObject({
  // Plain strings, not enums: the service adds values (`Marketplace`) and strict clients broke on them.
  invoiceLineItemType: z.string().nullish(),
  billingProvider: z.string().nullish(),
  links: linksSchema.nullish(),
});
export type InvoiceDetail = z.infer<typeof invoiceDetailSchema>;

export const taxReceiptSchema = z.looseObject({
  id: z.union([z.string().min(1), z.number()]),
  taxReceiptPdfDownloadLink: z.string().nullish(),
});
export type TaxReceipt = z.infer<typeof taxReceiptSchema>;

export const invoiceSchema = z.looseObject({
  id: z.string().min(1),
  invoiceDate: z.string().nullish(),
  billingPeriodStartDate: z.string().nullish(),
  billingPeriodEndDate: z.string().nullish(),
  currencyCode: z.string().nullish(),
  documentType: z.string().nullish(),
  invoiceType: z.string().nullish(),
  amendsOf: z.string().nullish(),
  pdfDownloadLink: z.string().nullish(),
  // Anything at all in these arrays: one unusable entry must not make the whole invoice unusable.
  taxReceipts: z.array(z.unknown()).nullish(),
  invoiceDetails: z.array(z.unknown()).nullish(),
  // Judged one by one as invoices of their own when the list is walked.
  amendments: z.array(z.unknown()).nullish(),
});
export type Invoice = z.infer<typeof invoiceSchema>;

export const collectionSchema = z.looseObject({
  items: z.array(z.unknown()),
  continuationToken: z.string().nullish(),
  links: linksSchema.nullish(),
});
export type Collection = z.infer<typeof collectionSchema>;

/** A response body that does not have the shape the client relies on: the same body fails the same way again. */
export class InvalidResponseError extends TypeError {
  override name = 'InvalidResponseError';
  readonly retriable = false;
}

function problemsOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** A numeric id (a safe integer) as its decimal text; anything else unchanged. */
export function idText(value: unknown): unknown {
  return typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
}

/**
 * Validates and returns the SAME object (never a re-built copy), so key order and unknown fields survive. The only
 * change made in place: a numeric `id` or `amendsOf` (a safe integer) becomes its decimal text.
 */
export function asInvoice(value: unknown): Invoice {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    if (typeof o.id === 'number') o.id = idText(o.id);
    if (typeof o.amendsOf === 'number') o.amendsOf = idText(o.amendsOf);
  }
  const result = invoiceSchema.safeParse(value);
  if (!result.success) throw new InvalidResponseError(`unexpected invoice shape: ${problemsOf(result.error)}`);
  return value as Invoice;
}

export function asCollection(value: unknown): Collection {
  const result = collectionSchema.safeParse(value);
  if (!result.success) {
    throw new InvalidResponseError(`unexpected collection page shape: ${problemsOf(result.error)}`);
  }
  return value as Collection;
}
