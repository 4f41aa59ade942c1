// zod schemas for what the v1 client relies on (ids, links, invoiceDetails); everything else passes through
// untouched, so unknown fields, new enum values and type drift never fail a sync.
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
  id: z.union([z.string(), z.number()]),
  taxReceiptPdfDownloadLink: z.string().nullish(),
});

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
  taxReceipts: z.array(taxReceiptSchema).nullish(),
  invoiceDetails: z.array(invoiceDetailSchema).nullish(),
  // Validated one by one as invoices when flattened.
  amendments: z.array(z.unknown()).nullish(),
});
export type Invoice = z.infer<typeof invoiceSchema>;

export const collectionSchema = z.looseObject({
  items: z.array(z.unknown()),
  continuationToken: z.string().nullish(),
  links: linksSchema.nullish(),
});
export type Collection = z.infer<typeof collectionSchema>;

/** Validates and returns the SAME object (never a re-built copy), so key order and unknown fields survive. */
export function asInvoice(value: unknown): Invoice {
  const result = invoiceSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new TypeError(`unexpected invoice shape: ${problems}`);
  }
  return value as Invoice;
}

export function asCollection(value: unknown): Collection {
  const result = collectionSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new TypeError(`unexpected collection page shape: ${problems}`);
  }
  return value as Collection;
}
