// syncBillingLines on Azurite: streamed row groups, one staged block each; the same inputs write nothing; a file
// that does not add up, or rows it cannot state, or an input that changed, are never committed.
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetMetadata } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { COLUMNS } from '../../src/dataset/columns.js';
import { PARQUET_CONTENT_TYPE, syncBillingLines } from '../../src/dataset/index.js';
import { billingLinesPath, lineItemsPath } from '../../src/storage/layout.js';
import { type PartEntity, partEntitySchema } from '../../src/storage/parts.js';
import { type Azurite, startAzurite } from '../support/azurite.js';

let azurite: Azurite;
let folder: string;
beforeAll(async () => {
  azurite = await startAzurite();
  folder = await mkdtemp(join(tmpdir(), 'billing-lines-'));
});
afterAll(async () => {
  await azurite?.stop();
  if (folder) await rm(folder, { recursive: true, force: true });
});

const invoice = { invoiceId: 'G000000777', billingPeriod: '2025-06', currencyCode: 'EUR' };

async function freshContainer(): Promise<ContainerClient> {
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
    `bl${randomUUID().replace(/-/g, '').slice(0, 12)}`,
  );
  await container.create();
  return container;
}

/** Rows of a OneTime billing part: amounts in cents 100..(100+n-1), so the sum is known. */
const oneTimeRows = (n: number) =>
  Array.from(
    { length: n },
    (_, i) =>
      `{"customerId":"org:c${i % 3}","customerName":"C${i % 3}","totalForCustomer":${((100 + i) / 100).toFixed(2)},"currency":"EUR","attributes":{"objectType":"OneTimeInvoiceLineItem"}}`,
  );

/** Stores an NDJSON part and returns the part entity the ledger would hold for it. */
async function storedPart(
  container: ContainerClient,
  provider: string,
  lines: string[],
  overrides: Partial<PartEntity> = {},
): Promise<PartEntity> {
  const text = lines.map((l) => `${l}\n`).join('');
  const path = lineItemsPath(invoice.billingPeriod, invoice.invoiceId, provider, 'billing');
  await container.getBlockBlobClient(path).upload(text, Buffer.byteLength(text));
  return partEntitySchema.parse({
    invoiceId: invoice.invoiceId,
    partId: `${provider}-billing`,
    provider,
    lineItemType: 'billing',
    api: 'v1',
    source: 'v1',
    state: 'complete',
    blobPath: path,
    rows: lines.length,
    bytes: Buffer.byteLength(text),
    sha256: createHash('sha256').update(text).digest('hex'),
    attempts: 1,
    updatedAt: '2026-01-01T00:00:00Z',
    ...overrides,
  });
}

const datasetBlob = (container: ContainerClient) =>
  container.getBlockBlobClient(billingLinesPath(invoice.billingPeriod, invoice.invoiceId));

describe('syncBillingLines', () => {
  test('streams one row group (one staged block) per group of rows, then the footer; the same inputs write nothing', async () => {
    const container = await freshContainer();
    const parts = [
      await storedPart(container, 'onetime', oneTimeRows(27)),
      await storedPart(container, 'office', [
        '{"customerId":"x","amount":"5.00","attributes":{"objectType":"LicenseBasedLineItem"}}',
      ]),
    ];
    // 1.00 + 1.01 + ... + 1.26 = 30.51, and the office line's 5.00
    const outcome = await syncBillingLines(container, invoice, parts, { lineItemTotal: '35.51' }, { rowGroupRows: 10 });
    expect(outcome.state).toBe('written');
    if (outcome.state !== 'written') return;
    expect(outcome.artifact).toMatchObject({ kind: 'dataset', rows: 28, total: '35.51', schemaVersion: 1 });
    expect(outcome.artifact.inputs.map((i) => i.path)).toEqual(parts.map((p) => p.blobPath).sort());

    const blob = datasetBlob(container);
    const bytes = await blob.downloadToBuffer();
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(outcome.artifact.sha256);
    expect(bytes.length).toBe(outcome.artifact.bytes);
    const metadata = parquetMetadata(new Uint8Array(bytes));
    // Rows in path order (office before onetime): 10 | 10 | 8 rows, never the whole part at once.
    expect(metadata.row_groups.map((g) => Number(g.num_rows))).toEqual([10, 10, 8]);
    const blocks = await blob.getBlockList('committed');
    expect(blocks.committedBlocks).toHaveLength(4);
    const properties = await blob.getProperties();
    expect(properties.contentType).toBe(PARQUET_CONTENT_TYPE);

    const again = await syncBillingLines(container, invoice, parts, { lineItemTotal: '35.51' }, { rowGroupRows: 10 });
    expect(again).toEqual({ state: 'unchanged', artifact: outcome.artifact });
    expect((await blob.getProperties()).etag).toBe(properties.etag);

    // DuckDB reads the documented types.
    const file = join(folder, 'typed.parquet');
    await writeFile(file, bytes);
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    const described = (await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).getRowObjectsJson();
    const sqlType = {
      string: 'VARCHAR',
      decimal: 'DECIMAL(38,18)',
      price: 'DECIMAL(38,28)',
      timestamp: 'TIMESTAMP WITH TIME ZONE',
      int64: 'BIGINT',
    };
    expect(described.map((d) => [d.column_name, d.column_type])).toEqual(COLUMNS.map((c) => [c.name, sqlType[c.type]]));
    const sums = (
      await duck.runAndReadAll(
        `SELECT sum(BilledCost)::VARCHAR AS s, count(DISTINCT SubAccountId) AS n FROM read_parquet('${file}')`,
      )
    ).getRowObjectsJson();
    expect(sums).toEqual([{ s: '35.510000000000000000', n: '4' }]);
    duck.closeSync();
  });

  test('a new input rewrites the file; a sum that is not the reconciliation is never committed', async () => {
    const container = await freshContainer();
    const first = [await storedPart(container, 'onetime', oneTimeRows(3))];
    const written = await syncBillingLines(container, invoice, first, { lineItemTotal: '3.03' });
    expect(written.state).toBe('written');
    const etag = (await datasetBlob(container).getProperties()).etag;

    const changed = [await storedPart(container, 'onetime', oneTimeRows(4))];
    const wrong = await syncBillingLines(container, invoice, changed, { lineItemTotal: '4.07' });
    expect(wrong).toEqual({
      state: 'invalid',
      problem: expect.stringContaining(
        "BilledCost sums to 4.06 EUR, the reconciliation's billing line items to 4.07 EUR",
      ),
    });
    // Readers still see the file of the last inputs that added up.
    expect((await datasetBlob(container).getProperties()).etag).toBe(etag);

    const right = await syncBillingLines(container, invoice, changed, { lineItemTotal: '4.06' });
    expect(right.state === 'written' && right.artifact.rows).toBe(4);
    expect((await datasetBlob(container).getProperties()).etag).not.toBe(etag);
  });

  test('rows it cannot state, or an input that is not what the ledger recorded, fail with the reason and write nothing', async () => {
    const container = await freshContainer();
    const bad = [await storedPart(container, 'onetime', ['{"totalForCustomer":1.00}', '{"totalForCustomer":"1e-30"}'])];
    expect(await syncBillingLines(container, invoice, bad, { lineItemTotal: '1' })).toEqual({
      state: 'invalid',
      problem: expect.stringMatching(
        /rows\.ndjson line 2: BilledCost \(OneTimeInvoiceLineItem\): 1e-30 has more than 18/,
      ),
    });
    const moved = [await storedPart(container, 'onetime', oneTimeRows(2), { sha256: 'f'.repeat(64) })];
    expect(await syncBillingLines(container, invoice, moved, { lineItemTotal: '2.01' })).toEqual({
      state: 'invalid',
      problem: expect.stringContaining(`the ledger recorded ${'f'.repeat(64)}`),
    });
    const short = [await storedPart(container, 'onetime', oneTimeRows(2), { rows: 3 })];
    expect(await syncBillingLines(container, invoice, short, { lineItemTotal: '2.01' })).toEqual({
      state: 'invalid',
      problem: expect.stringContaining('has 2 rows, the ledger recorded 3'),
    });
    expect(await datasetBlob(container).exists()).toBe(false);
  });

  test('no dataset while a billing part is failed or unsettled; no billing lines or empty ones give an empty file', async () => {
    const container = await freshContainer();
    const failed = [await storedPart(container, 'onetime', oneTimeRows(2), { state: 'failed' })];
    expect(await syncBillingLines(container, invoice, failed, { lineItemTotal: null })).toEqual({ state: 'skipped' });
    const none = await syncBillingLines(container, invoice, [], { lineItemTotal: null });
    expect(none.state === 'written' && none.artifact).toMatchObject({ rows: 0 });
    expect(none.state === 'written' && 'total' in none.artifact).toBe(false);
    // An empty part adds 0 to the reconciliation (its file was read back with no rows): so does the dataset.
    const empty = [await storedPart(container, 'office', [])];
    const zero = await syncBillingLines(container, invoice, empty, { lineItemTotal: '0' });
    expect(zero.state === 'written' && zero.artifact).toMatchObject({ rows: 0, total: '0' });
    const bytes = await datasetBlob(container).downloadToBuffer();
    expect(Number(parquetMetadata(new Uint8Array(bytes)).num_rows)).toBe(0);
  });
});
