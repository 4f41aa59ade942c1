// The one error type of every outbound call (Partner Center, Graph, signed links), built from any error body
// shape the services are known to return (ref §10, §6.6), always redacted.
import type { PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import { redactText, redactUrl } from './redact.js';

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
  /** A later attempt may succeed (throttling, 5xx, timeouts, resets); false for 4xx that will not change. */
  readonly retriable: boolean;
  /** Redacted: no signature or token ever appears here. */
  readonly url: string | undefined;
  /** Set when the server asked for a wait longer than we are willing to block for. */
  readonly retryAfterMs: number | undefined;

  constructor(options: ApiErrorOptions) {
    const url = options.url === undefined ? undefined : redactUrl(options.url);
    const description = redactText(options.description);
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

/** Statuses where the same request may succeed later. */
export function isRetriableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
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

/**
 * Code and description from any known error body: ApiFault `{code, description}` (code string or number),
 * `{message}`, `{statusCode, message}`, Graph `{error:{code,message}}`, Azure Storage XML, empty or plain text.
 */
export function parseErrorBody(body: string | undefined, status?: number): { code?: string; description: string } {
  const text = (body ?? '').replace(/^\uFEFF/, '').trim();
  const fallback = status === undefined ? 'no response body' : `HTTP ${status} with no error description`;
  if (text === '') return { description: fallback };
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object') {
        const o = parsed as Record<string, unknown>;
        const nested = o.error && typeof o.error === 'object' ? (o.error as Record<string, unknown>) : undefined;
        const code = asCode(o.code) ?? asCode(nested?.code) ?? asCode(o.errorCode) ?? asCode(o.statusCode);
        const description =
          asText(o.description) ??
          asText(o.message) ??
          asText(nested?.message) ??
          asText(o.error_description) ??
          asText(o.Message) ??
          fallback;
        return { code, description };
      }
    } catch {
      // Not JSON after all: fall through to plain text.
    }
  }
  if (text.startsWith('<')) {
    const code = /<Code>([^<]*)<\/Code>/i.exec(text)?.[1];
    const message = /<Message>([^<]*)<\/Message>/i.exec(text)?.[1];
    if (code || message) return { code: code || undefined, description: (message ?? code ?? fallback).trim() };
  }
  return { description: text.length > 500 ? `${text.slice(0, 500)}…` : text };
}

/** The ApiError for a non-2xx response whose body has already been read as text. */
export function apiErrorFromResponse(response: PipelineResponse, bodyText?: string): ApiError {
  const { code, description } = parseErrorBody(bodyText ?? response.bodyAsText ?? undefined, response.status);
  return new ApiError({
    status: response.status,
    code,
    description,
    ...requestIdsOf(response.request, response),
    retriable: isRetriableStatus(response.status),
    url: response.request.url,
  });
}

// PENDING-MERGE: interim versions until the clients' error work lands (contracts.md); theirs replace these.
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const e = error as Error & { statusCode?: number; code?: string };
    const text = [error.name, e.statusCode ? `HTTP ${e.statusCode}` : '', e.code ?? '', error.message]
      .filter(Boolean)
      .join(' ');
    return redactText(text).slice(0, 2000);
  }
  return redactText(String(error)).slice(0, 2000) || 'unknown failure';
}
export type FailureKind = 'transient' | 'permanent';
export function failureKind(error: unknown): FailureKind {
  if (error instanceof ApiError) return error.retriable ? 'transient' : 'permanent';
  const name = (error as { name?: string })?.name;
  if (name === 'InvalidIdError' || name === 'ZodError' || name === 'MalformedMessageError') return 'permanent';
  return 'transient';
}
