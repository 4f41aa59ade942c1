import { createHash } from 'node:crypto';
import { RestError, TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InvoiceState, NewInvoiceEntity } from '../../src/storage/invoices.js';
import {
  IllegalTransitionError,
  Ledger,
  LedgerConflictError,
  LedgerError,
  LedgerNotFoundError,
  MAX_LAST_ERROR_CHARS,
  MAX_PROGRESS_CHARS,
} from '../../src/storage/ledger.js';
import { encodeProgress, type NewPartEntity, progressOf, START } from '../../src/storage/parts.js';
import type { SnapshotEntity } from '../../src/storage/unbilled.js';
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

describe('Ledger: conflicts, limits and ids', () => {
  /** A client on the same table whose pipeline runs `before` ahead of every conditional write (PUT). */
  const clientInterfering = (before: () => Promise<void>) => {
    const client = TableClient.fromConnectionString(azurite.connectionString, 'ledgertest', {
      allowInsecureConnection: true,
    });
    const statuses: number[] = [];
    client.pipeline.addPolicy({
      name: 'write-before-every-put',
      async sendRequest(request, next) {
        if (request.method !== 'PUT') return next(request);
        await before();
        try {
          const response = await next(request);
          statuses.push(response.status);
          return response;
        } catch (error) {
          statuses.push((error as { statusCode?: number }).statusCode ?? -1);
          throw error;
        }
      },
    });
    return { client, statuses };
  };

  it('gives up after maxConflictRetries + 1 conflicts, leaving only the other writer’s updates', async () => {
    await ledger.tryInsertInvoice(invoice('GCONFLICT1'));
    const { client, statuses } = clientInterfering(async () => {
      await ledger.updateInvoice('GCONFLICT1', (c) => ({ attempts: c.attempts + 1 }));
    });
    const mine = new Ledger(client, { maxConflictRetries: 2 });
    const error = await mine
      .updateInvoice('GCONFLICT1', (c) => ({ attempts: c.attempts + 100 }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerConflictError);
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as Error).name).toBe('LedgerConflictError');
    expect((error as Error).message).toBe('Gave up updating invoice GCONFLICT1 after 3 ETag conflicts');
    expect(statuses).toEqual([412, 412, 412]);
    expect((await ledger.getInvoice('GCONFLICT1'))?.attempts).toBe(3);
  });

  it('maxConflictRetries 0 gives up at the first conflict; by default the 21st conflict gives up', async () => {
    await ledger.tryInsertInvoice(invoice('GCONFLICT2'));
    const once = clientInterfering(async () => {
      await ledger.updateInvoice('GCONFLICT2', (c) => ({ attempts: c.attempts + 1 }));
    });
    await expect(
      new Ledger(once.client, { maxConflictRetries: 0 }).updateInvoice('GCONFLICT2', () => ({ attempts: 50 })),
    ).rejects.toThrow('Gave up updating invoice GCONFLICT2 after 1 ETag conflicts');
    expect(once.statuses).toEqual([412]);
    // By default 20 conflicts are ridden out and the 21st gives up.
    const always = clientInterfering(async () => {
      await ledger.updateInvoice('GCONFLICT2', (c) => ({ attempts: c.attempts + 1 }));
    });
    await expect(new Ledger(always.client).updateInvoice('GCONFLICT2', () => ({ attempts: 0 }))).rejects.toThrow(
      'Gave up updating invoice GCONFLICT2 after 21 ETag conflicts',
    );
    expect(always.statuses).toHaveLength(21);
    expect((await ledger.getInvoice('GCONFLICT2'))?.attempts).toBe(1 + 21);
  });

  it('an entity deleted between the read and the write is reported as not found, not written back', async () => {
    await ledger.tryInsertInvoice(invoice('GGONE1'));
    const { client, statuses } = clientInterfering(async () => {
      await table.deleteEntity('invoice', 'GGONE1').catch(() => {});
    });
    const error = await new Ledger(client).updateInvoice('GGONE1', () => ({ attempts: 1 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerNotFoundError);
    expect(error).toMatchObject({
      name: 'LedgerNotFoundError',
      retriable: false,
      message: 'No ledger entry for invoice GGONE1',
    });
    expect(statuses).toEqual([404]);
    expect(await ledger.getInvoice('GGONE1')).toBeUndefined();
  });

  it('a write that fails for another reason is thrown at once, not retried', async () => {
    await ledger.tryInsertInvoice(invoice('GBIG1'));
    // A property above the 64 KiB limit: the service refuses the write (400), which no retry can fix.
    const { client, statuses } = clientInterfering(async () => {});
    const error = await new Ledger(client)
      .updateInvoice('GBIG1', () => ({ notes: JSON.stringify(['n'.repeat(40_000)]) }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestError);
    expect(statuses).toHaveLength(1);
    expect(statuses[0]).toBeGreaterThanOrEqual(400);
    expect(statuses[0]).not.toBe(412);
    expect((await ledger.getInvoice('GBIG1'))?.notes).toBeUndefined();
  });

  it('the entity returned by an update carries the ETag it was stored with', async () => {
    await ledger.tryInsertInvoice(invoice('GETAG1'));
    const updated = await ledger.updateInvoice('GETAG1', () => ({ attempts: 2 }));
    const raw = await table.getEntity('invoice', 'GETAG1');
    expect(updated.etag).toBe(raw.etag);
    expect((await ledger.getInvoice('GETAG1'))?.etag).toBe(raw.etag);
    // The ETag is metadata, never a stored property, and invoiceId is the row key only.
    expect(Object.keys(raw)).not.toContain('invoiceId');
    const part1 = await ledger.upsertPartIfAbsent(part('GETAG1', 'azure-billing'));
    const rawPart = await table.getEntity('part-GETAG1', 'azure-billing');
    expect(part1.part.etag).toBe(rawPart.etag);
    expect(Object.keys(rawPart)).not.toContain('partId');
    expect(Object.keys(rawPart)).not.toContain('invoiceId');
  });

  it('lastError is kept up to the limit and cut to it with an ellipsis beyond, on insert and on update', async () => {
    const exact = 'e'.repeat(MAX_LAST_ERROR_CHARS);
    await ledger.tryInsertInvoice(invoice('GERR1', { lastError: exact }));
    expect((await ledger.getInvoice('GERR1'))?.lastError).toBe(exact);
    await ledger.tryInsertInvoice(invoice('GERR2', { lastError: `${exact}!` }));
    expect((await ledger.getInvoice('GERR2'))?.lastError).toBe(`${'e'.repeat(MAX_LAST_ERROR_CHARS - 1)}…`);
    const updated = await ledger.updateInvoice('GERR1', () => ({ lastError: `${'f'.repeat(2500)}` }));
    expect(updated.lastError).toBe(`${'f'.repeat(MAX_LAST_ERROR_CHARS - 1)}…`);
    expect((await ledger.getInvoice('GERR1'))?.lastError).toBe(updated.lastError);
    const created = await ledger.upsertPartIfAbsent(part('GERR1', 'azure-billing', { lastError: 'p'.repeat(3000) }));
    expect(created.part.lastError).toBe(`${'p'.repeat(MAX_LAST_ERROR_CHARS - 1)}…`);
    const partUpdated = await ledger.updatePart('GERR1', 'azure-billing', () => ({ lastError: 'q'.repeat(2001) }));
    expect(partUpdated.lastError).toBe(`${'q'.repeat(MAX_LAST_ERROR_CHARS - 1)}…`);
    expect((await ledger.getPart('GERR1', 'azure-billing'))?.lastError).toBe(partUpdated.lastError);
  });

  it('progress of exactly the limit is stored; one character more is refused with its size and the limit', async () => {
    await ledger.upsertPartIfAbsent(part('GPROG1', 'azure-billing'));
    const exact = 'p'.repeat(MAX_PROGRESS_CHARS);
    expect((await ledger.updatePart('GPROG1', 'azure-billing', () => ({ progress: exact }))).progress).toBe(exact);
    await expect(ledger.updatePart('GPROG1', 'azure-billing', () => ({ progress: `${exact}p` }))).rejects.toThrow(
      new LedgerError(
        'Progress of part GPROG1/azure-billing is 16385 characters; the limit is 16384 (32 KiB in UTF-16)',
      ),
    );
    await expect(ledger.upsertPartIfAbsent(part('GPROG1', 'office-usage', { progress: `${exact}p` }))).rejects.toThrow(
      /Progress of part GPROG1\/office-usage is 16385 characters/,
    );
    expect(await ledger.getPart('GPROG1', 'office-usage')).toBeUndefined();
    expect((await ledger.getPart('GPROG1', 'azure-billing'))?.progress).toBe(exact);
  });

  it('part ids: 1-255 characters without / \\ # ? or control characters', async () => {
    const long = 'a'.repeat(255);
    const created = await ledger.upsertPartIfAbsent(part('GID1', long));
    expect(created).toMatchObject({ created: true, part: { partId: long, invoiceId: 'GID1' } });
    expect((await ledger.getPart('GID1', long))?.partId).toBe(long);
    for (const bad of [
      '',
      'a'.repeat(256),
      'a/b',
      'a\\b',
      'a#b',
      'a?b',
      'a\u0000b',
      'a\u001fb',
      'a\u007fb',
      'a\u009fb',
    ]) {
      await expect(ledger.getPart('GID1', bad), JSON.stringify(bad)).rejects.toThrow(LedgerError);
      await expect(
        ledger.updatePart('GID1', bad, () => ({ attempts: 1 })),
        JSON.stringify(bad),
      ).rejects.toThrow(/^Invalid part id .*: 1-255 characters, no \/ \\ # \? or controls$/);
      await expect(ledger.upsertPartIfAbsent(part('GID1', bad)), JSON.stringify(bad)).rejects.toThrow(
        /Invalid part id/,
      );
    }
    await expect(ledger.getPart('GID1', 42 as unknown as string)).rejects.toThrow(
      'Invalid part id "42": 1-255 characters, no / \\ # ? or controls',
    );
    await expect(ledger.getPart('GID1', 'a/b')).rejects.toThrow(
      'Invalid part id "a/b": 1-255 characters, no / \\ # ? or controls',
    );
    // The id is quoted in at most 80 characters.
    await expect(ledger.getPart('GID1', `${'b'.repeat(300)}`)).rejects.toThrow(
      `Invalid part id "${'b'.repeat(79)}: 1-255 characters, no / \\ # ? or controls`,
    );
    expect(await ledger.listParts('GID1')).toHaveLength(1);
    await expect(ledger.listParts('../GID1')).rejects.toThrow(/Unsafe invoice id/);
    await expect(ledger.upsertPartIfAbsent(part('../GID1', 'x'))).rejects.toThrow(/Unsafe invoice id/);
    await expect(ledger.updatePart('../GID1', 'x', () => ({}))).rejects.toThrow(/Unsafe invoice id/);
    await expect(ledger.getInvoice('../GID1')).rejects.toThrow(/Unsafe invoice id/);
    await expect(ledger.updateInvoice('../GID1', () => ({}))).rejects.toThrow(/Unsafe invoice id/);
  });

  it('an invalid part is refused with its ids, and a missing part cannot be updated', async () => {
    await expect(ledger.upsertPartIfAbsent(part('GINV1', 'x', { rows: -1 }))).rejects.toThrow(
      /^Invalid part entity GINV1\/x: /,
    );
    await expect(ledger.updatePart('GINV1', 'missing', () => ({ attempts: 1 }))).rejects.toThrow(
      new LedgerNotFoundError('No ledger entry for part GINV1/missing'),
    );
    await ledger.upsertPartIfAbsent(part('GINV1', 'x'));
    await expect(ledger.updatePart('GINV1', 'x', () => ({ state: 'nope' as never }))).rejects.toThrow(
      /^Invalid part entity GINV1\/x: /,
    );
    // A patch cannot move a part to another invoice or id.
    const moved = await ledger.updatePart('GINV1', 'x', () => ({ invoiceId: 'OTHER', partId: 'y' }) as never);
    expect(moved).toMatchObject({ invoiceId: 'GINV1', partId: 'x' });
    expect(await ledger.getPart('GINV1', 'y')).toBeUndefined();
    const unchanged = await ledger.updatePart('GINV1', 'x', () => undefined);
    expect(unchanged.etag).toBe(moved.etag);
  });

  it('an invalid invoice is refused with its id; a patch cannot rename the invoice', async () => {
    await expect(ledger.tryInsertInvoice(invoice('GINV2', { billingPeriod: '2024-13' }))).rejects.toThrow(
      /^Invalid invoice entity GINV2: /,
    );
    expect(await ledger.getInvoice('GINV2')).toBeUndefined();
    await ledger.tryInsertInvoice(invoice('GINV2'));
    const renamed = await ledger.updateInvoice('GINV2', () => ({ invoiceId: 'GINV3' }) as never);
    expect(renamed.invoiceId).toBe('GINV2');
    expect(await ledger.getInvoice('GINV3')).toBeUndefined();
  });

  it('the error types carry their names', () => {
    expect(new LedgerError('x').name).toBe('LedgerError');
    expect(new LedgerNotFoundError('x')).toMatchObject({ name: 'LedgerNotFoundError', retriable: false });
    expect(new IllegalTransitionError('x').name).toBe('IllegalTransitionError');
    expect(new IllegalTransitionError('x')).toBeInstanceOf(LedgerError);
    expect(new LedgerConflictError('x').name).toBe('LedgerConflictError');
  });

  it('illegal invoice moves name the invoice, both states and where the rules are', async () => {
    await ledger.tryInsertInvoice(invoice('GMOVE1'));
    const error = await ledger.updateInvoice('GMOVE1', () => ({ state: 'exporting' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IllegalTransitionError);
    expect((error as Error).message).toBe('Invoice GMOVE1 cannot move from discovered to exporting (see invoices.ts)');
    // discovered may only go to queued or failed; both are allowed.
    expect((await ledger.updateInvoice('GMOVE1', () => ({ state: 'failed' }))).state).toBe('failed');
    expect((await ledger.updateInvoice('GMOVE1', () => ({ state: 'exporting' }))).state).toBe('exporting');
  });

  it('listing by states: none asked is none listed; each state asked is listed, others not', async () => {
    await ledger.tryInsertInvoice(invoice('GLIST1', { state: 'mismatch' }));
    await ledger.tryInsertInvoice(invoice('GLIST2', { state: 'pdf_saved' }));
    const ids = async (states?: readonly InvoiceState[]) => {
      const found: string[] = [];
      for await (const entity of ledger.listInvoices(states ? { states } : {})) found.push(entity.invoiceId);
      return found;
    };
    expect(await ids([])).toEqual([]);
    expect(await ids(['mismatch'])).toEqual(['GLIST1']);
    expect(await ids(['pdf_saved', 'mismatch'])).toEqual(['GLIST1', 'GLIST2']);
    const all = await ids();
    expect(all).toEqual([...all].sort());
    expect(all).toEqual(expect.arrayContaining(['GLIST1', 'GLIST2', 'G100']));
  });

  it('listRejected reads the rejected items only, never the invoices and parts beside them', async () => {
    // Self-contained: a mutation run runs only the tests that reach the code, so no earlier test's rows are here.
    await ledger.upsertPartIfAbsent(part('GBESIDE1', 'azure-billing'));
    await ledger.tryInsertInvoice(invoice('GBESIDE1'));
    await ledger.recordRejected({ idAsSent: 'BESIDE-R', reason: 'beside' }, '2024-05-01T00:00:00.000Z');
    const rejected = [];
    for await (const item of ledger.listRejected()) rejected.push(item);
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected.every((r) => typeof r.idAsSent === 'string' && typeof r.reason === 'string')).toBe(true);
    expect(rejected.map((r) => r.idAsSent)).toContain('BESIDE-R');
    expect(rejected.map((r) => r.idAsSent)).not.toContain('GBESIDE1');
  });

  it('a rejected item is keyed by a hash of its parent and id; its reason is capped', async () => {
    const at = '2024-04-01T00:00:00.000Z';
    await ledger.recordRejected({ idAsSent: 'R-1', reason: 'r'.repeat(3000), parentId: 'GPARENT' }, at);
    await ledger.recordRejected({ idAsSent: 'R-1', reason: 'no parent' }, at);
    const found = [];
    for await (const item of ledger.listRejected()) if (item.idAsSent === 'R-1') found.push(item);
    const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);
    expect(found.sort((a, b) => a.reason.length - b.reason.length)).toEqual([
      { key: hash('\u0000R-1'), idAsSent: 'R-1', reason: 'no parent', firstSeenAt: at, lastSeenAt: at },
      {
        key: hash('GPARENT\u0000R-1'),
        idAsSent: 'R-1',
        reason: 'r'.repeat(MAX_LAST_ERROR_CHARS),
        parentId: 'GPARENT',
        firstSeenAt: at,
        lastSeenAt: at,
      },
    ]);
    const raw = await table.getEntity('rejected', hash('\u0000R-1'));
    expect(Object.keys(raw)).not.toContain('key');
  });
});

describe('Ledger: storage errors are not mistaken for absence', () => {
  it('a table that does not exist reads as empty, but an insert into it fails instead of reporting a duplicate', async () => {
    const missing = new Ledger(
      TableClient.fromConnectionString(azurite.connectionString, 'nosuchtable', { allowInsecureConnection: true }),
    );
    expect(await missing.getInvoice('G1')).toBeUndefined();
    await expect(missing.tryInsertInvoice(invoice('G1'))).rejects.toMatchObject({ statusCode: 404 });
    await expect(
      missing.tryInsertSnapshot({
        snapshotKey: 'unbilled-20261130-202611-USD',
        snapshotDate: '2026-11-30',
        billingPeriod: '2026-11',
        currency: 'USD',
        state: 'queued',
        runs: 1,
        requestedAt: 't',
        updatedAt: 't',
        correlationId: 'c',
      }),
    ).rejects.toMatchObject({ statusCode: 404 });
  });

  it('a storage account that cannot be reached fails every call; nothing reads as absent', async () => {
    const port = Number(new URL(azurite.tableEndpoint).port);
    const dead = azurite.connectionString.replace(`:${port}/`, ':9/');
    expect(dead).not.toBe(azurite.connectionString);
    const unreachable = new Ledger(
      TableClient.fromConnectionString(dead, 'ledgertest', {
        allowInsecureConnection: true,
        retryOptions: { maxRetries: 0 },
      }),
    );
    await expect(unreachable.getInvoice('G100')).rejects.toThrow();
    await expect(unreachable.getPart('P1', 'azure-billing')).rejects.toThrow();
    await expect(unreachable.tryInsertInvoice(invoice('GDEAD1'))).rejects.toThrow();
    await expect(unreachable.updateInvoice('G100', () => ({ attempts: 1 }))).rejects.not.toBeInstanceOf(LedgerError);
  });

  it('a part deleted right after it was recorded is reported, not returned as recorded', async () => {
    const client = TableClient.fromConnectionString(azurite.connectionString, 'ledgertest', {
      allowInsecureConnection: true,
    });
    client.pipeline.addPolicy({
      name: 'delete-before-read',
      async sendRequest(request, next) {
        if (request.method === 'GET') await table.deleteEntity('part-GVANISH', 'azure-billing').catch(() => {});
        return next(request);
      },
    });
    await expect(new Ledger(client).upsertPartIfAbsent(part('GVANISH', 'azure-billing'))).rejects.toThrow(
      new LedgerError('Part GVANISH/azure-billing vanished while being recorded'),
    );
  });
});

describe('Ledger: stored rows that do not validate', () => {
  let odd: TableClient;
  let oddLedger: Ledger;
  beforeAll(async () => {
    odd = TableClient.fromConnectionString(azurite.connectionString, 'ledgermalformed', {
      allowInsecureConnection: true,
    });
    oddLedger = new Ledger(odd);
    await oddLedger.ensure();
  });

  it('an invoice, part or snapshot row that does not validate is refused, naming the row', async () => {
    await odd.createEntity({ partitionKey: 'invoice', rowKey: 'GODD1', state: 'discovered' });
    await expect(oddLedger.getInvoice('GODD1')).rejects.toThrow(/^Ledger invoice GODD1 is malformed: /);
    await expect(oddLedger.updateInvoice('GODD1', () => ({ attempts: 1 }))).rejects.toThrow(LedgerError);
    await odd.createEntity({ partitionKey: 'part-GODD1', rowKey: 'azure-billing', state: 'queued' });
    await expect(oddLedger.getPart('GODD1', 'azure-billing')).rejects.toThrow(
      /^Ledger part GODD1\/azure-billing is malformed: /,
    );
    await expect(oddLedger.listParts('GODD1')).rejects.toThrow(/^Ledger part GODD1\/azure-billing is malformed/);
    await odd.createEntity({ partitionKey: 'unbilled', rowKey: 'unbilled-20261130-202611-USD', state: 'queued' });
    await expect(oddLedger.getSnapshot('unbilled-20261130-202611-USD')).rejects.toThrow(
      /^Ledger unbilled snapshot unbilled-20261130-202611-USD is malformed: /,
    );
    await odd.createEntity({ partitionKey: 'rejected', rowKey: 'k1', idAsSent: 'x' });
    const listing = async () => {
      for await (const _ of oddLedger.listRejected()) {
      }
    };
    await expect(listing()).rejects.toThrow();
  });

  it('a number stored as Int64 by another writer reads back as a number', async () => {
    await odd.createEntity({
      ...Object.fromEntries(Object.entries(invoice('GINT64')).filter(([k]) => k !== 'invoiceId' && k !== 'attempts')),
      partitionKey: 'invoice',
      rowKey: 'GINT64',
      attempts: { value: '3', type: 'Int64' },
      pdfBytes: { value: '5000000001', type: 'Int64' },
    });
    const stored = await oddLedger.getInvoice('GINT64');
    expect(stored).toMatchObject({ invoiceId: 'GINT64', attempts: 3, pdfBytes: 5_000_000_001 });
  });
});

describe('Ledger: unbilled snapshots', () => {
  const snapshot = (date: string, period: string, currency: string, extra: Partial<SnapshotEntity> = {}) => ({
    snapshotKey: `unbilled-${date.replaceAll('-', '')}-${period.replace('-', '')}-${currency}`,
    snapshotDate: date,
    billingPeriod: period,
    currency,
    state: 'queued' as const,
    runs: 1,
    requestedAt: `${date}T01:00:00.000Z`,
    updatedAt: `${date}T01:00:00.000Z`,
    correlationId: 'corr-u',
    ...extra,
  });

  it('is inserted once per key; a second insert changes nothing', async () => {
    const first = snapshot('2026-11-30', '2026-11', 'USD');
    expect(await ledger.tryInsertSnapshot(first)).toBe(true);
    expect(await ledger.tryInsertSnapshot({ ...first, runs: 9, state: 'complete' })).toBe(false);
    const stored = await ledger.getSnapshot(first.snapshotKey);
    expect(stored).toMatchObject({ ...first, runs: 1, state: 'queued' });
    expect(stored?.etag).toBe((await table.getEntity('unbilled', first.snapshotKey)).etag);
    expect(await ledger.getSnapshot('unbilled-20261129-202611-USD')).toBeUndefined();
    await expect(ledger.getSnapshot('../x')).rejects.toThrow(/Unsafe snapshot key/);
    await expect(ledger.updateSnapshot('../x', () => ({}))).rejects.toThrow(/Unsafe snapshot key/);
    await expect(ledger.tryInsertSnapshot({ ...first, snapshotKey: 'G1' })).rejects.toThrow(
      /^Invalid unbilled snapshot G1: /,
    );
  });

  it('moves by its state machine: complete is final, and an illegal move writes nothing', async () => {
    const s = snapshot('2026-11-29', '2026-11', 'USD');
    await ledger.tryInsertSnapshot(s);
    const failed = await ledger.updateSnapshot(s.snapshotKey, (c) => ({
      state: 'failed',
      runs: c.runs,
      lastError: 'x',
    }));
    expect(failed).toMatchObject({ state: 'failed', lastError: 'x' });
    const requeued = await ledger.updateSnapshot(s.snapshotKey, (c) => ({ state: 'queued', runs: c.runs + 1 }));
    expect(requeued).toMatchObject({ state: 'queued', runs: 2 });
    const done = await ledger.updateSnapshot(s.snapshotKey, () => ({
      state: 'complete',
      completedAt: '2026-11-29T03:00:00.000Z',
      lastError: undefined,
    }));
    expect(done.state).toBe('complete');
    expect(done.etag).toBe((await table.getEntity('unbilled', s.snapshotKey)).etag);
    const error = await ledger.updateSnapshot(s.snapshotKey, () => ({ state: 'queued' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IllegalTransitionError);
    expect((error as Error).message).toBe(
      `Unbilled snapshot ${s.snapshotKey} cannot move from complete to queued (see unbilled.ts)`,
    );
    await expect(ledger.updateSnapshot(s.snapshotKey, () => ({ state: 'failed' }))).rejects.toThrow(
      IllegalTransitionError,
    );
    // Staying complete is a field update.
    const touched = await ledger.updateSnapshot(s.snapshotKey, () => ({ state: 'complete', manifestPath: 'm.json' }));
    expect(touched.manifestPath).toBe('m.json');
    const stored = await ledger.getSnapshot(s.snapshotKey);
    expect(stored).toMatchObject({ state: 'complete', runs: 2, manifestPath: 'm.json' });
    expect(stored && 'lastError' in stored).toBe(false);
    expect(await ledger.updateSnapshot(s.snapshotKey, () => undefined)).toEqual(stored);
  });

  it('an update cannot rename it, is validated, truncates lastError and fails for a missing one', async () => {
    const s = snapshot('2026-11-28', '2026-11', 'USD');
    await ledger.tryInsertSnapshot({ ...s, lastError: 'z'.repeat(2500) });
    expect((await ledger.getSnapshot(s.snapshotKey))?.lastError).toBe(`${'z'.repeat(MAX_LAST_ERROR_CHARS - 1)}…`);
    const renamed = await ledger.updateSnapshot(
      s.snapshotKey,
      () => ({ snapshotKey: 'unbilled-20261101-202611-USD' }) as never,
    );
    expect(renamed.snapshotKey).toBe(s.snapshotKey);
    expect(await ledger.getSnapshot('unbilled-20261101-202611-USD')).toBeUndefined();
    const cut = await ledger.updateSnapshot(s.snapshotKey, () => ({ lastError: 'y'.repeat(2001) }));
    expect(cut.lastError).toBe(`${'y'.repeat(MAX_LAST_ERROR_CHARS - 1)}…`);
    await expect(ledger.updateSnapshot(s.snapshotKey, () => ({ runs: -1 }))).rejects.toThrow(
      new RegExp(`^Invalid unbilled snapshot ${s.snapshotKey}: `),
    );
    await expect(ledger.updateSnapshot('unbilled-20260101-202601-USD', () => ({ runs: 2 }))).rejects.toThrow(
      new LedgerNotFoundError('No ledger entry for unbilled snapshot unbilled-20260101-202601-USD'),
    );
  });

  it('lists by billing period and currency, in key order', async () => {
    for (const [date, period, currency] of [
      ['2026-10-02', '2026-10', 'EUR'],
      ['2026-10-01', '2026-10', 'EUR'],
      ['2026-10-01', '2026-10', 'GBP'],
      ['2026-10-01', '2026-09', 'EUR'],
    ] as const) {
      await ledger.tryInsertSnapshot(snapshot(date, period, currency));
    }
    const keys = async (options?: { billingPeriod?: string; currency?: string }) => {
      const found: string[] = [];
      for await (const s of ledger.listSnapshots(options)) found.push(s.snapshotKey);
      return found;
    };
    expect(await keys({ billingPeriod: '2026-10', currency: 'EUR' })).toEqual([
      'unbilled-20261001-202610-EUR',
      'unbilled-20261002-202610-EUR',
    ]);
    expect(await keys({ billingPeriod: '2026-10' })).toEqual([
      'unbilled-20261001-202610-EUR',
      'unbilled-20261001-202610-GBP',
      'unbilled-20261002-202610-EUR',
    ]);
    expect(await keys({ billingPeriod: '2026-09' })).toEqual(['unbilled-20261001-202609-EUR']);
    expect(await keys({ currency: 'GBP' })).toEqual(['unbilled-20261001-202610-GBP']);
    const all = await keys();
    expect(all).toEqual(expect.arrayContaining(['unbilled-20261001-202609-EUR', 'unbilled-20261130-202611-USD']));
    expect(all).toHaveLength(new Set(all).size);
    // Snapshots are not invoices: the invoice listing never shows them.
    for await (const entity of ledger.listInvoices()) expect(entity.invoiceId.startsWith('unbilled-')).toBe(false);
  });
});
