// The unbilled rules that need no I/O: settings (an empty schedule is off, currencies normalised), the word Graph
// takes for a month at a given instant, the month a manifest names, the snapshot key and its folder.
import { describe, expect, test } from 'vitest';
import { loadSettings } from '../../src/config.js';
import { unbilledManifestPath, unbilledRowsPath } from '../../src/storage/layout.js';
import { isSnapshotKey, snapshotKey, UNBILLED_TRANSITIONS } from '../../src/storage/unbilled.js';
import { manifestMonth, monthOf, unbilledPeriodWord } from '../../src/sync/unbilled/target.js';

const storage = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };

describe('unbilled settings', () => {
  test('UNBILLED_SCHEDULE is once a day by default, and an empty value turns the snapshots off', () => {
    expect(loadSettings(storage).UNBILLED_SCHEDULE).toBe('0 30 1 * * *');
    expect(loadSettings({ ...storage, UNBILLED_SCHEDULE: '' }).UNBILLED_SCHEDULE).toBe('');
    expect(loadSettings({ ...storage, UNBILLED_SCHEDULE: '0 0 5 * * *' }).UNBILLED_SCHEDULE).toBe('0 0 5 * * *');
    // Every other setting keeps "empty = default".
    expect(loadSettings({ ...storage, SYNC_SCHEDULE: '' }).SYNC_SCHEDULE).toBe('0 0 */6 * * *');
  });

  test('UNBILLED_CURRENCIES: absent = from the ledger; a list is trimmed, upper-cased and de-duplicated; junk is refused', () => {
    expect(loadSettings(storage).UNBILLED_CURRENCIES).toBeUndefined();
    expect(loadSettings({ ...storage, UNBILLED_CURRENCIES: ' usd, EUR ,usd' }).UNBILLED_CURRENCIES).toEqual([
      'USD',
      'EUR',
    ]);
    expect(() => loadSettings({ ...storage, UNBILLED_CURRENCIES: 'USD;EUR' })).toThrow(/UNBILLED_CURRENCIES/);
    expect(() => loadSettings({ ...storage, UNBILLED_CURRENCIES: 'DOLLARS' })).toThrow(/ISO currency codes/);
  });
});

describe('the billing period of a snapshot', () => {
  const at = (iso: string) => Date.parse(iso);

  test('the month of an instant is its UTC month, never the local one', () => {
    expect(monthOf(at('2026-12-01T00:30:00+02:00'))).toBe('2026-11');
    expect(monthOf(at('2026-01-15T00:00:00Z'), -1)).toBe('2025-12');
  });

  test('Graph is asked with the word that names the month at the moment the export starts', () => {
    expect(unbilledPeriodWord('2026-11', at('2026-11-30T23:59:59Z'))).toBe('current');
    expect(unbilledPeriodWord('2026-11', at('2026-12-01T00:00:00Z'))).toBe('last');
    expect(unbilledPeriodWord('2026-12', at('2027-01-31T12:00:00Z'))).toBe('last');
    expect(unbilledPeriodWord('2026-10', at('2026-12-01T00:00:00Z'))).toBeUndefined();
    expect(unbilledPeriodWord('2027-01', at('2026-12-31T23:59:59Z'))).toBeUndefined();
  });

  test("a manifest's BillingMonth, when its rootDirectory names one", () => {
    expect(
      manifestMonth(
        'https://x.blob.core.windows.net/unbilledusagefastpath/v1/PartnerTenantId=t/BillingMonth=202611/Fragment=full',
      ),
    ).toBe('2026-11');
    expect(manifestMonth('https://x.blob.core.windows.net/c/v1/PartnerTenantId=t/billingmonth=202612')).toBe('2026-12');
    expect(manifestMonth('https://x.blob.core.windows.net/c/v1/PartnerTenantId=t/Fragment=full')).toBeUndefined();
  });
});

describe('snapshot keys and folders', () => {
  test('one key per day, month and currency; never an invoice id', () => {
    const key = snapshotKey('2026-11-30', '2026-11', 'USD');
    expect(key).toBe('unbilled-20261130-202611-USD');
    expect(isSnapshotKey(key)).toBe(true);
    expect(isSnapshotKey('G000024135')).toBe(false);
    expect(() => snapshotKey('2026-11-30', 'current', 'USD')).toThrow(/YYYY-MM/);
    expect(() => snapshotKey('2026-11-30', '2026-11', 'usd')).toThrow(/currency/);
  });

  test('the layout DuckDB reads: Hive partitions under unbilled/, beside (never inside) the billed ones', () => {
    expect(unbilledRowsPath('2026-11', '2026-11-30', 'USD', 'usage')).toBe(
      'unbilled/billing_period=2026-11/snapshot=2026-11-30/currency=USD/line_item_type=usage/rows.ndjson',
    );
    expect(unbilledManifestPath('2026-11', '2026-11-30', 'USD')).toBe(
      'unbilled/billing_period=2026-11/snapshot=2026-11-30/currency=USD/manifest.json',
    );
    expect(() => unbilledRowsPath('current', '2026-11-30', 'USD', 'usage')).toThrow(/billing period/);
    expect(() => unbilledRowsPath('2026-11', '2026-11-30', '../x', 'usage')).toThrow(/currency/);
  });

  test('a complete snapshot is final; a failed one can be queued again', () => {
    expect(UNBILLED_TRANSITIONS.complete).toEqual(['complete']);
    expect(UNBILLED_TRANSITIONS.failed).toContain('queued');
  });
});
