// When an attempt is retried and after how long: ONE RetryStrategy for the library's own retryPolicy. It honours the
// server's Retry-After on 429/503 (failing fast when the wait is longer than we will block a Function for), backs
// off exponentially with jitter on throttling without a wait, 5xx (not 501/505), 408 and transport failures, and
// never retries any other 4xx.
import type { HttpHeaders, PipelineResponse, RestError, RetryStrategy } from '@azure/core-rest-pipeline';
import { RestError as LibraryRestError } from '@azure/core-rest-pipeline';

/**
 * Milliseconds the server asked us to wait, from `retry-after-ms` / `x-ms-retry-after-ms` (milliseconds) or
 * `Retry-After` (seconds, or an HTTP date); undefined when absent or unreadable. A date in the past is 0.
 */
export function retryAfterMs(headers: HttpHeaders, now = Date.now()): number | undefined {
  // HttpHeaders values arrive trimmed (Node's parser drops the whitespace around a value, and so does set()).
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const ms = headers.get(name);
    if (ms && /^\d+(\.\d+)?$/.test(ms)) return Number(ms);
  }
  const value = headers.get('retry-after');
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

/** Statuses where the same request may succeed if sent again now (after a wait). */
export function isRetriableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Node's and our own codes for an attempt that got no (complete) response. */
const TRANSPORT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
]);

/** A failure of the connection rather than an answer from the service: worth another attempt. */
export function isTransportError(error: { code?: string; message?: string } | undefined): boolean {
  if (!error) return false;
  if (error.code && TRANSPORT_CODES.has(error.code)) return true;
  return /socket hang up/i.test(String(error.message));
}

/** The code of the RestError the strategy ends a call with when the server asks for too long a wait. */
export const RETRY_AFTER_TOO_LONG = 'RetryAfterTooLong';

export interface RetryStrategyOptions {
  /** Base of the exponential backoff. */
  retryDelayInMs: number;
  /** Cap of one backoff delay. */
  maxRetryDelayInMs: number;
  /** A Retry-After longer than this ends the call at once (a retriable failure) instead of blocking. */
  maxRetryAfterMs: number;
}

export function retryStrategy(options: RetryStrategyOptions): RetryStrategy {
  const backoff = (retryCount: number) => {
    const clamped = Math.min(options.maxRetryDelayInMs, options.retryDelayInMs * 2 ** retryCount);
    // Jitter within the upper half, so concurrent callers do not retry in step.
    return { retryAfterInMs: Math.round(clamped / 2 + Math.random() * (clamped / 2)) };
  };
  return {
    name: 'serviceRetryStrategy',
    retry({ retryCount, response, responseError }) {
      const answered: PipelineResponse | undefined = response ?? responseError?.response;
      if (answered) {
        const { status } = answered;
        if (status === 429 || status === 503) {
          const asked = retryAfterMs(answered.headers);
          if (asked !== undefined) {
            if (asked > options.maxRetryAfterMs) return { errorToThrow: retryAfterTooLong(answered, asked, options) };
            return { retryAfterInMs: asked };
          }
        }
        return isRetriableStatus(status) ? backoff(retryCount) : { skipStrategy: true };
      }
      if (responseError) return isTransportError(responseError) ? backoff(retryCount) : { errorToThrow: responseError };
      return { skipStrategy: true };
    },
  };
}

function retryAfterTooLong(response: PipelineResponse, asked: number, options: RetryStrategyOptions): RestError {
  const error = new LibraryRestError(
    `server asked to retry after ${Math.round(asked / 1000)} s, beyond the ${Math.round(options.maxRetryAfterMs / 1000)} s limit`,
    { code: RETRY_AFTER_TOO_LONG, statusCode: response.status, request: response.request, response },
  );
  error.details = { retryAfterMs: asked };
  return error;
}
