// The whole product on real parts: Azurite + the simulator over loopback HTTP + the same jobs the Functions run,
// driven by the local queue host (base64, dequeue count, poison). One Azurite and simulator per file; each test
// uses its own container and ledger table so they do not see each other's data.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSyncDeps } from '../../src/app/create-deps.js';
import { runPass } from '../../src/app/run-pass.js';
import { loadSettings } from '../../src/config.js';
import { encodeMessage } from '../../src/storage/queues.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import type { EventProperties, SyncLogger } from '../../src/telemetry/logger.js';
import { type InvoiceSpec, type Simulator, startSimulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { blobSnapshot, expectedNdjson, normalizeProvider, normalizeType, sha256 } from '../support/expected.js';
import { hostWith, simulatorEnvironment } from '../support/sim-env.js';

let azurite: Azurite;
let sim: Simulator;

beforeAll(async () => {
  azurite = await startAzurite();
  sim = await startSimulator({ seed: 11, v2: { retryAfterSeconds: 0 } });
});
afterAll(async () => {
  await sim?.stop();
  await azurite?.stop();
});

interface Captured extends SyncLogger {
  lines: { level: string; message: string; properties?: EventProperties }[];
}
function captureLog(): Captured {
  const lines: Captured['lines'] = [];
  return {
    lines,
    info: (message, properties) => lines.push({ level: 'info', message, properties }),
    warn: (message, properties) => lines.push({ level: 'warn', message, properties }),
    error: (message, properties) => lines.push({ level: 'error', message, properties }),
    event: (message, properties) => lines.push({ level: 'event', message, properties }),
  };
}

/** Fresh deps over their own container and table, so every test starts from an empty store. */
async function freshDeps(
  extra: Record<string, string> = {},
  host = hostWith({}),
): Promise<SyncDeps & { log: Captured }> {
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
  const env = await simulatorEnvironment(sim, azurite, {
    INVOICE_CONTAINER: `inv${suffix}`,
    LEDGER_TABLE: `ledger${suffix}`,
    ...extra,
  });
  const log = captureLog();
  // The app's clock is the simulator's (a fixed start): which invoices are inside SETTLE_WINDOW_DAYS, and so what a
  // second pass may ask again, never depends on the day the tests run.
  const deps = await createSyncDeps(loadSettings(env.settings, host), {
    ...env.overrides,
    log,
    now: () => sim.clock.now(),
  });
  return { ...deps, log };
}

async function readBlob(deps: SyncDeps, path: string): Promise<Buffer> {
  return deps.storage.container.getBlobClient(path).downloadToBuffer();
}

describe('a full pass over a mixed set of invoices', () => {
  test('every invoice lands with its PDF, JSON, manifest and every line item byte-identical; the one whose line items do not add up is a mismatch', async () => {
    const deps = await freshDeps();
    const result = await runPass(deps, { retryVisibilitySeconds: 0 });
    const specs = sim.dataset.invoices();
    expect(result.invoices.map((i) => i.invoiceId).sort()).toEqual(specs.map((s) => s.id).sort());
    // The default data has one invoice published before all its rows (117.25 short): never "complete".
    const short = specs.filter((s) => (s.chargesAdjustment ?? 0) !== 0).map((s) => s.id);
    expect(short).toEqual(['G012040490']);
    expect(result.invoices.filter((i) => i.state !== 'complete').map((i) => [i.invoiceId, i.state])).toEqual([
      ['G012040490', 'mismatch'],
    ]);
    expect(result.allComplete).toBe(false);
    expect(result.drain.poisoned).toBe(0);
    // The default data has no part the app cannot export: nothing below is skipped.
    expect(result.parts.filter((p) => p.state !== 'complete')).toEqual([]);

    const apis = new Set<string>();
    for (const spec of specs) {
      const invoice = result.invoices.find((i) => i.invoiceId === spec.id)!;
      // The partition is the billing period the data states (by id), not one re-derived from the list.
      expect(invoice.billingPeriod, spec.id).toBe(spec.billingPeriod);
      const prefix = `billing_period=${spec.billingPeriod}/invoice_id=${spec.id}/`;
      const pdf = await readBlob(deps, `${prefix}invoice.pdf`);
      expect(pdf.subarray(0, 4).toString()).toBe('%PDF');
      expect(sha256(pdf)).toBe(invoice.pdfSha256);
      const json = (await readBlob(deps, `${prefix}invoice.json`)).toString();
      expect(json).not.toContain('pdfDownloadLink');
      expect(JSON.parse(json).id).toBe(spec.id);

      const manifest = JSON.parse((await readBlob(deps, `${prefix}manifest.json`)).toString());
      expect(manifest).toMatchObject({
        invoiceId: spec.id,
        billingPeriod: spec.billingPeriod,
        status: short.includes(spec.id) ? 'mismatch' : 'complete',
      });
      expect(manifest.artifacts.find((a: { kind: string }) => a.kind === 'invoice')).toMatchObject({
        path: `${prefix}invoice.json`,
        sha256: sha256(json),
      });
      expect(manifest.artifacts.find((a: { kind: string }) => a.kind === 'pdf')).toMatchObject({ sha256: sha256(pdf) });
      expect((spec.parts ?? []).length).toBeGreaterThan(0);
      for (const part of spec.parts ?? []) {
        const provider = normalizeProvider(part.provider, part.lineItemType);
        const lineItemType = normalizeType(part.lineItemType);
        const stored = result.parts.find(
          (p) => p.invoiceId === spec.id && p.provider === provider && p.lineItemType === lineItemType,
        );
        expect(stored, `${spec.id} ${provider}/${lineItemType}`).toMatchObject({ state: 'complete' });
        if (!stored) continue;
        expect(stored.blobPath.startsWith(prefix)).toBe(true);
        apis.add(stored.source ?? stored.api);
        const bytes = await readBlob(deps, stored.blobPath);
        const expected = expectedNdjson(sim, spec.id, part, stored.source === 'v2' ? 'v2' : 'v1');
        expect(bytes.length).toBe(expected.length);
        expect(bytes.equals(expected)).toBe(true);
        const artifact = manifest.artifacts.find((a: { path: string }) => a.path === stored.blobPath);
        expect(artifact).toMatchObject({
          kind: 'lineitems',
          rows: stored.rows,
          sha256: sha256(expected),
          bytes: expected.length,
        });
      }
      // Reported as measured, in exact decimals: it matches where the dataset's totalCharges equals its rows.
      const expectedDifference =
        Math.round((sim.dataset.totalCharges(spec.id) - sim.dataset.rowsTotal(spec.id)) * 100) / 100;
      expect(manifest.reconciliation.invoiceTotalCharges).toBe(sim.dataset.totalChargesText(spec.id));
      expect(Number(manifest.reconciliation.difference)).toBe(expectedDifference);
      expect(manifest.reconciliation.matches).toBe(expectedDifference === 0);
    }
    // Legacy and older invoices through v1, recent new-commerce through Graph v2.
    expect([...apis].sort()).toEqual(['v1', 'v2']);
  });

  test('a second pass is a no-op: no line-item requests, no blob changes, no duplicate rows', async () => {
    const deps = await freshDeps();
    await runPass(deps, { retryVisibilitySeconds: 0 });
    const before = await blobSnapshot(deps.storage.container);
    const requestsBefore = sim.requests.length;
    const second = await runPass(deps, { retryVisibilitySeconds: 0 });
    const after = await blobSnapshot(deps.storage.container);
    expect(second.invoices.filter((i) => i.state !== 'complete').map((i) => i.state)).toEqual(['mismatch']);
    expect(after).toEqual(before);
    const newRequests = sim.requests.slice(requestsBefore);
    expect(newRequests.filter((r) => r.path.toLowerCase().includes('/lineitems'))).toEqual([]);
    expect(newRequests.filter((r) => r.host === 'graph' || r.host === 'blob')).toEqual([]);
    // Only the listing itself is repeated.
    expect(newRequests.every((r) => r.host === 'partnercenter' && /^\/v1\/invoices\/?$/.test(r.path))).toBe(true);
  });
});

describe('redelivery and bad input', () => {
  test('a duplicated message is harmless: the same files, the same rows', async () => {
    const deps = await freshDeps();
    const first = await runPass(deps, { retryVisibilitySeconds: 0 });
    const snapshotRows = first.parts.map((p) => [p.partId, p.rows, p.sha256]);
    const before = await blobSnapshot(deps.storage.container);
    const target = first.parts.find((p) => p.state === 'complete' && p.rows > 0)!;
    await deps.storage.queues.invoiceSync.sendMessage(encodeMessage({ invoiceId: target.invoiceId }));
    await deps.storage.queues.lineItemExport.sendMessage(
      encodeMessage({ invoiceId: target.invoiceId, partId: target.partId }),
    );
    await deps.storage.queues.lineItemExport.sendMessage(
      encodeMessage({ invoiceId: target.invoiceId, partId: target.partId }),
    );
    const again = await runPass(deps, { skipDetect: true, retryVisibilitySeconds: 0 });
    expect(again.drain.poisoned).toBe(0);
    expect(again.parts.map((p) => [p.partId, p.rows, p.sha256])).toEqual(snapshotRows);
    expect(await blobSnapshot(deps.storage.container)).toEqual(before);
  });

  test('malformed messages go to the poison queue at once, logged once, and nothing else stops', async () => {
    const deps = await freshDeps();
    await deps.storage.ensure();
    const bad = [
      Buffer.from('{"invoiceId":').toString('base64'),
      encodeMessage({ invoiceId: '../x' }),
      encodeMessage({ invoiceId: 'G000000001', extra: 'field' }),
    ];
    for (const text of bad) await deps.storage.queues.invoiceSync.sendMessage(text);
    const deliveries: number[] = [];
    const result = await runPass(deps, {
      retryVisibilitySeconds: 0,
      onOutcome: (o) => {
        if (o.functionName === 'syncInvoice') deliveries.push(o.dequeueCount);
      },
    });
    // Nothing was delivered twice: a message that names nothing is not retried.
    expect(deliveries.length).toBeGreaterThanOrEqual(3);
    expect(deliveries.every((count) => count === 1)).toBe(true);
    expect(result.drain.failed).toBe(0);
    expect(result.invoices.filter((i) => i.state !== 'complete').map((i) => i.state)).toEqual(['mismatch']);
    const poisoned = (
      await deps.storage.queueService.getQueueClient('invoice-sync-poison').receiveMessages({ numberOfMessages: 10 })
    ).receivedMessageItems;
    const decoded = (text: string) => Buffer.from(text, 'base64').toString('utf8');
    expect(poisoned.map((m) => decoded(m.messageText)).sort()).toEqual(
      ['{"invoiceId":', '{"invoiceId":"../x"}', '{"invoiceId":"G000000001","extra":"field"}'].sort(),
    );
    const errors = deps.log.lines.filter((l) => l.level === 'error' && l.message.includes('malformed'));
    expect(errors).toHaveLength(3);
    expect(errors.map((l) => String(l.properties?.error))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/not JSON/),
        expect.stringMatching(/invoiceId must be/),
        expect.stringMatching(/extra/),
      ]),
    );
  });
});

describe('what the API may send that we do not know', () => {
  test('unknown, slash-bearing and overlong providers and a hostile invoice id are reported; everything else lands, the PDF once', async () => {
    const invoices: InvoiceSpec[] = [
      {
        id: 'G0UNK00001',
        kind: 'modern',
        billingPeriod: '2021-08',
        documentType: 'brand_new_document_type',
        parts: [
          { provider: 'one_time', lineItemType: 'billing_line_items', rows: 7, drift: true },
          { provider: 'quantum_marketplace', lineItemType: 'billing_line_items', rows: 4 },
          { provider: 'azure/../../etc', lineItemType: 'billing_line_items', rows: 2 },
          { provider: `p${'x'.repeat(300)}`, lineItemType: 'usage_line_items', rows: 2 },
        ],
      },
      { id: '../../G0EVIL01', kind: 'modern', billingPeriod: '2021-08', parts: [] },
    ];
    const other = await startSimulator({ dataset: { invoices } });
    try {
      const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
      const env = await simulatorEnvironment(other, azurite, {
        INVOICE_CONTAINER: `inv${suffix}`,
        LEDGER_TABLE: `ledger${suffix}`,
      });
      const log = captureLog();
      const deps = await createSyncDeps(loadSettings(env.settings), { ...env.overrides, log });
      const result = await runPass(deps, { retryVisibilitySeconds: 0 });

      expect(result.detect?.rejected.map((r) => r.id)).toEqual(['../../G0EVIL01']);
      expect(log.lines.some((l) => l.level === 'error' && l.message.includes('cannot be used'))).toBe(true);
      expect(other.requests.some((r) => r.path.includes('EVIL'))).toBe(false);
      const rejected = [];
      for await (const item of deps.storage.ledger.listRejected()) rejected.push(item);
      expect(rejected.map((r) => r.idAsSent)).toEqual(['../../G0EVIL01']);
      expect(result.invoices.map((i) => [i.invoiceId, i.state, i.documentType])).toEqual([
        ['G0UNK00001', 'complete', 'brand_new_document_type'],
      ]);
      expect(result.drain.failed).toBe(0);
      const unsupported = result.parts.filter((p) => p.state === 'unsupported');
      expect(unsupported).toHaveLength(3);
      for (const part of unsupported) {
        expect(part.blobPath).toBe('');
        expect(part.partId).toMatch(/^[a-z0-9][a-z0-9_-]{0,63}$/);
        expect(part.routeReason).toBeTruthy();
      }
      expect(unsupported.map((p) => p.routeReason).join('\n')).toMatch(/unknown billingProvider 'quantum_marketplace'/);
      const known = result.parts.find((p) => p.partId === 'onetime-billing')!;
      const bytes = await deps.storage.container.getBlobClient(known.blobPath).downloadToBuffer();
      expect(bytes.equals(expectedNdjson(other, 'G0UNK00001', invoices[0]!.parts![0]!, 'v1'))).toBe(true);
      const manifest = JSON.parse(
        (
          await deps.storage.container
            .getBlobClient('billing_period=2021-08/invoice_id=G0UNK00001/manifest.json')
            .downloadToBuffer()
        ).toString(),
      );
      expect(manifest.parts).toContainEqual(
        expect.objectContaining({ state: 'unsupported', note: expect.stringContaining('quantum_marketplace') }),
      );
      // The PDF was fetched once: unusable parts never make the invoice go round again.
      const pdfFetches = other.requests.filter(
        (r) => r.path.includes('G0UNK00001') && (r.path.endsWith('.pdf') || r.path.endsWith('/documents/statement')),
      );
      expect(pdfFetches).toHaveLength(1);
      // No blob name carries the odd provider names.
      for await (const blob of deps.storage.container.listBlobsFlat()) expect(blob.name).not.toMatch(/etc|xxxx/);
    } finally {
      await other.stop();
    }
  });
});

describe('telemetry inside a Functions invocation', () => {
  test('every line of a run, HTTP requests included, is filed under its invocation with the correlation id', async () => {
    const { createHandlers } = await import('../../src/app/handlers.js');
    const { invocationLogger } = await import('../../src/app/invocation-logger.js');
    const functions = (await import('@azure/functions')).default;
    // Built as src/sync/runtime.ts builds it in Azure: the base logger writes through the current invocation.
    const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
    const env = await simulatorEnvironment(sim, azurite, {
      INVOICE_CONTAINER: `inv${suffix}`,
      LEDGER_TABLE: `ledger${suffix}`,
    });
    const outside = captureLog();
    const azureLike = await createSyncDeps(loadSettings(env.settings), {
      ...env.overrides,
      log: invocationLogger(outside),
    });
    await azureLike.storage.ensure();
    const lines: string[] = [];
    const context = new functions.InvocationContext({
      functionName: 'syncInvoice',
      triggerMetadata: { dequeueCount: 1 },
      logHandler: (_level, ...args) => lines.push(args.map(String).join(' ')),
    });
    const correlationId = randomUUID();
    await createHandlers(async () => azureLike).syncInvoice({ invoiceId: 'D02005YFHI', correlationId }, context);
    expect(outside.lines).toEqual([]);
    const events = lines.filter((l) => l.startsWith('event:'));
    expect(events.some((l) => l.startsWith('event:HttpRequest'))).toBe(true);
    expect(events.some((l) => l.startsWith('event:PdfSaved') && l.includes(correlationId))).toBe(true);
    expect(lines.some((l) => l.includes('Part routed') && l.includes(correlationId))).toBe(true);
  });
});

describe('a message that keeps failing', () => {
  test('a transient failure is retried; after host.json maxDequeueCount tries it goes to poison and the ledger says failed, with the error', async () => {
    const deps = await freshDeps({ HTTP_MAX_RETRIES: '0' }, hostWith({ maxDequeueCount: 3 }));
    sim.faults.add({
      host: 'partnercenter',
      method: 'GET',
      path: /\/v1\/invoices\/G000024130$/,
      kind: 'status',
      status: 503,
      body: '{"code":503,"description":"Service is busy","data":[],"source":"PartnerFD"}',
      times: 3,
    });
    try {
      const result = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(result.drain.poisoned).toBe(1);
      const failed = result.invoices.find((i) => i.invoiceId === 'G000024130');
      expect(failed).toMatchObject({ state: 'failed', attempts: 3 });
      expect(failed?.lastError).toMatch(/HTTP 503/);
      expect(failed?.lastError).toMatch(/Service is busy/);
      expect(failed?.nextRetryAt).toBeTruthy();
      expect(
        result.invoices
          .filter((i) => i.invoiceId !== 'G000024130')
          .map((i) => i.state)
          .sort(),
      ).toEqual([...Array(8).fill('complete'), 'mismatch'].sort());
      const poison = deps.storage.queueService.getQueueClient('invoice-sync-poison');
      const [message] = (await poison.receiveMessages()).receivedMessageItems;
      expect(JSON.parse(Buffer.from(message!.messageText, 'base64').toString())).toMatchObject({
        invoiceId: 'G000024130',
      });
      expect(deps.log.lines.some((l) => l.level === 'error' && l.message.includes('goes to poison'))).toBe(true);
    } finally {
      sim.faults.clear();
    }
  });

  test('a permanent failure (404) is recorded on the first delivery, not retried, and nothing goes to poison', async () => {
    const deps = await freshDeps({ HTTP_MAX_RETRIES: '0' }, hostWith({ maxDequeueCount: 5 }));
    sim.faults.add({
      host: 'partnercenter',
      method: 'GET',
      path: /\/v1\/invoices\/G000024130$/,
      kind: 'status',
      status: 404,
      body: '{"code":1000,"description":"Not found","data":[],"source":"PartnerFD"}',
      times: 5,
    });
    try {
      const byIdCalls = () => sim.requests.filter((r) => /\/v1\/invoices\/G000024130$/.test(r.path)).length;
      const before = byIdCalls();
      const result = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(byIdCalls() - before).toBe(1);
      expect(result.drain.poisoned).toBe(0);
      const failed = result.invoices.find((i) => i.invoiceId === 'G000024130');
      expect(failed).toMatchObject({ state: 'failed', attempts: 1 });
      expect(failed?.lastError).toMatch(/HTTP 404/);
      expect(failed?.lastError).toMatch(/code 1000/);
      expect(deps.log.lines.some((l) => l.level === 'error' && l.message.includes('failed permanently'))).toBe(true);
    } finally {
      sim.faults.clear();
    }
  });
});
