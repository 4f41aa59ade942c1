// The unbilled snapshot's ledger model: its key (one a day per billing month and currency, never an invoice id),
// its state machine, and the JSON columns that must refuse anything but what a snapshot holds.
import { describe, expect, test } from 'vitest';
import { isSafeId } from '../../src/ids.js';
import {
  decodeSnapshotFiles,
  decodeUnbilledTarget,
  encodeSnapshotFiles,
  encodeUnbilledTarget,
  isSnapshotKey,
  type SnapshotFile,
  snapshotEntitySchema,
  snapshotKey,
  UNBILLED_PARTS,
  UNBILLED_STATES,
  UNBILLED_TRANSITIONS,
} from '../../src/storage/unbilled.js';

describe('snapshotKey', () => {
  test('is unbilled-YYYYMMDD-YYYYMM-CUR, recognised by isSnapshotKey, and a valid owner id', () => {
    const key = snapshotKey('2026-11-30', '2026-11', 'EUR');
    expect(key).toBe('unbilled-20261130-202611-EUR');
    expect(isSnapshotKey(key)).toBe(true);
    expect(isSafeId(key)).toBe(true);
  });

  test.each([
    ['20261130', '2026-11', 'EUR'],
    ['2026-11-30', '2026-13', 'EUR'],
    ['2026-11-30', '2026-00', 'EUR'],
    ['2026-11-30', '202611', 'EUR'],
    ['2026-11-30', '2026-11', 'eur'],
    ['2026-11-30', '2026-11', 'EURO'],
    ['2026-11-30x', '2026-11', 'EUR'],
    ['x2026-11-30', '2026-11', 'EUR'],
    ['2026-11-30', 'x2026-11', 'EUR'],
    ['2026-11-30', '2026-111', 'EUR'],
  ])('refuses (%s, %s, %s), naming all three values and the expected shapes', (day, month, currency) => {
    expect(() => snapshotKey(day, month, currency)).toThrow(
      `Invalid unbilled snapshot (${JSON.stringify(day)}, ${JSON.stringify(month)}, ${JSON.stringify(currency)}): expected YYYY-MM-DD, YYYY-MM and a 3-letter currency`,
    );
  });

  test.each([
    'G012040490',
    'unbilled-20261130-202611-eur',
    'unbilled-2026113-202611-EUR',
    'unbilled-20261130-202611-EUR-x',
    'xunbilled-20261130-202611-EUR',
    'unbilled-20261130-2026-11-EUR',
  ])('%s is not a snapshot key', (id) => {
    expect(isSnapshotKey(id)).toBe(false);
  });
});

describe('state machine', () => {
  test('complete is final; queued and failed can go to any state', () => {
    expect([...UNBILLED_STATES]).toEqual(['queued', 'complete', 'failed']);
    expect([...UNBILLED_TRANSITIONS.complete]).toEqual(['complete']);
    expect([...UNBILLED_TRANSITIONS.queued].sort()).toEqual(['complete', 'failed', 'queued']);
    expect([...UNBILLED_TRANSITIONS.failed].sort()).toEqual(['complete', 'failed', 'queued']);
  });

  test('the two parts: usage through the v2 usage export, billing through the reconciliation export', () => {
    expect(UNBILLED_PARTS.map((p) => [p.partId, p.lineItemType, p.v2Kind])).toEqual([
      ['usage', 'usage', 'usage'],
      ['billing', 'billing', 'reconciliation'],
    ]);
  });
});

describe('the JSON columns', () => {
  test('a target round-trips, and nothing else is accepted', () => {
    const target = { currencyCode: 'USD', billingPeriod: '2026-12', requestedAs: 'current' as const };
    expect(decodeUnbilledTarget(encodeUnbilledTarget(target))).toEqual(target);
    expect(decodeUnbilledTarget(encodeUnbilledTarget({ currencyCode: 'USD', billingPeriod: '2026-11' }))).toEqual({
      currencyCode: 'USD',
      billingPeriod: '2026-11',
    });
    expect(decodeUnbilledTarget(undefined)).toBeUndefined();
    expect(decodeUnbilledTarget('')).toBeUndefined();
    expect(() => encodeUnbilledTarget({ currencyCode: 'USD', billingPeriod: 'current' })).toThrow();
    expect(() => encodeUnbilledTarget({ currencyCode: 'usd', billingPeriod: '2026-11' })).toThrow();
    expect(() => decodeUnbilledTarget('{"currencyCode":"USD","billingPeriod":"2026-11","extra":1}')).toThrow();
    expect(() =>
      decodeUnbilledTarget('{"currencyCode":"USD","billingPeriod":"2026-11","requestedAs":"next"}'),
    ).toThrow();
  });

  const file: SnapshotFile = {
    lineItemType: 'usage',
    path: 'unbilled/billing_period=2026-11/currency=USD/snapshot_date=2026-11-30/usage.ndjson',
    rows: 162,
    bytes: 1000,
    sha256: 'ab'.repeat(32),
    total: '68790.23',
  };

  test('snapshot files round-trip exactly; an entity without files has none', () => {
    const files = [
      file,
      { ...file, lineItemType: 'billing', total: null, v2Etag: '"0x1"', requestedAs: 'last' as const },
    ];
    expect(decodeSnapshotFiles({ files: encodeSnapshotFiles(files) })).toEqual(files);
    expect(decodeSnapshotFiles({})).toEqual([]);
    expect(decodeSnapshotFiles({ files: '' })).toEqual([]);
  });

  test.each([
    ['negative rows', { ...file, rows: -1 }],
    ['fractional bytes', { ...file, bytes: 1.5 }],
    ['a numeric total', { ...file, total: 68790.23 }],
    ['an unknown field', { ...file, note: 'x' }],
    ['no sha256', { ...file, sha256: undefined }],
  ])('a file with %s is refused on write and on read', (_, bad) => {
    expect(() => encodeSnapshotFiles([bad as unknown as SnapshotFile])).toThrow();
    expect(() => decodeSnapshotFiles({ files: JSON.stringify([bad]) })).toThrow();
  });

  test('the entity schema checks its key, day, month, currency, state and run count', () => {
    const entity = {
      snapshotKey: 'unbilled-20261130-202611-USD',
      snapshotDate: '2026-11-30',
      billingPeriod: '2026-11',
      currency: 'USD',
      state: 'queued',
      runs: 1,
      requestedAt: '2026-11-30T01:00:00.000Z',
      updatedAt: '2026-11-30T01:00:00.000Z',
      correlationId: 'c',
    };
    expect(snapshotEntitySchema.parse(entity)).toEqual(entity);
    for (const [field, value] of [
      ['snapshotKey', 'G012040490'],
      ['snapshotDate', '20261130'],
      ['billingPeriod', '2026-13'],
      ['currency', 'usd'],
      ['state', 'done'],
      ['runs', -1],
      ['runs', 0.5],
    ] as const) {
      expect(snapshotEntitySchema.safeParse({ ...entity, [field]: value }).success, `${field} = ${value}`).toBe(false);
    }
  });
});
