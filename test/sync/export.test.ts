// The export loop and the detection of stuck work, on a real ledger and container (Azurite): verification that
// does not trust the writer's own counters, leases that keep a lapsed worker out, and stuck detection that counts
// a part's progress as progress.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Page } from '../../src/http/paging.js';
import { encodeProgress, type PartCheckpoint, progressOf, START } from '../../src/storage/parts.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import { detectInvoices, requeueReason } from '../../src/sync/detect-invoices.js';
import type { ExportContext } from '../../src/sync/export/context.js';
import { LeaseLostError, PartLease } from '../../src/sync/export/lease.js';
import { type PartSource, stageCommitVerify, VerificationError } from '../../src/sync/export/stage.js';
import { type Simulator, startSimulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { freshDeps, manualClock } from '../support/harness.js';

let azurite: Azurite;
let sim: Simulator;
beforeAll(async () => {
  azurite = await startAzurite();
  sim = await startSimulator({ dataset: { invoices: [] } });
});
afterAll(async () => {
  await sim?.stop();
  await azurite?.stop();
});

const INVOICE = 'G0LOOP0001';
const nowIso = () => new Date().toISOString();

async function seedPart(deps: SyncDeps, partId = 'onetime-billing') {
  await deps.storage.ledger.tryInsertInvoice({
    invoiceId: INVOICE,
    billingPeriod: '2025-01',
    billingPeriodFixed: true,
    invoiceDate: '2025-02-08T00:00:00Z',
    documentType: 'invoice',
    invoiceType: 'OneTime',
    currencyCode: 'USD',
    totalCharges: '3',
    state: 'exporting',
    attempts: 1,
    discoveredAt: nowIso(),
    updatedAt: nowIso(),
    correlationId: 'c',
    partsTotal: 1,
  });
  await deps.storage.ledger.upsertPartIfAbsent({
    invoiceId: INVOICE,
    partId,
    provider: 'onetime',
    lineItemType: 'billing',
    api: 'v1',
    state: 'queued',
    blobPath: `billing_period=2025-01/invoice_id=${INVOICE}/lineitems/provider=onetime/line_item_type=billing/rows.ndjson`,
    rows: 0,
    bytes: 0,
    attempts: 0,
    updatedAt: nowIso(),
  });
}

/** A source that serves the given pages, each claiming `rowsThrough` as its own count. */
function source(pages: { rows: string[]; rowsThrough: number }[]): PartSource {
  return {
    api: 'v1',
    pages(): AsyncIterator<Page<PartCheckpoint>> {
      return (async function* () {
        for (const [i, page] of pages.entries()) {
          const last = i === pages.length - 1;
          yield {
            ndjson: Buffer.from(page.rows.map((r) => `${r}\n`).join('')),
            rows: page.rows.length,
            rowsThrough: page.rowsThrough,
            next: last ? null : { kind: 'offset', pageIndex: i + 1, offset: page.rowsThrough },
          };
        }
      })();
    },
  };
}

async function claimed(deps: SyncDeps, owner = 'inv-1'): Promise<ExportContext> {
  const claim = await PartLease.claim(deps, { invoiceId: INVOICE, partId: 'onetime-billing' }, owner, 0);
  if (claim.kind !== 'claimed') throw new Error(`not claimed: ${claim.kind}`);
  return {
    deps,
    lease: claim.lease,
    message: { invoiceId: INVOICE, partId: 'onetime-billing', turn: 0 },
    deadline: Date.now() + 600_000,
    correlationId: 'c',
  };
}

describe('verification does not trust the writer', () => {
  test('a blob that lacks rows the source served fails verification, and the part starts over from page 1', async () => {
    const { deps } = await freshDeps(sim, azurite);
    await seedPart(deps);
    const ctx = await claimed(deps);
    // The source counted 5 rows through its last page, but only 3 reached the blob.
    const lying = source([
      { rows: ['{"totalForCustomer":1}', '{"totalForCustomer":1}'], rowsThrough: 2 },
      { rows: ['{"totalForCustomer":1}'], rowsThrough: 5 },
    ]);
    const failure = await stageCommitVerify(ctx, lying).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(VerificationError);
    expect(String(failure)).toMatch(/committed blob has 3 rows, the v1 source served 5/);
    ctx.lease.stopRenewal();
    const part = await deps.storage.ledger.getPart(INVOICE, 'onetime-billing');
    expect(part?.state).not.toBe('complete');
    expect(progressOf(part!)).toEqual(START);
  });

  test('a blob that holds every row completes with what storage holds (rows, bytes, sha256, exact total)', async () => {
    const { deps } = await freshDeps(sim, azurite);
    await seedPart(deps);
    const honest = source([
      { rows: ['{"totalForCustomer":0.1}', '{"totalForCustomer":0.2}'], rowsThrough: 2 },
      { rows: ['{"totalForCustomer":2.7}'], rowsThrough: 3 },
    ]);
    expect(await stageCommitVerify(await claimed(deps), honest)).toBe('complete');
    const part = await deps.storage.ledger.getPart(INVOICE, 'onetime-billing');
    expect(part).toMatchObject({ state: 'complete', rows: 3, lineTotal: '3', source: 'v1' });
    expect(part?.leaseOwner).toBeUndefined();
    const stored = await deps.storage.container.getBlobClient(part!.blobPath).downloadToBuffer();
    expect(stored.toString()).toBe('{"totalForCustomer":0.1}\n{"totalForCustomer":0.2}\n{"totalForCustomer":2.7}\n');
    expect(part?.bytes).toBe(stored.length);
  });
});

describe('the part lease', () => {
  test('a second owner cannot claim a live lease; a claim after it lapses starts a new epoch', async () => {
    const clock = manualClock();
    const { deps } = await freshDeps(sim, azurite, {
      settings: { LEASE_SECONDS: '20' },
      overrides: { now: clock.now },
    });
    await seedPart(deps);
    const first = await PartLease.claim(deps, { invoiceId: INVOICE, partId: 'onetime-billing' }, 'a', 0);
    expect(first.kind).toBe('claimed');
    const second = await PartLease.claim(deps, { invoiceId: INVOICE, partId: 'onetime-billing' }, 'b', 0);
    expect(second).toMatchObject({ kind: 'held', owner: 'a' });
    clock.advance(21_000);
    const third = await PartLease.claim(deps, { invoiceId: INVOICE, partId: 'onetime-billing' }, 'b', 0);
    expect(third.kind).toBe('claimed');
    if (first.kind !== 'claimed' || third.kind !== 'claimed') return;
    expect(third.lease.epoch).toBe(first.lease.epoch + 1);
    // The first owner wakes up: it may neither stage (its local check) nor write (the ledger's owner changed).
    expect(() => first.lease.assertHeld()).toThrow(LeaseLostError);
    await expect(first.lease.update(() => ({ progress: encodeProgress(START) }))).rejects.toThrow(LeaseLostError);
    // A message behind the part's chain is stale, whoever holds it.
    expect(await PartLease.claim(deps, { invoiceId: INVOICE, partId: 'onetime-billing' }, 'c', -1)).toMatchObject({
      kind: 'stale',
    });
    third.lease.stopRenewal();
  });

  test('the lease is renewed while the owner works, so nobody else can claim it', async () => {
    const { deps } = await freshDeps(sim, azurite, { settings: { LEASE_SECONDS: '15' } });
    await seedPart(deps);
    const claim = await PartLease.claim(deps, { invoiceId: INVOICE, partId: 'onetime-billing' }, 'a', 0);
    if (claim.kind !== 'claimed') throw new Error('not claimed');
    const before = Date.parse(claim.lease.part.leaseUntil ?? '');
    claim.lease.startRenewal();
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const stored = await deps.storage.ledger.getPart(INVOICE, 'onetime-billing');
    claim.lease.stopRenewal();
    expect(Date.parse(stored?.leaseUntil ?? '')).toBeGreaterThan(before);
    expect(() => claim.lease.assertHeld()).not.toThrow();
  });
});

describe('stuck detection', () => {
  test('an invoice whose part progressed recently is not stuck, whatever the invoice entity says; one idle past STUCK_AFTER_MINUTES is', async () => {
    const clock = manualClock();
    const { deps } = await freshDeps(sim, azurite, { overrides: { now: clock.now } });
    await seedPart(deps);
    const threeHoursAgo = new Date(clock.now() - 3 * 3_600_000).toISOString();
    await deps.storage.ledger.updateInvoice(INVOICE, () => ({ updatedAt: threeHoursAgo }));
    await deps.storage.ledger.updatePart(INVOICE, 'onetime-billing', () => ({
      state: 'waiting',
      updatedAt: threeHoursAgo,
      progressAt: new Date(clock.now() - 60_000).toISOString(),
    }));
    const invoice = (await deps.storage.ledger.getInvoice(INVOICE))!;
    expect(await requeueReason(deps, invoice, clock.now())).toBeUndefined();
    // A delayed poll due in two hours: not stuck before it is due (plus the stuck allowance).
    await deps.storage.ledger.updatePart(INVOICE, 'onetime-billing', () => ({
      progressAt: threeHoursAgo,
      dueAt: new Date(clock.now() + 2 * 3_600_000).toISOString(),
    }));
    expect(await requeueReason(deps, invoice, clock.now())).toBeUndefined();
    // No progress and nothing due for longer than STUCK_AFTER_MINUTES (120): stuck.
    await deps.storage.ledger.updatePart(INVOICE, 'onetime-billing', () => ({ dueAt: threeHoursAgo }));
    expect(await requeueReason(deps, invoice, clock.now())).toBe('stuck');
    // A live lease is work in progress.
    await deps.storage.ledger.updatePart(INVOICE, 'onetime-billing', () => ({
      leaseOwner: 'someone',
      leaseUntil: new Date(clock.now() + 30_000).toISOString(),
    }));
    expect(await requeueReason(deps, invoice, clock.now())).toBeUndefined();
  });

  test('a timer run does not start a second message chain for a healthy waiting part', async () => {
    const clock = manualClock();
    const { deps } = await freshDeps(sim, azurite, { overrides: { now: clock.now } });
    await seedPart(deps);
    await deps.storage.ledger.updateInvoice(INVOICE, () => ({
      updatedAt: new Date(clock.now() - 3 * 3_600_000).toISOString(),
      pdfSha256: 'x',
    }));
    await deps.storage.ledger.updatePart(INVOICE, 'onetime-billing', () => ({
      state: 'waiting',
      progressAt: new Date(clock.now() - 60_000).toISOString(),
    }));
    const result = await detectInvoices(deps);
    expect(result.requeued).toBe(0);
    expect((await deps.storage.queues.invoiceSync.getProperties()).approximateMessagesCount).toBe(0);
    expect((await deps.storage.queues.lineItemExport.getProperties()).approximateMessagesCount).toBe(0);
  });
});
