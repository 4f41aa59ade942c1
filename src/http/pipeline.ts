// The shared HTTP pipeline (core-rest-pipeline) of the Partner Center and Graph clients: which policies run, and
// where. Each policy lives in its own module; the order is the library's phases, and within the Retry phase the
// order the policies are added in (test/http/pipeline-unit.test.ts holds the whole order):
//   (no phase)   requestIdPolicy          MS-RequestId once per call, so every retry of the call reuses it
//                apiErrorPolicy           every non-2xx or transport failure becomes one ApiError
//   Retry        retryPolicy              the library's loop with our one RetryStrategy (src/http/retry.ts)
//                requestTelemetryPolicy   one report per attempt
//                attemptTimeoutPolicy     per attempt: headers and text body within timeoutMs, stream idle timeout
//                boundedBodyPolicy        text bodies read here, capped; error bodies of streams read and closed
//   Sign         bearer token (the library's), with the loopback rewrite around it for the simulator only
//   after Sign   logPolicy                the library's logging, header values redacted unless allow-listed
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { TokenCredential } from '@azure/core-auth';
import {
  bearerTokenAuthenticationPolicy,
  bearerTokenAuthenticationPolicyName,
  createDefaultHttpClient,
  createEmptyPipeline,
  createHttpHeaders,
  createPipelineRequest,
  type HttpClient,
  type HttpMethods,
  isRestError,
  logPolicy,
  type Pipeline,
  type PipelinePolicy,
  type PipelineRequest,
  type PipelineResponse,
  retryPolicy,
} from '@azure/core-rest-pipeline';
import { attemptTimeoutPolicy } from './attempt-timeout.js';
import { type BodyLimit, bodyBytesOf, boundedBodyPolicy, readBodyAsBytes, readBodyAsText } from './bodies.js';
import { ApiError, apiErrorFromResponse, requestIdsOf } from './errors.js';
import { loopbackAuthPolicies, loopbackInsecurePolicy } from './loopback.js';
import { type RequestTelemetry, requestTelemetryPolicy } from './request-telemetry.js';
import { isTransportError, RETRY_AFTER_TOO_LONG, retryStrategy } from './retry.js';

export { endpointTemplate, type RequestTelemetry } from './request-telemetry.js';

export interface CreatePipelineOptions {
  /** Omit for signed links: the pipeline then has no auth policy at all, so no Authorization can leak. */
  credential?: TokenCredential;
  scopes?: string | string[];
  /** Per attempt, until response headers and a text body arrive. Default 180 000 (HTTP_TIMEOUT_SECONDS). */
  timeoutMs?: number;
  /** Default 6 (HTTP_MAX_RETRIES). */
  maxRetries?: number;
  /** Base of the exponential backoff (with jitter). Default 1000. */
  retryDelayInMs?: number;
  /** Cap of one backoff delay. Default 64 000. */
  maxRetryDelayInMs?: number;
  /** A Retry-After longer than this fails the call with a retriable ApiError instead of blocking. Default 120 000. */
  maxRetryAfterMs?: number;
  /** The largest text (JSON) body read; beyond it the call fails, permanently. Default 256 MiB (MAX_PAGE_BYTES). */
  textBodyLimit?: BodyLimit;
  /** Header set once per call and kept across its retries. Default `MS-RequestId` (Graph: `client-request-id`). */
  requestIdHeaderName?: string;
  /** Header carrying the operation's correlation id; a fresh one is set when the caller gave none. */
  correlationIdHeaderName?: string;
  /** Allow plain http (and bearer tokens over it) to 127.0.0.1/localhost/[::1] only: the local simulator. */
  allowInsecureLoopback?: boolean;
  /** Response/request headers whose values may be logged; all others are logged as REDACTED by the library. */
  additionalAllowedHeaderNames?: string[];
  /** Which service this pipeline talks to, as reported in `onRequestCompleted` (default: from the URL's host). */
  telemetryHost?: RequestTelemetry['host'];
  /** Called once per attempt (retries included), after its response or its failure. Must not throw. */
  onRequestCompleted?: (info: RequestTelemetry) => void;
}

export const DEFAULT_MAX_PAGE_BYTES = 256 * 1024 ** 2;

// The library's logger already shows MS-CV, Retry-After, client-request-id, request-id and x-ms-request-id.
const LOGGED_HEADERS = ['MS-RequestId', 'MS-CorrelationId', 'MS-ServerId', 'Location'];

/** MS-RequestId once per call (outside the retry policy, so every retry reuses it) and a correlation id. */
function requestIdPolicy(requestIdHeader: string, correlationIdHeader: string): PipelinePolicy {
  return {
    name: 'requestIdPolicy',
    sendRequest(request, next) {
      if (!request.headers.has(requestIdHeader)) request.headers.set(requestIdHeader, randomUUID());
      if (!request.headers.has(correlationIdHeader)) request.headers.set(correlationIdHeader, randomUUID());
      return next(request);
    },
  };
}

/** Outside the retries: transport failures and non-2xx responses (bodies already read) become one ApiError. */
function apiErrorPolicy(): PipelinePolicy {
  return {
    name: 'apiErrorPolicy',
    async sendRequest(request, next) {
      let response: PipelineResponse;
      try {
        response = await next(request);
      } catch (e) {
        if (e instanceof ApiError || !isRestError(e)) throw e;
        if (e.response) {
          const note = e.code === RETRY_AFTER_TOO_LONG ? e.message : undefined;
          throw apiErrorFromResponse(e.response, undefined, note);
        }
        throw new ApiError({
          code: e.code,
          description: e.message,
          ...requestIdsOf(request),
          retriable: isTransportError(e),
          url: request.url,
          cause: e,
        });
      }
      // Node's client answers 1xx itself: a response here is 2xx or an error.
      if (response.status < 300) return response;
      throw apiErrorFromResponse(response);
    },
  };
}

/** The pipeline shared by the Partner Center and Graph clients. */
export function createPipeline(options: CreatePipelineOptions = {}): Pipeline {
  const requestIdHeader = options.requestIdHeaderName ?? 'MS-RequestId';
  const correlationIdHeader = options.correlationIdHeaderName ?? 'MS-CorrelationId';
  const pipeline = createEmptyPipeline();
  // No phase: before the Retry phase, in this order (nothing else is added outside a phase).
  pipeline.addPolicy(requestIdPolicy(requestIdHeader, correlationIdHeader));
  pipeline.addPolicy(apiErrorPolicy());

  const retry = retryPolicy(
    [
      retryStrategy({
        retryDelayInMs: options.retryDelayInMs ?? 1000,
        maxRetryDelayInMs: options.maxRetryDelayInMs ?? 64_000,
        maxRetryAfterMs: options.maxRetryAfterMs ?? 120_000,
      }),
    ],
    { maxRetries: options.maxRetries ?? 6 },
  );
  // The Retry phase in the order added: retry, telemetry (per attempt), attempt timeout, bounded bodies.
  pipeline.addPolicy(retry, { phase: 'Retry' });
  if (options.onRequestCompleted) {
    const telemetry = requestTelemetryPolicy(options.onRequestCompleted, {
      host: options.telemetryHost,
      correlationIdHeader,
      requestIdHeader,
    });
    pipeline.addPolicy(telemetry, { phase: 'Retry' });
  }
  pipeline.addPolicy(attemptTimeoutPolicy(options.timeoutMs ?? 180_000), { phase: 'Retry' });
  const bodies = boundedBodyPolicy(
    options.textBodyLimit ?? { bytes: DEFAULT_MAX_PAGE_BYTES, name: 'maxPageBytes (setting MAX_PAGE_BYTES)' },
  );
  pipeline.addPolicy(bodies, { phase: 'Retry' });

  if (options.credential) {
    const auth = bearerTokenAuthenticationPolicy({ credential: options.credential, scopes: options.scopes ?? [] });
    pipeline.addPolicy(auth, { phase: 'Sign' });
    if (options.allowInsecureLoopback) {
      const loopback = loopbackAuthPolicies();
      pipeline.addPolicy(loopback.before, { phase: 'Sign', beforePolicies: [bearerTokenAuthenticationPolicyName] });
      pipeline.addPolicy(loopback.after, { phase: 'Sign', afterPolicies: [bearerTokenAuthenticationPolicyName] });
    }
  } else if (options.allowInsecureLoopback) {
    pipeline.addPolicy(loopbackInsecurePolicy(), { phase: 'Sign' });
  }
  pipeline.addPolicy(
    logPolicy({ additionalAllowedHeaderNames: [...LOGGED_HEADERS, ...(options.additionalAllowedHeaderNames ?? [])] }),
    { afterPhase: 'Sign' },
  );
  return pipeline;
}

let sharedHttpClient: HttpClient | undefined;
/** One keep-alive HTTP client per process. */
export function defaultHttpClient(): HttpClient {
  sharedHttpClient ??= createDefaultHttpClient();
  return sharedHttpClient;
}

export interface ApiRequestOptions {
  method?: HttpMethods;
  headers?: Record<string, string>;
  /** Sent as MS-CorrelationId (or the pipeline's correlation header); one per logical operation. */
  correlationId?: string;
  correlationIdHeaderName?: string;
  body?: string;
  /** Read the 2xx body as a stream (error bodies are still read for the ApiError). Default: text. */
  stream?: boolean;
  /** Read the 2xx body whole as bytes (capped like text, never decoded). */
  bytes?: boolean;
  abortSignal?: AbortSignal;
}

export function createApiRequest(url: string, options: ApiRequestOptions = {}): PipelineRequest {
  const headers = createHttpHeaders({ Accept: 'application/json', ...options.headers });
  if (options.correlationId) headers.set(options.correlationIdHeaderName ?? 'MS-CorrelationId', options.correlationId);
  const request = createPipelineRequest({
    url,
    method: options.method ?? 'GET',
    headers,
    body: options.body,
    abortSignal: options.abortSignal,
  });
  if (options.stream) request.streamResponseStatusCodes = new Set([Number.POSITIVE_INFINITY]);
  else if (options.bytes) readBodyAsBytes(request);
  else readBodyAsText(request);
  return request;
}

/** Sends and returns the 2xx body as text with a leading UTF-8 BOM removed; anything else throws ApiError. */
export async function sendForText(
  pipeline: Pipeline,
  url: string,
  options: ApiRequestOptions = {},
  httpClient: HttpClient = defaultHttpClient(),
): Promise<{ text: string; response: PipelineResponse }> {
  const response = await pipeline.sendRequest(httpClient, createApiRequest(url, { ...options, stream: false }));
  return { text: stripBom(response.bodyAsText ?? ''), response };
}

/**
 * Sends and returns the 2xx body as the bytes read from the socket (capped like a text body, never decoded), with a
 * leading UTF-8 BOM left in place for the caller's parser; anything else throws ApiError.
 */
export async function sendForBytes(
  pipeline: Pipeline,
  url: string,
  options: ApiRequestOptions = {},
  httpClient: HttpClient = defaultHttpClient(),
): Promise<{ bytes: Buffer; response: PipelineResponse }> {
  const response = await pipeline.sendRequest(
    httpClient,
    createApiRequest(url, { ...options, stream: false, bytes: true }),
  );
  return { bytes: bodyBytesOf(response) ?? Buffer.alloc(0), response };
}

/** Sends and returns the 2xx body as a Node stream (never buffered); anything else throws ApiError. */
export async function sendForStream(
  pipeline: Pipeline,
  url: string,
  options: ApiRequestOptions = {},
  httpClient: HttpClient = defaultHttpClient(),
): Promise<{ stream: Readable; response: PipelineResponse }> {
  const response = await pipeline.sendRequest(httpClient, createApiRequest(url, { ...options, stream: true }));
  const stream = response.readableStreamBody as Readable | undefined;
  if (!stream) {
    throw new ApiError({
      status: response.status,
      description: 'response has no body stream',
      ...requestIdsOf(response.request, response),
      retriable: true,
      url: response.request.url,
    });
  }
  return { stream, response };
}

export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
