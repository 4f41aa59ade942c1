// The one RetryStrategy and the one Retry-After parser, called directly: every status class, every header form,
// the backoff's bounds and the limit on how long the server may make us wait.
import {
  createHttpHeaders,
  createPipelineRequest,
  type PipelineResponse,
  RestError,
  type RetryInformation,
} from '@azure/core-rest-pipeline';
import { describe, expect, test } from 'vitest';
import {
  isRetriableStatus,
  isTransportError,
  RETRY_AFTER_TOO_LONG,
  retryAfterMs,
  retryStrategy,
} from '../../src/http/retry.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const headers = (h: Record<string, string>) => createHttpHeaders(h);
const request = createPipelineRequest({ url: 'https://api.example.test/v1/invoices' });
const response = (status: number, h: Record<string, string> = {}): PipelineResponse => ({
  status,
  headers: headers(h),
  request,
});
const strategy = retryStrategy({ retryDelayInMs: 100, maxRetryDelayInMs: 1000, maxRetryAfterMs: 10_000 });
const decide = (info: Partial<RetryInformation>) => strategy.retry({ retryCount: 0, ...info } as RetryInformation);

describe('retryAfterMs', () => {
  test.each([
    [{ 'retry-after-ms': '250' }, 250],
    [{ 'x-ms-retry-after-ms': '1500' }, 1500],
    [{ 'retry-after-ms': ' 7.5 ' }, 7.5],
    [{ 'retry-after': '3' }, 3000],
    [{ 'retry-after': ' 2.5 ' }, 2500],
    [{ 'retry-after': '1.25' }, 1250],
    [{ 'retry-after-ms': '7.25' }, 7.25],
    [{ 'retry-after': '0' }, 0],
    // The millisecond headers win over Retry-After.
    [{ 'retry-after-ms': '40', 'retry-after': '30' }, 40],
    [{ 'x-ms-retry-after-ms': '41', 'retry-after': '30' }, 41],
    [{ 'retry-after-ms': '42', 'x-ms-retry-after-ms': '43' }, 42],
    // An unreadable millisecond header falls through to the next one.
    [{ 'retry-after-ms': 'soon', 'x-ms-retry-after-ms': '44' }, 44],
    [{ 'retry-after-ms': '1x', 'retry-after': '2' }, 2000],
    [{ 'retry-after-ms': 'x1', 'retry-after': '2' }, 2000],
    [{ 'retry-after-ms': '1.', 'retry-after': '2' }, 2000],
    [{ 'retry-after-ms': '', 'retry-after': '2' }, 2000],
  ])('%j → %s ms', (h, expected) => {
    expect(retryAfterMs(headers(h), NOW)).toBe(expected);
  });

  test('an HTTP date: the time left until it, and 0 once it has passed', () => {
    expect(retryAfterMs(headers({ 'retry-after': 'Sun, 01 Mar 2026 12:00:05 GMT' }), NOW)).toBe(5000);
    expect(retryAfterMs(headers({ 'retry-after': 'Sun, 01 Mar 2026 11:59:00 GMT' }), NOW)).toBe(0);
    expect(retryAfterMs(headers({ 'retry-after': 'Sun, 01 Mar 2026 12:00:00 GMT' }), NOW)).toBe(0);
  });

  test('the default clock is now', () => {
    const inTenSeconds = new Date(Math.ceil(Date.now() / 1000) * 1000 + 10_000).toUTCString();
    const left = retryAfterMs(headers({ 'retry-after': inTenSeconds }));
    expect(left).toBeGreaterThan(9000);
    expect(left).toBeLessThanOrEqual(11_000);
  });

  test.each<Record<string, string>>([{}, { 'retry-after': '' }, { 'retry-after': '  ' }, { 'retry-after': 'later' }])(
    '%j → undefined',
    (h) => {
      expect(retryAfterMs(headers(h), NOW)).toBeUndefined();
    },
  );

  test('seconds with a stray letter are not seconds', () => {
    // Not a number, and not a date either.
    expect(retryAfterMs(headers({ 'retry-after': '5s' }), NOW)).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after': 's5' }), NOW)).toBeUndefined();
  });
});

describe('isRetriableStatus', () => {
  test.each([408, 429, 500, 502, 503, 504, 507, 599])('%i is retriable', (status) => {
    expect(isRetriableStatus(status)).toBe(true);
  });
  test.each([200, 400, 401, 403, 404, 407, 409, 428, 430, 499, 501, 505])('%i is not', (status) => {
    expect(isRetriableStatus(status)).toBe(false);
  });
});

describe('isTransportError', () => {
  test.each([
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
  ])('%s is a transport failure', (code) => {
    expect(isTransportError({ code })).toBe(true);
  });
  test('a socket hang up is one, whatever the case; other failures are not', () => {
    expect(isTransportError({ message: 'Socket Hang Up' })).toBe(true);
    expect(isTransportError({ code: 'REQUEST_SEND_ERROR', message: 'request failed: socket hang up' })).toBe(true);
    expect(isTransportError({ code: 'EACCES', message: 'permission denied' })).toBe(false);
    expect(isTransportError({ code: 'econnreset' })).toBe(false);
    expect(isTransportError({})).toBe(false);
    expect(isTransportError(undefined)).toBe(false);
  });
});

describe('retryStrategy', () => {
  test('is one named strategy', () => {
    expect(strategy.name).toBe('serviceRetryStrategy');
  });

  test.each([429, 503])('%i with a wait: exactly that wait', (status) => {
    expect(decide({ response: response(status, { 'retry-after': '2' }) })).toEqual({ retryAfterInMs: 2000 });
    expect(decide({ response: response(status, { 'retry-after-ms': '0' }) })).toEqual({ retryAfterInMs: 0 });
    // The wait on an error's response counts the same.
    const error = new RestError('throttled', {
      statusCode: status,
      response: response(status, { 'retry-after': '1' }),
    });
    expect(decide({ responseError: error })).toEqual({ retryAfterInMs: 1000 });
  });

  test('a wait of exactly the limit is waited; beyond it the call ends with a retriable error', () => {
    expect(decide({ response: response(429, { 'retry-after': '10' }) })).toEqual({ retryAfterInMs: 10_000 });
    const beyond = decide({ response: response(503, { 'retry-after': '10.001' }) });
    const error = beyond.errorToThrow as RestError;
    expect(error).toBeInstanceOf(RestError);
    expect(error).toMatchObject({ code: 'RetryAfterTooLong', statusCode: 503, request });
    expect(RETRY_AFTER_TOO_LONG).toBe('RetryAfterTooLong');
    expect(error.response?.status).toBe(503);
    expect(error.details).toEqual({ retryAfterMs: 10_001 });
    expect(error.message).toBe('server asked to retry after 10 s, beyond the 10 s limit');
    expect(beyond.retryAfterInMs).toBeUndefined();
  });

  test('a Retry-After on other statuses is not a reason to retry, nor a wait', () => {
    expect(decide({ response: response(400, { 'retry-after': '1' }) })).toEqual({ skipStrategy: true });
    const on500 = decide({ response: response(500, { 'retry-after': '3600' }) });
    expect(on500.errorToThrow).toBeUndefined();
    expect(on500.retryAfterInMs).toBeLessThanOrEqual(100);
  });

  test('backoff: within the upper half of base × 2^retryCount, capped, and not always the same', () => {
    for (const [retryCount, full] of [
      [0, 100],
      [1, 200],
      [2, 400],
      [3, 800],
      [4, 1000],
      [9, 1000],
    ] as const) {
      const delays = Array.from(
        { length: 200 },
        () => strategy.retry({ retryCount, response: response(429) } as RetryInformation).retryAfterInMs as number,
      );
      expect(Math.min(...delays), `retry ${retryCount}`).toBeGreaterThanOrEqual(full / 2);
      expect(Math.max(...delays), `retry ${retryCount}`).toBeLessThanOrEqual(full);
      expect(Math.max(...delays) - Math.min(...delays), `retry ${retryCount}`).toBeGreaterThan(full / 4);
      expect(delays.every((d) => Number.isInteger(d))).toBe(true);
    }
  });

  test.each([408, 500, 502, 504])('%i backs off', (status) => {
    const delay = decide({ response: response(status) }).retryAfterInMs as number;
    expect(delay).toBeGreaterThanOrEqual(50);
    expect(delay).toBeLessThanOrEqual(100);
  });

  test.each([400, 401, 404, 501, 505])('%i is left to fail (no retry)', (status) => {
    expect(decide({ response: response(status) })).toEqual({ skipStrategy: true });
    const error = new RestError('no', { statusCode: status, response: response(status) });
    expect(decide({ responseError: error })).toEqual({ skipStrategy: true });
  });

  test('a transport failure backs off; any other failure without a response is thrown as it is', () => {
    const reset = new RestError('socket hang up', { code: 'ECONNRESET' });
    const delay = decide({ responseError: reset }).retryAfterInMs as number;
    expect(delay).toBeGreaterThanOrEqual(50);
    expect(delay).toBeLessThanOrEqual(100);
    const other = new RestError('bad certificate', { code: 'CERT_HAS_EXPIRED' });
    expect(decide({ responseError: other })).toEqual({ errorToThrow: other });
    expect(decide({})).toEqual({ skipStrategy: true });
  });
});
