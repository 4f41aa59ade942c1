// Public surface of the Graph v2 billed-export client (src/graph/).
export {
  type AttributeSet,
  defaultGraphLinkPolicy,
  type ExportKind,
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
export { GraphRequestError } from './graph-error.js';
export { jsonLines } from './lines.js';
export { blobUrl, type Manifest, type ManifestBlob, manifestSchema } from './manifest.js';
export { GRAPH_SCOPE } from './pipeline.js';
