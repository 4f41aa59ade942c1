// The v2 line reader byte by byte: blob URLs from the manifest (ref §6.3: `${rootDirectory}/${name}?${sasToken}`),
// the ItemCount forms a blob may carry, the error texts a failed read reports, and the line splitter's edges (gzip
// magic, BOM only at the start, blank lines, the cap while a line is still pending, bodies of strings or without
// destroy, the body closed when reading stops).
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { LineTooLongError, ManifestMismatchError } from '../../src/graph/errors.js';
import {
  blobUrl,
  jsonLineBatches,
  jsonLines,
  type Manifest,
  type ManifestCheckpoint,
  manifestSchema,
  readManifestPages,
} from '../../src/graph/lines.js';
import type { Page } from '../../src/http/paging.js';

const base = {
  eTag: 'e1',
  rootDirectory: 'https://x.blob.core.windows.net/c/dir',
  sasToken: 'sv=1&sig=abc',
  blobCount: 1,
  blobs: [{ name: 'part-0.json.gz' }],
};
const manifestWith = (extra: Record<string, unknown>) => manifestSchema.parse({ ...base, ...extra });

async function linesOf(body: NodeJS.ReadableStream | AsyncIterable<unknown>, maxLineBytes = 1024): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of jsonLines(body as NodeJS.ReadableStream, { maxLineBytes })) lines.push(line.toString());
  return lines;
}

/** The rejection of a read, with the lines served before it. */
async function failureOf(
  body: NodeJS.ReadableStream,
  maxLineBytes: number,
): Promise<{ lines: string[]; error: Error }> {
  const lines: string[] = [];
  try {
    for await (const line of jsonLines(body, { maxLineBytes })) lines.push(line.toString());
  } catch (error) {
    return { lines, error: error as Error };
  }
  throw new Error(`no error; read ${JSON.stringify(lines)}`);
}

/**
 * A body delivering each piece as its own chunk: the next piece comes only after a turn of the event loop, when the
 * reader has taken the last one (a reader buffering ahead would otherwise merge them).
 */
const chunks = (...pieces: (string | number[])[]) =>
  Readable.from(
    (async function* () {
      for (const p of pieces) {
        await new Promise((resolve) => setImmediate(resolve));
        yield typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p);
      }
    })(),
  );

describe('blobUrl (ref §6.3)', () => {
  it('joins rootDirectory, the blob name and the SAS with one slash and one question mark', () => {
    const m = manifestWith({ rootDirectory: 'https://x.blob.core.windows.net/c/dir//', sasToken: '?sv=1&sig=a%2Fb' });
    expect(m.sasToken).toBe('sv=1&sig=a%2Fb');
    expect(blobUrl(m, { name: '//part-0.json.gz' })).toBe(
      'https://x.blob.core.windows.net/c/dir/part-0.json.gz?sv=1&sig=a%2Fb',
    );
    expect(blobUrl(m, { name: '/part-0.json.gz' })).toBe(
      'https://x.blob.core.windows.net/c/dir/part-0.json.gz?sv=1&sig=a%2Fb',
    );
    expect(blobUrl(manifestWith({ rootDirectory: 'https://x.blob.core.windows.net/c/dir/' }), { name: 'p' })).toBe(
      'https://x.blob.core.windows.net/c/dir/p?sv=1&sig=abc',
    );
  });

  it('keeps the folders of a blob name, each segment escaped, and a "?" that is not leading in the SAS', () => {
    const m = manifestWith({ sasToken: 'sv=1&x=a?b' });
    expect(m.sasToken).toBe('sv=1&x=a?b');
    expect(blobUrl(m, { name: 'Month=2024 08/part 1#.json.gz' })).toBe(
      'https://x.blob.core.windows.net/c/dir/Month%3D2024%2008/part%201%23.json.gz?sv=1&x=a?b',
    );
  });

  it('an empty SAS gives the URL without a query string', () => {
    expect(blobUrl(manifestWith({ sasToken: '' }), { name: 'part-0.json.gz' })).toBe(
      'https://x.blob.core.windows.net/c/dir/part-0.json.gz',
    );
    expect(blobUrl(manifestWith({ sasToken: '?' }), { name: 'p' })).toBe('https://x.blob.core.windows.net/c/dir/p');
  });
});

const rowsText = (n: number) => Array.from({ length: n }, (_, i) => `{"Line":${i}}`).join('\n');

async function readAll(m: Manifest, texts: string[], maxLineBytes = 1024, checkpoint?: ManifestCheckpoint) {
  const pages: Page<ManifestCheckpoint>[] = [];
  for await (const page of readManifestPages(m, {
    checkpoint: checkpoint ?? { blobIndex: 0, line: 0, rowsThrough: 0 },
    maxLines: 100,
    maxLineBytes,
    open: async (_url, blobIndex) => Readable.from([gzipSync(Buffer.from(texts[blobIndex] as string))]),
  })) {
    pages.push(page);
  }
  return pages;
}

describe('ItemCount of a blob', () => {
  const counted = (ItemCount: unknown) => manifestWith({ blobs: [{ name: 'p', ItemCount }] });

  it('accepts a count as a number or as a string of digits (padded or of several digits); null is no count', async () => {
    for (const ItemCount of [12, '12', ' 12 ', null]) {
      const pages = await readAll(counted(ItemCount), [rowsText(12)]);
      expect(pages.map((p) => p.rows)).toEqual([12]);
    }
    const nullLower = manifestWith({ blobs: [{ name: 'p', itemCount: null }] });
    expect((await readAll(nullLower, [rowsText(12)])).map((p) => p.rows)).toEqual([12]);
    const both = manifestWith({ blobs: [{ name: 'p', ItemCount: null, itemCount: 3 }] });
    await expect(readAll(both, [rowsText(12)])).rejects.toThrow(
      'Export manifest check failed: blob 0 has 12 lines but its ItemCount is 3',
    );
  });

  it('refuses a value that is not a count, naming it', async () => {
    for (const [ItemCount, shown] of [
      [-1, '-1'],
      [1.5, '1.5'],
      ['+12', '"+12"'],
      ['1e1', '"1e1"'],
      ['0x0c', '"0x0c"'],
      ['12x', '"12x"'],
      ['-12', '"-12"'],
      ['', '""'],
      [true, 'true'],
      [[12], '[12]'],
    ] as const) {
      const error = await readAll(counted(ItemCount), [rowsText(12)]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ManifestMismatchError);
      expect((error as Error).message).toBe(
        `Export manifest check failed: blob 0 has an ItemCount that is not a count (${shown})`,
      );
    }
  });
});

describe('errors of a manifest read', () => {
  it('a checkpoint past the blobs names both counts', async () => {
    const m = manifestWith({});
    await expect(readAll(m, [rowsText(2)], 1024, { blobIndex: 2, line: 0, rowsThrough: 2 })).rejects.toThrow(
      new ManifestMismatchError('checkpoint at blob 2, but the manifest lists 1 blobs'),
    );
  });

  it('a line over the cap names its blob', async () => {
    const m = manifestWith({ blobCount: 2, blobs: [{ name: 'a' }, { name: 'b' }] });
    const error = await readAll(m, [rowsText(2), `{"a":1}\n{"p":"${'x'.repeat(40)}"}\n`], 20).catch((e) => e);
    expect(error).toBeInstanceOf(LineTooLongError);
    expect(error.message).toBe(
      'Line 2 of blob 1 is longer than maxLineBytes = 20 bytes (setting MAX_LINE_BYTES); not read further',
    );
  });
});

describe('jsonLines: the bytes of each line', () => {
  it('drops lines of spaces, tabs and CRs only; keeps a line with anything else', async () => {
    expect(await linesOf(chunks('{"a":1}\n\t\t\n \r\r\n\r\n\t \r \n{"a":2}\n \tx\n'))).toEqual([
      '{"a":1}',
      '{"a":2}',
      ' \tx',
    ]);
  });

  it('drops a BOM only at the very start: U+FEFF at the start of a later chunk is data', async () => {
    const bom = [0xef, 0xbb, 0xbf];
    expect(await linesOf(chunks([...bom, ...Buffer.from('{"a":"')], [...bom, ...Buffer.from('x"}\n')]))).toEqual([
      '{"a":"\uFEFFx"}',
    ]);
    expect(await linesOf(chunks('{"a":1}\n', [...bom, ...Buffer.from('{"a":2}\n')]))).toEqual([
      '{"a":1}',
      '\uFEFF{"a":2}',
    ]);
  });

  it('reads gzip only on both magic bytes: a plain body starting with 0x1f or with 0x8b second is plain', async () => {
    expect(await linesOf(chunks('\u001f{"a":1}\n'))).toEqual(['\u001f{"a":1}']);
    // "Ë" is C3 8B in UTF-8.
    expect(await linesOf(chunks('Ë{"a":1}\n'))).toEqual(['Ë{"a":1}']);
    expect(await linesOf(Readable.from([gzipSync(Buffer.from('{"a":1}\n'))]))).toEqual(['{"a":1}']);
  });

  it('an empty body has no lines; a body of one byte has one', async () => {
    expect(await linesOf(Readable.from([]))).toEqual([]);
    expect(await linesOf(chunks('7'))).toEqual(['7']);
    expect(await linesOf(chunks('\n'))).toEqual([]);
  });

  it('reads a body that yields strings (a stream with an encoding set)', async () => {
    const body = Readable.from([Buffer.from('{"a":"é"}\n{"b":'), Buffer.from('2}\n{"c":3}')]).setEncoding('utf8');
    expect(await linesOf(body)).toEqual(['{"a":"é"}', '{"b":2}', '{"c":3}']);
    expect(await linesOf(Readable.from(['{"a":1}\n{"b"', ':2}\n'], { objectMode: true }))).toEqual([
      '{"a":1}',
      '{"b":2}',
    ]);
  });

  it('reads a body that is only async-iterable (no destroy method)', async () => {
    async function* body() {
      yield Buffer.from('{"a":1}\n');
      yield Buffer.from('{"a":2}\n');
    }
    expect(await linesOf(body())).toEqual(['{"a":1}', '{"a":2}']);
  });

  it('closes the body when the reader stops early, and when the read fails', async () => {
    const body = Readable.from(Array.from({ length: 50 }, (_, i) => Buffer.from(`{"a":${i}}\n`)));
    for await (const line of jsonLines(body, { maxLineBytes: 100 })) {
      expect(line.toString()).toBe('{"a":0}');
      break;
    }
    expect(body.destroyed).toBe(true);
    const failing = Readable.from([Buffer.from(`${'x'.repeat(30)}\n`), Buffer.from('{"a":1}\n')]);
    await expect(linesOf(failing, 10)).rejects.toThrow(LineTooLongError);
    expect(failing.destroyed).toBe(true);
  });
});

describe('jsonLines: the cap on a line still pending', () => {
  const cap = 100;
  const line = (n: number) => `{"p":"${'x'.repeat(n - 8)}"}`;

  it('a line of exactly the cap whose CR ends one chunk and LF starts the next passes', async () => {
    expect(await linesOf(chunks(`${line(cap)}\r`, `\n${line(10)}\n`), cap)).toEqual([line(cap), line(10)]);
  });

  it('a tail after a line break counts only its own bytes', async () => {
    // The first chunk is 111 bytes; its tail, 95 of them, is still under the cap.
    const tail = `{"p":"${'x'.repeat(89)}`;
    expect(await linesOf(chunks(`{"a":9}\n${'x'.repeat(8)}\n${tail}`, '"}\n'), cap)).toEqual([
      '{"a":9}',
      'x'.repeat(8),
      `${tail}"}`,
    ]);
  });

  it('fails on the chunk where the pending line passes the cap, naming that line', async () => {
    const { lines, error } = await failureOf(chunks('{"a":1}\n{"a":2}\n', `{"a":3}\n${'x'.repeat(cap + 2)}`), cap);
    expect(error).toBeInstanceOf(LineTooLongError);
    expect(error.message).toBe(
      'Line 4 of export blob is longer than maxLineBytes = 100 bytes (setting MAX_LINE_BYTES); not read further',
    );
    // The chunk that held line 3 failed as a whole: only the lines of the chunk before it were served.
    expect(lines).toEqual(['{"a":1}', '{"a":2}']);
  });

  it('an endless plain line fails after reading the cap and a chunk more, not the whole body', async () => {
    const piece = 256 * 1024;
    let pulled = 0;
    async function* endless() {
      for (let i = 0; i < 64; i++) {
        pulled += piece;
        yield Buffer.alloc(piece, 'a');
      }
    }
    await expect(linesOf(endless(), 1024 * 1024)).rejects.toThrow(LineTooLongError);
    expect(pulled).toBeLessThanOrEqual(1024 * 1024 + 2 * piece);
  });
});

describe('jsonLineBatches', () => {
  it('one batch per chunk that completes a line; a chunk that completes none yields no batch', async () => {
    const batches: string[][] = [];
    const body = chunks('{"a":1}\n{"a":', '2', '}\n', '\n\n', '{"a":3}\n{"a":4}');
    for await (const batch of jsonLineBatches(body, { maxLineBytes: 100 })) {
      batches.push(batch.map((b) => b.toString()));
    }
    expect(batches).toEqual([['{"a":1}'], ['{"a":2}'], ['{"a":3}'], ['{"a":4}']]);
  });

  it('inflates gzip in 64 KiB pieces: about 1 MiB of lines comes in 17 batches at most', async () => {
    const text = Array.from({ length: 32_768 }, (_, i) => `{"Line":${String(i).padStart(21, '0')}}`).join('\n');
    expect(text.length).toBeLessThanOrEqual(17 * 64 * 1024);
    let batches = 0;
    let lines = 0;
    for await (const batch of jsonLineBatches(Readable.from([gzipSync(Buffer.from(text))]), { maxLineBytes: 100 })) {
      batches++;
      lines += batch.length;
    }
    expect(lines).toBe(32_768);
    expect(batches).toBeLessThanOrEqual(17);
  });
});
