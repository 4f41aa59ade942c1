// Public surface of the Graph v2 billed-export client (src/graph/).
export {
  type AttributeSet,
  defaultGraphLinkPolicy,
  type ExportKind,
  GRAPH_SCOPE,
  GraphBillingClient,
  type GraphBillingClientOptions,
  type ManifestCheckpoint,
  type ManifestChunk,
  type ManifestLinesOptions,
  type OperationState,
  parseRetryAfter,
  type StartExportOptions,
  type StartedExport,
} from './client.js';
export { DisallowedLinkError, SasExpiredError, UnexpectedOperationError } from './errors.js';
export { jsonLines } from './lines.js';
export { blobUrl, type Manifest, type ManifestBlob, manifestSchema } from './manifest.js';
