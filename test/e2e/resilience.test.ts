// What must survive: a process killed mid-export, a backlog longer than a PDF link's life, exports longer than
// the time budget, v2 data that is not ready. Real Azurite, real simulator, real processes.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSyncDeps, type DepsOverrides } from '../../src/app/create-deps.js';
import { runPass } from '../../src/app/run-pass.js';
import { loadSettings } from '../../src/config.js';
import { progressOf } from '../../src/storage/parts.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import { SYNC_EVENTS } from '../../src/telemetry/index.js';
import type { EventProperties, SyncLogger } from '../../src/telemetry/logger.js';
import type { InvoiceSpec, Simulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { expectedNdjson } from '../support/expected.js';
import { withSimulator } from '../support/harness.js';
import { simulatorEnvironment } from '../support/sim-env.js';

let azurite: Azurite;
beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

const events: { name: string; properties: EventProperties }[] = [];
const quietLog = (): SyncLogger => ({
  info() {},
  warn() {},
  error() {},
  event: (name, properties) => events.push({ name, properties }),
});

async function setup(sim: Simulator, extra: Record<string, string> = {}, overrides: DepsOverrides = {}) {
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
  const env = await simulatorEnvironment(sim, azurite, {
    INVOICE_CONTAINER: `inv${suffix}`,
    LEDGER_TABLE: `ledger${suffix}`,
    ...extra,
  });
  const deps = await createSyncDeps(loadSettings(env.settings), { ...env.overrides, log: quietLog(), ...overrides });
  return { env, deps };
}

async function partBytes(deps: SyncDeps, invoiceId: string, partId: string) {
  const part = await deps.storage.ledger.getPart(invoiceId, partId);
  expect(part?.state).toBe('complete');
  return deps.storage.container.getBlobClient(part!.blobPath).downloadToBuffer();
}

const bigLegacy: InvoiceSpec = {
  id: 'D0BIG00001',
  kind: 'legacy',
  billingPeriod: '2024-03',
  parts: [{ provider: 'azure', lineItemType: 'billing_line_items', rows: 6000 }],
};
const bigSeek: InvoiceSpec = {
  id: 'G0BIG00001',
  kind: 'modern',
  billingPeriod: '2023-06',
  parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 3000 }],
};

describe('a process killed mid-export', () => {
  test('resumes from the ledger checkpoint and the final bytes equal a clean run', async () => {
    await withSimulator({ dataset: { invoices: [bigLegacy] }, latencyMs: 40 }, async (sim) => {
      const { env, deps } = await setup(sim, { LINE_ITEM_PAGE_SIZE: '200' });
      // The real CLI in its own process, killed (SIGKILL, no clean-up) once several blocks are staged.
      const child = spawn(process.execPath, [path.resolve('node_modules/tsx/dist/cli.mjs'), 'src/cli/bin.ts', 'run'], {
        env: { ...process.env, ...env.settings },
        stdio: 'ignore',
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      let staged = 0;
      for (let i = 0; i < 600 && staged < 5; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const part = await deps.storage.ledger.getPart(bigLegacy.id, 'azure-billing').catch(() => undefined);
        staged = part ? progressOf(part).blocks : 0;
      }
      child.kill('SIGKILL');
      await exited;
      expect(staged).toBeGreaterThanOrEqual(5);
      const killedAt = await deps.storage.ledger.getPart(bigLegacy.id, 'azure-billing');
      expect(killedAt?.state).toBe('exporting');
      expect(killedAt ? progressOf(killedAt).blocks : 0).toBeLessThan(30);

      // The dead worker's messages are gone for good (the worst case): the next timer run finds the invoice stuck,
      // once the dead worker's lease has run out.
      await deps.storage.queues.invoiceSync.clearMessages();
      await deps.storage.queues.lineItemExport.clearMessages();
      const later = { ...deps, now: () => Date.now() + 3 * 3_600_000 };
      const requestsBefore = sim.requests.length;
      const result = await runPass(later, { retryVisibilitySeconds: 0 });
      expect(result.allComplete).toBe(true);

      const bytes = await partBytes(deps, bigLegacy.id, 'azure-billing');
      expect(bytes.equals(expectedNdjson(sim, bigLegacy.id, bigLegacy.parts![0]!, 'v1'))).toBe(true);
      // It resumed: no page whose progress the ledger had saved before the kill was fetched again. A page is
      // named by what asks for it (path, query, continuation token), so a retried or prefetched request cannot
      // blur the count; a restart from page 1 would ask for every saved page again.
      const pageOf = (r: (typeof sim.requests)[number]) =>
        `${r.path.toLowerCase()}?${new URLSearchParams(Object.entries(r.query).sort()).toString()}|${r.headers['ms-continuationtoken'] ?? ''}`;
      const isPage = (r: (typeof sim.requests)[number]) => r.path.toLowerCase().includes('/lineitems');
      const before = [...new Set(sim.requests.slice(0, requestsBefore).filter(isPage).map(pageOf))];
      const saved = new Set(before.slice(0, killedAt ? progressOf(killedAt).blocks : 0));
      expect(saved.size).toBeGreaterThanOrEqual(5);
      const after = sim.requests.slice(requestsBefore).filter(isPage).map(pageOf);
      expect(after.filter((page) => saved.has(page))).toEqual([]);
      // ... and between them every one of the 30 pages was asked for.
      expect(new Set([...before, ...after]).size).toBe(30);
    });
  });
});

describe('a worker killed mid-export while its messages are still queued', () => {
  test('two runs at once, then one more: every invoice completes, byte-identical, each row once', async () => {
    const seek: InvoiceSpec = {
      ...bigSeek,
      id: 'G0KILL0001',
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 2400 }],
    };
    const recent: InvoiceSpec = {
      id: 'G0KILL0002',
      kind: 'modern',
      billingPeriod: '2026-09',
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 1200 }],
    };
    const invoices = [bigLegacy, seek, recent];
    await withSimulator(
      { dataset: { invoices }, latencyMs: 30, v2: { retryAfterSeconds: 0, rowsPerBlob: 300 } },
      async (sim) => {
        // A short lease (the default is 60 s) keeps the test short; the mechanism is the same.
        const { env, deps } = await setup(sim, { LINE_ITEM_PAGE_SIZE: '200', LEASE_SECONDS: '20' });
        const cli = () => {
          const child = spawn(
            process.execPath,
            [path.resolve('node_modules/tsx/dist/cli.mjs'), 'src/cli/bin.ts', 'run'],
            {
              env: { ...process.env, ...env.settings },
              stdio: 'ignore',
            },
          );
          return {
            child,
            exited: new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))),
          };
        };
        const first = cli();
        let staged = 0;
        for (let i = 0; i < 600 && staged < 5; i++) {
          await new Promise((r) => setTimeout(r, 100));
          const part = await deps.storage.ledger.getPart(bigLegacy.id, 'azure-billing').catch(() => undefined);
          staged = part ? progressOf(part).blocks : 0;
        }
        first.child.kill('SIGKILL');
        await first.exited;
        expect(staged).toBeGreaterThanOrEqual(5);
        const killedAt = await deps.storage.ledger.getPart(bigLegacy.id, 'azure-billing');
        expect(killedAt?.state).toBe('exporting');
        // The dead worker's lease and its invisible messages are still there: two runs start at once.
        const [a, b] = [cli(), cli()];
        const codes = await Promise.all([a.exited, b.exited]);
        const third = cli();
        codes.push(await third.exited);
        expect(codes.at(-1)).toBe(0);

        const parts = [];
        for (const spec of invoices) {
          const invoice = await deps.storage.ledger.getInvoice(spec.id);
          expect([spec.id, invoice?.state]).toEqual([spec.id, 'complete']);
          for (const part of await deps.storage.ledger.listParts(spec.id)) parts.push(part);
        }
        for (const spec of invoices) {
          const part = parts.find((p) => p.invoiceId === spec.id)!;
          const bytes = await deps.storage.container.getBlobClient(part.blobPath).downloadToBuffer();
          const expected = expectedNdjson(sim, spec.id, spec.parts![0]!, part.source === 'v2' ? 'v2' : 'v1');
          expect([spec.id, bytes.equals(expected)]).toEqual([spec.id, true]);
          expect(part.rows).toBe(spec.parts![0]!.rows);
        }
        // Nothing left behind: no message, no lease.
        for (const q of [deps.storage.queues.invoiceSync, deps.storage.queues.lineItemExport]) {
          expect((await q.getProperties()).approximateMessagesCount).toBe(0);
        }
        expect(parts.every((p) => p.leaseOwner === undefined)).toBe(true);
      },
    );
  }, 240_000);
});

describe('a backlog longer than a PDF link lives', () => {
  test('every PDF is saved: each link is fetched just in time, and an expired one is replaced', async () => {
    const invoices: InvoiceSpec[] = Array.from({ length: 12 }, (_, i) => ({
      id: `G0PDF${String(i).padStart(5, '0')}`,
      kind: 'modern' as const,
      billingPeriod: '2021-03',
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 3 }],
    }));
    await withSimulator({ dataset: { invoices }, pdfLinkMode: 'signed' }, async (sim) => {
      // The first by-id answer of each invoice is followed by 31 minutes on the simulator's clock, so the link it
      // carries (30 min) has expired when the app uses it: the blob host answers 403 and only a fresh link works.
      const expiredFor = new Set<string>();
      const byId = /^\/v1\/invoices\/([^/]+)$/;
      const log: SyncLogger = {
        ...quietLog(),
        event(name, properties) {
          events.push({ name, properties });
          if (name !== 'HttpRequest' || properties.status !== 200 || properties.host !== 'partnercenter') return;
          const last = [...sim.requests].reverse().find((r) => r.host === 'partnercenter' && byId.test(r.path));
          const id = last?.path.match(byId)?.[1];
          if (!id || expiredFor.has(id)) return;
          expiredFor.add(id);
          sim.clock.advance(31 * 60_000);
        },
      };
      // One invoice at a time, so each clock jump expires exactly the link just fetched.
      const { deps } = await setup(sim, { LOCAL_CONCURRENCY: '1' }, { log });
      events.length = 0;
      const start = sim.clock.now();
      // Every finished message costs five minutes on the simulator's clock too: twelve invoices make hours of backlog.
      const result = await runPass(deps, {
        retryVisibilitySeconds: 0,
        onOutcome: () => sim.clock.advance(5 * 60_000),
      });
      expect(sim.clock.now() - start).toBeGreaterThan(60 * 60_000);
      expect(result.allComplete).toBe(true);
      expect(result.drain.poisoned).toBe(0);
      expect([...expiredFor].sort()).toEqual(invoices.map((i) => i.id));
      const pdfRequests = sim.requests.filter((r) => r.host === 'blob' && r.path.endsWith('.pdf'));
      // Each invoice: its expired link refused once, then the fresh link from a second by-id fetch served.
      expect(pdfRequests.filter((r) => r.status === 403)).toHaveLength(invoices.length);
      expect(pdfRequests.filter((r) => r.status === 200)).toHaveLength(invoices.length);
      for (const spec of invoices) {
        const fetched = sim.requests.filter((r) => r.host === 'partnercenter' && r.path === `/v1/invoices/${spec.id}`);
        expect(
          fetched.map((r) => r.status),
          spec.id,
        ).toEqual([200, 200]);
      }
      // Never the statement fallback: every PDF came from a (fresh) link, and is saved with its hash.
      expect(sim.requests.filter((r) => r.path.endsWith('/documents/statement'))).toEqual([]);
      const saved = events.filter((e) => e.name === 'PdfSaved').map((e) => e.properties);
      expect(saved).toHaveLength(invoices.length);
      expect(saved.every((p) => p.source === 'link')).toBe(true);
      expect(result.invoices.every((i) => i.pdfSha256 && (i.pdfBytes ?? 0) > 0)).toBe(true);
    });
  });
});

describe('an export longer than the time budget', () => {
  test('hands over to continuation messages, sends each continuation token once, and the file is byte-identical', async () => {
    // Continuation tokens the service accepts only once (the reference calls them stateful and server-side).
    await withSimulator({ dataset: { invoices: [bigSeek] }, seekTokens: { singleUse: true } }, async (sim) => {
      // Every line-item page served takes 31 s of the app's clock: past the 30 s budget after each page.
      const pagesServed = () => sim.requests.filter((r) => r.path.toLowerCase().endsWith('/lineitems')).length;
      const clock = () => Date.now() + 31_000 * pagesServed();
      const { deps } = await setup(
        sim,
        { LINE_ITEM_PAGE_SIZE: '500', EXPORT_TIME_BUDGET_SECONDS: '30' },
        { now: clock },
      );
      events.length = 0;
      const outcomes: string[] = [];
      const result = await runPass(deps, {
        retryVisibilitySeconds: 0,
        onOutcome: (o) => {
          if (o.functionName === 'exportLineItems') outcomes.push(o.result);
        },
      });
      const part = result.parts.find((p) => p.invoiceId === bigSeek.id)!;
      expect(part.state).toBe('complete');
      // 6 pages of 500, one invocation each (the prefetch never runs past the budget), none failed.
      expect(part.attempts).toBe(6);
      expect(outcomes.every((o) => o === 'ok')).toBe(true);
      expect(pagesServed()).toBe(6);
      expect(sim.seekTokens.reuses).toEqual([]);
      expect(sim.seekTokens.issued.every((t) => t.sends === 1)).toBe(true);
      const bytes = await partBytes(deps, bigSeek.id, part.partId);
      expect(bytes.equals(expectedNdjson(sim, bigSeek.id, bigSeek.parts![0]!, 'v1'))).toBe(true);
      expect(part.rows).toBe(3000);
    });
  });
});

describe('v2 data that is not ready', () => {
  const recent: InvoiceSpec = {
    id: 'G0NEW00001',
    kind: 'modern',
    billingPeriod: '2026-10',
    parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 40 }],
  };

  test('"no data yet" is retried without sleeping, then exported when the data appears', async () => {
    await withSimulator({ dataset: { invoices: [recent] } }, async (sim) => {
      sim.faults.add({ kind: 'v2NoData', polls: 2 });
      const { deps } = await setup(sim, {}, { v2NoDataBaseSeconds: 0 });
      const result = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(result.allComplete).toBe(true);
      const part = result.parts[0]!;
      expect(part).toMatchObject({ api: 'v2', source: 'v2', state: 'complete', rows: 40 });
      const exportsStarted = sim.requests.filter((r) => r.host === 'graph' && r.method === 'POST');
      expect(exportsStarted.length).toBe(3); // two answered 5000, the third succeeded
      const bytes = await partBytes(deps, recent.id, part.partId);
      expect(bytes.equals(expectedNdjson(sim, recent.id, recent.parts![0]!, 'v2'))).toBe(true);
    });
  });

  test('past the settle deadline the invoice is unsettled, visible in the ledger and its manifest', async () => {
    await withSimulator({ dataset: { invoices: [recent] } }, async (sim) => {
      // One "no data yet" is owed; two hours pass per message, so that one answer already outlives the 1 h deadline.
      sim.faults.add({ kind: 'v2NoData', polls: 1 });
      let offset = 0;
      const { deps } = await setup(
        sim,
        { SETTLE_DEADLINE_HOURS: '1' },
        { v2NoDataBaseSeconds: 0, now: () => Date.now() + offset },
      );
      const result = await runPass(deps, {
        retryVisibilitySeconds: 0,
        onOutcome: () => {
          offset += 2 * 3_600_000;
        },
      });
      expect(result.allComplete).toBe(false);
      expect(result.invoices[0]).toMatchObject({ invoiceId: recent.id, state: 'unsettled' });
      expect(result.parts[0]).toMatchObject({ state: 'unsettled' });
      expect(result.parts[0]?.lastError).toMatch(/No v2 data after 1 h/);
      const manifest = JSON.parse(
        (
          await deps.storage.container
            .getBlobClient(`billing_period=2026-10/invoice_id=${recent.id}/manifest.json`)
            .downloadToBuffer()
        ).toString(),
      );
      expect(manifest.status).toBe('unsettled');
      expect(manifest.parts[0]).toMatchObject({ state: 'unsettled', api: 'v2' });

      // A later timer run tries again without re-downloading what is saved; now the data is there and it settles.
      const pdfDownloadsBefore = sim.requests.filter(
        (r) => r.path.endsWith('.pdf') || r.path.endsWith('/statement'),
      ).length;
      const settled = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(settled.allComplete).toBe(true);
      expect(settled.parts[0]).toMatchObject({ state: 'complete', source: 'v2', rows: 40 });
      expect(sim.requests.filter((r) => r.path.endsWith('.pdf') || r.path.endsWith('/statement')).length).toBe(
        pdfDownloadsBefore,
      );
    });
  });
});

describe('v2 data that changes after export', () => {
  test('within the settle window a new eTag re-exports the part and keeps the earlier file; outside it nothing is asked', async () => {
    const recent: InvoiceSpec = {
      id: 'G0CHG00001',
      kind: 'modern',
      billingPeriod: '2026-09',
      parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 30 }],
    };
    await withSimulator({ dataset: { invoices: [recent] } }, async (sim) => {
      const invoiceTime = Date.parse(
        String((sim.dataset.invoiceJson(recent.id) as { invoiceDate: string }).invoiceDate),
      );
      let offset = 86_400_000; // one day after the invoice date
      const { deps } = await setup(sim, { SETTLE_WINDOW_DAYS: '30' }, { now: () => invoiceTime + offset });
      const first = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(first.allComplete).toBe(true);
      const part = first.parts[0]!;
      expect(part.api).toBe('v2');
      const original = await partBytes(deps, recent.id, part.partId);
      const snapshot = await blobSnapshotOf(deps);
      // The export set the next check a day out (nextCheckAt); until then the timer leaves the part alone.
      const exportedAt = invoiceTime + offset;
      expect(Date.parse(part.nextCheckAt ?? '')).toBe(exportedAt + 24 * 3_600_000);

      // 23 h later, inside the window and before nextCheckAt: nothing is asked, nothing queued.
      offset += 23 * 3_600_000;
      const graphBeforeEarly = sim.requests.filter((r) => r.host === 'graph').length;
      const early = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(early.detect?.rechecked ?? 0).toBe(0);
      expect(sim.requests.filter((r) => r.host === 'graph').length).toBe(graphBeforeEarly);
      expect(early.parts[0]?.nextCheckAt).toBe(part.nextCheckAt);

      // 25 h after the export, past nextCheckAt, same data: asked again, nothing rewritten.
      offset += 2 * 3_600_000;
      const graphBefore = sim.requests.filter((r) => r.host === 'graph').length;
      const unchanged = await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(sim.requests.filter((r) => r.host === 'graph').length).toBeGreaterThan(graphBefore);
      expect(unchanged.parts[0]?.v2Etag).toBe(part.v2Etag);
      expect(await blobSnapshotOf(deps)).toEqual(snapshot);

      // Microsoft re-issues the data: a new eTag.
      sim.dataset.bumpV2Version(recent.id);
      offset += 25 * 3_600_000;
      events.length = 0;
      const changed = await runPass(deps, { retryVisibilitySeconds: 0 });
      const dataChanged = events.filter((e) => e.name === 'PartDataChanged');
      expect(dataChanged).toHaveLength(1);
      for (const dimension of SYNC_EVENTS.PartDataChanged) {
        expect(dataChanged[0]?.properties[dimension], dimension).not.toBeUndefined();
      }
      expect(changed.allComplete).toBe(true);
      const after = changed.parts[0]!;
      expect(after.v2Etag).not.toBe(part.v2Etag);
      const current = await partBytes(deps, recent.id, part.partId);
      expect(current.equals(expectedNdjson(sim, recent.id, recent.parts![0]!, 'v2'))).toBe(true);
      const manifest = JSON.parse(
        (
          await deps.storage.container
            .getBlobClient(`billing_period=2026-09/invoice_id=${recent.id}/manifest.json`)
            .downloadToBuffer()
        ).toString(),
      );
      const artifact = manifest.artifacts.find((a: { kind: string }) => a.kind === 'lineitems');
      expect(artifact.v2Etag).toBe(after.v2Etag);
      expect(artifact.previousVersions).toHaveLength(1);
      expect(artifact.previousVersions[0]).toMatchObject({ v2Etag: part.v2Etag, rows: part.rows, sha256: part.sha256 });
      const kept = await deps.storage.container.getBlobClient(artifact.previousVersions[0].path).downloadToBuffer();
      expect(kept.equals(original)).toBe(true);
      expect(artifact.previousVersions[0].path).toMatch(/rows\.previous_1\.ndjson$/);

      // Past the settle window nobody asks again.
      offset = 40 * 86_400_000;
      const graphBeforeLate = sim.requests.filter((r) => r.host === 'graph').length;
      await runPass(deps, { retryVisibilitySeconds: 0 });
      expect(sim.requests.filter((r) => r.host === 'graph').length).toBe(graphBeforeLate);
    });
  });
});

async function blobSnapshotOf(deps: SyncDeps) {
  const { blobSnapshot } = await import('../support/expected.js');
  return blobSnapshot(deps.storage.container);
}
