// Public surface of the Partner Center v1 client.
export {
  DEFAULT_MAX_PDF_BYTES,
  type LineItemPagesOptions,
  type ListedItem,
  type OperationOptions,
  PARTNER_CENTER_SCOPE,
  PartnerCenterClient,
  type PartnerCenterClientOptions,
  type PdfDocument,
} from './client.js';
export { InvalidCheckpointError, type LineItemCheckpoint, lineItemCheckpointSchema } from './line-items.js';
export {
  type InvoicePart,
  invoiceParts,
  type LineItemRequest,
  type LineItemType,
  lineItemRequestSchema,
  MAX_LINE_ITEM_PAGE_SIZE,
  type PagingKind,
  partRequest,
  type SkippedEntry,
  type TaxReceiptRef,
  taxReceipts,
} from './parts.js';
export {
  asInvoice,
  InvalidResponseError,
  type Invoice,
  type InvoiceDetail,
  invoiceSchema,
  type Link,
} from './schemas.js';
