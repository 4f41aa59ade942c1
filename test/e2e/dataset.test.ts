// The typed dataset, read by readers no one here wrote: after a full pass against the simulator, the container is
// downloaded (Hive layout kept) and every DuckDB query in README.md runs exactly as written there; a second reader
// (hyparquet) decodes every Parquet file on its own and must agree with DuckDB and with the source rows.
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { Decimal } from 'decimal.js';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSyncDeps } from '../../src/app/create-deps.js';
import { runPass } from '../../src/app/run-pass.js';
import { loadSettings } from '../../src/config.js';
import { ROW_GROUP_ROWS } from '../../src/dataset/billing-lines.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import { finalizeInvoiceIfDone } from '../../src/sync/finalize.js';
import type { SyncLogger } from '../../src/telemetry/logger.js';
import { type Simulator, startSimulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { normalizeProvider, normalizeType, sha256 } from '../support/expected.js';
import { simulatorEnvironment } from '../support/sim-env.js';

let azurite: Azurite;
let sim: Simulator;
let deps: SyncDeps;
let folder: string;
let duck: DuckDBConnection;
let pass: Awaited<ReturnType<typeof runPass>>;

/** The README's DuckDB queries by name: each is the ```sql block right after `<!-- query: name -->`. */
async function readmeQueries(): Promise<Map<string, string>> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const queries = new Map<string, string>();
  for (const match of readme.matchAll(/<!-- query: ([\w-]+) -->\s*```sql\n([\s\S]*?)```/g)) {
    queries.set(match[1] as string, match[2] as string);
  }
  return queries;
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const reader = await duck.runAndReadAll(sql);
  return reader.getRowObjectsJson() as Record<string, unknown>[];
}

/** Cents of a decimal text, refusing anything finer than a cent (every simulator amount is whole cents). */
const cents = (text: string): bigint => {
  const value = new Decimal(text).times(100);
  if (!value.isInteger()) throw new Error(`${text} is not whole cents`);
  return BigInt(value.toFixed(0));
};

beforeAll(async () => {
  azurite = await startAzurite();
  sim = await startSimulator({ seed: 5, v2: { retryAfterSeconds: 0 } });
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
  const env = await simulatorEnvironment(sim, azurite, {
    INVOICE_CONTAINER: `ds${suffix}`,
    LEDGER_TABLE: `ds${suffix}`,
    // Small pages: the files' row groups are the dataset's own size, not the page size.
    LINE_ITEM_PAGE_SIZE: '7',
  });
  const quiet: SyncLogger = { info: () => {}, warn: () => {}, error: () => {}, event: () => {} };
  deps = await createSyncDeps(loadSettings(env.settings), { ...env.overrides, log: quiet });
  pass = await runPass(deps, { retryVisibilitySeconds: 0 });
  // The container as a folder, names kept: what a user gets from `azcopy copy --recursive` or a mounted share.
  folder = await mkdtemp(join(tmpdir(), 'dataset-'));
  for await (const blob of deps.storage.container.listBlobsFlat()) {
    const target = join(folder, blob.name);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, await deps.storage.container.getBlobClient(blob.name).downloadToBuffer());
  }
  duck = await (await DuckDBInstance.create(':memory:')).connect();
  await duck.run(`SET VARIABLE invoices = '${folder.replace(/'/g, "''")}'`);
}, 180_000);
afterAll(async () => {
  duck?.closeSync();
  await sim?.stop();
  await azurite?.stop();
  if (folder) await rm(folder, { recursive: true, force: true });
});

/** The stored part of each simulator part, as the sync recorded it (which API produced it). */
function storedPart(invoiceId: string, provider: string, lineItemType: string) {
  const part = pass.parts.find(
    (p) =>
      p.invoiceId === invoiceId &&
      p.provider === normalizeProvider(provider, lineItemType) &&
      p.lineItemType === normalizeType(lineItemType),
  );
  if (!part) throw new Error(`no stored part ${invoiceId} ${provider}/${lineItemType}`);
  return part;
}

/** Every billing row of the simulator, as the text the sync stored (v1 or v2, as the part was exported). */
function billingRows(): {
  invoiceId: string;
  period: string;
  row: Record<string, unknown>;
  text: string;
  line: number;
  path: string;
}[] {
  const out = [];
  for (const spec of sim.dataset.invoices()) {
    for (const part of spec.parts ?? []) {
      if (normalizeType(part.lineItemType) !== 'billing') continue;
      const stored = storedPart(spec.id, part.provider, part.lineItemType);
      const v2 = stored.source === 'v2';
      const n = v2
        ? sim.dataset.v2Rows(spec.id, 'reconciliation')
        : sim.dataset.rows(spec.id, part.provider, part.lineItemType);
      for (let i = 0; i < n; i++) {
        const text = v2
          ? sim.dataset.v2Row(spec.id, 'reconciliation', i)
          : sim.dataset.row(spec.id, part.provider, part.lineItemType, i);
        const row = JSON.parse(text) as Record<string, unknown>;
        out.push({ invoiceId: spec.id, period: spec.billingPeriod, row, text, line: i + 1, path: stored.blobPath });
      }
    }
  }
  return out;
}

/** A field by name, case-insensitively (v1 camelCase, v2 PascalCase), read independently of the app's code. */
function field(row: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(row).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : row[key];
}
const amountOf = (row: Record<string, unknown>) =>
  ['totalForCustomer', 'postTaxTotal', 'amount'].map((f) => field(row, f)).find((v) => v !== undefined) as number;

describe('the README queries over the typed dataset and the NDJSON', () => {
  test('the README has every query this test runs', async () => {
    expect([...(await readmeQueries()).keys()].sort()).toEqual(
      // unbilled-*: run by test/e2e/unbilled.test.ts over a container with unbilled snapshots.
      ['customer-month', 'drill-down', 'invoice-totals', 'ndjson-rows', 'unbilled-rows', 'unbilled-vs-billed'].sort(),
    );
  });

  test('per customer and month: exact totals and line counts, customers under one id on every kind of row', async () => {
    const sql = (await readmeQueries()).get('customer-month')!;
    const result = await query(sql);
    // Expected from the simulator's rows, summed in integer cents from JSON.parse'd values (whole cents each).
    const expected = new Map<string, { lines: number; cents: bigint; name: string }>();
    for (const { period, row } of billingRows()) {
      const id = String(field(row, 'customerId')).replace(/^org:/, '');
      const currency = String(field(row, 'currency'));
      const key = `${period}|${currency}|${id}`;
      const entry = expected.get(key) ?? { lines: 0, cents: 0n, name: String(field(row, 'customerName')) };
      entry.lines++;
      entry.cents += BigInt(Math.round(amountOf(row) * 100));
      expected.set(key, entry);
    }
    const actual = new Map(
      result.map((r) => [
        `${r.billing_period}|${r.BillingCurrency}|${r.SubAccountId}`,
        { lines: Number(r.lines), cents: cents(String(r.billed_cost)), name: String(r.SubAccountName) },
      ]),
    );
    expect(result).toHaveLength(expected.size);
    expect(actual).toEqual(expected);
    // Customer ids are bare guids (OneTime rows' `org:` prefix stripped), the same customers as the simulator's table.
    const known = new Set(sim.dataset.customers().map((c) => c.id));
    expect(result.every((r) => known.has(String(r.SubAccountId)))).toBe(true);
    // Exact decimals: DuckDB sees DECIMAL(38,18), not DOUBLE.
    const types = await query(
      `SELECT DISTINCT typeof(BilledCost) AS t FROM read_parquet(getvariable('invoices') || '/billing_period=*/invoice_id=*/billing_lines.parquet')`,
    );
    expect(types).toEqual([{ t: 'DECIMAL(38,18)' }]);
  });

  test("invoice totals against totalCharges: every invoice's lines equal its manifest's lineItemTotal; G012040490 is the mismatch", async () => {
    const result = await query((await readmeQueries()).get('invoice-totals')!);
    const specs = sim.dataset.invoices();
    expect(result.map((r) => r.invoice_id).sort()).toEqual(specs.map((s) => s.id).sort());
    for (const spec of specs) {
      const row = result.find((r) => r.invoice_id === spec.id)!;
      const manifest = JSON.parse(
        await readFile(
          join(folder, `billing_period=${spec.billingPeriod}/invoice_id=${spec.id}/manifest.json`),
          'utf8',
        ),
      );
      expect(row.billing_period, spec.id).toBe(spec.billingPeriod);
      expect(new Decimal(String(row.billed_cost)).eq(manifest.reconciliation.lineItemTotal), spec.id).toBe(true);
      expect(new Decimal(String(row.total_charges)).eq(sim.dataset.totalChargesText(spec.id)), spec.id).toBe(true);
      const artifact = manifest.artifacts.find((a: { kind: string }) => a.kind === 'dataset');
      expect(Number(row.lines), spec.id).toBe(artifact.rows);
      if (spec.id === 'G012040490') {
        expect(row).toMatchObject({ status: 'mismatch', matches: false });
        expect(new Decimal(String(row.difference)).eq('117.25')).toBe(true);
      } else {
        expect(row, spec.id).toMatchObject({ status: 'complete', matches: true });
        expect(new Decimal(String(row.difference)).isZero(), spec.id).toBe(true);
      }
    }
  });

  test('NDJSON rows per invoice, provider and type equal the source, under each invoice billing period', async () => {
    const sql = (await readmeQueries()).get('ndjson-rows')!;
    expect(sql).toMatch(/hive_partitioning = true/);
    expect(sql).toMatch(/union_by_name = true/);
    const result = await query(sql);
    const expected: Record<string, unknown>[] = [];
    for (const spec of sim.dataset.invoices()) {
      for (const part of spec.parts ?? []) {
        const stored = storedPart(spec.id, part.provider, part.lineItemType);
        const kind = normalizeType(part.lineItemType) === 'usage' ? 'usage' : 'reconciliation';
        const rows =
          stored.source === 'v2'
            ? sim.dataset.v2Rows(spec.id, kind)
            : sim.dataset.rows(spec.id, part.provider, part.lineItemType);
        expected.push({
          billing_period: spec.billingPeriod,
          invoice_id: spec.id,
          provider: normalizeProvider(part.provider, part.lineItemType),
          line_item_type: normalizeType(part.lineItemType),
          rows: String(rows),
        });
      }
    }
    const order = (r: Record<string, unknown>) =>
      `${r.billing_period}|${r.invoice_id}|${r.provider}|${r.line_item_type}`;
    expect([...result].sort((a, b) => order(a).localeCompare(order(b)))).toEqual(
      expected.sort((a, b) => order(a).localeCompare(order(b))),
    );
  });

  test('drill-down: each typed line of G012040490 beside its row exactly as the API sent it', async () => {
    const result = await query((await readmeQueries()).get('drill-down')!);
    const source = billingRows().filter((r) => r.invoiceId === 'G012040490');
    expect(source.length).toBeGreaterThan(0);
    expect(result).toHaveLength(source.length);
    for (const [i, r] of result.entries()) {
      const expected = source[i]!;
      expect(r.x_SourceFile).toBe(expected.path);
      expect(Number(r.x_SourceLine)).toBe(expected.line);
      expect(r.verbatim).toBe(expected.text);
      expect(cents(String(r.BilledCost))).toBe(BigInt(Math.round(amountOf(expected.row) * 100)));
    }
  });
});

/** Big-endian two's complement bytes → bigint (how Parquet stores a FIXED_LEN_BYTE_ARRAY DECIMAL). */
function twosComplement(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return bytes.length > 0 && (bytes[0] as number) & 0x80 ? value - (1n << BigInt(bytes.length * 8)) : value;
}

describe('a second reader', () => {
  test('hyparquet decodes every file on its own and agrees with DuckDB, the manifest and the source rows', async () => {
    const files = pass.invoices.map(
      (i) => `billing_period=${i.billingPeriod}/invoice_id=${i.invoiceId}/billing_lines.parquet`,
    );
    expect(files).toHaveLength(sim.dataset.invoices().length);
    const source = billingRows();
    for (const path of files) {
      const bytes = await readFile(join(folder, path));
      const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      const metadata = parquetMetadata(buffer);
      // hyparquet turns DECIMAL into a double; read the physical bytes instead and decode them here, exactly.
      for (const element of metadata.schema) {
        if (element.converted_type === 'DECIMAL') {
          element.converted_type = undefined;
          element.logical_type = undefined;
        }
      }
      const rows = (await parquetReadObjects({ file: buffer, metadata })) as Record<string, unknown>[];
      const groups = metadata.row_groups.map((g) => Number(g.num_rows));
      expect(groups, path).toEqual(
        Array.from({ length: Math.max(1, Math.ceil(rows.length / ROW_GROUP_ROWS)) }, (_, i) =>
          Math.min(ROW_GROUP_ROWS, rows.length - i * ROW_GROUP_ROWS),
        ),
      );
      const invoiceId = /invoice_id=([^/]+)/.exec(path)?.[1] as string;
      const manifest = JSON.parse(await readFile(join(folder, dirname(path), 'manifest.json'), 'utf8'));
      const artifact = manifest.artifacts.find((a: { kind: string }) => a.kind === 'dataset');
      expect(artifact, path).toMatchObject({ path, rows: rows.length, bytes: bytes.length, sha256: sha256(bytes) });
      const kv = Object.fromEntries((metadata.key_value_metadata ?? []).map((e) => [e.key, e.value]));
      expect(JSON.parse(kv['csp_invoice_sync.inputs'] ?? 'null'), path).toEqual(artifact.inputs);

      const duckRows = await query(
        `SELECT BilledCost::VARCHAR AS cost, x_SourceFile, x_SourceLine, SubAccountId, epoch_ms(ChargePeriodStart) AS start
         FROM read_parquet('${join(folder, path)}') ORDER BY x_SourceFile, x_SourceLine`,
      );
      // The file holds its inputs in path order, each file's rows in line order.
      const mine = source
        .filter((s) => s.invoiceId === invoiceId)
        .sort((a, b) => (a.path === b.path ? a.line - b.line : a.path < b.path ? -1 : 1));
      expect(rows, path).toHaveLength(mine.length);
      expect(duckRows, path).toHaveLength(mine.length);
      for (const [i, row] of rows.entries()) {
        const expected = mine[i]!;
        const unscaled = twosComplement(row.BilledCost as Uint8Array);
        // The exact value: the row's amount in whole cents is the unscaled DECIMAL(38,18) value / 10^16.
        expect(unscaled, `${path} ${i}`).toBe(BigInt(Math.round(amountOf(expected.row) * 100)) * 10n ** 16n);
        expect(new Decimal(String(duckRows[i]!.cost)).times(new Decimal(10).pow(18)).toFixed(0)).toBe(
          unscaled.toString(),
        );
        expect([row.x_SourceFile, row.x_SourceLine]).toEqual([expected.path, BigInt(expected.line)]);
        expect([duckRows[i]!.x_SourceFile, Number(duckRows[i]!.x_SourceLine)]).toEqual([expected.path, expected.line]);
        expect(row.SubAccountId).toBe(String(field(expected.row, 'customerId')).replace(/^org:/, ''));
        expect(row.x_CustomerId).toBe(field(expected.row, 'customerId'));
        expect(row.InvoiceId).toBe(invoiceId);
        const start = Date.parse(String(field(expected.row, 'chargeStartDate')));
        expect((row.ChargePeriodStart as Date).getTime()).toBe(start);
        expect(Number(duckRows[i]!.start)).toBe(start);
      }
    }
  });

  test('finalizing again writes nothing; a deleted file is written again byte for byte', async () => {
    const invoice = pass.invoices.find((i) => i.invoiceId === 'G000024130')!;
    const path = `billing_period=${invoice.billingPeriod}/invoice_id=${invoice.invoiceId}/billing_lines.parquet`;
    const blob = deps.storage.container.getBlockBlobClient(path);
    const before = await blob.getProperties();
    await finalizeInvoiceIfDone(deps, invoice.invoiceId);
    expect((await blob.getProperties()).etag).toBe(before.etag);
    const bytes = await blob.downloadToBuffer();
    await blob.delete();
    await finalizeInvoiceIfDone(deps, invoice.invoiceId);
    expect((await blob.downloadToBuffer()).equals(bytes)).toBe(true);
    expect((await deps.storage.ledger.getInvoice(invoice.invoiceId))?.state).toBe('complete');
  });

  test('a dataset that does not add up to the reconciliation fails the invoice, naming both sums', async () => {
    const invoice = pass.invoices.find((i) => i.invoiceId === 'G016907411')!;
    const part = pass.parts.find((p) => p.invoiceId === invoice.invoiceId && p.lineItemType === 'billing')!;
    // The ledger's read-back of the NDJSON now says a cent more than the rows hold.
    const claimed = new Decimal(part.lineTotal!).plus('0.01').toFixed();
    await deps.storage.ledger.updatePart(invoice.invoiceId, part.partId, () => ({ lineTotal: claimed }));
    await finalizeInvoiceIfDone(deps, invoice.invoiceId);
    const entity = await deps.storage.ledger.getInvoice(invoice.invoiceId);
    expect(entity?.state).toBe('failed');
    expect(entity?.lastError).toContain(`BilledCost sums to ${part.lineTotal} EUR`);
    expect(entity?.lastError).toContain(`billing line items to ${claimed} EUR`);
    const manifest = JSON.parse(
      (
        await deps.storage.container
          .getBlobClient(`billing_period=${invoice.billingPeriod}/invoice_id=${invoice.invoiceId}/manifest.json`)
          .downloadToBuffer()
      ).toString(),
    );
    expect(manifest.status).toBe('failed');
    expect(manifest.notes.join(' ')).toContain('BilledCost sums to');
    expect(manifest.artifacts.some((a: { kind: string }) => a.kind === 'dataset')).toBe(false);
  });
});
