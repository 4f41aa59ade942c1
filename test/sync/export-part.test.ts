// exportPart after the claim, against the simulator (real HTTP on loopback) and a real ledger, container and queue
// (Azurite): which source a part is read from (v1 line items, a v2 export, the daily v2 re-check), the time budget
// it works within, a lease lost mid-export (the message comes back, the part is not failed), and a failure (the
// part is released with its error). The parts are recorded by syncInvoice, as in production.
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { SyncDeps } from '../../src/sync/deps.js';
import { exportPart } from '../../src/sync/export/claim.js';
import type { LineItemExportMessage } from '../../src/sync/messages.js';
import { syncInvoice } from '../../src/sync/sync-invoice.js';
import { apiFault, type InvoiceSpec, type Simulator, startSimulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { type CapturedLog, freshDeps, pagesClock } from '../support/harness.js';

/** A legacy invoice: its office part is read through v1, 5 rows in pages of 2. */
const V1: InvoiceSpec = {
  id: 'D0CLAIM001',
  kind: 'legacy',
  billingPeriod: '2025-01',
  parts: [{ provider: 'office', lineItemType: 'billing_line_items', rows: 5 }],
};
/** A new-commerce invoice after the v2 cut-over: its one-time billing part is a Graph export. */
const V2: InvoiceSpec = {
  id: 'G0CLAIM002',
  kind: 'modern',
  billingPeriod: '2026-09',
  parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 3 }],
};

let azurite: Azurite;
let sim: Simulator;
beforeAll(async () => {
  azurite = await startAzurite();
  sim = await startSimulator({
    dataset: { invoices: [V1, V2] },
    v2: { pollsBeforeDone: 0, retryAfterSeconds: 0 },
  });
});
afterAll(async () => {
  await sim?.stop();
  await azurite?.stop();
});

const invocation = (id: string, startedAt = Date.now()) => ({ invocationId: id, dequeueCount: 1, startedAt });

/** Fresh deps with the invoice synced: its part recorded and queued, and the message syncInvoice sent for it. */
async function synced(
  spec: InvoiceSpec,
  o: Parameters<typeof freshDeps>[2] = {},
): Promise<{ deps: SyncDeps; log: CapturedLog; message: LineItemExportMessage }> {
  const { deps, log } = await freshDeps(sim, azurite, {
    ...o,
    settings: { LINE_ITEM_PAGE_SIZE: '2', HTTP_MAX_RETRIES: '0', ...o.settings },
  });
  await syncInvoice(deps, { invoiceId: spec.id, reason: 'new' }, invocation('sync'));
  const [part, ...others] = await deps.storage.ledger.listParts(spec.id);
  if (!part || others.length > 0) throw new Error(`expected one part of ${spec.id}`);
  await deps.storage.queues.lineItemExport.clearMessages();
  log.lines.length = 0;
  return { deps, log, message: { invoiceId: spec.id, partId: part.partId, turn: part.turn } };
}

const stored = async (deps: SyncDeps, m: LineItemExportMessage) =>
  (await deps.storage.ledger.getPart(m.invoiceId, m.partId))!;
const queued = async (deps: SyncDeps) =>
  (await deps.storage.queues.lineItemExport.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map((m) =>
    JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')),
  );
/** What waits on invoice-sync (the finalize requests an export sends when it finishes a part). */
const syncQueued = async (deps: SyncDeps) =>
  (await deps.storage.queues.invoiceSync.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map((m) =>
    JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')),
  );
const lineItemPages = () => sim.requests.filter((r) => r.path.toLowerCase().includes('/lineitems')).length;

describe('exportPart reads the part from its own source', () => {
  test('a v1 part: every page in one invocation within its time budget, complete, its lease released', async () => {
    const { deps, message } = await synced(V1);
    expect(await stored(deps, message)).toMatchObject({ api: 'v1', state: 'queued' });
    const before = lineItemPages();
    expect(await exportPart(deps, message, invocation('mine'))).toBe('complete');
    // Three pages of 2, 2 and 1 rows: no hand-over (the budget, 1200 s from the invocation's start, is far off).
    expect(lineItemPages() - before).toBe(3);
    const part = await stored(deps, message);
    expect(part).toMatchObject({ state: 'complete', rows: 5, source: 'v1', turn: message.turn });
    expect(part.leaseOwner).toBeUndefined();
    expect(await queued(deps)).toEqual([]);
  });

  test('an invocation that started a budget ago hands the part over after one page; one just started does not', async () => {
    const { deps, message } = await synced(V1, { settings: { EXPORT_TIME_BUDGET_SECONDS: '60' } });
    // Started 60 s ago: its deadline is now, so the first page staged is the last of this invocation.
    expect(await exportPart(deps, message, invocation('late', Date.now() - 60_000))).toBe('continued');
    const part = await stored(deps, message);
    expect(part).toMatchObject({ state: 'exporting', turn: message.turn + 1 });
    expect(part.leaseOwner).toBeUndefined();
    expect(await queued(deps)).toEqual([{ ...message, turn: message.turn + 1 }]);
    // The continuation, started now with 60 s ahead of it, finishes the part.
    expect(await exportPart(deps, { ...message, turn: message.turn + 1 }, invocation('next'))).toBe('complete');
    expect(await stored(deps, message)).toMatchObject({ state: 'complete', rows: 5 });
  });

  test('a v2 part starts its Graph export and waits for it; the next message finishes it', async () => {
    const { deps, message } = await synced(V2);
    expect(await stored(deps, message)).toMatchObject({ api: 'v2', state: 'queued' });
    expect(await exportPart(deps, message, invocation('mine'))).toBe('waiting');
    const waiting = await stored(deps, message);
    expect(waiting).toMatchObject({ state: 'waiting', turn: message.turn + 1 });
    expect(waiting.operationLocation).toBeTruthy();
    expect(await exportPart(deps, { ...message, turn: message.turn + 1 }, invocation('poll'))).toBe('complete');
    expect(await stored(deps, message)).toMatchObject({ state: 'complete', rows: 3, source: 'v2' });
  });
});

describe('the daily re-check of a complete v2 part', () => {
  async function completeV2() {
    const fresh = await synced(V2);
    const { deps, message } = fresh;
    await exportPart(deps, message, invocation('start'));
    await exportPart(deps, { ...message, turn: message.turn + 1 }, invocation('poll'));
    const part = await stored(deps, message);
    expect(part).toMatchObject({ state: 'complete', turn: message.turn + 1 });
    // The export that finished the last part asked for the invoice's finalize, on invoice-sync: run it.
    const requests = await syncQueued(deps);
    expect(requests).toEqual([{ invoiceId: V2.id, reason: 'finalize', correlationId: 'poll' }]);
    expect(await syncInvoice(deps, requests[0], invocation('finalize'))).toBe('finalized');
    expect(await deps.storage.ledger.getInvoice(V2.id)).toMatchObject({ state: 'complete' });
    await deps.storage.queues.invoiceSync.clearMessages();
    await deps.storage.queues.lineItemExport.clearMessages();
    fresh.log.lines.length = 0;
    return { ...fresh, message: { ...message, turn: part.turn }, part };
  }

  test('a finished part whose finalize request was lost: its redelivered message asks again, once', async () => {
    const fresh = await synced(V2);
    const { deps, log, message } = fresh;
    await exportPart(deps, message, invocation('start'));
    expect(await exportPart(deps, { ...message, turn: message.turn + 1 }, invocation('poll'))).toBe('complete');
    // The process stopped after the part committed, before its request was sent.
    await deps.storage.queues.invoiceSync.clearMessages();
    expect(await deps.storage.ledger.getInvoice(V2.id)).toMatchObject({ state: 'exporting' });
    expect(await exportPart(deps, { ...message, turn: message.turn + 1 }, invocation('again'))).toBe('already-done');
    expect(log.lines).toContainEqual({
      level: 'info',
      message: 'Part already finished; its invoice was left open, finalize requested',
      properties: { invoiceId: V2.id, partId: message.partId, correlationId: 'again' },
    });
    const [request, ...more] = await syncQueued(deps);
    expect(more).toEqual([]);
    expect(await syncInvoice(deps, request, invocation('finalize'))).toBe('finalized');
    expect(await deps.storage.ledger.getInvoice(V2.id)).toMatchObject({ state: 'complete' });
    await deps.storage.queues.invoiceSync.clearMessages();
    // Finalized: a further redelivery has nothing to ask for.
    expect(await exportPart(deps, { ...message, turn: message.turn + 1 }, invocation('late'))).toBe('already-done');
    expect(await syncQueued(deps)).toEqual([]);
  });

  test('a re-check starts a new export while the part stays complete with its file', async () => {
    const { deps, message, part } = await completeV2();
    expect(await exportPart(deps, { ...message, recheck: true }, invocation('check'))).toBe('waiting');
    const after = await stored(deps, message);
    expect(after).toMatchObject({ state: 'complete', turn: message.turn + 1, sha256: part.sha256, rows: 3 });
    expect(after.operationLocation).toBeTruthy();
    expect(after.leaseOwner).toBeUndefined();
    expect(await queued(deps)).toEqual([{ ...message, turn: message.turn + 1, recheck: true }]);
  });

  test('without the re-check flag a complete v2 part is done; a failed v2 part is not re-checked', async () => {
    const { deps, log, message } = await completeV2();
    expect(await exportPart(deps, message, invocation('plain'))).toBe('already-done');
    expect(log.lines).toContainEqual({
      level: 'info',
      message: 'Part already finished; nothing to do',
      properties: { invoiceId: V2.id, partId: message.partId, correlationId: 'plain', state: 'complete' },
    });
    await deps.storage.ledger.updatePart(V2.id, message.partId, () => ({ state: 'failed' }));
    expect(await exportPart(deps, { ...message, recheck: true }, invocation('check'))).toBe('already-done');
    const part = await stored(deps, message);
    expect(part).toMatchObject({ state: 'failed', turn: message.turn });
    expect(part.leaseOwner).toBeUndefined();
    expect(part.operationLocation).toBeUndefined();
    expect(await queued(deps)).toEqual([]);
  });
});

describe('a finalize request (invoice-sync, reason finalize)', () => {
  test('while a part is unfinished: nothing is written and the invoice stays as it is; after it, it rests', async () => {
    const { deps, message } = await synced(V1);
    const finalize = () => syncInvoice(deps, { invoiceId: V1.id, reason: 'finalize' }, invocation('finalize'));
    const before = await deps.storage.ledger.getInvoice(V1.id);
    expect(await finalize()).toBe('not-ready');
    expect(await deps.storage.ledger.getInvoice(V1.id)).toMatchObject({ state: before?.state, etag: before?.etag });
    const manifest = deps.storage.container.getBlockBlobClient(
      `billing_period=${V1.billingPeriod}/invoice_id=${V1.id}/manifest.json`,
    );
    expect(await manifest.exists()).toBe(false);
    expect(await exportPart(deps, message, invocation('export'))).toBe('complete');
    expect(await syncQueued(deps)).toEqual([{ invoiceId: V1.id, reason: 'finalize', correlationId: 'export' }]);
    const requests = sim.requests.length;
    expect(await finalize()).toBe('finalized');
    expect(await manifest.exists()).toBe(true);
    expect(await deps.storage.ledger.getInvoice(V1.id)).toMatchObject({ state: 'complete' });
    // The finalize asks Partner Center for nothing: the invoice and its rows are in storage.
    expect(sim.requests.length).toBe(requests);
  });
});

describe('when the export does not finish', () => {
  test('a lease lost mid-export: renewal stopped, the message back in a second, the part not failed', async () => {
    // The app's clock jumps 30 s with every page served: past the 20 s lease after the first page.
    const { deps, log, message } = await synced(V1, {
      settings: { LEASE_SECONDS: '20' },
      overrides: { now: pagesClock(sim, 30_000) },
    });
    const correlationId = '0b6a3c2e-1d4f-4c8a-9e7b-5f2d1a0c3b4e';
    // The renewal's interval is the only setInterval of an export; a lost lease is never released, so only the
    // export's own stop clears it.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      expect(await exportPart(deps, { ...message, correlationId }, invocation('mine'))).toBe('lost');
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
    const warning = log.lines.find((l) => l.level === 'warn');
    expect(warning).toMatchObject({
      message: 'Lease lost; this invocation stops and the part continues in a new delivery',
      properties: { invoiceId: V1.id, partId: message.partId, correlationId, error: expect.any(String) },
    });
    expect(warning?.properties?.error).not.toBe('');
    // The same message (same turn) again, visible after a second.
    expect((await deps.storage.queues.lineItemExport.getProperties()).approximateMessagesCount).toBe(1);
    await vi.waitFor(async () => expect(await queued(deps)).toEqual([{ ...message, correlationId }]), {
      timeout: 10_000,
      interval: 200,
    });
    const part = await stored(deps, message);
    expect(part.state).not.toBe('failed');
    expect(part.lastError).toBeUndefined();
  });

  test('a failing source: the error is thrown, the part released with it as lastError, and nothing re-queued', async () => {
    const { deps, message } = await synced(V1);
    sim.faults.add(apiFault(500, 'CLAIMFAULT', { path: new RegExp(`^/v1/invoices/${V1.id}/lineitems`, 'i') }));
    try {
      const error = await exportPart(deps, message, invocation('mine')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      const part = await stored(deps, message);
      expect(part.leaseOwner).toBeUndefined();
      expect(part.leaseUntil).toBeUndefined();
      expect(part.lastError).toContain('500');
      expect(part.state).not.toBe('complete');
      expect(await queued(deps)).toEqual([]);
    } finally {
      sim.faults.clear();
    }
  });
});
