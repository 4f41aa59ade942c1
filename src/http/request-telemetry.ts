// One report per HTTP attempt (retries included) for the telemetry callback: the templated path and the id
// headers only, never a body, a query string (a SAS) or another header value.
import { isRestError, type PipelinePolicy, type PipelineRequest } from '@azure/core-rest-pipeline';
import { ApiError } from './errors.js';

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
 * attempts 1..3. The callback only ever sees the templated path and the id headers, and can never fail a call.
 */
export function requestTelemetryPolicy(
  onRequestCompleted: (info: RequestTelemetry) => void,
  options: { host?: string; correlationIdHeader: string; requestIdHeader: string },
): PipelinePolicy {
  const attempts = new WeakMap<PipelineRequest, number>();
  const report = (request: PipelineRequest, started: number, status: number, errorCode?: string) => {
    const attempt = (attempts.get(request) ?? 0) + 1;
    attempts.set(request, attempt);
    try {
      onRequestCompleted({
        host: options.host ?? hostLabelOf(request.url),
        method: request.method,
        endpoint: endpointTemplate(request.url),
        status,
        attempt,
        durationMs: Math.round(performance.now() - started),
        throttled: status === 429,
        correlationId: request.headers.get(options.correlationIdHeader),
        requestId: request.headers.get(options.requestIdHeader),
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
