// Public surface of the Partner Center v1 client.
export {
  type LineItemCheckpoint,
  type LineItemPage,
  type LineItemReader,
  type OperationOptions,
  PARTNER_CENTER_SCOPE,
  PartnerCenterClient,
  type PartnerCenterClientOptions,
  type PdfDocument,
} from './client.js';
export { type InvoicePart, invoiceParts, type LineItemType, type PagingKind, partRequest } from './parts.js';
export { asInvoice, type Invoice, type InvoiceDetail, invoiceSchema, type Link } from './schemas.js';
