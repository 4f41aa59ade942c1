// Fault sequences an audit drove the sync through, each a regression test of what must happen instead: nothing
// lost, nothing doubled, nothing stranded. Real Azurite, real simulator, the jobs the Functions run.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runPass } from '../../src/app/run-pass.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import { exportPart } from '../../src/sync/export/claim.js';
import { syncInvoice } from '../../src/sync/sync-invoice.js';
import { apiFault, type InvoiceSpec } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { expectedNdjson, sha256 } from '../support/expected.js';
import { blobText, freshDeps, manifestOf, manualClock, pagesClock, withSimulator } from '../support/harness.js';

let azurite: Azurite;
beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

async function partFile(deps: SyncDeps, invoiceId: string, partId: string): Promise<Buffer> {
  const part = await deps.storage.ledger.getPart(invoiceId, partId);
  return deps.storage.container.getBlobClient(part?.blobPath ?? '').downloadToBuffer();
}

const bigLegacy: InvoiceSpec = {
  id: 'D0LOSS0001',
  kind: 'legacy',
  billingPeriod: '2024-03',
  parts: [{ provider: 'azure', lineItemType: 'billing_line_items', rows: 3000 }],
};

describe('a checkpoint the service rejects', () => {
  test('restarts checkpoint and staged rows together from page 1: every row lands, once', async () => {
    await withSimulator({ dataset: { invoices: [bigLegacy] } }, async (sim) => {
      // One page per invocation: each page served takes 31 s of a 30 s budget.
      const { deps, log } = await freshDeps(sim, azurite, {
        settings: { LINE_ITEM_PAGE_SIZE: '500', EXPORT_TIME_BUDGET_SECONDS: '30' },
        overrides: { now: pagesClock(sim, 31_000) },
      });
      let exports = 0;
      const result = await runPass(deps, {
        retryVisibilitySeconds: 0,
        onOutcome: (o) => {
          if (o.functionName !== 'exportLineItems' || ++exports !== 2) return;
          // Two pages are staged and checkpointed: the service now refuses the resumed request once.
          sim.faults.add({
            host: 'partnercenter',
            path: '/lineitems',
            kind: 'status',
            status: 400,
            headers: { 'content-type': 'application/json' },
            body: '{"message":"The request is invalid."}',
          });
        },
      });
      expect(log.lines.some((l) => l.message.startsWith('Checkpoint rejected by the service'))).toBe(true);
      const part = result.parts[0]!;
      expect(part).toMatchObject({ state: 'complete', rows: 3000 });
      const stored = await partFile(deps, bigLegacy.id, part.partId);
      expect(stored.equals(expectedNdjson(sim, bigLegacy.id, bigLegacy.parts![0]!, 'v1'))).toBe(true);
    });
  });
});

describe('line items that do not add up to the invoice', () => {
  test('are a mismatch (never complete) with an event, re-checked later, and complete once the data settles', async () => {
    const published = Date.parse('2026-11-21T06:00:00Z');
    const late: InvoiceSpec = {
      id: 'D0LATE0001',
      kind: 'legacy',
      billingPeriod: '2024-05',
      // Listed (with its totalCharges) before its line items are published: v1 answers empty pages until then.
      linesPublishedAt: published,
      parts: [{ provider: 'office', lineItemType: 'billing_line_items', rows: 40 }],
    };
    await withSimulator(
      { dataset: { invoices: [late] }, startTime: Date.parse('2026-11-21T00:00:00Z') },
      async (sim) => {
        const clock = manualClock();
        const { deps, log } = await freshDeps(sim, azurite, { overrides: { now: clock.now } });
        const first = await runPass(deps, { retryVisibilitySeconds: 0 });
        expect(first.invoices[0]).toMatchObject({ state: 'mismatch' });
        expect(first.parts[0]).toMatchObject({ state: 'complete', rows: 0 });
        const mismatch = log.events('ReconciliationMismatch');
        expect(mismatch).toHaveLength(1);
        expect(mismatch[0]).toMatchObject({
          invoiceId: late.id,
          lineItemTotal: '0',
          invoiceTotal: sim.dataset.totalChargesText(late.id),
          currency: 'USD',
        });
        const manifest = await manifestOf(deps, late.billingPeriod, late.id);
        expect(manifest).toMatchObject({ status: 'mismatch', reconciliation: { matches: false, lineItemTotal: '0' } });

        // Before its retry is due (1 h), the timer leaves it alone.
        clock.advance(50 * 60_000);
        const early = await runPass(deps, { retryVisibilitySeconds: 0 });
        expect(early.detect?.requeued).toBe(0);
        expect(early.invoices[0]?.state).toBe('mismatch');

        // The line items are published; past the hour the timer re-checks it and it settles.
        sim.clock.advance(published - sim.clock.now() + 60_000);
        clock.advance(15 * 60_000);
        const settled = await runPass(deps, { retryVisibilitySeconds: 0 });
        expect(settled.detect?.requeued).toBe(1);
        expect(settled.invoices[0]?.state).toBe('complete');
        // A healthy end stops the retry clock.
        expect([settled.invoices[0]?.troubleSince, settled.invoices[0]?.nextRetryAt]).toEqual([undefined, undefined]);
        expect(settled.parts[0]).toMatchObject({ state: 'complete', rows: 40 });
        const bytes = await partFile(deps, late.id, settled.parts[0]!.partId);
        expect(bytes.equals(expectedNdjson(sim, late.id, late.parts![0]!, 'v1'))).toBe(true);
        expect((await manifestOf(deps, late.billingPeriod, late.id)).reconciliation).toMatchObject({
          matches: true,
          difference: '0',
        });
      },
    );
  });

  test('within RECONCILIATION_TOLERANCE the invoice is complete, beyond it a mismatch', async () => {
    const off: InvoiceSpec = {
      id: 'G0TOL00001',
      kind: 'modern',
      billingPeriod: '2023-05',
      chargesAdjustment: 0.5,
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 10 }],
    };
    await withSimulator({ dataset: { invoices: [off] } }, async (sim) => {
      const strict = await freshDeps(sim, azurite, { settings: { RECONCILIATION_TOLERANCE: '0.49' } });
      expect((await runPass(strict.deps, { retryVisibilitySeconds: 0 })).invoices[0]?.state).toBe('mismatch');
      const lenient = await freshDeps(sim, azurite, { settings: { RECONCILIATION_TOLERANCE: '0.5' } });
      const result = await runPass(lenient.deps, { retryVisibilitySeconds: 0 });
      expect(result.invoices[0]?.state).toBe('complete');
      const manifest = await manifestOf(lenient.deps, off.billingPeriod, off.id);
      expect(manifest.reconciliation).toMatchObject({ difference: '0.5', matches: true, tolerance: '0.5' });
    });
  });
});

describe('a failed daily re-check of a complete v2 part', () => {
  test('leaves the part complete with its verified file, and a later re-check runs again', async () => {
    const recent: InvoiceSpec = {
      id: 'G0RCK00001',
      kind: 'modern',
      billingPeriod: '2026-09',
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 30 }],
    };
    await withSimulator({ dataset: { invoices: [recent] }, v2: { retryAfterSeconds: 0 } }, async (sim) => {
      const invoiceTime = Date.parse(
        String((sim.dataset.invoiceJson(recent.id) as { invoiceDate: string }).invoiceDate),
      );
      let offset = 86_400_000;
      const { deps } = await freshDeps(sim, azurite, {
        settings: { SETTLE_WINDOW_DAYS: '30', HTTP_MAX_RETRIES: '0' },
        host: { maxDequeueCount: 3 },
        overrides: { now: () => invoiceTime + offset },
      });
      const first = await runPass(deps, { retryVisibilitySeconds: 0 });
      const before = first.parts[0]!;
      expect(before).toMatchObject({ state: 'complete', api: 'v2' });

      // A day later the re-check meets a Graph outage on every delivery.
      offset += 25 * 3_600_000;
      sim.faults.add({
        host: 'graph',
        kind: 'status',
        status: 503,
        body: '{"error":{"code":"ServiceUnavailable","message":"down"}}',
        headers: { 'content-type': 'application/json' },
        times: 10,
      });
      const second = await runPass(deps, { retryVisibilitySeconds: 0 });
      const after = second.parts[0]!;
      expect(after).toMatchObject({ state: 'complete', sha256: before.sha256, rows: before.rows });
      expect(after.lastError).toMatch(/503/);
      expect(second.invoices[0]?.state).toBe('complete');
      expect(sha256(await partFile(deps, recent.id, after.partId))).toBe(before.sha256);
      sim.faults.clear();

      // Graph is back; the next due re-check asks again and keeps the part complete.
      offset += 25 * 3_600_000;
      const graphBefore = sim.requests.filter((r) => r.host === 'graph').length;
      const third = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(sim.requests.filter((r) => r.host === 'graph').length).toBeGreaterThan(graphBefore);
      expect(third.parts[0]).toMatchObject({ state: 'complete', sha256: before.sha256 });
    });
  });
});

describe('a transient outage longer than five deliveries', () => {
  test('the invoice is failed, then a later timer run completes it with no manual step, and nothing is doubled', async () => {
    const invoices: InvoiceSpec[] = [
      {
        id: 'D0OUT00001',
        kind: 'legacy',
        billingPeriod: '2024-01',
        parts: [{ provider: 'azure', lineItemType: 'billing_line_items', rows: 30 }],
      },
      {
        id: 'G0OUT00001',
        kind: 'modern',
        billingPeriod: '2023-03',
        parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 20 }],
      },
    ];
    await withSimulator({ dataset: { invoices } }, async (sim) => {
      const clock = manualClock();
      const { deps } = await freshDeps(sim, azurite, {
        settings: { HTTP_MAX_RETRIES: '0' },
        host: { maxDequeueCount: 5 },
        overrides: { now: clock.now },
      });
      // By id: six 503s for one invoice (one more than its five deliveries); line items: six for the other.
      sim.faults.add(apiFault(503, 503, { path: /^\/v1\/invoices\/D0OUT00001$/, times: 6 }));
      sim.faults.add(apiFault(503, 503, { path: /G0OUT00001\/lineitems/, times: 6 }));
      const first = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(first.invoices.map((i) => [i.invoiceId, i.state])).toEqual([
        ['D0OUT00001', 'failed'],
        ['G0OUT00001', 'failed'],
      ]);
      expect(first.parts.find((p) => p.invoiceId === 'G0OUT00001')).toMatchObject({ state: 'failed' });
      expect(first.invoices.every((i) => /HTTP 503/.test(i.lastError ?? ''))).toBe(true);

      // Before the first retry is due the timer leaves them; an hour later it retries them and they complete.
      clock.advance(30 * 60_000);
      expect((await runPass(deps, { retryVisibilitySeconds: 0 })).detect?.requeued).toBe(0);
      clock.advance(31 * 60_000);
      const healed = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(healed.detect?.requeued).toBe(2);
      expect(healed.invoices.map((i) => [i.invoiceId, i.state, i.lastError])).toEqual([
        ['D0OUT00001', 'complete', undefined],
        ['G0OUT00001', 'complete', undefined],
      ]);
      for (const spec of invoices) {
        const part = healed.parts.find((p) => p.invoiceId === spec.id)!;
        const bytes = await partFile(deps, spec.id, part.partId);
        expect(bytes.equals(expectedNdjson(sim, spec.id, spec.parts![0]!, 'v1'))).toBe(true);
        expect(part.rows).toBe(spec.parts![0]!.rows);
      }
    });
  });

  test('after FAILED_RETRY_DAYS a failed invoice stays failed', async () => {
    const one: InvoiceSpec = { id: 'D0GONE0001', kind: 'legacy', billingPeriod: '2024-01', parts: [] };
    await withSimulator({ dataset: { invoices: [one] } }, async (sim) => {
      const clock = manualClock();
      const { deps } = await freshDeps(sim, azurite, {
        settings: { HTTP_MAX_RETRIES: '0', FAILED_RETRY_DAYS: '1' },
        host: { maxDequeueCount: 1 },
        overrides: { now: clock.now },
      });
      sim.faults.add(apiFault(503, 503, { path: /^\/v1\/invoices\/D0GONE0001$/, times: Number.POSITIVE_INFINITY }));
      expect((await runPass(deps, { retryVisibilitySeconds: 0 })).invoices[0]?.state).toBe('failed');
      const requeued: number[] = [];
      // Retries 1 h, 2 h, 4 h, 8 h after the trouble began, then the day is over.
      for (const hours of [1, 2, 4, 8, 16]) {
        clock.advance(hours * 3_600_000 + 60_000);
        requeued.push((await runPass(deps, { retryVisibilitySeconds: 0 })).detect?.requeued ?? -1);
      }
      expect(requeued).toEqual([1, 1, 1, 1, 0]);
      const entity = await deps.storage.ledger.getInvoice(one.id);
      expect(entity).toMatchObject({ state: 'failed', retries: 4 });
    });
  });
});

describe('overlapping finalizes after a v2 data change', () => {
  test('the manifest that stays is written from the parts as they are, never from an older snapshot', async () => {
    const spec: InvoiceSpec = {
      id: 'G0RACE0001',
      kind: 'modern',
      billingPeriod: '2026-09',
      parts: [
        { provider: 'one_time', lineItemType: 'billing_line_items', rows: 20 },
        { provider: 'one_time', lineItemType: 'usage_line_items', rows: 20 },
      ],
    };
    await withSimulator(
      { dataset: { invoices: [spec] }, v2: { pollsBeforeDone: 0, retryAfterSeconds: 0 } },
      async (sim) => {
        const { deps } = await freshDeps(sim, azurite);
        const first = await runPass(deps, { retryVisibilitySeconds: 0 });
        const [a, b] = first.parts;
        expect([a?.api, b?.api]).toEqual(['v2', 'v2']);
        sim.dataset.bumpV2Version(spec.id);
        const turnOf = async (partId: string) => (await deps.storage.ledger.getPart(spec.id, partId))!.turn;
        const run = async (d: SyncDeps, partId: string) =>
          exportPart(
            d,
            { invoiceId: spec.id, partId, turn: await turnOf(partId), recheck: true },
            { invocationId: `inv-${partId}-${Math.random()}`, dequeueCount: 1, startedAt: Date.now() },
          );
        // The finalize an export asks for when it finishes the invoice's last part (a message on invoice-sync).
        const finalize = (d: SyncDeps) =>
          syncInvoice(
            d,
            { invoiceId: spec.id, reason: 'finalize' },
            { invocationId: `fin-${Math.random()}`, dequeueCount: 1, startedAt: Date.now() },
          );
        // Both re-checks start a new export; A's new version commits (B's part still holds its complete file).
        expect(await run(deps, a!.partId)).toBe('waiting');
        expect(await run(deps, b!.partId)).toBe('waiting');
        expect(await run(deps, a!.partId)).toBe('complete');
        // A's finalize lists the parts; right then B re-exports and its finalize runs with the newer data.
        let interleaved = false;
        const ledger = new Proxy(deps.storage.ledger, {
          get(target, prop, receiver) {
            if (prop === 'listParts') {
              return async (invoiceId: string) => {
                const snapshot = await target.listParts(invoiceId);
                if (!interleaved && snapshot.every((p) => p.state === 'complete')) {
                  interleaved = true;
                  expect(await run(deps, b!.partId)).toBe('complete');
                  expect(await finalize(deps)).toBe('finalized');
                }
                return snapshot;
              };
            }
            const value = Reflect.get(target, prop, receiver);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        const racing: SyncDeps = { ...deps, storage: { ...deps.storage, ledger } };
        expect(await finalize(racing)).toBe('finalized');
        expect(interleaved).toBe(true);

        const manifest = await manifestOf(deps, spec.billingPeriod, spec.id);
        for (const part of await deps.storage.ledger.listParts(spec.id)) {
          const artifact = manifest.artifacts.find((x: { path: string }) => x.path === part.blobPath);
          expect(artifact).toMatchObject({ v2Etag: part.v2Etag, sha256: part.sha256, rows: part.rows });
          expect(artifact.previousVersions).toHaveLength(1);
        }
        expect((await deps.storage.ledger.getInvoice(spec.id))?.state).toBe('complete');
      },
    );
  });
});

describe('a response longer than a bound', () => {
  test('a v2 line over MAX_LINE_BYTES fails the part on its first delivery with the setting named, the rest lands', async () => {
    const invoices: InvoiceSpec[] = [
      {
        id: 'G0LINE0001',
        kind: 'modern',
        billingPeriod: '2026-09',
        parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 5 }],
      },
      {
        id: 'D0LINE0001',
        kind: 'legacy',
        billingPeriod: '2024-02',
        parts: [{ provider: 'office', lineItemType: 'billing_line_items', rows: 5 }],
      },
    ];
    await withSimulator({ dataset: { invoices }, v2: { retryAfterSeconds: 0 } }, async (sim) => {
      // A v2 row is about 1.5 KB: over a 1 KiB bound.
      const { deps } = await freshDeps(sim, azurite, { settings: { MAX_LINE_BYTES: '1024' } });
      const deliveries: number[] = [];
      const result = await runPass(deps, {
        retryVisibilitySeconds: 0,
        onOutcome: (o) => {
          if (o.functionName === 'exportLineItems') deliveries.push(o.dequeueCount);
        },
      });
      expect(deliveries.every((n) => n === 1)).toBe(true);
      const v2 = result.parts.find((p) => p.invoiceId === 'G0LINE0001')!;
      expect(v2.state).toBe('failed');
      expect(v2.lastError).toMatch(/MAX_LINE_BYTES/);
      expect(result.invoices.map((i) => [i.invoiceId, i.state])).toEqual([
        ['D0LINE0001', 'complete'],
        ['G0LINE0001', 'failed'],
      ]);
      expect((await deps.storage.ledger.getInvoice('G0LINE0001'))?.lastError).toMatch(/MAX_LINE_BYTES/);
    });
  });
});

describe('what the API sends beyond a JavaScript number', () => {
  test('totalCharges keeps its exact text in the ledger and the manifest', async () => {
    const big: InvoiceSpec = {
      id: 'G0BIGNUM01',
      kind: 'modern',
      billingPeriod: '2023-01',
      totalCharges: '12345678901234567.89',
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 3 }],
    };
    await withSimulator({ dataset: { invoices: [big] } }, async (sim) => {
      const { deps } = await freshDeps(sim, azurite);
      const result = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(result.invoices[0]).toMatchObject({ totalCharges: '12345678901234567.89', state: 'mismatch' });
      const manifest = await manifestOf(deps, big.billingPeriod, big.id);
      expect(manifest.totals.totalCharges).toBe('12345678901234567.89');
      expect(manifest.reconciliation.invoiceTotalCharges).toBe('12345678901234567.89');
      const lineTotal = manifest.reconciliation.lineItemTotal as string;
      // Exact decimal arithmetic: the difference is the text subtraction, digit for digit.
      expect(manifest.reconciliation.difference).toBe(
        (BigInt('1234567890123456789') - BigInt(Math.round(Number(lineTotal) * 100)))
          .toString()
          .replace(/(\d\d)$/, '.$1'),
      );
      expect(await blobText(deps, `billing_period=2023-01/invoice_id=${big.id}/invoice.json`)).toContain(
        '"totalCharges":12345678901234567.89',
      );
    });
  });
});
