// Data no one here shaped: every response shape the documentation allows syncs end to end. Each variant is a
// simulator option; the assertions are the product's promises (every invoice lands, the partition is the billing
// period the API states, every row lands once, byte-identical, and a second pass writes nothing).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { PassResult } from '../../src/app/run-pass.js';
import { runPass } from '../../src/app/run-pass.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import type { InvoiceSpec, Simulator, SimulatorOptions } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { blobSnapshot, expectedNdjson, normalizeProvider, normalizeType } from '../support/expected.js';
import { freshDeps, manifestOf, withSimulator } from '../support/harness.js';

let azurite: Azurite;
beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

/** Every listed invoice complete (or the expected resting state), filed under `periodOf`, every row once. */
async function expectLanded(
  sim: Simulator,
  deps: SyncDeps,
  result: PassResult,
  specs: InvoiceSpec[],
  periodOf: (spec: InvoiceSpec) => string = (s) => s.billingPeriod,
) {
  expect(result.invoices.map((i) => i.invoiceId).sort()).toEqual(specs.map((s) => s.id).sort());
  for (const spec of specs) {
    const invoice = result.invoices.find((i) => i.invoiceId === spec.id)!;
    expect([spec.id, invoice.state]).toEqual([spec.id, (spec.chargesAdjustment ?? 0) === 0 ? 'complete' : 'mismatch']);
    expect([spec.id, invoice.billingPeriod]).toEqual([spec.id, periodOf(spec)]);
    const manifest = await manifestOf(deps, periodOf(spec), spec.id);
    expect(manifest.billingPeriod).toBe(periodOf(spec));
    for (const part of spec.parts ?? []) {
      const stored = result.parts.find(
        (p) =>
          p.invoiceId === spec.id &&
          p.provider === normalizeProvider(part.provider, part.lineItemType) &&
          p.lineItemType === normalizeType(part.lineItemType),
      );
      expect(stored?.state, `${spec.id} ${part.provider}`).toBe('complete');
      const bytes = await deps.storage.container.getBlobClient(stored!.blobPath).downloadToBuffer();
      expect(bytes.equals(expectedNdjson(sim, spec.id, part, stored!.source === 'v2' ? 'v2' : 'v1'))).toBe(true);
      expect(stored!.blobPath.startsWith(`billing_period=${periodOf(spec)}/`)).toBe(true);
    }
  }
  // A second pass writes nothing.
  const before = await blobSnapshot(deps.storage.container);
  await runPass(deps, { retryVisibilitySeconds: 0 });
  expect(await blobSnapshot(deps.storage.container)).toEqual(before);
}

const legacy: InvoiceSpec = {
  id: 'D0SHAPE001',
  kind: 'legacy',
  billingPeriod: '2024-09',
  parts: [
    { provider: 'office', lineItemType: 'billing_line_items', rows: 7 },
    { provider: 'azure', lineItemType: 'usage_line_items', rows: 5 },
  ],
  receipts: 1,
};
const modern: InvoiceSpec = {
  id: 'G0SHAPE001',
  kind: 'modern',
  billingPeriod: '2025-09',
  parts: [
    { provider: 'one_time', lineItemType: 'billing_line_items', rows: 9 },
    { provider: 'marketplace', lineItemType: 'usage_line_items', rows: 4 },
  ],
};
const older: InvoiceSpec = {
  id: 'G0SHAPE002',
  kind: 'modern',
  billingPeriod: '2023-09',
  parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 6 }],
};
const amendment: InvoiceSpec = {
  id: 'G0SHAPE003',
  kind: 'modern',
  billingPeriod: '2025-09',
  documentType: 'adjustment_note',
  amendsOf: 'G0SHAPE001',
  parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 2 }],
};
const specs = [legacy, modern, older, amendment];

describe('the billing period is the one the API states, wherever it states it', () => {
  test.each([
    ['only by id (the documented default)', 'byIdOnly'],
    ['in the list and by id', 'both'],
    ['only in the list', 'listOnly'],
  ] as const)('%s: September billed on 8 October is billing_period=YYYY-09', async (_label, billingPeriodFields) => {
    await withSimulator(
      { dataset: { invoices: specs, billingPeriodFields }, v2: { retryAfterSeconds: 0 } },
      async (sim) => {
        const { deps } = await freshDeps(sim, azurite);
        const result = await runPass(deps, { retryVisibilitySeconds: 0 });
        await expectLanded(sim, deps, result, specs);
      },
    );
  });

  test('with no period anywhere, the invoice date month (the invoice is issued the month after)', async () => {
    await withSimulator(
      { dataset: { invoices: specs, billingPeriodFields: 'neither' }, v2: { retryAfterSeconds: 0 } },
      async (sim) => {
        const { deps } = await freshDeps(sim, azurite);
        const result = await runPass(deps, { retryVisibilitySeconds: 0 });
        const issued = (s: InvoiceSpec) =>
          String((sim.dataset.invoiceJson(s.id) as { invoiceDate: string }).invoiceDate).slice(0, 7);
        expect(issued(modern)).toBe('2025-10');
        await expectLanded(sim, deps, result, specs, issued);
      },
    );
  });

  test.each([
    ['no zone, 7-digit fractions', 'local7'],
    ['+02:00 offsets', '+02:00'],
    ['-05:00 offsets', '-05:00'],
    ['dates only', 'date'],
  ] as const)('dates with %s', async (_label, dates) => {
    const shaped = specs.map((s) => ({ ...s, dates }));
    await withSimulator({ dataset: { invoices: shaped }, v2: { retryAfterSeconds: 0 } }, async (sim) => {
      const { deps } = await freshDeps(sim, azurite);
      const result = await runPass(deps, { retryVisibilitySeconds: 0 });
      await expectLanded(sim, deps, result, shaped);
    });
  });
});

describe('links, amendments and manifests in every documented shape', () => {
  test.each([
    ['relative links without /v1 (documented)', { nextLinkStyle: 'relative' }],
    ['relative links with /v1', { nextLinkStyle: 'relativeV1' }],
    ['absolute links on the service origin', { nextLinkStyle: 'absolute' }],
    ['malformed next links as in the docs', { malformedNextLinks: true }],
    ['amendments nested and also listed at the top level', { amendments: 'both' }],
    ['a manifest only inline', { v2: { manifestMode: 'inline' } }],
    ['a manifest inline and by link', { v2: { manifestMode: 'both' } }],
    ['dataFormat compressedJSONLines (the resource doc)', { v2: { dataFormat: 'compressedJSONLines' } }],
    ['per-blob ItemCount in the manifest', { v2: { itemCount: 'exact' } }],
    ['several blobs per export', { v2: { rowsPerBlob: 2 } }],
    ['a BOM before every JSON body', { bom: true }],
    ['single-use continuation tokens', { seekTokens: { singleUse: true } }],
  ] as const)('%s', async (_label, variant) => {
    const { amendments, v2, ...rest } = variant as {
      amendments?: 'nested' | 'both';
      v2?: SimulatorOptions['v2'];
    } & SimulatorOptions;
    await withSimulator(
      {
        ...rest,
        dataset: { invoices: specs, ...(amendments ? { amendments } : {}) },
        v2: { retryAfterSeconds: 0, ...v2 },
        pageSizeCap: 3,
      },
      async (sim) => {
        const { deps } = await freshDeps(sim, azurite, { settings: { LINE_ITEM_PAGE_SIZE: '3' } });
        const result = await runPass(deps, { retryVisibilitySeconds: 0 });
        await expectLanded(sim, deps, result, specs);
      },
    );
  });

  test('an unknown dataFormat is refused with a clear error on the first delivery, never read as lines', async () => {
    await withSimulator(
      { dataset: { invoices: [modern] }, v2: { retryAfterSeconds: 0, dataFormat: 'csv' } },
      async (sim) => {
        const { deps } = await freshDeps(sim, azurite);
        const result = await runPass(deps, { retryVisibilitySeconds: 0 });
        const v2 = result.parts.filter((p) => p.api === 'v2');
        expect(v2.length).toBe(2);
        for (const part of v2) {
          expect(part.state).toBe('failed');
          expect(part.lastError).toMatch(/dataFormat/);
          expect(part.lastError).toMatch(/csv/);
        }
        expect(sim.requests.some((r) => r.host === 'blob' && /fastpath/.test(r.path))).toBe(false);
        expect(result.invoices[0]?.state).toBe('failed');
      },
    );
  });

  test('a manifest whose ItemCount disagrees with its blob fails the part instead of completing it short', async () => {
    await withSimulator(
      { dataset: { invoices: [modern] }, v2: { retryAfterSeconds: 0, itemCount: 'lie' } },
      async (sim) => {
        const { deps } = await freshDeps(sim, azurite, { host: { maxDequeueCount: 2 } });
        const result = await runPass(deps, { retryVisibilitySeconds: 0 });
        const v2 = result.parts.filter((p) => p.api === 'v2');
        expect(v2.every((p) => p.state !== 'complete')).toBe(true);
        expect(v2.map((p) => p.lastError).join('\n')).toMatch(/ItemCount|lines/i);
      },
    );
  });
});

describe('an oddly shaped list item', () => {
  test('is judged alone: recorded with its id as sent and the reason, and every other invoice carries on', async () => {
    const numeric: InvoiceSpec = {
      id: '1234567890',
      kind: 'modern',
      billingPeriod: '2023-07',
      raw: { fields: { id: '1234567890' } },
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 3 }],
    };
    const odd: InvoiceSpec = {
      id: 'G0ODD00002',
      kind: 'modern',
      billingPeriod: '2023-07',
      raw: {
        amendments: ['{"invoiceDate":"2023-08-09T00:00:00Z","documentType":"adjustment_note"}'],
        taxReceipts: ['{"id":null}'],
        invoiceDetails: ['null'],
      },
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 4 }],
    };
    const good: InvoiceSpec = {
      id: 'G0GOOD0002',
      kind: 'modern',
      billingPeriod: '2023-07',
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 5 }],
    };
    const listItems = [
      { raw: 'null', at: 0 },
      { raw: '"a plain string"', at: 1 },
      { raw: '{"id":"../../x","invoiceDate":"2023-08-08"}', at: 2 },
    ];
    await withSimulator({ dataset: { invoices: [numeric, odd, good], listItems } }, async (sim) => {
      const { deps } = await freshDeps(sim, azurite);
      const result = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(result.invoices.map((i) => [i.invoiceId, i.state])).toEqual([
        ['1234567890', 'complete'],
        ['G0GOOD0002', 'complete'],
        ['G0ODD00002', 'complete'],
      ]);
      const rejected = [];
      for await (const item of deps.storage.ledger.listRejected()) rejected.push(item);
      expect(rejected).toHaveLength(4);
      expect(rejected.map((r) => r.idAsSent)).toEqual(expect.arrayContaining(['../../x']));
      expect(rejected.filter((r) => r.parentId === 'G0ODD00002')).toHaveLength(1);
      for (const item of rejected) expect(item.reason.length).toBeGreaterThan(5);
      const manifest = await manifestOf(deps, '2023-07', 'G0ODD00002');
      expect(manifest.notes.join('\n')).toMatch(/taxReceipts\[0\]/);
      expect(manifest.notes.join('\n')).toMatch(/invoiceDetails\[\d\]/);
      // The second run sees the same odd items: still one record each, nothing else changes.
      await runPass(deps, { retryVisibilitySeconds: 0 });
      const again = [];
      for await (const item of deps.storage.ledger.listRejected()) again.push(item);
      expect(again).toHaveLength(4);
    });
  });
});
