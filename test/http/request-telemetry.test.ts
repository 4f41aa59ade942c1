// What one HTTP attempt reports to telemetry: a low-cardinality endpoint and the service it went to, nothing
// from the query string or a body. The policy is driven directly, with the pipeline's own request type.
import { createHttpHeaders, createPipelineRequest, type PipelineResponse, RestError } from '@azure/core-rest-pipeline';
import { describe, expect, test } from 'vitest';
import { endpointTemplate, type RequestTelemetry, requestTelemetryPolicy } from '../../src/http/request-telemetry.js';

const ids = { correlationIdHeader: 'ms-correlationid', requestIdHeader: 'ms-requestid' };

async function reportOf(url: string, status = 200, host?: string): Promise<RequestTelemetry> {
  const reports: RequestTelemetry[] = [];
  const policy = requestTelemetryPolicy((r) => reports.push(r), { ...ids, ...(host ? { host } : {}) });
  const request = createPipelineRequest({ url, method: 'GET' });
  await policy.sendRequest(
    request,
    async (): Promise<PipelineResponse> => ({
      request,
      status,
      headers: createHttpHeaders(),
    }),
  );
  expect(reports).toHaveLength(1);
  return reports[0] as RequestTelemetry;
}

describe('the service an attempt went to, when the pipeline did not say', () => {
  test.each([
    ['https://acct.blob.core.windows.net/c/b?sig=secret', 'blob'],
    ['https://ACCT.BLOB.CORE.WINDOWS.NET/c/b', 'blob'],
    ['https://graph.microsoft.com/v1.0/reports', 'graph'],
    ['https://api.partnercenter.microsoft.com/v1/invoices', 'partnercenter'],
    ['https://login.microsoftonline.com/t/oauth2/v2.0/token', 'token'],
    ['https://example.test/x', 'example.test'],
    // Neither a look-alike suffix nor a look-alike host.
    ['https://blob.core.windows.net.example.test/x', 'blob.core.windows.net.example.test'],
    ['https://notblob.core.windows.net/x', 'notblob.core.windows.net'],
    ['https://graph.microsoft.com.example.test/x', 'graph.microsoft.com.example.test'],
    ['https://my-login.example.test/x', 'my-login.example.test'],
  ])('%s is %s', async (url, host) => {
    expect((await reportOf(url)).host).toBe(host);
  });

  test('a host the pipeline names wins', async () => {
    expect((await reportOf('https://graph.microsoft.com/v1.0/x', 200, 'partnercenter')).host).toBe('partnercenter');
  });

  test('the report carries the template, not the query string', async () => {
    const report = await reportOf('https://acct.blob.core.windows.net/invoices/G000123456.pdf?sig=secret&se=1');
    expect(report.endpoint).toBe('/invoices/{id}');
    expect(JSON.stringify(report)).not.toContain('secret');
  });
});

describe('endpointTemplate', () => {
  test.each([
    ['https://x.test/', '/'],
    ['https://x.test', '/'],
    ['/v1/invoices/G000123456/lineitems', '/v1/invoices/{id}/lineitems'],
    [
      '/v1.0/reports/partners/billing/reconciliation/billed/export',
      '/v1.0/reports/partners/billing/reconciliation/billed/export',
    ],
    ['/beta/x', '/beta/x'],
    ['/c/period=2026-01/day=01', '/c/period={value}/day={value}'],
    // Percent-encoding that does not decode is an id, not an error.
    ['/v1/invoices/%E0%A4%A/x', '/v1/invoices/{id}/x'],
    [`/v1/${'a'.repeat(41)}`, '/v1/{id}'],
    [`/v1/${'a'.repeat(40)}`, `/v1/${'a'.repeat(40)}`],
    ['/v1/with space', '/v1/{id}'],
  ])('%s -> %s', (url, template) => {
    expect(endpointTemplate(url)).toBe(template);
  });

  test('a URL that cannot be parsed is named so', () => {
    expect(endpointTemplate('http://[not-a-host/x')).toBe('/{unparsable}');
  });
});

describe('an attempt without a response', () => {
  test('reports status 0 and the transport code; a service error its status and no code', async () => {
    const reports: RequestTelemetry[] = [];
    const policy = requestTelemetryPolicy((r) => reports.push(r), ids);
    const request = createPipelineRequest({ url: 'https://graph.microsoft.com/v1.0/x', method: 'GET' });
    const reset = new RestError('socket hang up', { code: 'ECONNRESET' });
    await expect(policy.sendRequest(request, async () => Promise.reject(reset))).rejects.toBe(reset);
    const served = new RestError('busy', { statusCode: 503, code: 'ServerBusy' });
    await expect(policy.sendRequest(request, async () => Promise.reject(served))).rejects.toBe(served);
    const plain = new Error('no code');
    await expect(policy.sendRequest(request, async () => Promise.reject(plain))).rejects.toBe(plain);
    expect(reports.map((r) => [r.attempt, r.status, r.errorCode])).toEqual([
      [1, 0, 'ECONNRESET'],
      [2, 503, undefined],
      [3, 0, 'ERROR'],
    ]);
  });
});
