// The pieces behind the events: per-attempt HTTP reports (on the simulator over real HTTP), endpoint templates,
// the redacting and correlating loggers, the refresh-token age reporter and the run summary.
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isApiError } from '../../src/http/errors.js';
import { createPipeline, endpointTemplate, type RequestTelemetry, sendForText } from '../../src/http/pipeline.js';
import {
  correlatingLogger,
  formatSummary,
  redactingLogger,
  TelemetryCollector,
  withRefreshTokenAge,
} from '../../src/telemetry/index.js';
import type { EventProperties, SyncLogger } from '../../src/telemetry/logger.js';
import { apiFault, type Simulator, startSimulator, throttle } from '../simulator/index.js';

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ seed: 2 });
});
afterAll(async () => {
  await sim?.stop();
});

const fixed = (token: string): TokenCredential => ({
  getToken: async (): Promise<AccessToken> => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
});

function capture() {
  const lines: { level: string; message: string; properties?: EventProperties }[] = [];
  const log: SyncLogger = {
    info: (message, properties) => lines.push({ level: 'info', message, properties }),
    warn: (message, properties) => lines.push({ level: 'warn', message, properties }),
    error: (message, properties) => lines.push({ level: 'error', message, properties }),
    event: (message, properties) => lines.push({ level: 'event', message, properties }),
  };
  return { lines, log };
}

describe('onRequestCompleted', () => {
  const pipeline = (reports: RequestTelemetry[], maxRetries = 4) =>
    createPipeline({
      credential: fixed(sim.issueToken({ audience: 'partnercenter', appUser: true })),
      scopes: 'https://api.partnercenter.microsoft.com/.default',
      allowInsecureLoopback: true,
      retryDelayInMs: 5,
      maxRetryDelayInMs: 20,
      maxRetries,
      telemetryHost: 'partnercenter',
      onRequestCompleted: (info) => reports.push(info),
    });

  test('reports every attempt of a retried call, with the call correlation id and no query string', async () => {
    const reports: RequestTelemetry[] = [];
    sim.faults.add(throttle(0, { times: 2 }));
    sim.faults.add({ host: 'partnercenter', kind: 'reset' });
    const id = sim.dataset.invoices()[0]!.id;
    await sendForText(pipeline(reports), `${sim.partnerCenterUrl}/v1/invoices/${id}?size=5&secret=x`, {
      correlationId: 'corr-1',
    });
    expect(reports.map((r) => [r.attempt, r.status, r.throttled])).toEqual([
      [1, 429, true],
      [2, 429, true],
      [3, 0, false],
      [4, 200, false],
    ]);
    expect(reports[2]?.errorCode).toBe('ECONNRESET');
    for (const r of reports) {
      expect(r).toMatchObject({ host: 'partnercenter', method: 'GET', endpoint: '/v1/invoices/{id}' });
      expect(r.correlationId).toBe('corr-1');
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
    }
    // One call, one request id across its retries.
    expect(new Set(reports.map((r) => r.requestId)).size).toBe(1);
  });

  test('a call that exhausts its retries reports each attempt, then fails', async () => {
    const reports: RequestTelemetry[] = [];
    sim.faults.add(apiFault(500, 500, { times: 3 }));
    const error = await sendForText(pipeline(reports, 2), `${sim.partnerCenterUrl}/v1/invoices`).catch((e) => e);
    expect(isApiError(error)).toBe(true);
    expect(reports.map((r) => [r.attempt, r.status])).toEqual([
      [1, 500],
      [2, 500],
      [3, 500],
    ]);
    sim.faults.clear();
  });

  test('a throwing callback never fails the request', async () => {
    const p = createPipeline({
      credential: fixed(sim.issueToken({ audience: 'partnercenter' })),
      allowInsecureLoopback: true,
      onRequestCompleted: () => {
        throw new Error('telemetry down');
      },
    });
    const { text } = await sendForText(p, `${sim.partnerCenterUrl}/v1/invoices`);
    expect(JSON.parse(text)).toHaveProperty('items');
  });
});

describe('endpointTemplate', () => {
  test.each([
    [
      'https://api.partnercenter.microsoft.com/v1/invoices/G000024130/lineitems?provider=onetime',
      '/v1/invoices/{id}/lineitems',
    ],
    [
      'https://api.partnercenter.microsoft.com/v1/invoices/D02005YFHI/lineitems/Office/BillingLineItems',
      '/v1/invoices/{id}/lineitems/Office/BillingLineItems',
    ],
    [
      'https://api.partnercenter.microsoft.com/v1/invoices/G1/receipts/123456/documents/statement',
      '/v1/invoices/{id}/receipts/{id}/documents/statement',
    ],
    [
      'https://graph.microsoft.com/v1.0/reports/partners/billing/operations/6f1c9a2e-8b7d-4c3a-9e1f-2a3b4c5d6e7f',
      '/v1.0/reports/partners/billing/operations/{id}',
    ],
    [
      'https://acct.blob.core.windows.net/billedusagefastpath/v1/PartnerTenantId=abc/BillingMonth=202610/part_0.json.gz?sv=1&sig=s',
      '/billedusagefastpath/v1/PartnerTenantId={value}/BillingMonth={value}/{id}',
    ],
    ['/statements/G000024130.pdf', '/statements/{id}'],
  ])('%s → %s', (url, template) => {
    expect(endpointTemplate(url)).toBe(template);
  });
});

describe('loggers', () => {
  test('redactingLogger removes tokens, signatures and signed-link queries from messages and properties', () => {
    const { lines, log } = capture();
    const redacting = redactingLogger(log);
    redacting.error('GET https://a.blob.core.windows.net/x.pdf?se=1&sig=SIGVALUE123 failed', {
      error: 'Authorization: Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln refused',
      body: '{"refresh_token":"RT-SECRET-1"}',
      rows: 3,
    });
    redacting.event('HttpRequest', { note: 'client_secret=CS-SECRET-2' });
    const text = JSON.stringify(lines);
    for (const secret of ['SIGVALUE123', 'eyJhbGciOiJub25lIn0', 'RT-SECRET-1', 'CS-SECRET-2']) {
      expect(text).not.toContain(secret);
    }
    expect(lines[0]?.properties?.rows).toBe(3);
    expect(text).toContain('https://a.blob.core.windows.net/x.pdf?REDACTED');
  });

  test('correlatingLogger adds a known invoice correlation id to lines that lack it, and never overwrites one', () => {
    const { lines, log } = capture();
    const correlating = correlatingLogger(log, 2);
    correlating.event('InvoiceDiscovered', { invoiceId: 'A', correlationId: 'ca' });
    correlating.event('PartUnsettled', { invoiceId: 'A', partId: 'p' });
    correlating.info('Part routed', { invoiceId: 'A', correlationId: 'other' });
    correlating.warn('no id known', { invoiceId: 'Z' });
    correlating.info('B', { invoiceId: 'B', correlationId: 'cb' });
    correlating.info('C', { invoiceId: 'C', correlationId: 'cc' });
    correlating.error('A again', { invoiceId: 'A' }); // forgotten: at most two invoices are remembered
    expect(lines.map((l) => l.properties?.correlationId)).toEqual([
      'ca',
      'ca',
      'other',
      undefined,
      'cb',
      'cc',
      undefined,
    ]);
  });
});

describe('withRefreshTokenAge', () => {
  test('reports the age after a token is handed out, at most once per interval, and never fails the token', async () => {
    const { lines, log } = capture();
    let now = 0;
    let age: number | undefined = 70.26;
    const credential = withRefreshTokenAge(fixed('t'), {
      ageDays: async () => {
        if (age === undefined) throw new Error('Key Vault down');
        return age;
      },
      log,
      warnAfterDays: 60,
      intervalMs: 1000,
      now: () => now,
    });
    await credential.getToken('s');
    await credential.getToken('s');
    now = 1000;
    age = 0;
    await credential.getToken('s');
    now = 2000;
    age = undefined;
    expect(await credential.getToken('s')).toMatchObject({ token: 't' });
    expect(lines.map((l) => [l.message, l.properties])).toEqual([
      ['RefreshTokenAge', { ageDays: 70.3, warnAfterDays: 60, daysLeft: 19 }],
      ['RefreshTokenAge', { ageDays: 0, warnAfterDays: 60, daysLeft: 90 }],
    ]);
  });
});

describe('TelemetryCollector', () => {
  test('computes the run metrics from events and prints them', () => {
    const c = new TelemetryCollector();
    const log = c.logger();
    log.event('InvoiceDiscovered', { invoiceId: 'A' });
    log.event('InvoiceStateChanged', { invoiceId: 'A', state: 'complete' });
    log.event('InvoiceStateChanged', { invoiceId: 'B', state: 'failed' });
    log.event('PartExported', { rows: 10, bytes: 100, durationMs: 50 });
    log.event('PartExported', { rows: 5, bytes: 40, durationMs: 80 });
    for (const ms of [100, 200, 300]) log.event('PdfSaved', { pdfAgeMs: ms });
    log.event('HttpRequest', {
      host: 'partnercenter',
      method: 'GET',
      endpoint: '/v1/invoices',
      status: 429,
      attempt: 1,
      throttled: true,
    });
    log.event('HttpRequest', {
      host: 'partnercenter',
      method: 'GET',
      endpoint: '/v1/invoices',
      status: 200,
      attempt: 2,
      throttled: false,
    });
    const s = c.summary();
    expect(s.invoices).toMatchObject({ discovered: 1, completed: 1, failed: 1, unsettled: 0 });
    expect(s.parts).toMatchObject({ exported: 2, rows: 15, bytes: 140, slowestMs: 80 });
    expect(s.pdfAgeMs).toEqual({ count: 3, p50: 200, p99: 300, max: 300 });
    expect(s.http).toMatchObject({ requests: 2, retries: 1, throttled: 1, failed: 1 });
    expect(s.http.byEndpoint['partnercenter GET /v1/invoices']).toEqual({
      requests: 2,
      retries: 1,
      throttled: 1,
      failed: 1,
    });
    const text = formatSummary(s).join('\n');
    expect(text).toContain('1 discovered, 1 completed, 1 failed');
    expect(text).toContain('partnercenter GET /v1/invoices: 2 requests, 1 retries, 1 throttled');
  });
});
