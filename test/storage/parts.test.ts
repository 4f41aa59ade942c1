import { describe, expect, it } from 'vitest';
import {
  advance,
  CorruptProgressError,
  decodeHistory,
  decodeProgress,
  encodeHistory,
  encodeProgress,
  epochOf,
  PART_ENTITY_VERSION,
  PART_STATES,
  type PartProgress,
  PENDING,
  progressOf,
  resetProgress,
  START,
  TERMINAL,
} from '../../src/storage/parts.js';

describe('part states', () => {
  it('every state is either terminal or pending, never both', () => {
    for (const state of PART_STATES) expect(TERMINAL.has(state) !== PENDING.has(state)).toBe(true);
  });
});

describe('progress is one value: checkpoint and counters together', () => {
  const page = (rows: number, next: PartProgress['at'], rowsThrough: number) => ({
    rows,
    bytes: rows * 10,
    next,
    rowsThrough,
  });

  it('advance moves checkpoint, blocks, rows and bytes together, and records the epoch of each block', () => {
    let p = START;
    p = advance(p, page(2, { kind: 'offset', pageIndex: 1, offset: 2 }, 2), 1);
    p = advance(p, page(0, { kind: 'offset', pageIndex: 2, offset: 2 }, 2), 1); // an empty page stages nothing
    p = advance(p, page(3, { kind: 'offset', pageIndex: 3, offset: 5 }, 5), 2); // a new owner took over
    p = advance(p, page(1, null, 6), 2);
    expect(p).toEqual({
      at: { kind: 'staged', rowsThrough: 6 },
      blocks: 3,
      rows: 6,
      bytes: 60,
      epochs: [
        [0, 1],
        [1, 2],
      ],
    });
    expect([0, 1, 2].map((i) => epochOf(p, i))).toEqual([1, 2, 2]);
    expect(() => epochOf(START, 0)).toThrow(CorruptProgressError);
  });

  it('round-trips through the ledger text and is validated on the way back in', () => {
    const p: PartProgress = {
      at: {
        kind: 'seek',
        pageIndex: 4,
        uri: '/v1/invoices/G1/lineitems?x=1',
        headers: { 'MS-ContinuationToken': 'a,b/c=' },
        rowsThrough: 40,
      },
      blocks: 4,
      rows: 40,
      bytes: 4000,
      epochs: [[0, 7]],
    };
    expect(decodeProgress(encodeProgress(p))).toEqual(p);
    expect(
      decodeProgress(encodeProgress({ ...p, at: { kind: 'manifest', at: { blobIndex: 1, line: 3, rowsThrough: 9 } } }))
        .at,
    ).toEqual({
      kind: 'manifest',
      at: { blobIndex: 1, line: 3, rowsThrough: 9 },
    });
    // Every page staged: the source's count is kept (any count, zero or more).
    for (const rowsThrough of [0, 40]) {
      expect(decodeProgress(encodeProgress({ ...p, at: { kind: 'staged', rowsThrough } })).at).toEqual({
        kind: 'staged',
        rowsThrough,
      });
    }
    expect(() => encodeProgress({ ...p, at: { kind: 'staged', rowsThrough: -1 } })).toThrow();
    expect(decodeProgress(undefined)).toEqual(START);
    expect(() => decodeProgress('END')).toThrow(/not JSON/);
    expect(() => decodeProgress('{"at":"END","blocks":1,"rows":1,"bytes":1,"epochs":[]}')).toThrow(/does not validate/);
    expect(() => decodeProgress(JSON.stringify({ ...p, at: { kind: 'seek', pageIndex: 1 } }))).toThrow(
      CorruptProgressError,
    );
    expect(() => encodeProgress({ ...p, rows: -1 })).toThrow();
  });

  it('earlier file versions are validated too', () => {
    const history = [{ path: 'p', v2Etag: 'e', rows: 1, bytes: 2, sha256: 's', replacedAt: 't' }];
    expect(decodeHistory(encodeHistory(history))).toEqual(history);
    expect(decodeHistory(undefined)).toEqual([]);
    expect(() => decodeHistory('[{"path":1}]')).toThrow(CorruptProgressError);
  });
});

describe('progress edge cases', () => {
  it('an empty stored value is START; a value that is not JSON is quoted (40 characters at most)', () => {
    expect(decodeProgress('')).toBe(START);
    expect(decodeProgress(undefined)).toBe(START);
    expect(() => decodeProgress('END')).toThrow(
      new CorruptProgressError('stored progress is not JSON (starts with "END")'),
    );
    expect(() => decodeProgress(`{${'x'.repeat(100)}`)).toThrow(
      `stored progress is not JSON (starts with ${JSON.stringify(`{${'x'.repeat(39)}`)})`,
    );
    const error = (() => {
      try {
        decodeProgress('nope');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ name: 'CorruptProgressError', retriable: false });
  });

  it('a value that does not validate names each problem by its path, (root) for the whole value', () => {
    expect(() => decodeProgress('[]')).toThrow(/^stored progress does not validate: \(root\): /);
    const message = (() => {
      try {
        decodeProgress('{"at":null,"blocks":-1,"rows":1,"bytes":"x","epochs":[]}');
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(message).toMatch(/^stored progress does not validate: blocks: [^;]+; bytes: [^;]+$/);
    expect(() => decodeProgress('{"at":null,"blocks":0,"rows":0,"bytes":0,"epochs":[[0,"e"]]}')).toThrow(
      /: epochs\.0\.1: /,
    );
  });

  it('epochOf: the last run starting at or before the index; none before the first run', () => {
    const p = {
      epochs: [
        [2, 5],
        [4, 6],
      ] as [number, number][],
    };
    expect(() => epochOf(p, 0)).toThrow(new CorruptProgressError('no epoch recorded for block 0'));
    expect(() => epochOf(p, 1)).toThrow('no epoch recorded for block 1');
    expect([2, 3, 4, 5, 100].map((i) => epochOf(p, i))).toEqual([5, 5, 6, 6, 6]);
  });

  it('advance: the same owner adds no run; an empty page adds none; the last page records the source count', () => {
    let p = advance(START, { rows: 1, bytes: 3, next: { kind: 'offset', pageIndex: 1, offset: 1 }, rowsThrough: 1 }, 4);
    p = advance(p, { rows: 2, bytes: 5, next: { kind: 'offset', pageIndex: 2, offset: 3 }, rowsThrough: 3 }, 4);
    expect(p.epochs).toEqual([[0, 4]]);
    const empty = advance(p, { rows: 0, bytes: 0, next: null, rowsThrough: 3 }, 9);
    expect(empty).toEqual({ at: { kind: 'staged', rowsThrough: 3 }, blocks: 2, rows: 3, bytes: 8, epochs: [[0, 4]] });
    // The value it started from is not changed.
    expect(p.at).toEqual({ kind: 'offset', pageIndex: 2, offset: 3 });
    expect(START).toEqual({ at: null, blocks: 0, rows: 0, bytes: 0, epochs: [] });
  });

  it('resetProgress starts over from START; progressOf reads a part', () => {
    expect(resetProgress()).toEqual({ progress: encodeProgress(START) });
    expect(progressOf({ progress: resetProgress().progress })).toEqual(START);
    expect(progressOf({})).toBe(START);
  });

  it('history: empty is none; a wrong shape or bad JSON is refused', () => {
    expect(decodeHistory('')).toEqual([]);
    expect(() => decodeHistory('[{"path":1}]')).toThrow(/^stored part history does not validate: /);
    expect(() => decodeHistory('{')).toThrow();
    expect(() =>
      encodeHistory([{ path: 'p', v2Etag: 'e', rows: -1, bytes: 0, sha256: 's', replacedAt: 't' }]),
    ).toThrow();
  });

  it('part states: terminal and pending sets are exactly these', () => {
    expect([...TERMINAL].sort()).toEqual(['complete', 'failed', 'unsettled', 'unsupported']);
    expect([...PENDING].sort()).toEqual(['exporting', 'queued', 'waiting']);
    expect(PART_ENTITY_VERSION).toBe(2);
  });
});
