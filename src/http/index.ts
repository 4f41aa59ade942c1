// Public surface of the shared HTTP layer (pipeline, errors, retries, redaction, raw JSON page splitting, paging).
export { type BodyLimit, limitStream } from './bodies.js';
export {
  ApiError,
  type ApiErrorOptions,
  apiErrorFromResponse,
  describeError,
  type FailureKind,
  failureKind,
  isApiError,
  OperationError,
  parseErrorBody,
  rootCause,
  withOperation,
} from './errors.js';
export { type JsonItemsPage, rawTopLevelValue, splitJsonArray, splitJsonItems } from './json-items.js';
export { createLinkPolicy, type LinkPolicyOptions, linkPolicy } from './link-policy.js';
export { ndjsonOf, type Page } from './paging.js';
export {
  type ApiRequestOptions,
  type CreatePipelineOptions,
  createApiRequest,
  createPipeline,
  DEFAULT_MAX_PAGE_BYTES,
  defaultHttpClient,
  endpointTemplate,
  type RequestTelemetry,
  sendForBytes,
  sendForStream,
  sendForText,
  stripBom,
} from './pipeline.js';
export { redactText, redactUrl } from './redact.js';
export { isRetriableStatus, isTransportError, retryAfterMs, retryStrategy } from './retry.js';
