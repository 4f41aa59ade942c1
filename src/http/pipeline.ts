// The shared HTTP pipeline (core-rest-pipeline): bearer auth, the library's Retry-After/exponential retry,
// per-call request ids, per-attempt timeout, log redaction, and every non-2xx turned into an ApiError.
import { randomUUID } from 'node:crypto';
import { type Readable, pipeline as streamPipeline, Transform } from 'node:stream';
import type { TokenCredential } from '@azure/core-auth';
import {
  bearerTokenAuthenticationPolicy,
  createDefaultHttpClient,
  createEmptyPipeline,
  createHttpHeaders,
  createPipelineRequest,
  defaultRetryPolicy,
  type HttpClient,
  type HttpMethods,
  isRestError,
  logPolicy,
  type Pipeline,
  type PipelinePolicy,
  type PipelineRequest,
  type PipelineResponse,
  RestError,
} from '@azure/core-rest-pipeline';
import { ApiError, apiErrorFromResponse, isRetriableStatus, requestIdsOf } from './errors.js';

export interface CreatePipelineOptions {
  /** Omit for signed links: the pipeline then has no auth policy at all, so no Authorization can leak. */
  credential?: TokenCredential;
  scopes?: string | string[];
  /** Per attempt, until response headers arrive. Default 180 000 (HTTP_TIMEOUT_SECONDS). */
  timeoutMs?: number;
  /** Default 6 (HTTP_MAX_RETRIES). */
  maxRetries?: number;
  /** Base of the exponential backoff (with jitter). Default 1000. */
  retryDelayInMs?: number;
  /** Cap of one backoff delay. Default 64 000. */
  maxRetryDelayInMs?: number;
  /** A Retry-After longer than this fails the call with a retriable ApiError instead of blocking. Default 120 000. */
  maxRetryAfterMs?: number;
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
  /** Called once per attempt (retries included), after its response headers or its failure. Must not throw. */
  onRequestCompleted?: (info: RequestTelemetry) => void;
}

/** One HTTP attempt as telemetry sees it: never a body, a query string, a header value other than the ids. */
export interface RequestTelemetry {
  host: 'partnercenter' | 'graph' | 'blob' | 'token' | (string & {});
  method: string;
  /** The path with ids replaced, e.g. `/v1/invoices/{id}/lineitems`; never the query string. */
  endpoint: string;
  /** HTTP status; 0 when the attempt got no response (reset, timeout). */
  status: number;
  /** 1 for the first try of a call, 2 for its first retry, ... */
  attempt: number;
  durationMs: number;
  throttled: boolean;
  correlationId?: string;
  requestId?: string;
  /** Transport error code (ECONNRESET, ETIMEDOUT, ...) when there was no response. */
  errorCode?: string;
}

const LOGGED_HEADERS = [
  'MS-RequestId',
  'MS-CorrelationId',
  'MS-CV',
  'MS-ServerId',
  'Retry-After',
  'client-request-id',
  'request-id',
  'x-ms-request-id',
  'Location',
];

function isLoopbackHttp(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  } catch {
    return false;
  }
}

/** Milliseconds the server asked us to wait (same header forms the library honours), or undefined. */
export function retryAfterMsOf(response: PipelineResponse): number | undefined {
  const ms = response.headers.get('retry-after-ms') ?? response.headers.get('x-ms-retry-after-ms');
  if (ms !== undefined && ms.trim() !== '' && Number.isFinite(Number(ms))) return Number(ms);
  const value = response.headers.get('Retry-After');
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

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

/**
 * Shapes each attempt's throttling response for the library's retry strategies: a 429 without Retry-After gets
 * an exponential, jittered `retry-after-ms` (per call: the attempt count lives on the request object), and a
 * Retry-After beyond our cap fails fast instead of hanging a Function.
 */
function throttlingShapePolicy(baseDelayMs: number, maxDelayMs: number, maxRetryAfterMs: number): PipelinePolicy {
  const attempts = new WeakMap<PipelineRequest, number>();
  return {
    name: 'throttlingShapePolicy',
    async sendRequest(request, next) {
      const response = await next(request);
      if (response.status !== 429 && response.status !== 503) return response;
      const asked = retryAfterMsOf(response);
      if (asked === undefined && response.status === 429) {
        const attempt = attempts.get(request) ?? 0;
        attempts.set(request, attempt + 1);
        const clamped = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
        const delay = Math.round(clamped / 2 + Math.random() * (clamped / 2));
        response.headers.set('retry-after-ms', String(delay));
        return response;
      }
      if (asked !== undefined && asked > maxRetryAfterMs) {
        const error = apiErrorFromResponse(response);
        throw new ApiError({
          status: error.status,
          code: error.code,
          description: `${error.description} (server asked to retry after ${Math.round(asked / 1000)} s, beyond the ${Math.round(maxRetryAfterMs / 1000)} s limit)`,
          requestId: error.requestId,
          correlationId: error.correlationId,
          retriable: true,
          url: request.url,
          retryAfterMs: asked,
        });
      }
      return response;
    },
  };
}

/**
 * Bounds each attempt: headers and a text body must arrive within `timeoutMs`, and a streamed body may not stall
 * longer than that between chunks. A timeout becomes ETIMEDOUT and a text body cut mid-way ECONNRESET, which the
 * library's exponential strategy retries as system errors. (The library's own `request.timeout` stops at headers.)
 */
function attemptTimeoutPolicy(timeoutMs: number): PipelinePolicy {
  return {
    name: 'attemptTimeoutPolicy',
    async sendRequest(request, next) {
      const callerSignal = request.abortSignal;
      const attempt = new AbortController();
      const onCallerAbort = () => attempt.abort();
      if (callerSignal?.aborted) attempt.abort();
      callerSignal?.addEventListener('abort', onCallerAbort);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        attempt.abort();
      }, timeoutMs);
      request.abortSignal = attempt.signal;
      try {
        const response = await next(request);
        if (response.readableStreamBody) {
          response.readableStreamBody = withIdleTimeout(response.readableStreamBody as Readable, timeoutMs);
        }
        return response;
      } catch (e) {
        if (timedOut && !callerSignal?.aborted) {
          throw new RestError(`no complete response within ${timeoutMs} ms`, { code: 'ETIMEDOUT', request });
        }
        if (
          isRestError(e) &&
          e.code === RestError.PARSE_ERROR &&
          /aborted|ECONNRESET|socket hang up/i.test(e.message)
        ) {
          throw new RestError(`connection dropped while reading the response (${e.message})`, {
            code: 'ECONNRESET',
            request,
          });
        }
        throw e;
      } finally {
        clearTimeout(timer);
        callerSignal?.removeEventListener('abort', onCallerAbort);
        // The retry policy checks the caller's signal, not ours, to decide whether an abort is final.
        request.abortSignal = callerSignal;
      }
    },
  };
}

/** A streamed body that fails (instead of hanging a Function) when no data arrives for `idleMs`. */
function withIdleTimeout(body: Readable, idleMs: number): Readable {
  const guard = new Transform({
    transform(chunk, _encoding, callback) {
      timer.refresh();
      callback(null, chunk);
    },
  });
  const timer = setTimeout(() => {
    guard.destroy(Object.assign(new Error(`response body stalled for ${idleMs} ms`), { code: 'ETIMEDOUT' }));
  }, idleMs);
  guard.on('close', () => clearTimeout(timer));
  guard.on('end', () => clearTimeout(timer));
  streamPipeline(body, guard, () => clearTimeout(timer));
  return guard;
}

/**
 * The library's bearer policy refuses http. For the loopback simulator only, present the URL as https to it and
 * restore it right after, so the library's token cache is still the one in use.
 */
const loopbackMarker = new WeakSet<PipelineRequest>();
function loopbackBeforeAuthPolicy(): PipelinePolicy {
  return {
    name: 'loopbackBeforeAuthPolicy',
    async sendRequest(request, next) {
      if (!isLoopbackHttp(request.url)) return next(request);
      request.allowInsecureConnection = true;
      const original = request.url;
      request.url = `https:${original.slice('http:'.length)}`;
      loopbackMarker.add(request);
      try {
        return await next(request);
      } finally {
        request.url = original;
        loopbackMarker.delete(request);
      }
    },
  };
}
function loopbackAfterAuthPolicy(): PipelinePolicy {
  return {
    name: 'loopbackAfterAuthPolicy',
    sendRequest(request, next) {
      if (loopbackMarker.has(request)) request.url = `http:${request.url.slice('https:'.length)}`;
      return next(request);
    },
  };
}
function loopbackInsecurePolicy(): PipelinePolicy {
  return {
    name: 'loopbackInsecurePolicy',
    sendRequest(request, next) {
      if (isLoopbackHttp(request.url)) request.allowInsecureConnection = true;
      return next(request);
    },
  };
}

/** Outermost: transport failures and non-2xx responses become one ApiError; stream bodies are read (capped). */
function apiErrorPolicy(): PipelinePolicy {
  return {
    name: 'apiErrorPolicy',
    async sendRequest(request, next) {
      let response: PipelineResponse;
      try {
        response = await next(request);
      } catch (e) {
        if (e instanceof ApiError) throw e;
        if (isRestError(e)) {
          if (e.response) throw apiErrorFromResponse(e.response);
          throw new ApiError({
            code: e.code,
            description: e.message,
            ...requestIdsOf(request),
            retriable: e.code !== undefined && e.code !== 'PARSE_ERROR',
            url: request.url,
            cause: e,
          });
        }
        throw e;
      }
      if (response.status >= 200 && response.status < 300) return response;
      let body = response.bodyAsText ?? undefined;
      if (body === undefined && response.readableStreamBody) {
        body = await readCapped(response.readableStreamBody as Readable, 64 * 1024);
      }
      throw apiErrorFromResponse(response, body);
    },
  };
}

async function readCapped(stream: Readable, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      chunks.push(buf);
      size += buf.length;
      if (size >= maxBytes) break;
    }
  } catch {
    // A broken error body still yields an error with what we have.
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
}

const VERSION_SEGMENT = /^v\d+(\.\d+)?$|^beta$/i;

/**
 * A URL path as a low-cardinality endpoint name: ids, file names and `key=value` partitions become placeholders,
 * so telemetry groups by endpoint and never carries a query string (a SAS) or a customer's identifiers.
 */
export function endpointTemplate(url: string | URL): string {
  let pathname: string;
  try {
    pathname = new URL(url, 'http://relative.invalid').pathname;
  } catch {
    return '/{unparsable}';
  }
  const segments = pathname.split('/').map((raw) => {
    if (raw === '') return raw;
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return '{id}';
    }
    const eq = segment.indexOf('=');
    if (eq > 0) return `${segment.slice(0, eq)}={value}`;
    if (VERSION_SEGMENT.test(segment)) return segment;
    if (/\d/.test(segment) || segment.length > 40 || !/^[A-Za-z._-]+$/.test(segment)) return '{id}';
    return segment;
  });
  return segments.join('/') || '/';
}

/** A guess of the service from the host name, for pipelines whose owner did not say. */
function hostLabelOf(url: string): string {
  try {
    const host = new URL(url).hostname.toLowerCase();
    if (host.endsWith('.blob.core.windows.net')) return 'blob';
    if (host === 'graph.microsoft.com') return 'graph';
    if (host.includes('partnercenter')) return 'partnercenter';
    if (host.startsWith('login.')) return 'token';
    return host;
  } catch {
    return 'unknown';
  }
}

/**
 * Reports every attempt: it sits inside the retry policy, so a call retried three times is three reports with
 * attempts 1..3. The callback only ever sees the templated path and the id headers.
 */
function requestTelemetryPolicy(
  onRequestCompleted: (info: RequestTelemetry) => void,
  host: string | undefined,
  correlationIdHeader: string,
  requestIdHeader: string,
): PipelinePolicy {
  const attempts = new WeakMap<PipelineRequest, number>();
  const report = (request: PipelineRequest, started: number, status: number, errorCode?: string) => {
    const attempt = (attempts.get(request) ?? 0) + 1;
    attempts.set(request, attempt);
    try {
      onRequestCompleted({
        host: host ?? hostLabelOf(request.url),
        method: request.method,
        endpoint: endpointTemplate(request.url),
        status,
        attempt,
        durationMs: Math.round(performance.now() - started),
        throttled: status === 429,
        correlationId: request.headers.get(correlationIdHeader),
        requestId: request.headers.get(requestIdHeader),
        ...(errorCode ? { errorCode } : {}),
      });
    } catch {
      // Telemetry never fails a request.
    }
  };
  return {
    name: 'requestTelemetryPolicy',
    async sendRequest(request, next) {
      const started = performance.now();
      try {
        const response = await next(request);
        report(request, started, response.status);
        return response;
      } catch (e) {
        const status = e instanceof ApiError ? (e.status ?? 0) : isRestError(e) ? (e.statusCode ?? 0) : 0;
        const code = e instanceof ApiError ? e.code : isRestError(e) ? e.code : undefined;
        report(request, started, status, status === 0 ? (code ?? 'ERROR') : undefined);
        throw e;
      }
    },
  };
}

/** The pipeline shared by the Partner Center and Graph clients (see docs/architecture.md "HTTP"). */
export function createPipeline(options: CreatePipelineOptions = {}): Pipeline {
  const retryDelayInMs = options.retryDelayInMs ?? 1000;
  const maxRetryDelayInMs = options.maxRetryDelayInMs ?? 64_000;
  const requestIdHeader = options.requestIdHeaderName ?? 'MS-RequestId';
  const correlationIdHeader = options.correlationIdHeaderName ?? 'MS-CorrelationId';
  const pipeline = createEmptyPipeline();
  pipeline.addPolicy(apiErrorPolicy());
  pipeline.addPolicy(requestIdPolicy(requestIdHeader, correlationIdHeader));
  pipeline.addPolicy(defaultRetryPolicy({ maxRetries: options.maxRetries ?? 6, retryDelayInMs, maxRetryDelayInMs }));
  if (options.onRequestCompleted) {
    pipeline.addPolicy(
      requestTelemetryPolicy(options.onRequestCompleted, options.telemetryHost, correlationIdHeader, requestIdHeader),
    );
  }
  pipeline.addPolicy(throttlingShapePolicy(retryDelayInMs, maxRetryDelayInMs, options.maxRetryAfterMs ?? 120_000));
  pipeline.addPolicy(attemptTimeoutPolicy(options.timeoutMs ?? 180_000));
  if (options.credential) {
    if (options.allowInsecureLoopback) pipeline.addPolicy(loopbackBeforeAuthPolicy());
    pipeline.addPolicy(
      bearerTokenAuthenticationPolicy({ credential: options.credential, scopes: options.scopes ?? [] }),
    );
    if (options.allowInsecureLoopback) pipeline.addPolicy(loopbackAfterAuthPolicy());
  } else if (options.allowInsecureLoopback) {
    pipeline.addPolicy(loopbackInsecurePolicy());
  }
  pipeline.addPolicy(
    logPolicy({ additionalAllowedHeaderNames: [...LOGGED_HEADERS, ...(options.additionalAllowedHeaderNames ?? [])] }),
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
  /** Read the body as a stream whatever the status (error bodies are still read for the ApiError). */
  stream?: boolean;
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
      retriable: isRetriableStatus(response.status),
      url: response.request.url,
    });
  }
  return { stream, response };
}

export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
