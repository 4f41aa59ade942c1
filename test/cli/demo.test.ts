// `npm run demo -- --keep DIR` in-process: the files stay on disk in the container's layout, and the DuckDB query it
// prints runs as printed on them (the README's per-customer query).
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, expect, test } from 'vitest';
import { demo } from '../../scripts/demo.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'demo-keep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function files(root: string, under = ''): string[] {
  return readdirSync(path.join(root, under), { withFileTypes: true }).flatMap((e) => {
    const relative = under ? `${under}/${e.name}` : e.name;
    return e.isDirectory() ? files(root, relative) : [relative];
  });
}

test('demo --keep leaves NDJSON, Parquet and manifests under DIR and prints a query that runs on them', async () => {
  let out = '';
  let err = '';
  const code = await demo({ keep: dir, out: (t) => (out += t), err: (t) => (err += t) });
  // The planted mismatch (G012040490) is the only ✗: the demo worked, so it exits 0 (`run` exits 3 on it).
  expect(code, err).toBe(0);
  expect(out).toMatch(/the ✗ one \(G012040490\) does not reconcile, as the demo data plants it/);

  const kept = files(dir);
  const prefix = 'billing_period=2025-11/invoice_id=G012040490/';
  expect(kept).toEqual(
    expect.arrayContaining([
      `${prefix}manifest.json`,
      `${prefix}billing_lines.parquet`,
      `${prefix}invoice.pdf`,
      `${prefix}lineitems/provider=onetime/line_item_type=billing/rows.ndjson`,
    ]),
  );
  expect(kept.filter((f) => f.endsWith('/manifest.json') && !f.startsWith('unbilled/'))).toHaveLength(10);
  // The day's unbilled snapshot, beside the invoices: one (November's invoice of the demo data is synced, so only
  // `current`), printed in the status section and kept in its layout.
  expect(kept.filter((f) => f.startsWith('unbilled/') && f.endsWith('/manifest.json'))).toEqual([
    'unbilled/billing_period=2026-11/snapshot=2026-11-21/currency=USD/manifest.json',
  ]);
  expect(out).toMatch(/Unbilled \(month to date\)[\s\S]*│ 2026-11 +│ USD +│ 2026-11-21 │ complete │/);
  expect(existsSync(path.join(dir, prefix, 'billing_lines.parquet'))).toBe(true);

  // The table fits 120 columns and says what the failed attempts were.
  for (const line of out.split('\n').filter((l) => /^[┌│├└]/.test(l))) expect(line.length).toBeLessThanOrEqual(120);
  expect(out).toContain('those are the "failed attempts" above');
  expect(out).toMatch(/3 failed attempts\n {2}failed attempts \(an error or no response\): 3 recovered/);

  const printed = /\n(SET VARIABLE invoices = [\s\S]*?ORDER BY billing_period, BillingCurrency, SubAccountId;)\n/.exec(
    out,
  )?.[1];
  expect(printed).toBeDefined();
  expect(printed).toContain(`SET VARIABLE invoices = '${dir}';`);
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  let reader: Awaited<ReturnType<typeof connection.runAndReadAll>> | undefined;
  for (const statement of printed!.split(/;\s*\n/)) reader = await connection.runAndReadAll(statement);
  const rows = reader!.getRowObjectsJson() as Record<string, string>[];
  expect(rows.length).toBeGreaterThan(20);
  // G012040490 is the one invoice of 2025-11: its customers' lines add up to its line-item total, 8891.61.
  const november = rows.filter((r) => r.billing_period === '2025-11');
  const total = november.reduce((sum, r) => sum + Math.round(Number(r.billed_cost) * 100), 0);
  expect(total).toBe(889161);
  expect(new Set(november.map((r) => r.BillingCurrency))).toEqual(new Set(['USD']));
  connection.closeSync();
});
