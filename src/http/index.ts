// Public surface of the shared HTTP layer (pipeline, ApiError, redaction, raw JSON page splitting).
export {
  ApiError,
  type ApiErrorOptions,
  apiErrorFromResponse,
  isApiError,
  isRetriableStatus,
  parseErrorBody,
} from './errors.js';
export { type JsonItemsPage, rawTopLevelValue, splitJsonArray, splitJsonItems } from './json-items.js';
export { ndjsonOf, type Page } from './paging.js';
export {
  type ApiRequestOptions,
  type CreatePipelineOptions,
  createApiRequest,
  createPipeline,
  defaultHttpClient,
  endpointTemplate,
  type RequestTelemetry,
  retryAfterMsOf,
  sendForStream,
  sendForText,
  stripBom,
} from './pipeline.js';
export { redactText, redactUrl } from './redact.js';
