// The one error type of every outbound call (Partner Center, Graph, signed links), built from any error body
// shape the services are known to return (ref §10, §6.6), always redacted; and, for anything thrown anywhere,
// a text that is never empty (describeError) and whether trying again later can help (failureKind).
import { isRestError, type PipelineRequest, type PipelineResponse, type RestError } from '@azure/core-rest-pipeline';
import { InvalidIdError } from '../ids.js';
import { redactText, redactUrl } from './redact.js';
import { isRetriableStatus, isTransportError, retryAfterMs } from './retry.js';

export interface ApiErrorOptions {
  status?: number;
  code?: string;
  description: string;
  requestId?: string;
  correlationId?: string;
  retriable: boolean;
  url?: string;
  retryAfterMs?: number;
  cause?: unknown;
}

/** A failed call: HTTP status (absent for transport failures), service code and whether a later retry can help. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly description: string;
  readonly requestId: string | undefined;
  readonly correlationId: string | undefined;
  /**
   * A later attempt may succeed (throttling, 5xx, 408, conflicts, timeouts, resets, an expired token); false for
   * answers that will not change. The pipeline's own retries are decided separately (src/http/retry.ts).
   */
  readonly retriable: boolean;
  /** Redacted: no signature or token ever appears here. */
  readonly url: string | undefined;
  /** The wait the server asked for (Retry-After), when it sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(options: ApiErrorOptions) {
    const url = options.url === undefined ? undefined : redactUrl(options.url);
    const description = redactText(options.description).trim() || 'no description';
    const parts = [
      options.status === undefined ? 'request failed' : `HTTP ${options.status}`,
      options.code === undefined ? undefined : `code ${options.code}`,
      description,
      url === undefined ? undefined : `(${url})`,
      options.requestId === undefined ? undefined : `requestId=${options.requestId}`,
      options.correlationId === undefined ? undefined : `correlationId=${options.correlationId}`,
    ].filter((p) => p !== undefined && p !== '');
    super(parts.join(' '), options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.code = options.code;
    this.description = description;
    this.requestId = options.requestId;
    this.correlationId = options.correlationId;
    this.retriable = options.retriable;
    this.url = url;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError;
}

const REQUEST_ID_HEADERS = ['MS-RequestId', 'request-id', 'x-ms-request-id', 'client-request-id'];
const CORRELATION_ID_HEADERS = ['MS-CorrelationId', 'client-request-id', 'x-ms-correlation-request-id'];

function firstHeader(
  names: string[],
  ...sources: ({ get(name: string): string | undefined } | undefined)[]
): string | undefined {
  for (const source of sources) {
    if (!source) continue;
    for (const name of names) {
      const value = source.get(name);
      if (value) return value;
    }
  }
  return undefined;
}

export function requestIdsOf(
  request: PipelineRequest,
  response?: PipelineResponse,
): { requestId?: string; correlationId?: string } {
  const requestId = firstHeader(REQUEST_ID_HEADERS, request.headers, response?.headers);
  const correlationId = firstHeader(CORRELATION_ID_HEADERS, request.headers, response?.headers);
  return { requestId, correlationId };
}

function asCode(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function asText(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

function clip(text: string, max = 500): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The readable part of an HTML error page (a proxy's or a gateway's): its title, else its text. */
function htmlSummary(html: string): string {
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(html)?.[1]?.trim();
  const text = html
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return `HTML page: ${clip(title || text || 'no text', 200)}`;
}

/**
 * Code and description from any known error body: ApiFault `{code, description}` (code string or number),
 * `{message}`, `{statusCode, message}`, Graph `{error:{code,message,innerError}}`, Azure Storage XML, an HTML page,
 * empty or plain text; a leading BOM is ignored.
 */
export function parseErrorBody(body: string | undefined, status?: number): { code?: string; description: string } {
  const text = (body ?? '').replace(/^\uFEFF/, '').trim();
  const fallback = status === undefined ? 'no response body' : 'no error description in the response body';
  if (text === '') return { description: fallback };
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object') {
        const o = parsed as Record<string, unknown>;
        const nested = o.error && typeof o.error === 'object' ? (o.error as Record<string, unknown>) : undefined;
        const inner =
          nested?.innerError && typeof nested.innerError === 'object'
            ? (nested.innerError as Record<string, unknown>)
            : undefined;
        const code = asCode(o.code) ?? asCode(nested?.code) ?? asCode(o.errorCode) ?? asCode(o.statusCode);
        let description =
          asText(o.description) ??
          asText(o.message) ??
          asText(nested?.message) ??
          asText(o.error_description) ??
          asText(o.Message) ??
          (typeof o.error === 'string' ? asText(o.error) : undefined) ??
          fallback;
        const innerId = asText(inner?.['request-id']);
        if (innerId)
          description = `${description} (Graph request-id ${innerId}${inner?.date ? `, ${inner.date}` : ''})`;
        return { code, description: clip(description, 1024) };
      }
    } catch {
      // Not JSON after all: fall through to plain text.
    }
  }
  if (text.startsWith('<')) {
    const code = /<Code>([^<]*)<\/Code>/i.exec(text)?.[1];
    const message = /<Message>([^<]*)<\/Message>/i.exec(text)?.[1];
    if (code || message) return { code: code || undefined, description: clip((message ?? code ?? fallback).trim()) };
    if (/<html|<!doctype html|<body/i.test(text)) return { description: htmlSummary(text) };
  }
  return { description: clip(text) };
}

/** A 401 whose token expired: a fresh token (the next attempt) can succeed. */
function isExpiredToken(response: PipelineResponse, description: string): boolean {
  const challenge = response.headers.get('www-authenticate') ?? '';
  return /expired/i.test(challenge) || /token (is )?expired|expired token|lifetime validation/i.test(description);
}

/** The ApiError for a non-2xx response whose body has already been read as text. */
export function apiErrorFromResponse(response: PipelineResponse, bodyText?: string, note?: string): ApiError {
  const { code, description } = parseErrorBody(bodyText ?? response.bodyAsText ?? undefined, response.status);
  const status = response.status;
  const retriable =
    isRetriableStatus(status) ||
    status === 409 ||
    status === 412 ||
    (status === 401 && isExpiredToken(response, description));
  return new ApiError({
    status,
    code,
    description: note ? `${description} (${note})` : description,
    ...requestIdsOf(response.request, response),
    retriable,
    url: response.request.url,
    retryAfterMs: retryAfterMs(response.headers),
  });
}

/** One named step that failed: the message says which step and what went wrong; `cause` keeps the original. */
export class OperationError extends Error {
  override name = 'OperationError';
  constructor(
    readonly operation: string,
    cause: unknown,
  ) {
    super(`${operation}: ${describeError(cause)}`, { cause });
  }
}

/** The failure under any OperationErrors that name what was being done (for checks of what went wrong). */
export function rootCause(error: unknown): unknown {
  return error instanceof OperationError ? rootCause(error.cause) : error;
}

/** Runs `work`; any failure comes out as an OperationError naming `operation`. */
export async function withOperation<T>(operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw new OperationError(operation, error);
  }
}

function isZodError(error: unknown): error is { issues: { path: PropertyKey[]; message: string }[] } {
  return error instanceof Error && error.name === 'ZodError' && Array.isArray((error as { issues?: unknown }).issues);
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}

/** A Storage/Tables message without the RequestId/Time lines it repeats; Tables wraps it in odata JSON. */
function serviceMessage(message: string): string {
  let text = message.trim();
  if (text.startsWith('{')) {
    try {
      const odata = (JSON.parse(text) as { 'odata.error'?: { message?: { value?: unknown } | string } })['odata.error'];
      const value = typeof odata?.message === 'string' ? odata.message : odata?.message?.value;
      if (typeof value === 'string') text = value;
    } catch {
      // Not JSON: keep the text.
    }
  }
  return text
    .split('\n')
    .filter((line) => !/^(RequestId|Time):/.test(line.trim()))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Storage and Tables errors: their message is often empty (a HEAD has no body); the facts are elsewhere. */
function describeRestError(error: RestError): string {
  const details = (error.details ?? {}) as Record<string, unknown>;
  const errorCode = asCode(details.errorCode) ?? error.response?.headers.get('x-ms-error-code');
  const requestId =
    error.response?.headers.get('x-ms-request-id') ??
    asText(details.requestId) ??
    error.request?.headers.get('x-ms-client-request-id');
  const message = serviceMessage(error.message);
  const transport = error.statusCode === undefined && error.code ? transportText(error.code) : undefined;
  const codes = [error.code, errorCode].filter((c, i, all) => c && all.indexOf(c) === i);
  const parts = [
    error.statusCode === undefined ? 'request failed' : `HTTP ${error.statusCode}`,
    codes.length > 0 ? `code ${codes.join('/')}` : undefined,
    message ||
      transport ||
      (error.request?.method === 'HEAD' ? 'no message (a HEAD response has no body)' : 'no message'),
    error.request?.url ? `(${error.request.method} ${redactUrl(error.request.url)})` : undefined,
    requestId ? `requestId=${requestId}` : undefined,
  ];
  return parts.filter((p) => p !== undefined && p !== '').join(' ');
}

function transportText(code: string): string | undefined {
  if (code === 'ECONNRESET') return 'the connection was reset';
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return 'the request timed out';
  if (code === 'ECONNREFUSED') return 'the connection was refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name did not resolve';
  return undefined;
}

function describeUnknown(error: unknown, depth: number): string {
  if (depth > 3) return '(nested causes omitted)';
  if (error instanceof ApiError || error instanceof OperationError) return error.message;
  if (isRestError(error)) return describeRestError(error);
  if (isZodError(error)) {
    const problems = error.issues.slice(0, 5).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    const more = error.issues.length > 5 ? `; and ${error.issues.length - 5} more` : '';
    return `validation failed: ${problems.join('; ')}${more}`;
  }
  if (isAbort(error)) {
    const message = (error as Error).message.trim();
    return `${(error as Error).name === 'TimeoutError' ? 'timed out' : 'aborted'}${message ? `: ${message}` : ''}`;
  }
  if (error instanceof AggregateError) {
    const inner = error.errors.slice(0, 3).map((e) => describeUnknown(e, depth + 1));
    return `${error.message.trim() || `${error.errors.length} errors`}: ${inner.join('; ')}`;
  }
  if (error instanceof Error) {
    const system = error as Error & { code?: unknown; syscall?: unknown };
    const label = error.name || error.constructor?.name || 'Error';
    const code = asCode(system.code);
    const message = error.message.trim();
    const cause = error.cause === undefined ? undefined : `caused by ${describeUnknown(error.cause, depth + 1)}`;
    const parts = [
      message && label === 'Error' ? undefined : label,
      code ? `code ${code}` : undefined,
      message || (code ? transportText(code) : undefined) || 'with no message',
      typeof system.syscall === 'string' && !message.includes(system.syscall) ? `(${system.syscall})` : undefined,
      cause,
    ];
    return parts.filter((p) => p !== undefined && p !== '').join(' ');
  }
  if (typeof error === 'string') return error.trim() ? `thrown string: ${error}` : 'an empty string was thrown';
  if (error === undefined || error === null) return `${String(error)} was thrown`;
  if (typeof error === 'object') {
    let json: string | undefined;
    try {
      json = JSON.stringify(error);
    } catch {
      json = undefined;
    }
    const type = (error as object).constructor?.name || 'object';
    return json && json !== '{}' ? `thrown ${type}: ${clip(json, 300)}` : `thrown ${type} with no readable fields`;
  }
  return `thrown ${typeof error}: ${String(error)}`;
}

/**
 * A one-line text for any thrown value, never empty: operation (for OperationError), HTTP status, service code,
 * request id; secrets redacted; at most 2000 characters.
 */
export function describeError(error: unknown): string {
  const text = redactText(describeUnknown(error, 0))
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  return clip(text || 'unknown error', 2000);
}

export type FailureKind = 'transient' | 'permanent';

/**
 * Whether trying the same work again later can help. Permanent: validation (zod, unusable shapes, refused ids),
 * 4xx other than 408/429 (and 401 with an expired token). Transient: resets, timeouts, aborts, 5xx, 408, 429,
 * 409/412 conflicts, and anything unknown (the queue's dequeue limit bounds those). An OperationError is its cause.
 */
export function failureKind(error: unknown): FailureKind {
  if (error instanceof OperationError) return failureKind(error.cause);
  const retriable = (error as { retriable?: unknown } | null)?.retriable;
  if (typeof retriable === 'boolean') return retriable ? 'transient' : 'permanent';
  if (isRestError(error)) {
    const status = error.statusCode;
    if (status === undefined) return 'transient';
    return isRetriableStatus(status) || status === 409 || status === 412 ? 'transient' : 'permanent';
  }
  if (isZodError(error) || error instanceof InvalidIdError) return 'permanent';
  if (isAbort(error)) return 'transient';
  if (isTransportError(error as { code?: string })) return 'transient';
  if (error instanceof TypeError || error instanceof SyntaxError || error instanceof RangeError) return 'permanent';
  return 'transient';
}
