import type { AccessToken } from '@azure/core-auth';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ApiError,
  type CreatePipelineOptions,
  createPipeline,
  sendForStream,
  sendForText,
} from '../../src/http/index.js';
import { apiFault, type Simulator, startSimulator, throttle } from '../simulator/index.js';

describe('createPipeline against the simulator', () => {
  let sim: Simulator;
  let tokenCalls = 0;
  const credential = {
    async getToken(): Promise<AccessToken> {
      tokenCalls++;
      return {
        token: sim.issueToken({ audience: 'partnercenter', appUser: true, ttlSeconds: 3600 }),
        expiresOnTimestamp: Date.now() + 3600_000,
      };
    },
  };
  const pipeline = (options: CreatePipelineOptions = {}) =>
    createPipeline({
      credential,
      scopes: 'https://api.partnercenter.microsoft.com/.default',
      allowInsecureLoopback: true,
      retryDelayInMs: 2,
      maxRetryDelayInMs: 10,
      maxRetryAfterMs: 5_000,
      timeoutMs: 5_000,
      ...options,
    });
  const invoicesUrl = () => `${sim.partnerCenterUrl}/v1/invoices`;
  let mark = 0;
  const made = () => sim.requests.slice(mark);

  beforeAll(async () => {
    sim = await startSimulator();
  });
  beforeEach(() => {
    sim.faults.clear();
    mark = sim.requests.length;
  });
  afterAll(async () => {
    await sim.stop();
  });

  it('sends the bearer token (cached by the library), MS-RequestId and the caller MS-CorrelationId', async () => {
    const p = pipeline();
    const before = tokenCalls;
    await sendForText(p, invoicesUrl(), { correlationId: 'op-1' });
    await sendForText(p, invoicesUrl(), { correlationId: 'op-1' });
    await sendForText(p, invoicesUrl());
    expect(tokenCalls - before).toBe(1);
    const [a, b, c] = made();
    expect(a?.headers.authorization).toMatch(/^Bearer ey/);
    expect(a?.headers['ms-correlationid']).toBe('op-1');
    expect(b?.headers['ms-correlationid']).toBe('op-1');
    expect(c?.headers['ms-correlationid']).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set([a, b, c].map((r) => r?.headers['ms-requestid'])).size).toBe(3);
  });

  it('429 with Retry-After is retried, keeping one MS-RequestId across the retries of a call', async () => {
    sim.faults.add(throttle(0, { times: 2 }));
    const { text } = await sendForText(pipeline(), invoicesUrl());
    expect(JSON.parse(text).items.length).toBeGreaterThan(0);
    expect(made().map((r) => r.status)).toEqual([429, 429, 200]);
    expect(new Set(made().map((r) => r.headers['ms-requestid'])).size).toBe(1);
  });

  it('Retry-After as an HTTP date is honoured', async () => {
    sim.faults.add({
      kind: 'status',
      status: 429,
      headers: { 'retry-after': new Date(Date.now() - 1000).toUTCString() },
      body: '{"statusCode":429,"message":"later"}',
    });
    await sendForText(pipeline(), invoicesUrl());
    expect(made().map((r) => r.status)).toEqual([429, 200]);
  });

  it('429 without Retry-After is retried with backoff, not a crash (regression)', async () => {
    sim.faults.add(throttle(undefined, { times: 3 }));
    await sendForText(pipeline(), invoicesUrl());
    expect(made().map((r) => r.status)).toEqual([429, 429, 429, 200]);
  });

  it('a hostile Retry-After beyond the cap fails fast with a retriable ApiError', async () => {
    sim.faults.add(throttle(99999));
    const error = (await sendForText(pipeline(), invoicesUrl()).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 429, code: '429', retriable: true, retryAfterMs: 99_999_000 });
    expect(made().length).toBe(1);
  });

  it('429 that outlasts maxRetries ends as a retriable ApiError with the {statusCode,message} text', async () => {
    sim.faults.add(throttle(0, { times: 10 }));
    const error = (await sendForText(pipeline({ maxRetries: 2 }), invoicesUrl()).catch((e: unknown) => e)) as ApiError;
    expect(error).toMatchObject({ status: 429, retriable: true });
    expect(error.description).toMatch(/Rate limit is exceeded/);
    expect(made().length).toBe(3);
  });

  it('5xx are retried with backoff up to the limit; 501 is not', async () => {
    sim.faults.add(apiFault(500));
    sim.faults.add(apiFault(503));
    sim.faults.add({ kind: 'status', status: 502, body: '<html>Bad Gateway</html>' });
    await sendForText(pipeline(), invoicesUrl());
    expect(made().map((r) => r.status)).toEqual([500, 503, 502, 200]);

    mark = sim.requests.length;
    sim.faults.add(apiFault(500, 'InternalError', { times: 10 }));
    const error = (await sendForText(pipeline({ maxRetries: 3 }), invoicesUrl()).catch((e: unknown) => e)) as ApiError;
    expect(error).toMatchObject({ status: 500, code: 'InternalError', retriable: true });
    expect(made().length).toBe(4);

    sim.faults.clear();
    mark = sim.requests.length;
    sim.faults.add(apiFault(501, 501));
    await expect(sendForText(pipeline(), invoicesUrl())).rejects.toMatchObject({ status: 501, retriable: false });
    expect(made().length).toBe(1);
  });

  it('connection resets (before headers and mid-body) are retried', async () => {
    sim.faults.add({ kind: 'reset' });
    sim.faults.add({ kind: 'resetMidBody' });
    const { text } = await sendForText(pipeline(), invoicesUrl());
    expect(JSON.parse(text).items.length).toBeGreaterThan(0);
    expect(made().map((r) => r.status)).toEqual([0, 0, 200]);
    expect(new Set(made().map((r) => r.headers['ms-requestid'])).size).toBe(1);
  });

  it('a per-request timeout aborts the attempt and retries it; exhausted, it is a retriable ApiError', async () => {
    sim.faults.add({ kind: 'delay', ms: 1_500 });
    const { text } = await sendForText(pipeline({ timeoutMs: 300 }), invoicesUrl());
    expect(JSON.parse(text).items.length).toBeGreaterThan(0);
    expect(made().length).toBe(2);

    mark = sim.requests.length;
    sim.faults.add({ kind: 'delay', ms: 1_500, times: 2 });
    const error = (await sendForText(pipeline({ timeoutMs: 300, maxRetries: 1 }), invoicesUrl()).catch(
      (e: unknown) => e,
    )) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: undefined, code: 'ETIMEDOUT', retriable: true });
  });

  it('retry budgets are per request, never shared across concurrent calls (regression)', async () => {
    const ids = sim.dataset
      .invoices()
      .map((i) => i.id)
      .slice(0, 6);
    // One throttle per call, so each call needs exactly its own single retry.
    for (const id of ids) sim.faults.add(throttle(0, { path: `/v1/invoices/${id}` }));
    const p = pipeline({ maxRetries: 1 });
    const results = await Promise.allSettled(
      ids.map((id) => sendForText(p, `${sim.partnerCenterUrl}/v1/invoices/${id}`, { correlationId: `c-${id}` })),
    );
    expect(results.map((r) => r.status)).toEqual(ids.map(() => 'fulfilled'));
    const byCall = new Map<string, number[]>();
    for (const r of made()) {
      const id = r.headers['ms-requestid'] ?? '';
      byCall.set(id, [...(byCall.get(id) ?? []), r.status]);
    }
    expect([...byCall.values()]).toEqual(ids.map(() => [429, 200]));
  });

  it.each([
    [
      'ApiFault numeric code',
      404,
      '{"code":1000,"description":"Not found","data":[],"source":"PartnerFD"}',
      '1000',
      'Not found',
    ],
    [
      'ApiFault string code',
      400,
      '{"code":"InvalidInput","description":"Invoice Line Item type is not valid"}',
      'InvalidInput',
      'Invoice Line Item type is not valid',
    ],
    ['{message}', 400, '{"message":"The request is invalid."}', undefined, 'The request is invalid.'],
    ['empty body', 404, '', undefined, 'no error description in the response body'],
    ['non-JSON', 403, 'Forbidden by proxy', undefined, 'Forbidden by proxy'],
    [
      'Graph shape',
      400,
      '{"error":{"code":"BadRequest","message":"invoiceId is required"}}',
      'BadRequest',
      'invoiceId is required',
    ],
  ])('error body %s becomes one typed ApiError', async (_name, status, body, code, description) => {
    sim.faults.add({ kind: 'status', status, body });
    const error = (await sendForText(pipeline(), invoicesUrl(), { correlationId: 'op-err' }).catch(
      (e: unknown) => e,
    )) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status, code, description, retriable: false, correlationId: 'op-err' });
    expect(error.requestId).toBe(made()[0]?.headers['ms-requestid']);
    expect(made().length).toBe(1);
  });

  it('strips a leading UTF-8 BOM', async () => {
    sim.faults.add({ kind: 'status', status: 200, body: '\uFEFF{"items":[]}' });
    const { text } = await sendForText(pipeline(), invoicesUrl());
    expect(text).toBe('{"items":[]}');
  });

  it('a pipeline without a credential sends no Authorization; a signed-link error never shows the signature', async () => {
    const p = pipeline({ credential: undefined });
    const url = `${sim.blobUrl}/statements/G000024130.pdf?se=2020-01-01T00%3A00%3A00Z&sig=TOPSECRETSIG`;
    const error = (await sendForStream(p, url).catch((e: unknown) => e)) as ApiError;
    expect(error).toMatchObject({ status: 403, code: 'AuthenticationFailed', retriable: false });
    expect(`${error.message} ${error.url} ${error.description}`).not.toContain('TOPSECRETSIG');
    expect(made()[0]?.headers.authorization).toBeUndefined();
  });

  it('refuses plain http unless loopback is explicitly allowed', async () => {
    await expect(sendForText(pipeline({ allowInsecureLoopback: false }), invoicesUrl())).rejects.toThrow(
      /non-TLS|https/i,
    );
    await expect(
      sendForText(pipeline({ allowInsecureLoopback: false, credential: undefined }), invoicesUrl()),
    ).rejects.toThrow(/allowInsecureConnection/);
    expect(made()).toEqual([]);
  });
});
