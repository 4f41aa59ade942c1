import { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NewInvoiceEntity } from '../../src/storage/invoices.js';
import { IllegalTransitionError, Ledger, LedgerNotFoundError, MAX_LAST_ERROR_CHARS } from '../../src/storage/ledger.js';
import { encodeProgress, type NewPartEntity, progressOf, START } from '../../src/storage/parts.js';
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
  rows: 0,
  bytes: 0,
  attempts: 0,
  blobPath: `billing_period=2024-03/invoice_id=${invoiceId}/lineitems/provider=azure/line_item_type=billing/rows.ndjson`,
  updatedAt: '2024-03-02T00:00:00.000Z',
  ...extra,
});

describe('Ledger', () => {
  it('ensure is idempotent: a second call succeeds and keeps what the table holds', async () => {
    await ledger.ensure();
    await ledger.tryInsertInvoice(invoice('G0ENSURE1'));
    await expect(ledger.ensure()).resolves.toBeUndefined();
    expect((await ledger.getInvoice('G0ENSURE1'))?.invoiceId).toBe('G0ENSURE1');
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

  it('every state change follows the state machine; an illegal move writes nothing', async () => {
    await ledger.tryInsertInvoice(invoice('G106'));
    const queued = await ledger.updateInvoice('G106', () => ({ state: 'queued', queuedAt: '2024-03-02T01:00:00Z' }));
    expect(queued).toMatchObject({ state: 'queued', queuedAt: '2024-03-02T01:00:00Z' });
    await ledger.updateInvoice('G106', () => ({ state: 'exporting' }));
    await ledger.updateInvoice('G106', () => ({ state: 'complete' }));
    // complete -> pdf_saved is not a move the state machine has.
    await expect(ledger.updateInvoice('G106', () => ({ state: 'pdf_saved' }))).rejects.toBeInstanceOf(
      IllegalTransitionError,
    );
    await ledger.tryInsertInvoice(invoice('G106B'));
    await expect(ledger.updateInvoice('G106B', () => ({ state: 'complete' }))).rejects.toThrow(
      /G106B cannot move from discovered to complete/,
    );
    expect((await ledger.getInvoice('G106'))?.state).toBe('complete');
    expect((await ledger.getInvoice('G106B'))?.state).toBe('discovered');
    // Staying in a state is always allowed (a field update), and a resting invoice can be queued again.
    await ledger.updateInvoice('G106', () => ({ state: 'complete', attempts: 3 }));
    expect((await ledger.updateInvoice('G106', () => ({ state: 'queued' }))).state).toBe('queued');
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
    expect(progressOf(first.part)).toEqual(START);
    const progress = encodeProgress({
      at: { kind: 'offset', pageIndex: 3, offset: 30 },
      blocks: 3,
      rows: 30,
      bytes: 300,
      epochs: [[0, 1]],
    });
    await ledger.updatePart('P1', 'azure-billing', () => ({ progress }));
    const again = await ledger.upsertPartIfAbsent(part('P1', 'azure-billing'));
    expect(again.created).toBe(false);
    expect(again.part).toMatchObject({ progress, version: 2 });
    expect(progressOf(again.part)).toMatchObject({ blocks: 3, rows: 30, at: { kind: 'offset', offset: 30 } });
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
    // Each listed part carries the ETag it was read with; a write changes it.
    const before = parts[0]?.etag;
    expect(before).toBeTruthy();
    await ledger.updatePart('P1', 'azure-billing', (c) => ({ attempts: c.attempts + 1 }));
    expect((await ledger.listParts('P1'))[0]?.etag).not.toBe(before);
    await expect(ledger.updatePart('P1', 'azure-billing', () => ({ progress: 'x'.repeat(16_385) }))).rejects.toThrow(
      /Progress of part .* limit/,
    );
    const longToken = encodeProgress({
      at: {
        kind: 'seek',
        pageIndex: 1,
        uri: '/v1/x',
        headers: { 'MS-ContinuationToken': 't'.repeat(15_000) },
        rowsThrough: 5,
      },
      blocks: 1,
      rows: 5,
      bytes: 50,
      epochs: [[0, 1]],
    });
    const saved = await ledger.updatePart('P1', 'azure-billing', () => ({ progress: longToken }));
    expect((await ledger.getPart('P1', 'azure-billing'))?.progress).toBe(longToken);
    expect(saved.progress).toBe(longToken);
    expect(await ledger.getPart('P1', 'nope')).toBeUndefined();
    await expect(ledger.getPart('P1', 'a/b')).rejects.toThrow(/Invalid part id/);
  });

  it('an unusable list item is recorded once per id as sent, with its first and last sighting', async () => {
    await ledger.recordRejected({ idAsSent: '12345', reason: 'numeric id' }, '2024-03-02T00:00:00.000Z');
    await ledger.recordRejected({ idAsSent: '12345', reason: 'numeric id' }, '2024-03-03T00:00:00.000Z');
    await ledger.recordRejected(
      { idAsSent: '(none)', reason: 'amendment without id', parentId: 'G1' },
      '2024-03-03T00:00:00.000Z',
    );
    const rejected = [];
    for await (const item of ledger.listRejected()) rejected.push(item);
    expect(rejected.map(({ key: _k, ...r }) => r).sort((a, b) => a.idAsSent.localeCompare(b.idAsSent))).toEqual([
      {
        idAsSent: '(none)',
        reason: 'amendment without id',
        parentId: 'G1',
        firstSeenAt: '2024-03-03T00:00:00.000Z',
        lastSeenAt: '2024-03-03T00:00:00.000Z',
      },
      {
        idAsSent: '12345',
        reason: 'numeric id',
        firstSeenAt: '2024-03-02T00:00:00.000Z',
        lastSeenAt: '2024-03-03T00:00:00.000Z',
      },
    ]);
  });
});
