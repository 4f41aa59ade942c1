import { describe, expect, it } from 'vitest';
import {
  advance,
  CorruptProgressError,
  decodeHistory,
  decodeProgress,
  encodeHistory,
  encodeProgress,
  epochOf,
  PART_STATES,
  type PartProgress,
  PENDING,
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
