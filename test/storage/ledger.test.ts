import { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IllegalTransitionError,
  Ledger,
  LedgerNotFoundError,
  MAX_LAST_ERROR_CHARS,
  type NewInvoiceEntity,
  type NewPartEntity,
} from '../../src/storage/ledger.js';
import { type Azurite, startAzurite } from '../support/azurite.js';

let azurite: Azurite;
let ledger: Ledger;
let table: TableClient;

beforeAll(async () => {
  azurite = await startAzurite();
  table = TableClient.fromConnectionString(azurite.connectionString, 'ledgertest', { allowInsecureConnection: true });
  ledger = new Ledger(table);
  await ledger.ensure();
});
afterAll(async () => {
  await azurite?.stop();
});

const invoice = (invoiceId: string, extra: Partial<NewInvoiceEntity> = {}): NewInvoiceEntity => ({
  invoiceId,
  billingPeriod: '2024-03',
  invoiceDate: '2024-03-01T00:00:00Z',
  documentType: 'Invoice',
  invoiceType: 'Recurring',
  currencyCode: 'USD',
  totalCharges: '1234.5600',
  state: 'discovered',
  attempts: 0,
  discoveredAt: '2024-03-02T00:00:00.000Z',
  updatedAt: '2024-03-02T00:00:00.000Z',
  correlationId: 'corr-1',
  ...extra,
});

const part = (invoiceId: string, partId: string, extra: Partial<NewPartEntity> = {}): NewPartEntity => ({
  invoiceId,
  partId,
  provider: 'azure',
  lineItemType: 'billing',
  api: 'v1',
  state: 'queued',
  blocksStaged: 0,
  rows: 0,
  bytes: 0,
  attempts: 0,
  blobPath: `billing_period=2024-03/invoice_id=${invoiceId}/lineitems/provider=azure/line_item_type=billing/rows.ndjson`,
  updatedAt: '2024-03-02T00:00:00.000Z',
  ...extra,
});

describe('Ledger', () => {
  it('ensure is idempotent', async () => {
    await ledger.ensure();
    await ledger.ensure();
  });

  it('inserts an invoice once; a second insert changes nothing', async () => {
    expect(await ledger.tryInsertInvoice(invoice('G100', { totalCharges: '10.10' }))).toBe(true);
    expect(await ledger.tryInsertInvoice(invoice('G100', { totalCharges: '99.99', state: 'complete' }))).toBe(false);
    const stored = await ledger.getInvoice('G100');
    expect(stored).toMatchObject({ invoiceId: 'G100', totalCharges: '10.10', state: 'discovered', attempts: 0 });
    expect(await ledger.getInvoice('G404')).toBeUndefined();
  });

  it('keeps amounts exact and numbers beyond Int32, and removes fields patched to undefined', async () => {
    await ledger.tryInsertInvoice(invoice('G101', { totalCharges: '0.1000000000000000055511', lastError: 'boom' }));
    const updated = await ledger.updateInvoice('G101', () => ({ lastError: undefined, pdfBytes: 5_000_000_001 }));
    expect(updated.lastError).toBeUndefined();
    const stored = await ledger.getInvoice('G101');
    expect(stored?.totalCharges).toBe('0.1000000000000000055511');
    expect(stored?.pdfBytes).toBe(5_000_000_001);
    expect(stored && 'lastError' in stored).toBe(false);
  });

  it('two concurrent updateInvoice calls both apply; none is lost', async () => {
    await ledger.tryInsertInvoice(invoice('G102'));
    await Promise.all(
      Array.from({ length: 8 }, () => ledger.updateInvoice('G102', (c) => ({ attempts: c.attempts + 1 }))),
    );
    expect((await ledger.getInvoice('G102'))?.attempts).toBe(8);
  });

  it('a stale ETag write fails with 412, and updateInvoice then re-reads and re-applies', async () => {
    await ledger.tryInsertInvoice(invoice('G103'));
    // A second, real client whose pipeline lets another worker write just before our first conditional write.
    const racing = TableClient.fromConnectionString(azurite.connectionString, 'ledgertest', {
      allowInsecureConnection: true,
    });
    let interfered = false;
    const statuses: number[] = [];
    racing.pipeline.addPolicy({
      name: 'interleave-foreign-write',
      async sendRequest(request, next) {
        if (request.method === 'PUT' && !interfered) {
          interfered = true;
          const other = new Ledger(table);
          await other.updateInvoice('G103', (c) => ({ attempts: c.attempts + 1, correlationId: 'other-worker' }));
        }
        try {
          const response = await next(request);
          if (request.method === 'PUT') statuses.push(response.status);
          return response;
        } catch (error) {
          if (request.method === 'PUT') statuses.push((error as { statusCode?: number }).statusCode ?? -1);
          throw error;
        }
      },
    });
    const mine = new Ledger(racing);
    const seen: number[] = [];
    const result = await mine.updateInvoice('G103', (current) => {
      seen.push(current.attempts);
      return { attempts: current.attempts + 10 };
    });
    expect(statuses).toEqual([412, 204]);
    expect(seen).toEqual([0, 1]);
    expect(result).toMatchObject({ attempts: 11, correlationId: 'other-worker' });
    expect(await ledger.getInvoice('G103')).toMatchObject({ attempts: 11, correlationId: 'other-worker' });
  });

  it('mutate returning undefined writes nothing', async () => {
    await ledger.tryInsertInvoice(invoice('G105'));
    const before = await table.getEntity('invoice', 'G105');
    const result = await ledger.updateInvoice('G105', () => undefined);
    const after = await table.getEntity('invoice', 'G105');
    expect(after.etag).toBe(before.etag);
    expect(result.invoiceId).toBe('G105');
  });

  it('updating a missing invoice fails clearly', async () => {
    await expect(ledger.updateInvoice('G999', () => ({ attempts: 1 }))).rejects.toBeInstanceOf(LedgerNotFoundError);
  });

  it('transitionInvoice follows the state machine and refuses illegal moves', async () => {
    await ledger.tryInsertInvoice(invoice('G106'));
    const queued = await ledger.transitionInvoice('G106', ['discovered'], 'queued', {
      queuedAt: '2024-03-02T01:00:00Z',
    });
    expect(queued).toMatchObject({ state: 'queued', queuedAt: '2024-03-02T01:00:00Z' });
    await expect(ledger.transitionInvoice('G106', ['discovered'], 'complete')).rejects.toBeInstanceOf(
      IllegalTransitionError,
    );
    await expect(ledger.transitionInvoice('G106', ['exporting'], 'complete')).rejects.toThrow(
      /G106 is queued; expected exporting/,
    );
    expect((await ledger.getInvoice('G106'))?.state).toBe('queued');
  });

  it('truncates lastError and rejects an invalid entity', async () => {
    await ledger.tryInsertInvoice(invoice('G107'));
    const updated = await ledger.updateInvoice('G107', () => ({ lastError: 'x'.repeat(10_000) }));
    expect(updated.lastError?.length).toBe(MAX_LAST_ERROR_CHARS);
    await expect(ledger.updateInvoice('G107', () => ({ state: 'bogus' as never }))).rejects.toThrow(/Invalid invoice/);
    await expect(ledger.tryInsertInvoice(invoice('../x'))).rejects.toThrow(/Unsafe invoice id/);
  });

  it('lists invoices, filtered by state', async () => {
    await ledger.tryInsertInvoice(invoice('L1', { state: 'failed' }));
    await ledger.tryInsertInvoice(invoice('L2', { state: 'unsettled' }));
    const ids: string[] = [];
    for await (const entity of ledger.listInvoices({ states: ['failed', 'unsettled'] })) ids.push(entity.invoiceId);
    expect(ids.sort()).toEqual(['L1', 'L2']);
    const all: string[] = [];
    for await (const entity of ledger.listInvoices()) all.push(entity.invoiceId);
    expect(all).toEqual(expect.arrayContaining(['G100', 'L1', 'L2']));
  });

  it('parts: insert-if-absent keeps progress, updates are conditional, listParts is per invoice', async () => {
    const first = await ledger.upsertPartIfAbsent(part('P1', 'azure-billing'));
    expect(first.created).toBe(true);
    await ledger.updatePart('P1', 'azure-billing', () => ({ blocksStaged: 3, rows: 30, checkpoint: '{"offset":30}' }));
    const again = await ledger.upsertPartIfAbsent(part('P1', 'azure-billing'));
    expect(again.created).toBe(false);
    expect(again.part).toMatchObject({ blocksStaged: 3, rows: 30, checkpoint: '{"offset":30}', version: 1 });
    await ledger.upsertPartIfAbsent(part('P1', 'office-usage', { lineItemType: 'usage', provider: 'office' }));
    await ledger.upsertPartIfAbsent(part('P2', 'azure-billing'));
    await Promise.all(
      Array.from({ length: 6 }, () =>
        ledger.updatePart('P1', 'office-usage', (c) => ({ rows: c.rows + 1, attempts: c.attempts + 1 })),
      ),
    );
    expect((await ledger.getPart('P1', 'office-usage'))?.rows).toBe(6);
    const parts = await ledger.listParts('P1');
    expect(parts.map((p) => [p.invoiceId, p.partId])).toEqual([
      ['P1', 'azure-billing'],
      ['P1', 'office-usage'],
    ]);
    await expect(ledger.updatePart('P1', 'azure-billing', () => ({ checkpoint: 'x'.repeat(16_385) }))).rejects.toThrow(
      /Checkpoint .* limit/,
    );
    const longToken = JSON.stringify({ kind: 'seek', headers: { 'MS-ContinuationToken': 't'.repeat(16_000) } });
    const saved = await ledger.updatePart('P1', 'azure-billing', () => ({ checkpoint: longToken }));
    expect((await ledger.getPart('P1', 'azure-billing'))?.checkpoint).toBe(saved.checkpoint);
    expect(saved.checkpoint).toBe(longToken);
    expect(await ledger.getPart('P1', 'nope')).toBeUndefined();
    await expect(ledger.getPart('P1', 'a/b')).rejects.toThrow(/Invalid part id/);
  });
});
