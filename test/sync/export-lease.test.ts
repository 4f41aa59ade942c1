// The lease, the claim and the stage loop at their edges, on a real ledger, container and queue (Azurite) with a
// clock the test moves: who may claim and when, what a claim and a renewal write, when a lease counts as lost,
// what a message that gives up may mark, and how the stage loop hands over, fails and finishes.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { Page } from '../../src/http/paging.js';
import { blockId, NdjsonBlockWriter } from '../../src/storage/ndjson-writer.js';
import { encodeProgress, type PartCheckpoint, progressOf, START } from '../../src/storage/parts.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import { exportPart, PartNotRecordedError, recordExportFailure } from '../../src/sync/export/claim.js';
import type { ExportContext } from '../../src/sync/export/context.js';
import { LeaseLostError, PartLease } from '../../src/sync/export/lease.js';
import {
  BLOCKS_IN_FLIGHT,
  type PartSource,
  stageCommitVerify,
  VerificationError,
} from '../../src/sync/export/stage.js';
import { type Simulator, startSimulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { type CapturedLog, freshDeps } from '../support/harness.js';

/** A clock that moves only when the test moves it: boundaries to the millisecond. */
function frozenClock(start = Date.now()) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

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

const INVOICE = 'G0LEASE001';
const PART = 'onetime-billing';
const ids = { invoiceId: INVOICE, partId: PART };
const LEASE_MS = 20_000;

async function setup(): Promise<{ deps: SyncDeps; log: CapturedLog; clock: ReturnType<typeof frozenClock> }> {
  const clock = frozenClock();
  const { deps, log } = await freshDeps(sim, azurite, {
    settings: { LEASE_SECONDS: String(LEASE_MS / 1000) },
    overrides: { now: clock.now },
  });
  const at = new Date(clock.now()).toISOString();
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
    discoveredAt: at,
    updatedAt: at,
    correlationId: 'c',
    partsTotal: 2,
  });
  await deps.storage.ledger.upsertPartIfAbsent({
    invoiceId: INVOICE,
    partId: PART,
    provider: 'onetime',
    lineItemType: 'billing',
    api: 'v1',
    state: 'queued',
    blobPath: `billing_period=2025-01/invoice_id=${INVOICE}/lineitems/provider=onetime/line_item_type=billing/rows.ndjson`,
    rows: 0,
    bytes: 0,
    attempts: 0,
    updatedAt: at,
  });
  return { deps, log, clock };
}

async function claimOrThrow(deps: SyncDeps, owner: string, turn = 0): Promise<PartLease> {
  const claim = await PartLease.claim(deps, ids, owner, turn);
  if (claim.kind !== 'claimed') throw new Error(`not claimed: ${JSON.stringify(claim)}`);
  return claim.lease;
}
const stored = async (deps: SyncDeps) => (await deps.storage.ledger.getPart(INVOICE, PART))!;

describe('claiming a part', () => {
  test('a claim writes the owner, a lease of LEASE_SECONDS, a new epoch, the turn and one more attempt', async () => {
    const { deps, clock } = await setup();
    const start = clock.now();
    const lease = await claimOrThrow(deps, 'a', 2);
    const part = await stored(deps);
    expect(part).toMatchObject({ leaseOwner: 'a', epoch: 1, turn: 2, attempts: 1 });
    expect(Date.parse(part.leaseUntil ?? '')).toBeGreaterThanOrEqual(start + LEASE_MS);
    expect(Date.parse(part.leaseUntil ?? '')).toBeLessThan(start + LEASE_MS + 1000);
    expect(part.firstAttemptAt).toBe(part.updatedAt);
    expect(lease.epoch).toBe(1);
    expect(lease.owner).toBe('a');
    expect(lease.part).toMatchObject({ leaseOwner: 'a', epoch: 1 });

    // The same owner may claim again (a retry of its own delivery): a new epoch, the first attempt's time kept.
    clock.advance(1000);
    const again = await claimOrThrow(deps, 'a', 2);
    const after = await stored(deps);
    expect(again.epoch).toBe(2);
    expect(after).toMatchObject({ epoch: 2, attempts: 2, firstAttemptAt: part.firstAttemptAt });
    expect(after.updatedAt).not.toBe(part.updatedAt);
  });

  test('another owner is held off exactly until the lease ends; a message behind the turn is stale', async () => {
    const { deps, clock } = await setup();
    await claimOrThrow(deps, 'a', 3);
    const until = (await stored(deps)).leaseUntil!;
    clock.advance(Date.parse(until) - clock.now() - 1);
    expect(await PartLease.claim(deps, ids, 'b', 3)).toEqual({ kind: 'held', leaseUntil: until, owner: 'a' });
    expect(await PartLease.claim(deps, ids, 'b', 2)).toEqual({ kind: 'stale', turn: 3 });
    clock.advance(1);
    // The moment it ends, it is free.
    const taken = await claimOrThrow(deps, 'b', 4);
    expect(taken.epoch).toBe(2);
    expect((await stored(deps)).turn).toBe(4);
  });
});

describe('holding a lease', () => {
  test('assertHeld passes until 5 s before the lease ends, then fails for good', async () => {
    const { deps, clock } = await setup();
    const start = clock.now();
    const lease = await claimOrThrow(deps, 'a');
    const validUntil = Date.parse((await stored(deps)).leaseUntil!);
    // The lease's own clock: from when the claim started, not when its write returned.
    expect(validUntil - start).toBeGreaterThanOrEqual(LEASE_MS);
    clock.advance(validUntil - 5_000 - clock.now());
    expect(() => lease.assertHeld()).not.toThrow();
    clock.advance(1);
    expect(() => lease.assertHeld()).toThrow(LeaseLostError);
    expect(() => lease.assertHeld()).toThrow(/ran out/);
    clock.advance(-60_000);
    expect(() => lease.assertHeld()).toThrow(LeaseLostError);
    await expect(lease.update(() => ({}))).rejects.toThrow(/ran out/);
  });

  test('an update extends the lease from its own time; a release gives the part up', async () => {
    const { deps, clock } = await setup();
    const lease = await claimOrThrow(deps, 'a');
    clock.advance(10_000);
    const renewedAt = clock.now();
    await lease.update(() => ({ rows: 7 }));
    const part = await stored(deps);
    expect(part.rows).toBe(7);
    expect(Date.parse(part.leaseUntil!)).toBeGreaterThanOrEqual(renewedAt + LEASE_MS);
    expect(Date.parse(part.leaseUntil!)).toBeLessThan(renewedAt + LEASE_MS + 1000);
    expect(part.leaseOwner).toBe('a');
    // 14 s after the renewal: past the first lease's end, inside the renewed one.
    clock.advance(14_000);
    expect(() => lease.assertHeld()).not.toThrow();
    const released = await lease.release({ rows: 8 });
    expect(released.rows).toBe(8);
    expect([released.leaseOwner, released.leaseUntil]).toEqual([undefined, undefined]);
    const after = await stored(deps);
    expect([after.rows, after.leaseOwner, after.leaseUntil]).toEqual([8, undefined, undefined]);
    // Released is released: a later write is refused by the ledger's owner (nobody now).
    const late = (await lease.update(() => ({ rows: 9 })).catch((e: unknown) => e)) as LeaseLostError;
    expect(late).toBeInstanceOf(LeaseLostError);
    expect(late.name).toBe('LeaseLostError');
    expect(late.message).toMatch(/to nobody \(epoch 1\)/);
    expect((await stored(deps)).rows).toBe(8);
    expect(() => lease.assertHeld()).toThrow(LeaseLostError);
  });

  test('a write after another owner took the part fails, names that owner, and writes nothing', async () => {
    const { deps, clock } = await setup();
    const first = await claimOrThrow(deps, 'a');
    clock.advance(LEASE_MS + 1);
    await claimOrThrow(deps, 'b');
    const error = (await first.update(() => ({ rows: 99 })).catch((e: unknown) => e)) as LeaseLostError;
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(error.owner).toBe('b');
    expect(error.leaseUntil).toBe((await stored(deps)).leaseUntil);
    expect(error.message).toMatch(/lost the lease on part G0LEASE001\/onetime-billing to b \(epoch 2\)/);
    expect((await stored(deps)).rows).toBe(0);
    // Once lost, no more writes are tried.
    await expect(first.update(() => ({ rows: 98 }))).rejects.toBe(error);
  });

  test('the same owner with an older epoch is not the holder either', async () => {
    const { deps, clock } = await setup();
    const older = await claimOrThrow(deps, 'a');
    clock.advance(1000);
    await claimOrThrow(deps, 'a');
    await expect(older.update(() => ({ rows: 5 }))).rejects.toThrow(/to a \(epoch 2\)/);
    expect((await stored(deps)).rows).toBe(0);
  });
});

describe('renewing a lease', () => {
  /** The ledger's leaseUntil once it differs from `than` (the renewal's write is real I/O). */
  async function renewedUntil(deps: SyncDeps, than: string | undefined, tries = 100): Promise<string | undefined> {
    for (let i = 0; i < tries; i++) {
      const until = (await stored(deps)).leaseUntil;
      if (until !== than) return until;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return than;
  }

  test('a third of the lease apart, once however often started, and never after it is stopped', async () => {
    const { deps, log, clock } = await setup();
    const lease = await claimOrThrow(deps, 'a');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const first = (await stored(deps)).leaseUntil;
      lease.startRenewal();
      lease.startRenewal();
      // LEASE_SECONDS 20: every 6 667 ms.
      clock.advance(6_600);
      vi.advanceTimersByTime(6_600);
      expect(await renewedUntil(deps, first, 20)).toBe(first);
      clock.advance(100);
      vi.advanceTimersByTime(100);
      const second = await renewedUntil(deps, first);
      expect(Date.parse(second!)).toBe(clock.now() + LEASE_MS);
      // A second start added no second timer: one renewal per interval.
      expect(vi.getTimerCount()).toBe(1);
      lease.stopRenewal();
      expect(vi.getTimerCount()).toBe(0);
      clock.advance(20_000);
      vi.advanceTimersByTime(20_000);
      expect(await renewedUntil(deps, second, 20)).toBe(second);
      lease.stopRenewal();
      // Started again after a stop, it renews again.
      lease.startRenewal();
      expect(vi.getTimerCount()).toBe(1);
      lease.stopRenewal();
      expect(log.lines.filter((l) => l.level === 'warn')).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  test('a failed renewal is logged and retried; a lost lease is not a warning', async () => {
    const { deps, log, clock } = await setup();
    const lease = await claimOrThrow(deps, 'a');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      lease.startRenewal();
      // The ledger refuses the write (the entity is gone): not a lost lease, a blip to retry.
      await deps.storage.ledger.table.deleteTable();
      clock.advance(7_000);
      vi.advanceTimersByTime(7_000);
      for (let i = 0; i < 200 && !log.lines.some((l) => l.level === 'warn'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const warning = log.lines.find((l) => l.level === 'warn');
      expect(warning?.message).toBe('Lease renewal failed; will try again');
      expect(warning?.properties).toMatchObject({ invoiceId: INVOICE, partId: PART, error: expect.any(String) });
      expect(String(warning?.properties?.error)).not.toBe('');
      expect(vi.getTimerCount()).toBe(1);
      lease.stopRenewal();
    } finally {
      vi.useRealTimers();
    }
  });

  test('a renewal that finds the part taken marks the lease lost, without a warning', async () => {
    const { deps, log, clock } = await setup();
    const lease = await claimOrThrow(deps, 'a');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      lease.startRenewal();
      clock.advance(LEASE_MS + 1);
      await claimOrThrow(deps, 'b');
      vi.advanceTimersByTime(7_000);
      // release() waits for the renewal in flight, then fails as the renewal did.
      await expect(lease.release({ rows: 1 })).rejects.toThrow(/to b \(epoch 2\)/);
      expect(() => lease.assertHeld()).toThrow(/to b/);
      expect(log.lines.filter((l) => l.level === 'warn')).toEqual([]);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('exportPart decides before it works', () => {
  const invocation = (id: string, startedAt = Date.now()) => ({ invocationId: id, dequeueCount: 1, startedAt });

  test('a part not in the ledger is a permanent error', async () => {
    const { deps } = await setup();
    const error = await exportPart(deps, { invoiceId: INVOICE, partId: 'nope', turn: 0 }, invocation('i')).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PartNotRecordedError);
    expect(error).toMatchObject({
      name: 'PartNotRecordedError',
      retriable: false,
      message: expect.stringContaining(`${INVOICE}/nope`),
    });
  });

  test('a finished part is already done, a re-check of a v1 part too; no lease is taken', async () => {
    const { deps } = await setup();
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({ state: 'complete' }));
    expect(await exportPart(deps, { ...ids, turn: 0 }, invocation('i'))).toBe('already-done');
    expect(await exportPart(deps, { ...ids, turn: 0, recheck: true }, invocation('i'))).toBe('already-done');
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({ state: 'unsupported' }));
    expect(await exportPart(deps, { ...ids, turn: 0, recheck: true }, invocation('i'))).toBe('already-done');
    expect((await stored(deps)).leaseOwner).toBeUndefined();
    expect((await stored(deps)).attempts).toBe(0);
  });

  test('a part another invocation holds: the message comes back just after that lease ends', async () => {
    const { deps, log, clock } = await setup();
    await claimOrThrow(deps, 'other');
    clock.advance(4_500);
    expect(await exportPart(deps, { ...ids, turn: 0 }, invocation('mine'))).toBe('deferred');
    const deferred = log.lines.find((l) => l.message.includes('message deferred'));
    // 15.5 s left of the other lease: 16 s, plus one.
    expect(deferred?.properties).toMatchObject({ invoiceId: INVOICE, partId: PART, waitSeconds: 17 });
    const queue = await deps.storage.queues.lineItemExport.getProperties();
    expect(queue.approximateMessagesCount).toBe(1);
    // Not visible yet: it waits for the lease.
    expect((await deps.storage.queues.lineItemExport.peekMessages()).peekedMessageItems).toHaveLength(0);
    expect((await stored(deps)).leaseOwner).toBe('other');
  });

  test('a lease that ends in the past still defers by at least a second', async () => {
    const { deps, log } = await setup();
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({
      leaseOwner: 'other',
      leaseUntil: new Date(Date.now() + 200).toISOString(),
    }));
    expect(await exportPart(deps, { ...ids, turn: 0 }, invocation('mine'))).toBe('deferred');
    const waitSeconds = log.lines.find((l) => l.message.includes('message deferred'))?.properties?.waitSeconds;
    expect(waitSeconds).toBeGreaterThanOrEqual(1);
    expect(waitSeconds).toBeLessThanOrEqual(2);
  });

  test('a message behind the part is dropped: nothing sent, nothing claimed', async () => {
    const { deps, log } = await setup();
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({ turn: 5 }));
    expect(await exportPart(deps, { ...ids, turn: 4 }, invocation('i'))).toBe('stale');
    expect(log.lines).toContainEqual({
      level: 'info',
      message: 'Message is behind the part (a duplicate); dropped',
      properties: { invoiceId: INVOICE, partId: PART, correlationId: 'i', turn: 4, partTurn: 5 },
    });
    expect((await deps.storage.queues.lineItemExport.getProperties()).approximateMessagesCount).toBe(0);
    expect((await stored(deps)).leaseOwner).toBeUndefined();
  });
});

describe('recordExportFailure marks only what the message owns', () => {
  test('an unfinished part becomes failed, its lease and due time cleared', async () => {
    const { deps, clock } = await setup();
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({
      state: 'exporting',
      leaseOwner: 'gone',
      // A lease that ends at this very millisecond is over.
      leaseUntil: new Date(clock.now()).toISOString(),
      dueAt: new Date(clock.now() + 60_000).toISOString(),
    }));
    expect(await recordExportFailure(deps, { ...ids, turn: 0 }, 'HTTP 400 bad request')).toBe('failed');
    const part = await stored(deps);
    expect(part).toMatchObject({ state: 'failed', lastError: 'HTTP 400 bad request' });
    expect(part.leaseOwner).toBeUndefined();
    expect(part.leaseUntil).toBeUndefined();
    expect(part.dueAt).toBeUndefined();
    expect(part.updatedAt).toBe(new Date(part.updatedAt!).toISOString());
  });

  test('nothing while another invocation holds the part, or for a message of another turn', async () => {
    const { deps, clock } = await setup();
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({
      leaseOwner: 'other',
      leaseUntil: new Date(clock.now() + 10_000).toISOString(),
    }));
    expect(await recordExportFailure(deps, { ...ids, turn: 0 }, 'x')).toBe('untouched');
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({ leaseOwner: undefined, leaseUntil: undefined }));
    expect(await recordExportFailure(deps, { ...ids, turn: 1 }, 'x')).toBe('untouched');
    expect((await stored(deps)).state).toBe('queued');
    expect((await stored(deps)).lastError).toBeUndefined();
  });

  test('a complete part stays complete and is checked again a day later; other finished parts are left', async () => {
    const { deps, clock } = await setup();
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({ state: 'complete', operationLocation: 'https://x' }));
    expect(await recordExportFailure(deps, { ...ids, turn: 0 }, 'Graph 503')).toBe('recheck-later');
    const part = await stored(deps);
    expect(part).toMatchObject({ state: 'complete', lastError: 'Graph 503' });
    expect(part.operationLocation).toBeUndefined();
    expect(Date.parse(part.nextCheckAt!) - clock.now()).toBeGreaterThan(24 * 3_600_000 - 5_000);
    expect(Date.parse(part.nextCheckAt!) - clock.now()).toBeLessThanOrEqual(24 * 3_600_000);
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({ state: 'unsupported', lastError: undefined }));
    expect(await recordExportFailure(deps, { ...ids, turn: 0 }, 'x')).toBe('untouched');
    expect((await stored(deps)).lastError).toBeUndefined();
  });
});

/** A source serving the given pages; `lines` may differ from `rows` to model a lying page. */
function source(
  pages: { lines: string[]; rows?: number; rowsThrough: number }[],
  api: 'v1' | 'v2' = 'v1',
  endEarly = false,
): PartSource & { requested: number } {
  const s = {
    api,
    requested: 0,
    pages(): AsyncIterator<Page<PartCheckpoint>> {
      return (async function* () {
        for (const [i, page] of pages.entries()) {
          s.requested++;
          const last = i === pages.length - 1 && !endEarly;
          yield {
            ndjson: Buffer.from(page.lines.map((r) => `${r}\n`).join('')),
            rows: page.rows ?? page.lines.length,
            rowsThrough: page.rowsThrough,
            next: last ? null : { kind: 'offset', pageIndex: i + 1, offset: page.rowsThrough },
          };
        }
      })();
    },
  };
  return s;
}

async function context(deps: SyncDeps, deadline = Date.now() + 600_000): Promise<ExportContext> {
  return {
    deps,
    lease: await claimOrThrow(deps, 'worker', 0),
    message: { ...ids, turn: 0 },
    deadline,
    correlationId: 'c',
  };
}
const row = (amount: number) => `{"totalForCustomer":${amount}}`;

type ContainerClient = SyncDeps['storage']['container'];
type StageBlock = ReturnType<ContainerClient['getBlockBlobClient']>['stageBlock'];

/**
 * `container`, with every stageBlock of its blobs passed through `around`: `call` counts the calls from 0 across the
 * container, `stage` writes the block for real.
 */
function aroundStageBlock(
  container: ContainerClient,
  around: (call: number, stage: () => ReturnType<StageBlock>) => ReturnType<StageBlock>,
): ContainerClient {
  let calls = 0;
  const spied = Object.create(container) as ContainerClient;
  spied.getBlockBlobClient = (path: string) => {
    const blob = container.getBlockBlobClient(path);
    const stageBlock = blob.stageBlock.bind(blob);
    blob.stageBlock = (...args: Parameters<StageBlock>) => around(calls++, () => stageBlock(...args));
    return blob;
  };
  return spied;
}

/** Four pages whose third has two lines for one row: staging its block (block 2) fails. */
const failsAtBlock2 = () =>
  source([
    { lines: [row(1)], rowsThrough: 1 },
    { lines: [row(2)], rowsThrough: 2 },
    { lines: [row(3), row(3)], rows: 1, rowsThrough: 4 },
    { lines: [row(4)], rowsThrough: 5 },
  ]);

/** Stages one block of 3 rows as the part's only page, and records progress claiming `rowsThrough` and `rows`. */
async function stageThreeRowsClaiming(ctx: ExportContext, claimed: { rowsThrough: number; rows: number }) {
  const lines = Buffer.from(`${row(1)}\n${row(1)}\n${row(1)}\n`);
  await new NdjsonBlockWriter(ctx.deps.storage.container.getBlockBlobClient(ctx.lease.part.blobPath)).stage(
    blockId(ctx.lease.epoch, 0),
    lines,
    3,
  );
  await ctx.lease.update(() => ({
    progress: encodeProgress({
      at: { kind: 'staged', rowsThrough: claimed.rowsThrough },
      blocks: 1,
      rows: claimed.rows,
      bytes: lines.length,
      epochs: [[0, ctx.lease.epoch]],
    }),
  }));
}

describe('the stage loop', () => {
  test('at its deadline it stages the page in hand, saves the progress and hands over to the next turn', async () => {
    const { deps, log, clock } = await setup();
    // The deadline is this very millisecond (the frozen clock does not move): the budget is used.
    const ctx = await context(deps, clock.now());
    const pages = source([
      { lines: [row(1), row(1)], rowsThrough: 2 },
      { lines: [row(1)], rowsThrough: 3 },
    ]);
    expect(await stageCommitVerify(ctx, pages)).toBe('continued');
    // The second page was never asked for.
    expect(pages.requested).toBe(1);
    const part = await stored(deps);
    expect(progressOf(part)).toMatchObject({ blocks: 1, rows: 2, at: { kind: 'offset', pageIndex: 1, offset: 2 } });
    expect(part).toMatchObject({ state: 'exporting', turn: 1 });
    expect(part.leaseOwner).toBeUndefined();
    expect(Date.parse(part.dueAt!)).toBeLessThanOrEqual(clock.now());
    expect(part.progressAt).toBeDefined();
    const [message] = (await deps.storage.queues.lineItemExport.receiveMessages()).receivedMessageItems;
    expect(JSON.parse(Buffer.from(message!.messageText, 'base64').toString())).toMatchObject({ ...ids, turn: 1 });
    expect(log.lines).toContainEqual({
      level: 'info',
      message: 'Time budget used; export continues in a new message',
      properties: { invoiceId: INVOICE, partId: PART, correlationId: 'c', rows: 2, blocks: 1 },
    });
  });

  test('the last page is never a reason to hand over, even past the deadline', async () => {
    const { deps, clock } = await setup();
    const ctx = await context(deps, clock.now() - 1);
    expect(await stageCommitVerify(ctx, source([{ lines: [row(3)], rowsThrough: 1 }]))).toBe('complete');
  });

  test('a page with no rows stages no block; pages that end without a last page fail the export', async () => {
    const { deps } = await setup();
    const ctx = await context(deps);
    const error = await stageCommitVerify(
      ctx,
      source(
        [
          { lines: [], rowsThrough: 0 },
          { lines: [row(1)], rowsThrough: 1 },
        ],
        'v1',
        true,
      ),
    ).catch((e: unknown) => e);
    ctx.lease.stopRenewal();
    expect(String(error)).toMatch(/The v1 pages of .*rows\.ndjson ended without a last page/);
    expect(progressOf(await stored(deps))).toMatchObject({ blocks: 1, rows: 1 });
  });

  test('the next block is staged while one is still being written; progress moves only past durable blocks', async () => {
    const { deps } = await setup();
    const container = deps.storage.container;
    // Every stageBlock of the part's blob passes through here: block 0 is held until block 1 has been written.
    const calls: { started: number; finished?: number }[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    let block1Written: () => void = () => {};
    const block1 = new Promise<void>((resolve) => {
      block1Written = resolve;
    });
    let progressWhileBlock0Held: number | undefined;
    const spied = aroundStageBlock(container, async (call, stage) => {
      calls.push({ started: performance.now() });
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        if (call === 0) {
          // A loop that waits for block 0 before it stages block 1 never gets past this wait.
          await Promise.race([block1, new Promise((resolve) => setTimeout(resolve, 3000))]);
          progressWhileBlock0Held = progressOf(await stored(deps)).blocks;
        }
        return await stage();
      } finally {
        inFlight--;
        (calls[call] as { finished?: number }).finished = performance.now();
        if (call === 1) block1Written();
      }
    });
    const ctx = await context({ ...deps, storage: { ...deps.storage, container: spied } });
    const pages = [1, 2, 3, 4].map((n) => ({ lines: [row(n)], rowsThrough: n }));
    expect(await stageCommitVerify(ctx, source(pages))).toBe('complete');
    const [first, second] = calls;
    // Block 1 was written while block 0 was held, and no page's progress was saved before block 0 was durable.
    expect(second?.finished).toBeLessThan(first?.finished ?? 0);
    expect(progressWhileBlock0Held).toBe(0);
    expect(maxInFlight).toBe(BLOCKS_IN_FLIGHT);
    expect(calls).toHaveLength(4);
    const part = await stored(deps);
    expect(part).toMatchObject({ state: 'complete', rows: 4 });
    const text = (await container.getBlockBlobClient(part.blobPath).downloadToBuffer()).toString();
    expect(text).toBe(pages.map((p) => `${p.lines[0]}\n`).join(''));
  });

  test('a block that fails while the next is staged: progress is saved through the block before it, no further', async () => {
    const { deps } = await setup();
    const ctx = await context(deps);
    const failure = await stageCommitVerify(ctx, failsAtBlock2()).catch((e: unknown) => e);
    ctx.lease.stopRenewal();
    expect(String(failure)).toMatch(/stage block 2 of/);
    expect(progressOf(await stored(deps))).toMatchObject({ blocks: 2, rows: 2 });
  });

  test('a block that fails while the next is staged: the export ends only once that next block has settled', async () => {
    const { deps } = await setup();
    const container = deps.storage.container;
    // The last page's block (block 3) is held for a while: it is still being written when block 2 fails.
    let block3Settled: number | undefined;
    const spied = aroundStageBlock(container, async (call, stage) => {
      try {
        if (call === 2) await new Promise((resolve) => setTimeout(resolve, 300));
        return await stage();
      } finally {
        if (call === 2) block3Settled = performance.now();
      }
    });
    const ctx = await context({ ...deps, storage: { ...deps.storage, container: spied } });
    const failure = await stageCommitVerify(ctx, failsAtBlock2()).catch((e: unknown) => e);
    const ended = performance.now();
    ctx.lease.stopRenewal();
    expect(String(failure)).toMatch(/stage block 2 of/);
    // No request of this invocation outlives it: block 3's write had settled before the export returned.
    expect(block3Settled).toBeDefined();
    expect(block3Settled).toBeLessThanOrEqual(ended);
  });

  test('a page that miscounts its rows is refused when staged', async () => {
    const { deps } = await setup();
    const ctx = await context(deps);
    const failure = await stageCommitVerify(
      ctx,
      source([{ lines: [row(1), row(1), row(1)], rows: 2, rowsThrough: 3 }]),
    ).catch((e: unknown) => e);
    ctx.lease.stopRenewal();
    expect(String(failure)).toMatch(/stage block 0 of/);
    expect((await stored(deps)).state).not.toBe('complete');
  });

  test('the staged count must be the lines the blob holds, even when the source count agrees with the blob', async () => {
    const { deps } = await setup();
    const ctx = await context(deps);
    // The ledger says every page is staged: one block, 2 rows, and the source served 3 in all.
    await stageThreeRowsClaiming(ctx, { rowsThrough: 3, rows: 2 });
    const failure = await stageCommitVerify(ctx, source([])).catch((e: unknown) => e);
    ctx.lease.stopRenewal();
    expect(failure).toBeInstanceOf(VerificationError);
    expect(String(failure)).toMatch(/committed blob has 3 rows, the v1 source served 3 and 2 were staged/);
    expect(progressOf(await stored(deps))).toEqual(START);
  });

  test('a finished v1 part: complete with what storage holds, no next check; the event has its figures', async () => {
    const { deps, log } = await setup();
    const ctx = await context(deps);
    const pages = source([
      { lines: [row(1), row(1)], rowsThrough: 2 },
      { lines: [], rowsThrough: 2 },
      { lines: [row(1)], rowsThrough: 3 },
    ]);
    expect(await stageCommitVerify(ctx, pages)).toBe('complete');
    const part = await stored(deps);
    expect(part).toMatchObject({ state: 'complete', rows: 3, bytes: 3 * (row(1).length + 1), lineTotal: '3' });
    expect(part.source).toBe('v1');
    expect(part.leaseOwner).toBeUndefined();
    expect(part.nextCheckAt).toBeUndefined();
    expect(part.lastError).toBeUndefined();
    expect(progressOf(part)).toMatchObject({ blocks: 2, rows: 3 });
    const [event] = log.events('PartExported');
    expect(event).toMatchObject({
      invoiceId: INVOICE,
      partId: PART,
      billingPeriod: '2025-01',
      provider: 'onetime',
      lineItemType: 'billing',
      api: 'v1',
      rows: 3,
      bytes: part.bytes,
      attempts: 1,
      correlationId: 'c',
    });
    // The frozen clock did not move during the export.
    expect(event?.durationMs).toBe(0);
    const blob = deps.storage.container.getBlockBlobClient(part.blobPath);
    expect((await blob.getProperties()).contentType).toBe('application/x-ndjson');
    // One progress event per page, after its save: what the CLI shows inside a long export.
    const line = row(1).length + 1;
    const progress = { invoiceId: INVOICE, partId: PART, correlationId: 'c', api: 'v1' };
    expect(log.events('PartProgress')).toEqual([
      { ...progress, rows: 2, blocks: 1, bytes: 2 * line },
      { ...progress, rows: 2, blocks: 1, bytes: 2 * line },
      { ...progress, rows: 3, blocks: 2, bytes: 3 * line },
    ]);
  });

  test('a finished v2 part is checked again a day later', async () => {
    const { deps, clock } = await setup();
    await deps.storage.ledger.updatePart(INVOICE, PART, () => ({ lastError: 'earlier', operationLocation: 'x' }));
    const ctx = await context(deps);
    expect(await stageCommitVerify(ctx, source([{ lines: [row(2)], rowsThrough: 1 }], 'v2'))).toBe('complete');
    const part = await stored(deps);
    expect(part).toMatchObject({ state: 'complete', source: 'v2' });
    expect(part.lastError).toBeUndefined();
    expect(part.operationLocation).toBeUndefined();
    // A day, written out here: the constant itself could be wrong.
    expect(Date.parse(part.nextCheckAt!) - clock.now()).toBe(24 * 3_600_000);
  });

  test('a lease lost before the commit commits nothing', async () => {
    const { deps, clock } = await setup();
    const ctx = await context(deps);
    const pages: PartSource = {
      api: 'v1',
      pages: () =>
        (async function* () {
          yield { ndjson: Buffer.from(`${row(1)}\n`), rows: 1, rowsThrough: 1, next: null };
          clock.advance(LEASE_MS);
        })(),
    };
    const slow: PartSource = {
      api: 'v1',
      pages: (at) => {
        const inner = pages.pages(at);
        return {
          next: async () => {
            const step = await inner.next();
            // The page arrives after the lease's safety margin has gone.
            clock.advance(LEASE_MS);
            return step;
          },
          return: async () => inner.return?.() ?? { done: true, value: undefined },
        };
      },
    };
    await expect(stageCommitVerify(ctx, slow)).rejects.toThrow(LeaseLostError);
    ctx.lease.stopRenewal();
    expect(await deps.storage.container.getBlockBlobClient((await stored(deps)).blobPath).exists()).toBe(false);
  });

  test('a page that cannot be read fails the export, naming the page and the part', async () => {
    const { deps } = await setup();
    const ctx = await context(deps);
    const failing: PartSource = {
      api: 'v1',
      pages: () =>
        (async function* () {
          yield {
            ndjson: Buffer.from(`${row(1)}\n`),
            rows: 1,
            rowsThrough: 1,
            next: { kind: 'offset', pageIndex: 1, offset: 1 },
          };
          throw new Error('page refused');
        })(),
    };
    const error = await stageCommitVerify(ctx, failing).catch((e: unknown) => e);
    ctx.lease.stopRenewal();
    expect(String(error)).toMatch(/read page 2 of the v1 line items of G0LEASE001\/onetime-billing: .*page refused/);
    expect(progressOf(await stored(deps))).toMatchObject({ blocks: 1, rows: 1 });
  });

  test('a progress save that fails stops the export with that error, even on the last page', async () => {
    const { deps } = await setup();
    // The ledger refuses the first write that saves a progress (the claim and the others pass).
    let refuse = true;
    const ledger = new Proxy(deps.storage.ledger, {
      get(target, prop) {
        if (prop === 'updatePart') {
          return (invoiceId: string, partId: string, patch: Parameters<typeof target.updatePart>[2]) =>
            target.updatePart(invoiceId, partId, (current) => {
              const result = patch(current);
              if (refuse && result && 'progress' in result) {
                refuse = false;
                throw new Error('progress write refused');
              }
              return result;
            });
        }
        const value = Reflect.get(target, prop);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const refusing: SyncDeps = { ...deps, storage: { ...deps.storage, ledger } };
    const ctx = await context(refusing);
    await expect(stageCommitVerify(ctx, source([{ lines: [row(1)], rowsThrough: 1 }]))).rejects.toThrow(
      'progress write refused',
    );
    ctx.lease.stopRenewal();
    expect((await stored(deps)).state).not.toBe('complete');
    expect(refuse).toBe(false);
  });

  test('a blob whose lines match the staged rows but not what the source served fails verification', async () => {
    const { deps } = await setup();
    const ctx = await context(deps);
    // Staged: one block of 3 rows, but the source said 4 rows through its last page.
    await stageThreeRowsClaiming(ctx, { rowsThrough: 4, rows: 3 });
    const failure = await stageCommitVerify(ctx, source([])).catch((e: unknown) => e);
    ctx.lease.stopRenewal();
    expect(failure).toBeInstanceOf(VerificationError);
    expect(failure).toMatchObject({ name: 'VerificationError' });
    expect(String(failure)).toMatch(/committed blob has 3 rows, the v1 source served 4 and 3 were staged/);
    expect(progressOf(await stored(deps))).toEqual(START);
  });

  test('a commit or a read-back that fails names what it was doing', async () => {
    const { deps } = await setup();
    // The ledger says two blocks are staged; storage holds only the first: the block list cannot commit.
    const ctx = await context(deps);
    const path = ctx.lease.part.blobPath;
    const one = Buffer.from(`${row(1)}\n`);
    await new NdjsonBlockWriter(deps.storage.container.getBlockBlobClient(path)).stage(
      blockId(ctx.lease.epoch, 0),
      one,
      1,
    );
    const staged = (blocks: number) =>
      encodeProgress({
        at: { kind: 'staged', rowsThrough: blocks },
        blocks,
        rows: blocks,
        bytes: blocks * one.length,
        epochs: [[0, ctx.lease.epoch]],
      });
    await ctx.lease.update(() => ({ progress: staged(2) }));
    const commit = await stageCommitVerify(ctx, source([])).catch((e: unknown) => e);
    // The operation first, then the writer's own words (which name the blob too).
    expect((commit as Error).message.startsWith(`commit ${path}: BlobWriteError Cannot commit ${path}: `)).toBe(true);

    // One block staged and committed, but the read-back's download is refused.
    await ctx.lease.update(() => ({ progress: staged(1) }));
    const container = deps.storage.container;
    const refusingRead = new Proxy(container, {
      get(target, prop) {
        if (prop === 'getBlockBlobClient') {
          return (name: string) =>
            new Proxy(target.getBlockBlobClient(name), {
              get(blob, key) {
                if (key === 'download') return async () => Promise.reject(new Error('download refused'));
                const value = Reflect.get(blob, key);
                return typeof value === 'function' ? value.bind(blob) : value;
              },
            });
        }
        const value = Reflect.get(target, prop);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const reading = { ...ctx, deps: { ...deps, storage: { ...deps.storage, container: refusingRead } } };
    const verify = await stageCommitVerify(reading, source([])).catch((e: unknown) => e);
    ctx.lease.stopRenewal();
    expect((verify as Error).message).toBe(`verify ${path}: download refused`);
  });
});
