// Month to date on real parts: Azurite, the simulator over loopback (its clock pinned to chosen dates, the app's
// clock the simulator's), and the same jobs the Functions run. Daily unbilled snapshots go through the export
// queue; each file must be byte-identical to what the simulator's unbilled export served as of that day.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runPass } from '../../src/app/run-pass.js';
import { buildProgram } from '../../src/cli/main.js';
import { Decimal } from '../../src/money.js';
import { unbilledManifestPath, unbilledRowsPath } from '../../src/storage/layout.js';
import { snapshotKey } from '../../src/storage/unbilled.js';
import type { SyncDeps } from '../../src/sync/deps.js';
import { takeUnbilledSnapshots } from '../../src/sync/unbilled/snapshots.js';
import { graphThrottle, type InvoiceSpec, type Simulator, type SimulatorOptions } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { blobText, freshDeps, manifestOf, withSimulator } from '../support/harness.js';

let azurite: Azurite;
beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

const DAY = 24 * 3600_000;
const TYPES = [
  { lineItemType: 'usage', kind: 'usage' },
  { lineItemType: 'billing', kind: 'reconciliation' },
] as const;

const simOptions = (startTime: string, extra: SimulatorOptions = {}): SimulatorOptions => ({
  seed: 5,
  startTime: Date.parse(startTime),
  ...extra,
  v2: { retryAfterSeconds: 0, pollsBeforeDone: 1, ...extra.v2 },
  dataset: { invoices: [], ...extra.dataset },
});

async function appOn(
  sim: Simulator,
  settings: Record<string, string> = { UNBILLED_CURRENCIES: 'USD' },
  maxDequeueCount?: number,
) {
  return freshDeps(sim, azurite, {
    settings,
    overrides: { now: sim.clock.now, v2NoDataBaseSeconds: 0, retryDelayMs: 1, maxRetryDelayMs: 5 },
    ...(maxDequeueCount ? { host: { maxDequeueCount } } : {}),
  });
}

/** What the simulator's unbilled export of (type, currency, period) serves when taken at `at`, as NDJSON. */
function expected(sim: Simulator, kind: 'usage' | 'reconciliation', period: 'current' | 'last', at: number) {
  const view = sim.dataset.unbilled(kind, 'USD', period, at);
  if (!view) throw new Error('no unbilled data in the simulator');
  return { ...view, text: Array.from({ length: view.rows }, (_, i) => `${view.row(i)}\n`).join('') };
}

const snapshotsPass = (deps: SyncDeps) =>
  runPass(deps, { skipDetect: true, unbilledSnapshots: true, retryVisibilitySeconds: 0 });

async function blobNames(deps: SyncDeps): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for await (const blob of deps.storage.container.listBlobsFlat()) names.set(blob.name, blob.properties.etag ?? '');
  return names;
}

const dayOf = (at: number) => new Date(at).toISOString().slice(0, 10);

/** The README's DuckDB query `name`: the sql block right after `<!-- query: name -->`. */
async function readmeQuery(name: string): Promise<string> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const match = new RegExp(`<!-- query: ${name} -->\\s*\`\`\`sql\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!match?.[1]) throw new Error(`README has no query ${name}`);
  return match[1];
}

/** Runs README queries, as written, over the container downloaded with its folder layout. */
async function duckOver(
  deps: SyncDeps,
  run: (query: (sql: string) => Promise<Record<string, unknown>[]>) => Promise<void>,
) {
  const folder = await mkdtemp(join(tmpdir(), 'unbilled-'));
  const instance = await DuckDBInstance.create(':memory:');
  const duck = await instance.connect();
  try {
    for await (const blob of deps.storage.container.listBlobsFlat()) {
      const target = join(folder, blob.name);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, await deps.storage.container.getBlobClient(blob.name).downloadToBuffer());
    }
    await duck.run(`SET VARIABLE invoices = '${folder.replace(/'/g, "''")}'`);
    await run(async (sql) => (await duck.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[]);
  } finally {
    duck.closeSync();
    await rm(folder, { recursive: true, force: true });
  }
}

describe('daily unbilled snapshots', () => {
  test('three consecutive days: current grows day by day, last stays the same; every file verbatim with its manifest', async () => {
    await withSimulator(simOptions('2026-11-26T03:00:00Z'), async (sim) => {
      const { deps, log, settings } = await appOn(sim);
      const current: string[] = [];
      for (let day = 0; day < 3; day++) {
        if (day > 0) sim.clock.advance(DAY);
        const at = sim.clock.now();
        const date = dayOf(at);
        const pass = await snapshotsPass(deps);
        expect(pass.drain.poisoned).toBe(0);
        expect(pass.unbilled?.snapshots.map((s) => [s.billingPeriod, s.action])).toEqual([
          ['2026-11', 'queued'],
          ['2026-10', 'queued'],
        ]);
        for (const [period, word] of [
          ['2026-11', 'current'],
          ['2026-10', 'last'],
        ] as const) {
          const manifest = JSON.parse(await blobText(deps, unbilledManifestPath(period, date, 'USD')));
          expect(manifest).toMatchObject({
            kind: 'unbilledSnapshot',
            billingPeriod: period,
            snapshotDate: date,
            currency: 'USD',
          });
          for (const { lineItemType, kind } of TYPES) {
            const path = unbilledRowsPath(period, date, 'USD', lineItemType);
            const text = await blobText(deps, path);
            const want = expected(sim, kind, word, at);
            expect(text).toBe(want.text);
            const file = manifest.files.find((f: { lineItemType: string }) => f.lineItemType === lineItemType);
            expect(file).toMatchObject({
              path,
              rows: want.rows,
              bytes: Buffer.byteLength(text),
              sha256: createHash('sha256').update(text).digest('hex'),
              requestedAs: word,
            });
            expect(new Decimal(file.total).eq(new Decimal(want.total))).toBe(true);
            if (period === '2026-11' && lineItemType === 'usage') current.push(text);
          }
        }
      }
      // current: each day's file is the day before's plus the new day's rows (append-only data).
      expect(current).toHaveLength(3);
      for (let i = 1; i < 3; i++) {
        expect(current[i]!.length).toBeGreaterThan(current[i - 1]!.length);
        expect(current[i]!.startsWith(current[i - 1]!)).toBe(true);
      }
      // last: the same whole month every day.
      const lasts = await Promise.all(
        ['2026-11-26', '2026-11-27', '2026-11-28'].map((d) =>
          blobText(deps, unbilledRowsPath('2026-10', d, 'USD', 'billing')),
        ),
      );
      expect(new Set(lasts).size).toBe(1);
      const saved = log.events('UnbilledSnapshotSaved');
      expect(saved).toHaveLength(6);
      for (const event of saved) {
        expect(event).toMatchObject({ currency: 'USD', correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
        expect(Number(event.usageRows)).toBeGreaterThan(0);
      }
      // status' source: the ledger holds each snapshot, complete, with its files.
      const stored = [];
      for await (const s of deps.storage.ledger.listSnapshots({ currency: 'USD' })) stored.push(s);
      expect(stored.map((s) => [s.snapshotDate, s.billingPeriod, s.state])).toEqual([
        ['2026-11-26', '2026-10', 'complete'],
        ['2026-11-26', '2026-11', 'complete'],
        ['2026-11-27', '2026-10', 'complete'],
        ['2026-11-27', '2026-11', 'complete'],
        ['2026-11-28', '2026-10', 'complete'],
        ['2026-11-28', '2026-11', 'complete'],
      ]);

      // `status` shows the latest snapshot per month and currency, with its rows and totals.
      const out: string[] = [];
      await buildProgram({ out: (t) => out.push(t), err: () => {}, isTTY: false }, settings).parseAsync([
        'node',
        'csp-invoice-sync',
        'status',
        '--json',
      ]);
      const status = JSON.parse(out.join(''));
      const at = sim.clock.now();
      const november = expected(sim, 'usage', 'current', at);
      const octoberBilling = expected(sim, 'reconciliation', 'last', at);
      expect(status.unbilled).toMatchObject([
        {
          billingPeriod: '2026-11',
          currency: 'USD',
          snapshotDate: '2026-11-28',
          state: 'complete',
          usageRows: november.rows,
        },
        { billingPeriod: '2026-10', currency: 'USD', snapshotDate: '2026-11-28', billingRows: octoberBilling.rows },
      ]);
      expect(new Decimal(status.unbilled[1].billingTotal).eq(new Decimal(octoberBilling.total))).toBe(true);
      out.length = 0;
      await buildProgram({ out: (t) => out.push(t), err: () => {}, isTTY: false }, settings).parseAsync([
        'node',
        'csp-invoice-sync',
        'status',
      ]);
      const table = out.join('');
      expect(table).toContain('Unbilled (month to date)');
      expect(table).toMatch(new RegExp(`2026-11\\s.*USD\\s.*2026-11-28\\s.*complete\\s.*${november.rows}\\s`));
    });
  });

  test('a second run on the same day writes nothing and asks Graph nothing', async () => {
    await withSimulator(simOptions('2026-11-21T02:00:00Z'), async (sim) => {
      const { deps, log } = await appOn(sim);
      await snapshotsPass(deps);
      const blobs = await blobNames(deps);
      expect([...blobs.keys()].filter((n) => n.endsWith('manifest.json'))).toHaveLength(2);
      const snapshots = [];
      for await (const s of deps.storage.ledger.listSnapshots()) snapshots.push(s);
      const requests = sim.requests.length;
      sim.clock.advance(6 * 3600_000); // later the same day

      const again = await snapshotsPass(deps);
      expect(again.unbilled?.snapshots.map((s) => s.action)).toEqual(['done', 'done']);
      expect(again.drain.processed).toBe(0);
      expect(sim.requests.length).toBe(requests);
      expect(await blobNames(deps)).toEqual(blobs);
      const after = [];
      for await (const s of deps.storage.ledger.listSnapshots()) after.push(s);
      expect(after.map((s) => s.etag)).toEqual(snapshots.map((s) => s.etag));
      expect(log.events('UnbilledSnapshotSaved')).toHaveLength(2);
    });
  });

  test('a snapshot whose message was lost is queued again by a later run of the day, once it is stuck', async () => {
    await withSimulator(simOptions('2026-11-21T02:00:00Z'), async (sim) => {
      const { deps } = await appOn(sim);
      await takeUnbilledSnapshots(deps);
      await deps.storage.queues.lineItemExport.clearMessages(); // the messages are lost
      const soon = await snapshotsPass(deps);
      expect(soon.unbilled?.snapshots.map((s) => s.action)).toEqual(['in-progress', 'in-progress']);
      expect(soon.drain.processed).toBe(0);
      sim.clock.advance((deps.settings.STUCK_AFTER_MINUTES + 1) * 60_000);
      const later = await snapshotsPass(deps);
      expect(later.unbilled?.snapshots.map((s) => s.action)).toEqual(['requeued', 'requeued']);
      for (const s of later.unbilled?.snapshots ?? []) {
        expect((await deps.storage.ledger.getSnapshot(s.snapshotKey))?.state).toBe('complete');
      }
    });
  });

  test('a month boundary: current becomes last, and a snapshot queued before midnight asks for its own month', async () => {
    await withSimulator(simOptions('2026-11-30T23:58:00Z'), async (sim) => {
      const { deps } = await appOn(sim);
      // Planned on the 30th; its exports start after midnight, when November is `last`.
      const planned = await takeUnbilledSnapshots(deps);
      expect(planned.snapshots.map((s) => s.snapshotKey)).toEqual([
        snapshotKey('2026-11-30', '2026-11', 'USD'),
        snapshotKey('2026-11-30', '2026-10', 'USD'),
      ]);
      sim.clock.advance(5 * 60_000);
      expect(dayOf(sim.clock.now())).toBe('2026-12-01');
      const drained = await runPass(deps, { skipDetect: true, retryVisibilitySeconds: 0 });
      expect(drained.drain.poisoned).toBe(0);
      const late = JSON.parse(await blobText(deps, unbilledManifestPath('2026-11', '2026-11-30', 'USD')));
      expect(late.files.map((f: { requestedAs: string }) => f.requestedAs)).toEqual(['last', 'last']);
      // November as a whole (30 days, all of them served by `last` on 1 December).
      const november = expected(sim, 'usage', 'last', sim.clock.now());
      expect(november.month).toBe('2026-11');
      expect(await blobText(deps, unbilledRowsPath('2026-11', '2026-11-30', 'USD', 'usage'))).toBe(november.text);
      // The October snapshot queued on the 30th can no longer be taken on 1 December: failed, nothing written.
      const october = await deps.storage.ledger.getSnapshot(snapshotKey('2026-11-30', '2026-10', 'USD'));
      expect(october?.state).toBe('failed');
      expect(october?.lastError).toMatch(/can no longer be taken/);
      expect((await blobNames(deps)).has(unbilledManifestPath('2026-10', '2026-11-30', 'USD'))).toBe(false);

      // The first snapshot of December: current = December (day 1), last = November, complete.
      const december = await snapshotsPass(deps);
      expect(december.unbilled?.snapshots.map((s) => [s.billingPeriod, s.action])).toEqual([
        ['2026-12', 'queued'],
        ['2026-11', 'queued'],
      ]);
      const at = sim.clock.now();
      for (const { lineItemType, kind } of TYPES) {
        expect(await blobText(deps, unbilledRowsPath('2026-12', '2026-12-01', 'USD', lineItemType))).toBe(
          expected(sim, kind, 'current', at).text,
        );
        expect(expected(sim, kind, 'current', at).days).toBe(1);
        expect(await blobText(deps, unbilledRowsPath('2026-11', '2026-12-01', 'USD', lineItemType))).toBe(
          expected(sim, kind, 'last', at).text,
        );
      }
    });
  });

  test('the billed faults are ridden through: 429 with Retry-After, failed 5000, a reset mid-blob, an expired SAS; the file is still verbatim', async () => {
    await withSimulator(simOptions('2026-11-21T02:00:00Z'), async (sim) => {
      const { deps } = await appOn(sim);
      sim.faults.add(graphThrottle(1, { path: '/unbilled/', times: 2 }));
      sim.faults.add({ kind: 'v2NoData', polls: 1 });
      sim.faults.add({ host: 'blob', path: /unbilled/, kind: 'resetMidBody' });
      // The first blob read is refused as an expired SAS (Storage's 403 AuthenticationFailed): a fresh manifest comes
      // from the operation, never a bearer token on the blob host.
      sim.faults.add({
        host: 'blob',
        path: /unbilled/,
        kind: 'status',
        status: 403,
        headers: { 'content-type': 'application/xml' },
        body: '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Signed expiry time has passed</Message></Error>',
      });
      const pass = await snapshotsPass(deps);
      expect(pass.drain.poisoned).toBe(0);
      const throttled = sim.requests.filter((r) => r.path.includes('/unbilled/') && r.status === 429);
      expect(throttled.length).toBe(2);
      expect(sim.requests.filter((r) => r.host === 'blob' && r.status === 0).length).toBe(1);
      expect(sim.requests.filter((r) => r.host === 'blob' && r.status === 403).length).toBe(1);
      // Five exports: the one that answered 5000 was polled once; the others until done (running, then succeeded),
      // plus one poll for a fresh manifest after the refused SAS and one by the delivery that resumed after the reset.
      const polls = new Map<string, number>();
      for (const r of sim.requests) {
        if (r.host === 'graph' && r.path.includes('/operations/')) polls.set(r.path, (polls.get(r.path) ?? 0) + 1);
      }
      expect(polls.size).toBe(5);
      expect([...polls.values()].reduce((n, k) => n + k, 0)).toBe(1 + 4 * 2 + 2);
      expect(sim.requests.filter((r) => r.host === 'blob').every((r) => !('authorization' in r.headers))).toBe(true);
      const at = sim.clock.now();
      for (const [period, word] of [
        ['2026-11', 'current'],
        ['2026-10', 'last'],
      ] as const) {
        for (const { lineItemType, kind } of TYPES) {
          expect(await blobText(deps, unbilledRowsPath(period, '2026-11-21', 'USD', lineItemType))).toBe(
            expected(sim, kind, word, at).text,
          );
        }
      }
    });
  });

  test('a failure then recovery: the failed snapshot has no manifest, is reported, and the next run of the day completes it', async () => {
    await withSimulator(simOptions('2026-11-21T02:00:00Z'), async (sim) => {
      const { deps, log } = await appOn(sim, { UNBILLED_CURRENCIES: 'USD' }, 2);
      // Every unbilled blob read fails: the part's deliveries run out.
      sim.faults.add({ host: 'blob', path: /unbilledusagefastpath/, kind: 'status', status: 500, times: Infinity });
      const failed = await snapshotsPass(deps);
      expect(failed.drain.poisoned).toBeGreaterThan(0);
      const key = snapshotKey('2026-11-21', '2026-11', 'USD');
      expect((await deps.storage.ledger.getSnapshot(key))?.state).toBe('failed');
      const events = log.events('UnbilledSnapshotFailed');
      expect(events.map((e) => e.snapshotKey).sort()).toEqual(
        [key, snapshotKey('2026-11-21', '2026-10', 'USD')].sort(),
      );
      for (const event of events) {
        expect(String(event.error)).toMatch(/usage failed: .*500/);
        expect(String(event.error)).not.toMatch(/[?&](sig|se)=/);
      }
      const names = await blobNames(deps);
      expect([...names.keys()].filter((n) => n.startsWith('unbilled/') && n.includes('line_item_type=usage'))).toEqual(
        [],
      );
      expect([...names.keys()].filter((n) => n.endsWith('manifest.json'))).toEqual([]);

      sim.faults.clear();
      const recovered = await snapshotsPass(deps);
      expect(recovered.unbilled?.snapshots.map((s) => s.action)).toEqual(['retried', 'retried']);
      expect((await deps.storage.ledger.getSnapshot(key))?.state).toBe('complete');
      expect((await deps.storage.ledger.getSnapshot(key))?.runs).toBe(2);
      const at = sim.clock.now();
      expect(await blobText(deps, unbilledRowsPath('2026-11', '2026-11-21', 'USD', 'usage'))).toBe(
        expected(sim, 'usage', 'current', at).text,
      );
      expect(log.events('UnbilledSnapshotSaved')).toHaveLength(2);
    });
  });
});

describe('no unbilled data', () => {
  test('an export that answers 5000 for more than a day leaves the snapshot failed, with no manifest', async () => {
    await withSimulator(simOptions('2026-11-21T02:00:00Z'), async (sim) => {
      const { deps, log } = await appOn(sim);
      sim.faults.add({ kind: 'v2NoData', polls: 1000, times: Infinity });
      const pass = await runPass(deps, {
        skipDetect: true,
        unbilledSnapshots: true,
        retryVisibilitySeconds: 0,
        // Two hours pass per message on both clocks: the day without data passes within a few dozen messages.
        onOutcome: () => sim.clock.advance(2 * 3600_000),
      });
      expect(pass.drain.poisoned).toBe(0);
      for (const s of pass.unbilled?.snapshots ?? []) {
        const snapshot = await deps.storage.ledger.getSnapshot(s.snapshotKey);
        expect(snapshot?.state).toBe('failed');
        expect(snapshot?.lastError).toMatch(/unsettled: No v2 data after 24 h: No unbilled .* data available/);
      }
      expect(log.events('UnbilledSnapshotFailed')).toHaveLength(2);
      // The invoice alert's event is not raised for a snapshot's part.
      expect(log.events('PartUnsettled')).toEqual([]);
      expect([...(await blobNames(deps)).keys()]).toEqual([]);
    });
  });
});

describe('accrual against bill', () => {
  const NOVEMBER: InvoiceSpec = {
    id: 'G0NOV00001',
    kind: 'modern',
    billingPeriod: '2026-11',
    currency: 'USD',
    invoiceDate: '2026-12-03T22:40:37.5897767Z',
    parts: [
      { provider: 'one_time', lineItemType: 'billing_line_items', rows: 20 },
      { provider: 'one_time', lineItemType: 'usage_line_items', rows: 15 },
    ],
  };

  test("the billed invoice's manifest compares the last unbilled snapshot with what was billed, as measured; its month is then no longer snapshotted", async () => {
    await withSimulator(simOptions('2026-12-01T02:00:00Z', { dataset: { invoices: [NOVEMBER] } }), async (sim) => {
      // Currencies from the ledger: none before the first sync.
      const { deps } = await appOn(sim, {});
      const none = await snapshotsPass(deps);
      expect(none.unbilled).toMatchObject({ currencies: [], currencySource: 'ledger', snapshots: [] });

      // Two snapshots of November as `last`, on the 1st and the 2nd; the 2nd is the one compared.
      const usd = await appOn(sim);
      await snapshotsPass(usd.deps);
      sim.clock.advance(DAY);
      await snapshotsPass(usd.deps);
      const last = expected(sim, 'reconciliation', 'last', sim.clock.now());
      const lastUsage = expected(sim, 'usage', 'last', sim.clock.now());

      // The invoice arrives and is synced (v2 billed exports): finalize compares once and stores it.
      const synced = await runPass(usd.deps, { retryVisibilitySeconds: 0 });
      expect(synced.invoices.map((i) => [i.invoiceId, i.state])).toEqual([['G0NOV00001', 'complete']]);
      const manifest = await manifestOf(usd.deps, '2026-11', 'G0NOV00001');
      const comparison = manifest.unbilledComparison;
      expect(comparison).toMatchObject({
        billingPeriod: '2026-11',
        currency: 'USD',
        invoices: ['G0NOV00001'],
        snapshot: {
          snapshotKey: snapshotKey('2026-12-02', '2026-11', 'USD'),
          snapshotDate: '2026-12-02',
          manifestPath: unbilledManifestPath('2026-11', '2026-12-02', 'USD'),
        },
      });
      const billed = new Decimal(sim.dataset.totalChargesText('G0NOV00001'));
      expect(new Decimal(comparison.billing.unbilled).eq(new Decimal(last.total))).toBe(true);
      expect(comparison.billing.billed).toBe(billed.toFixed());
      // The difference is what it is: billed − unbilled, exact, not forced to zero.
      expect(comparison.billing.difference).toBe(billed.minus(new Decimal(comparison.billing.unbilled)).toFixed());
      expect(new Decimal(comparison.billing.difference).isZero()).toBe(false);
      expect(new Decimal(comparison.usage.unbilled).eq(new Decimal(lastUsage.total))).toBe(true);
      expect(comparison.usage.billed).toBe(synced.parts.find((p) => p.lineItemType === 'usage')?.lineTotal);
      expect(comparison.usage.difference).toBe(
        new Decimal(comparison.usage.billed).minus(new Decimal(comparison.usage.unbilled)).toFixed(),
      );

      // The README's side-by-side query, as written, over the container: unbilled beside billed, exactly.
      await duckOver(usd.deps, async (query) => {
        const rows = await query(await readmeQuery('unbilled-vs-billed'));
        expect(rows.map((r) => [r.billing_period, r.currency, r.snapshot_date, r.invoices])).toEqual([
          ['2026-11', 'USD', '2026-12-02', '1'],
          ['2026-12', 'USD', '2026-12-02', null],
        ]);
        const november = rows[0]!;
        expect(new Decimal(String(november.unbilled_billing)).eq(new Decimal(last.total))).toBe(true);
        expect(new Decimal(String(november.billed_total)).eq(billed)).toBe(true);
        expect(new Decimal(String(november.difference)).eq(new Decimal(comparison.billing.difference))).toBe(true);
        const counts = await query(await readmeQuery('unbilled-rows'));
        const novemberUsage = counts.find(
          (r) => r.billing_period === '2026-11' && r.snapshot === '2026-12-02' && r.line_item_type === 'usage',
        );
        expect(novemberUsage?.rows).toBe(String(lastUsage.rows));
        expect(counts).toHaveLength(8); // 2 days × 2 months × 2 types, one currency
      });

      // November's invoice is synced: from now on only `current` is snapshotted (currencies from the ledger).
      sim.clock.advance(DAY);
      const ledgerDriven = { ...usd.deps, settings: { ...usd.deps.settings, UNBILLED_CURRENCIES: undefined } };
      const after = await snapshotsPass(ledgerDriven);
      expect(after.unbilled).toMatchObject({
        currencies: ['USD'],
        currencySource: 'ledger',
        skipped: [{ billingPeriod: '2026-11', currency: 'USD', reason: 'its invoice is synced' }],
      });
      expect(after.unbilled?.snapshots.map((s) => s.billingPeriod)).toEqual(['2026-12']);
    });
  });
});
