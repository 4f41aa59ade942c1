// No error is ever empty: every failure class, driven through the real jobs, reaches the ledger and the log with
// what was being done, the HTTP status, the service's code and the request id.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHandlers } from '../../src/app/handlers.js';
import { queueBindings } from '../../src/app/queue-bindings.js';
import { LocalQueueHost } from '../../src/app/queue-host.js';
import { runPass } from '../../src/app/run-pass.js';
import { describeError } from '../../src/http/errors.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import { detectInvoices } from '../../src/sync/detect-invoices.js';
import { type InvoiceSpec, type Simulator, startSimulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { type CapturedLog, freshDeps } from '../support/harness.js';

let azurite: Azurite;
beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

const spec = (id: string, billingPeriod = '2023-05'): InvoiceSpec => ({
  id,
  kind: 'modern',
  billingPeriod,
  parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 4 }],
});

/** The error property of the log lines about an invoice (warn or error level). */
const loggedErrors = (log: CapturedLog, invoiceId: string) =>
  log.lines
    .filter((l) => (l.level === 'error' || l.level === 'warn') && l.properties?.invoiceId === invoiceId)
    .map((l) => String(l.properties?.error ?? ''));

const json = { 'content-type': 'application/json; charset=utf-8' };

describe('Partner Center failures, one of each documented shape', () => {
  const cases: { id: string; fault: Parameters<Simulator['faults']['add']>[0]; expected: RegExp[] }[] = [
    {
      id: 'G0ERR00001',
      fault: {
        kind: 'status',
        status: 404,
        headers: json,
        body: '{"code":1000,"description":"Not found","data":[],"source":"PartnerFD"}',
      },
      expected: [/^fetch invoice G0ERR00001 by id: /, /HTTP 404/, /code 1000/, /Not found/, /requestId=[0-9a-f-]{36}/],
    },
    {
      id: 'G0ERR00002',
      fault: { kind: 'status', status: 400, headers: json, body: '{"message":"The request is invalid."}' },
      expected: [/HTTP 400/, /The request is invalid\./],
    },
    {
      id: 'G0ERR00003',
      fault: {
        kind: 'status',
        status: 429,
        headers: { ...json, 'retry-after': '3600' },
        body: '{"statusCode":429,"message":"Rate limit is exceeded. Try again in 3600 seconds."}',
      },
      expected: [/HTTP 429/, /Rate limit is exceeded/, /3600/],
    },
    {
      id: 'G0ERR00004',
      fault: { kind: 'status', status: 404, body: '' },
      expected: [/HTTP 404/, /no error description/],
    },
    {
      id: 'G0ERR00005',
      fault: {
        kind: 'status',
        status: 502,
        headers: { 'content-type': 'text/html' },
        body: '<html><body><h1>502 Bad Gateway</h1></body></html>',
      },
      expected: [/HTTP 502/, /Bad Gateway/],
    },
    {
      id: 'G0ERR00006',
      fault: {
        kind: 'status',
        status: 403,
        headers: json,
        body: '{"code":2032,"description":"Access denied","data":[],"source":"PartnerFD"}',
      },
      expected: [/HTTP 403/, /code 2032/, /Access denied/],
    },
    {
      id: 'G0ERR00007',
      fault: { kind: 'reset' },
      expected: [/^fetch invoice G0ERR00007 by id: /, /ECONNRESET|socket hang up|reset/i],
    },
    {
      id: 'G0ERR00008',
      fault: { kind: 'delay', ms: 7_000 },
      expected: [/ETIMEDOUT|timed? ?out|no complete response/i],
    },
    {
      id: 'G0ERR00009',
      fault: {
        kind: 'status',
        status: 200,
        headers: json,
        body: '{"invoiceDate":"2023-06-08T00:00:00Z","totalCharges":1}',
      },
      expected: [/fetch invoice G0ERR00009 by id/, /id/],
    },
  ];

  test('each reaches the ledger and the log with operation, status, code and request id', async () => {
    const sim = await startSimulator({ dataset: { invoices: cases.map((c) => spec(c.id)) } });
    try {
      for (const c of cases) {
        sim.faults.add({
          host: 'partnercenter',
          path: new RegExp(`^/v1/invoices/${c.id}$`),
          times: 100,
          ...c.fault,
        } as never);
      }
      const { deps, log } = await freshDeps(sim, azurite, {
        settings: { HTTP_MAX_RETRIES: '0', HTTP_TIMEOUT_SECONDS: '5' },
        host: { maxDequeueCount: 1 },
      });
      const result = await runPass(deps, { retryVisibilitySeconds: 0 });
      for (const c of cases) {
        const invoice = result.invoices.find((i) => i.invoiceId === c.id);
        expect([c.id, invoice?.state]).toEqual([c.id, 'failed']);
        for (const pattern of c.expected) expect(invoice?.lastError, `${c.id} ledger`).toMatch(pattern);
        const logged = loggedErrors(log, c.id);
        expect(logged.length, `${c.id} log`).toBeGreaterThan(0);
        for (const text of logged) expect(text.trim().length).toBeGreaterThan(20);
        expect(
          logged.some((text) => c.expected.every((p) => p.test(text))),
          `${c.id} log`,
        ).toBe(true);
        // Redacted: no bearer token or signature ever reaches the ledger.
        expect(invoice?.lastError).not.toMatch(/eyJ|sig=/);
      }
    } finally {
      await sim.stop();
    }
  }, 120_000);
});

describe('Graph and Storage failures', () => {
  test('a Graph error body names the export, the status and Graph code', async () => {
    const sim = await startSimulator({
      dataset: { invoices: [spec('G0GERR0001', '2026-09')] },
      v2: { retryAfterSeconds: 0 },
    });
    try {
      sim.faults.add({
        host: 'graph',
        method: 'POST',
        kind: 'status',
        status: 400,
        headers: { 'content-type': 'application/json' },
        body: '{"error":{"code":"BadRequest","message":"Invoice G0GERR0001 is not valid for this export","innerError":{"request-id":"11111111-2222-3333-4444-555555555555"}}}',
        times: 10,
      });
      const { deps, log } = await freshDeps(sim, azurite, { settings: { HTTP_MAX_RETRIES: '0' } });
      const result = await runPass(deps, { retryVisibilitySeconds: 0 });
      const part = result.parts[0]!;
      expect(part.state).toBe('failed');
      for (const pattern of [
        /^start the v2 reconciliation export of G0GERR0001: /,
        /HTTP 400/,
        /BadRequest/,
        /not valid for this export/,
        /11111111-2222-3333-4444-555555555555/,
      ]) {
        expect(part.lastError).toMatch(pattern);
      }
      expect(result.invoices[0]?.lastError).toMatch(/part onetime-billing: start the v2/);
      expect(loggedErrors(log, 'G0GERR0001').some((t) => /BadRequest/.test(t))).toBe(true);
    } finally {
      await sim.stop();
    }
  });

  /** Sync the invoice (its part recorded and queued), then let storage refuse, then run the export. */
  async function exportFailure(arrange: (deps: SyncDeps, blobPath: string) => Promise<void>) {
    const sim = await startSimulator({ dataset: { invoices: [spec('D0SERR0001', '2024-01')] } });
    try {
      const { deps, log } = await freshDeps(sim, azurite, { host: { maxDequeueCount: 1 } });
      await detectInvoices(deps);
      const bindings = queueBindings(
        deps.storage,
        createHandlers(async () => deps),
      );
      await new LocalQueueHost([bindings.syncInvoice], { maxDequeueCount: 1 }).drain();
      const part = (await deps.storage.ledger.listParts('D0SERR0001'))[0]!;
      await arrange(deps, part.blobPath);
      // The export runs as the host runs it (no start-up step re-creates what the test took away).
      await new LocalQueueHost([bindings.exportLineItems], { maxDequeueCount: 1, retryVisibilitySeconds: 0 }).drain();
      return { part: (await deps.storage.ledger.listParts('D0SERR0001'))[0]!, log };
    } finally {
      await sim.stop();
    }
  }

  test.each([
    [
      '404: the container is gone',
      async (deps: SyncDeps): Promise<void> => {
        await deps.storage.container.delete();
      },
      [/^stage block 0 of /, /404/, /ContainerNotFound/],
    ],
    [
      '409: a blob of another type stands where the file goes',
      async (deps: SyncDeps, path: string): Promise<void> => {
        await deps.storage.container.getAppendBlobClient(path).create();
      },
      [/^stage block 0 of /, /409/, /InvalidBlobType/],
    ],
    [
      '412: someone holds a lease on the file',
      async (deps: SyncDeps, path: string): Promise<void> => {
        await deps.storage.container.getBlockBlobClient(path).upload('x', 1);
        await deps.storage.container.getBlobClient(path).getBlobLeaseClient().acquireLease(-1);
      },
      [/^stage block 0 of /, /412/, /LeaseIdMissing/],
    ],
  ] as const)('%s', async (_label, arrange, patterns) => {
    const { part, log } = await exportFailure(arrange);
    expect(part.state).toBe('failed');
    for (const pattern of patterns) expect(part.lastError).toMatch(pattern);
    expect(part.lastError).toMatch(/requestId=|request id/i);
    expect(loggedErrors(log, 'D0SERR0001').some((t) => patterns.every((p) => p.test(t)))).toBe(true);
  });

  test('403: storage that refuses the credentials says so, with its code, at the first call', async () => {
    const sim = await startSimulator({ dataset: { invoices: [spec('D0SERR0002', '2024-01')] } });
    try {
      const wrongKey = azurite.connectionString.replace(
        /AccountKey=[^;]+/,
        `AccountKey=${Buffer.alloc(64, 1).toString('base64')}`,
      );
      const error = await freshDeps(sim, azurite, { settings: { AzureWebJobsStorage: wrongKey } }).catch(
        (e: unknown) => e,
      );
      const text = describeError(error);
      expect(text).toMatch(/403/);
      expect(text).toMatch(/AuthorizationFailure|AuthenticationFailed/);
      expect(text.length).toBeGreaterThan(20);
    } finally {
      await sim.stop();
    }
  });
});
