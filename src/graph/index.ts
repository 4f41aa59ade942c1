// Public surface of the Graph v2 billed-export client (src/graph/).
export {
  type AttributeSet,
  DEFAULT_MAX_LINE_BYTES,
  defaultGraphLinkPolicy,
  type ExportKind,
  GRAPH_SCOPE,
  GraphBillingClient,
  type GraphBillingClientOptions,
  type ManifestPagesOptions,
  type OperationState,
  type StartExportOptions,
  type StartedExport,
  type UnbilledPeriod,
} from './client.js';
export {
  DisallowedLinkError,
  LineTooLongError,
  ManifestMismatchError,
  SasExpiredError,
  UnexpectedOperationError,
  UnsupportedDataFormatError,
} from './errors.js';
export {
  blobUrl,
  checkManifest,
  jsonLines,
  type Manifest,
  type ManifestBlob,
  type ManifestCheckpoint,
  manifestCheckpointSchema,
  manifestSchema,
} from './lines.js';
