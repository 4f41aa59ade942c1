// ndjsonOf builds the block a v2 page is staged as: each row's bytes as read, each followed by one newline.
import { describe, expect, test } from 'vitest';
import { ndjsonOf } from '../../src/http/paging.js';

describe('ndjsonOf', () => {
  test('every row followed by one newline, bytes untouched (invalid UTF-8 included)', () => {
    const rows = [Buffer.from('{"a":1}'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), Buffer.from('{"b":"é"}')];
    const block = ndjsonOf(rows);
    expect(block).toEqual(
      Buffer.concat([
        rows[0] as Buffer,
        Buffer.from('\n'),
        rows[1] as Buffer,
        Buffer.from('\n'),
        rows[2] as Buffer,
        Buffer.from('\n'),
      ]),
    );
    expect(block.length).toBe(rows.reduce((n, r) => n + r.length + 1, 0));
  });

  test('no rows is an empty block; an empty row is an empty line', () => {
    expect(ndjsonOf([]).length).toBe(0);
    expect(ndjsonOf([Buffer.alloc(0), Buffer.from('x')]).toString('latin1')).toBe('\nx\n');
  });

  test('the block is a copy: a row read into a reused buffer afterwards does not change it', () => {
    const chunk = Buffer.from('{"a":1}{"b":2}');
    const block = ndjsonOf([chunk.subarray(0, 7), chunk.subarray(7)]);
    chunk.fill(0x20);
    expect(block.toString('latin1')).toBe('{"a":1}\n{"b":2}\n');
  });
});
