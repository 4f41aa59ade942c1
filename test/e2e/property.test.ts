// Property: for ANY invoice list the documentation allows (optional fields present or absent, document types,
// amendments, provider/type combinations, dates with and without a zone, 7-digit fractions), a full pass lands
// every invoice, every row exactly once and byte-identical, under the partition of the billing period the API
// states; and a second pass writes nothing. fast-check generates the lists; the simulator serves them.
import { fc, test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { runPass } from '../../src/app/run-pass.js';
import { type InvoiceSpec, type PartSpec, startSimulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { blobSnapshot, expectedNdjson, normalizeProvider, normalizeType } from '../support/expected.js';
import { freshDeps } from '../support/harness.js';

let azurite: Azurite;
beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

/** How many generated lists the property runs on (each is a full pass against Azurite and the simulator). */
const RUNS = 12;

const monthAfter = (period: string) => {
  const [y, m] = period.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
};

const dateShape = fc.constantFrom('utc', 'utc3', 'utc7', 'local', 'local7', '+00:00', '+02:00', '-05:00', 'date');
const periodFields = fc.constantFrom('byIdOnly', 'both', 'listOnly', 'neither');
const period = fc
  .tuple(fc.integer({ min: 2019, max: 2026 }), fc.integer({ min: 1, max: 12 }))
  .filter(([y, m]) => y < 2026 || m <= 10)
  .map(([y, m]) => `${y}-${String(m).padStart(2, '0')}`);
const rows = fc.integer({ min: 1, max: 7 });
const part = (provider: string, lineItemType: string) =>
  rows.map((n): PartSpec => ({ provider, lineItemType, rows: n }));

const legacyParts = fc
  .subarray(['office-billing_line_items', 'azure-billing_line_items', 'azure-usage_line_items'], { minLength: 1 })
  .chain((kinds) => fc.tuple(...kinds.map((k) => part(k.split('-')[0]!, k.split('-')[1]!))));
const modernParts = fc
  .tuple(
    part('one_time', 'billing_line_items'),
    fc.option(
      fc.constantFrom('one_time', 'marketplace').chain((p) => part(p, 'usage_line_items')),
      { nil: undefined },
    ),
  )
  .map(([billing, usage]) => (usage ? [billing, usage] : [billing]));

const invoice = fc.record({
  kind: fc.constantFrom('legacy', 'modern'),
  billingPeriod: period,
  billingPeriodFields: periodFields,
  dates: dateShape,
  documentType: fc.constantFrom('invoice', 'credit_note', 'void_note', 'adjustment_note', 'brand_new_type'),
  receipts: fc.integer({ min: 0, max: 2 }),
  legacyParts,
  modernParts,
  amendment: fc.option(fc.record({ rows, documentType: fc.constantFrom('adjustment_note', 'void_note') }), {
    nil: undefined,
    freq: 3,
  }),
});

/** Invoice specs with unique ids; a modern invoice may carry one nested amendment of the same period. */
const invoiceList = fc.array(invoice, { minLength: 1, maxLength: 4 }).map((drafts) =>
  drafts.flatMap((d, i): InvoiceSpec[] => {
    const id = `${d.kind === 'legacy' ? 'D' : 'G'}0PROP${String(i).padStart(4, '0')}`;
    const spec: InvoiceSpec = {
      id,
      kind: d.kind,
      billingPeriod: d.billingPeriod,
      billingPeriodFields: d.billingPeriodFields,
      dates: d.dates,
      documentType: d.documentType,
      receipts: d.receipts,
      parts: d.kind === 'legacy' ? d.legacyParts : d.modernParts,
    };
    if (d.kind === 'legacy' || !d.amendment) return [spec];
    return [
      spec,
      {
        id: `G0PROA${String(i).padStart(4, '0')}`,
        kind: 'modern',
        billingPeriod: d.billingPeriod,
        billingPeriodFields: d.billingPeriodFields,
        dates: d.dates,
        documentType: d.amendment.documentType,
        amendsOf: id,
        parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: d.amendment.rows }],
      },
    ];
  }),
);

describe('any documented invoice list', () => {
  test.prop([invoiceList], { numRuns: RUNS, endOnFailure: true })(
    'every invoice completes, every row lands once under its billing period, and a second pass writes nothing',
    async (specs) => {
      const sim = await startSimulator({ dataset: { invoices: specs }, v2: { retryAfterSeconds: 0 } });
      try {
        const { deps } = await freshDeps(sim, azurite);
        const result = await runPass(deps, { retryVisibilitySeconds: 0 });
        expect(result.invoices.map((i) => [i.invoiceId, i.state]).sort()).toEqual(
          specs.map((s) => [s.id, 'complete']).sort(),
        );
        for (const spec of specs) {
          // Where the API states a period start (by id or in the list), that is the partition; else the month of
          // the invoice date, which is the 8th of the month after the period.
          const expected = spec.billingPeriodFields === 'neither' ? monthAfter(spec.billingPeriod) : spec.billingPeriod;
          const entity = result.invoices.find((i) => i.invoiceId === spec.id)!;
          expect([spec.id, entity.billingPeriod]).toEqual([spec.id, expected]);
          for (const p of spec.parts ?? []) {
            const stored = result.parts.find(
              (x) =>
                x.invoiceId === spec.id &&
                x.provider === normalizeProvider(p.provider, p.lineItemType) &&
                x.lineItemType === normalizeType(p.lineItemType),
            )!;
            expect(stored.blobPath.startsWith(`billing_period=${expected}/invoice_id=${spec.id}/`)).toBe(true);
            const bytes = await deps.storage.container.getBlobClient(stored.blobPath).downloadToBuffer();
            const want = expectedNdjson(sim, spec.id, p, stored.source === 'v2' ? 'v2' : 'v1');
            expect([spec.id, p.provider, bytes.equals(want), stored.rows]).toEqual([spec.id, p.provider, true, p.rows]);
          }
        }
        const before = await blobSnapshot(deps.storage.container);
        const second = await runPass(deps, { retryVisibilitySeconds: 0 });
        expect(second.drain.processed).toBe(0);
        expect(await blobSnapshot(deps.storage.container)).toEqual(before);
      } finally {
        await sim.stop();
      }
    },
    300_000,
  );
});
