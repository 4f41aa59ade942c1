// Secrets never leave: a full run with faults, and everything it wrote anywhere (logs, the Functions host log,
// SDK logs, stdout/stderr, the ledger, every blob incl. manifest.json and invoice.json) is scanned for every
// bearer token, refresh token, client secret, SAS signature, sasToken and signed PDF link query the run handled.
// The same run must show every event and metric of the operations issue (issue 7).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SYNC_EVENTS, TelemetryCollector } from '../../src/telemetry/index.js';
import { type Simulator, startSimulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { AUTHORITY_HOST, type CapturedRun, DATASET, FAILING_INVOICE, fullRunWithFaults } from './full-run.js';
import { findSecrets, type Secret, secretsSeenBy } from './secrets.js';

let azurite: Azurite;
let sim: Simulator;
let run: CapturedRun;
let secrets: Secret[];

beforeAll(async () => {
  azurite = await startAzurite();
  sim = await startSimulator({
    seed: 3,
    dataset: { invoices: DATASET },
    v2: { retryAfterSeconds: 0 },
    auth: { publicAuthorityUrl: AUTHORITY_HOST },
  });
  run = await fullRunWithFaults(sim, azurite);
  secrets = secretsSeenBy(sim, run);
}, 120_000);
afterAll(async () => {
  await sim?.stop();
  await azurite?.stop();
});

function outputs(r: CapturedRun): Record<string, string> {
  const sources: Record<string, string> = {
    logger: JSON.stringify(r.logLines),
    functionsHostLog: r.hostLog.join('\n'),
    sdkLog: r.sdkLog.join('\n'),
    processOutput: r.processOutput.join(''),
    ledger: r.ledger,
  };
  for (const [path, content] of r.blobs) sources[`blob ${path}`] = content;
  return sources;
}

describe('secrets never leave', () => {
  test('the run handled every kind of secret (so the scan below means something)', () => {
    const kinds = new Set(secrets.map((s) => s.kind));
    expect([...kinds].sort()).toEqual([
      'bearer',
      'client-secret',
      'pdf-link-query',
      'refresh-token',
      'sasToken',
      'sig',
    ]);
    // The faults happened: an invoice failed, a signed link and a SAS were refused, requests were throttled.
    expect(run.result.invoices.find((i) => i.invoiceId === FAILING_INVOICE)?.state).toBe('failed');
    expect(sim.requests.some((r) => r.host === 'blob' && r.status === 403 && r.path.startsWith('/statements/'))).toBe(
      true,
    );
    expect(sim.requests.some((r) => r.host === 'blob' && r.status === 403 && /fastpath/.test(r.path))).toBe(true);
    expect(sim.requests.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(4);
    expect(sim.requests.some((r) => r.status === 0)).toBe(true);
    // Everything that leaves was captured: there is material to scan in every channel.
    expect(run.logLines.length).toBeGreaterThan(20);
    expect(run.hostLog.length).toBeGreaterThan(20);
    expect(run.sdkLog.length).toBeGreaterThan(20);
    expect([...run.blobs.keys()].some((p) => p.endsWith('manifest.json'))).toBe(true);
    expect([...run.blobs.keys()].some((p) => p.endsWith('invoice.json'))).toBe(true);
  });

  test('no bearer token, refresh token, client secret, sig, sasToken or PDF link query appears anywhere', () => {
    expect(findSecrets(outputs(run), secrets)).toEqual([]);
  });

  test('the scan catches a secret planted in any channel', () => {
    const bearer = secrets.find((s) => s.kind === 'bearer')!;
    const sas = secrets.find((s) => s.kind === 'sasToken')!;
    const planted = {
      ...run,
      hostLog: [...run.hostLog, `error GET failed Authorization: Bearer ${bearer.value}`],
      blobs: new Map([
        ...run.blobs,
        ['x/manifest.json', `{"rootDirectory":"https://a.blob.core.windows.net/?${sas.value}"}`],
      ]),
    };
    const found = findSecrets(outputs(planted), secrets);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^bearer .* in functionsHostLog$/),
        expect.stringMatching(/^sasToken .* in blob x\/manifest\.json$/),
        expect.stringMatching(/^sig .* in blob x\/manifest\.json$/),
      ]),
    );
    expect(found).toHaveLength(3);
  });

  test('errors that came from refused links are recorded without their query', () => {
    const errors = [...run.result.invoices.map((i) => i.lastError), ...run.result.parts.map((p) => p.lastError)].filter(
      (e): e is string => typeof e === 'string' && e.length > 0,
    );
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors) expect(error).not.toMatch(/[?&](sig|se|sv|sp)=[^&\s]+/);
  });
});

describe('a full run with faults shows every event and metric of issue 7', () => {
  const named = (name: string) => run.events.filter((e) => e.name === name).map((e) => e.properties);

  test('every event of the run carries the dimensions docs/operations.md promises', () => {
    // PartDataChanged needs a daily re-check that finds new data: test/e2e/resilience.test.ts checks its dimensions.
    const expected = Object.keys(SYNC_EVENTS).filter((n) => n !== 'PartDataChanged');
    expect(new Set(run.events.map((e) => e.name))).toEqual(new Set(expected));
    for (const { name, properties } of run.events) {
      for (const dimension of SYNC_EVENTS[name as keyof typeof SYNC_EVENTS] ?? []) {
        expect(properties[dimension], `${name}.${dimension}`).not.toBeUndefined();
      }
    }
  });

  test('an event per invoice state change and per finished part, with their dimensions', () => {
    for (const spec of DATASET) {
      expect(named('InvoiceDiscovered').map((p) => p.invoiceId)).toContain(spec.id);
    }
    const states = new Set(named('InvoiceStateChanged').map((p) => p.state));
    for (const state of ['pdf_saved', 'complete', 'failed', 'unsettled']) expect(states).toContain(state);
    const parts = named('PartExported');
    expect(parts.length).toBeGreaterThanOrEqual(4);
    for (const p of parts) {
      expect(p).toMatchObject({
        invoiceId: expect.any(String),
        provider: expect.any(String),
        lineItemType: expect.any(String),
        api: expect.stringMatching(/^v[12]$/),
        rows: expect.any(Number),
        bytes: expect.any(Number),
        durationMs: expect.any(Number),
        attempts: expect.any(Number),
        correlationId: expect.any(String),
      });
    }
    expect(new Set(parts.map((p) => p.api))).toEqual(new Set(['v1', 'v2']));
    expect(named('PartUnsettled').length).toBeGreaterThan(0);
    for (const p of named('PdfSaved')) expect(p.pdfAgeMs).toEqual(expect.any(Number));
  });

  test('HTTP requests per attempt: retries and 429s by templated endpoint, no query strings, no ids', () => {
    const http = named('HttpRequest');
    expect(http.length).toBeGreaterThan(20);
    const throttled = http.filter((p) => p.throttled === true);
    expect(throttled.length).toBeGreaterThanOrEqual(4);
    expect(throttled.map((p) => p.host)).toEqual(expect.arrayContaining(['partnercenter', 'graph']));
    expect(http.some((p) => Number(p.attempt) > 1)).toBe(true);
    expect(http.some((p) => p.status === 0 && p.errorCode === 'ECONNRESET')).toBe(true);
    expect(new Set(http.map((p) => p.host))).toEqual(new Set(['partnercenter', 'graph', 'blob']));
    const endpoints = new Set(http.map((p) => String(p.endpoint)));
    expect(endpoints).toContain('/v1/invoices/{id}/lineitems');
    expect(endpoints).toContain('/v1/invoices/{id}');
    for (const endpoint of endpoints) {
      expect(endpoint).not.toContain('?');
      for (const spec of DATASET) expect(endpoint).not.toContain(spec.id);
    }
    // Every Partner Center attempt of an invoice sync carries the invoice's correlation id (MS-CorrelationId).
    const invoiceIds = new Map(named('InvoiceDiscovered').map((p) => [String(p.correlationId), String(p.invoiceId)]));
    const byId = http.filter((p) => p.host === 'partnercenter' && p.endpoint === '/v1/invoices/{id}');
    expect(byId.length).toBeGreaterThan(0);
    for (const p of byId) expect(invoiceIds.has(String(p.correlationId))).toBe(true);
  });

  test('refresh-token age is reported, and the warning the alert reads is logged', () => {
    const age = named('RefreshTokenAge');
    expect(age.length).toBe(1); // once per hour at most
    expect(age[0]).toMatchObject({ warnAfterDays: 60 });
    expect(Number(age[0]?.ageDays)).toBeGreaterThanOrEqual(69.9);
    expect(Number(age[0]?.daysLeft)).toBeLessThanOrEqual(20);
    // infra/modules/alerts.bicep 'refresh-token-expiry': severityLevel >= 2 and the message has "refresh token".
    const warnings = run.logLines.filter((l) => l.level === 'warn' && l.message.includes('refresh token'));
    expect(warnings.some((w) => /70 days old/.test(w.message))).toBe(true);
  });

  test('the metrics the CLI summary and the KQL compute come out of these events', () => {
    const collector = new TelemetryCollector();
    for (const e of run.events) collector.record(e.name, e.properties);
    const s = collector.summary();
    expect(s.invoices.discovered).toBe(DATASET.length);
    expect(s.invoices.completed).toBeGreaterThanOrEqual(3);
    expect(s.invoices.failed).toBe(1);
    expect(s.invoices.unsettled).toBe(1);
    // Every committed part counts, an invoice's or an unbilled snapshot's (the same export path emits PartExported).
    const committed = [...run.result.parts, ...run.unbilledParts].filter((p) => p.state === 'complete');
    expect(run.unbilledParts.filter((p) => p.state === 'complete')).toHaveLength(2);
    expect(s.parts.rows).toBe(committed.reduce((n, p) => n + p.rows, 0));
    expect(s.parts.bytes).toBeGreaterThan(0);
    expect(s.http.retries).toBeGreaterThan(0);
    expect(s.http.throttled).toBeGreaterThanOrEqual(4);
    expect(s.pdfAgeMs.count).toBeGreaterThanOrEqual(4);
    expect(s.refreshTokenAgeDays).toBeGreaterThanOrEqual(69.9);
  });
});
