// The manifest page reader on real gzip bytes: paging, CRLF and blank lines, resume equivalence across blobs,
// manifest checks, and the line cap (just under/over, split multi-byte characters, a gzip bomb).
import { Readable } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  checkManifest,
  jsonLines,
  LineTooLongError,
  type Manifest,
  type ManifestCheckpoint,
  ManifestMismatchError,
  manifestSchema,
  UnsupportedDataFormatError,
} from '../../src/graph/index.js';
import { readManifestPages } from '../../src/graph/lines.js';
import type { Page } from '../../src/http/paging.js';

const row = (b: number, i: number) =>
  `{"InvoiceNumber":"G000000001","Blob":${b},"Line":${i},"Note":"caf\u00e9 \\u00e9 \u{1F600}"}`;
const blobTexts = [
  Array.from({ length: 7 }, (_, i) => row(0, i)).join('\r\n'),
  '',
  `${Array.from({ length: 5 }, (_, i) => row(2, i)).join('\n')}\n\n`,
  Array.from({ length: 4 }, (_, i) => row(3, i)).join('\n'),
];
const expected = [0, 2, 3].flatMap((b) => Array.from({ length: b === 0 ? 7 : b === 2 ? 5 : 4 }, (_, i) => row(b, i)));

const manifestOf = (extra: Record<string, unknown> = {}, blobs: Record<string, unknown>[] = []) =>
  manifestSchema.parse({
    eTag: 'e1',
    rootDirectory: 'https://x.blob.core.windows.net/c/dir',
    sasToken: 'sv=1&sig=abc',
    blobCount: blobTexts.length,
    blobs: blobTexts.map((_, i) => ({ name: `part-${i}.json.gz`, partitionValue: 'default', ...blobs[i] })),
    ...extra,
  });
const manifest = manifestOf();

/** Real gzip bytes, delivered in small pieces so lines and multi-byte characters straddle chunk edges. */
function gzipStream(text: string): NodeJS.ReadableStream {
  const bytes = gzipSync(Buffer.from(text, 'utf8'));
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 7) pieces.push(bytes.subarray(i, i + 7));
  return Readable.from(pieces);
}

type ManifestPage = Page<ManifestCheckpoint>;
const rowsOf = (page: ManifestPage) => (page.rows === 0 ? [] : page.ndjson.toString('utf8').slice(0, -1).split('\n'));

async function collect(
  checkpoint: ManifestCheckpoint = { blobIndex: 0, line: 0, rowsThrough: 0 },
  maxLines = 3,
  m: Manifest = manifest,
): Promise<ManifestPage[]> {
  const pages: ManifestPage[] = [];
  for await (const page of readManifestPages(m, {
    checkpoint,
    maxLines,
    maxLineBytes: 1024,
    open: async (url, blobIndex) => {
      expect(url).toBe(`https://x.blob.core.windows.net/c/dir/part-${blobIndex}.json.gz?sv=1&sig=abc`);
      return gzipStream(blobTexts[blobIndex]!);
    },
  })) {
    pages.push(page);
  }
  return pages;
}

async function linesOf(body: NodeJS.ReadableStream, maxLineBytes = 1024): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of jsonLines(body, { maxLineBytes })) lines.push(line.toString('utf8'));
  return lines;
}

describe('manifest pages', () => {
  it('yields every non-empty line verbatim, in pages of at most maxLines, last page next=null', async () => {
    const pages = await collect();
    expect(pages.flatMap(rowsOf)).toEqual(expected);
    expect(pages.every((p) => p.rows > 0 && p.rows <= 3 && rowsOf(p).length === p.rows)).toBe(true);
    expect(pages.every((p) => p.ndjson.toString('utf8').endsWith('\n'))).toBe(true);
    expect(pages.at(-1)!.next).toBeNull();
    expect(pages.slice(0, -1).every((p) => p.next !== null)).toBe(true);
    // rowsThrough counts from the start of the manifest; the checkpoint carries it.
    let total = 0;
    for (const p of pages) {
      total += p.rows;
      expect(p.rowsThrough).toBe(total);
      if (p.next) expect(p.next.rowsThrough).toBe(total);
    }
    // Rows never span blobs, so a page belongs to one blob.
    for (const p of pages) expect(new Set(rowsOf(p).map((r) => JSON.parse(r).Blob)).size).toBe(1);
  });

  it('resuming from every checkpoint gives exactly the rest of a straight read', async () => {
    const straight = await collect();
    for (const [k, page] of straight.entries()) {
      if (!page.next) break;
      const resumed = await collect(JSON.parse(JSON.stringify(page.next)));
      expect(resumed).toEqual(straight.slice(k + 1));
    }
  });

  it('a checkpoint at the end yields one empty final page', async () => {
    const pages = await collect({ blobIndex: 4, line: 0, rowsThrough: 16 });
    expect(pages).toEqual([{ ndjson: Buffer.alloc(0), rows: 0, rowsThrough: 16, next: null }]);
  });

  it('a checkpoint past the data is refused, not read as "no more rows"', async () => {
    await expect(collect({ blobIndex: 5, line: 0, rowsThrough: 16 })).rejects.toThrow(ManifestMismatchError);
    await expect(collect({ blobIndex: 3, line: 9, rowsThrough: 12 })).rejects.toThrow(
      /checkpoint at line 9 of blob 3, which has only 4 lines/,
    );
  });

  it('checks a blob ItemCount (or itemCount) against the lines read', async () => {
    const counted = manifestOf({}, [{ ItemCount: 7 }, { itemCount: '0' }, { ItemCount: 5 }, { itemCount: 4 }]);
    expect((await collect(undefined, 3, counted)).flatMap(rowsOf)).toEqual(expected);
    const wrong = manifestOf({}, [{ ItemCount: 7 }, {}, { ItemCount: 6 }]);
    await expect(collect(undefined, 3, wrong)).rejects.toThrow(/blob 2 has 5 lines but its ItemCount is 6/);
    const resumedWrong = manifestOf({}, [{ ItemCount: 8 }]);
    await expect(collect({ blobIndex: 0, line: 3, rowsThrough: 3 }, 3, resumedWrong)).rejects.toThrow(
      /blob 0 has 7 lines but its ItemCount is 8/,
    );
  });
});

describe('checkManifest', () => {
  it('reads compressedJSON, compressedJSONLines (any case) and an absent dataFormat as gzip JSON Lines', () => {
    for (const dataFormat of ['compressedJSON', 'compressedJSONLines', 'COMPRESSEDJSON', 'compressedjsonlines']) {
      expect(() => checkManifest(manifestOf({ dataFormat }))).not.toThrow();
    }
    expect(() => checkManifest(manifestOf())).not.toThrow();
  });

  it('refuses any other dataFormat and a blobCount that does not match the blobs', () => {
    for (const dataFormat of ['parquet', 'csv', 'compressedCSV', '']) {
      expect(() => checkManifest(manifestOf({ dataFormat }))).toThrow(UnsupportedDataFormatError);
    }
    expect(() => checkManifest(manifestOf({ dataFormat: 'parquet' }))).toThrow(/"parquet" is not supported/);
    expect(() => checkManifest(manifestOf({ blobCount: 5 }))).toThrow(/blobCount 5 but lists 4 blobs/);
  });
});

describe('jsonLines', () => {
  it('reads plain (already decoded) bytes, CRLF, blank lines and a leading BOM', async () => {
    expect(await linesOf(Readable.from([Buffer.from('\uFEFF{"a":1}\r\n{"a":2}\n\n \r\n{"a":3}')]))).toEqual([
      '{"a":1}',
      '{"a":2}',
      '{"a":3}',
    ]);
  });

  it('keeps a multi-byte character split across chunks intact', async () => {
    const text = '{"s":"é☃😀"}\n{"s":"日本"}\n';
    const bytes = Buffer.from(text, 'utf8');
    // One byte per chunk: every multi-byte character is cut.
    const pieces = Array.from(bytes, (b) => Buffer.from([b]));
    expect(await linesOf(Readable.from(pieces))).toEqual(['{"s":"é☃😀"}', '{"s":"日本"}']);
  });

  it('a line of exactly maxLineBytes passes; one byte more fails with the cap error', async () => {
    const line = (n: number) => `{"p":"${'x'.repeat(n - 8)}"}`;
    expect(line(100)).toHaveLength(100);
    const pieces = (text: string) =>
      Readable.from(
        Array.from({ length: Math.ceil(text.length / 9) }, (_, i) => Buffer.from(text.slice(i * 9, i * 9 + 9))),
      );
    expect(await linesOf(pieces(`${line(100)}\r\n${line(50)}\n`), 100)).toEqual([line(100), line(50)]);
    expect(await linesOf(pieces(line(100)), 100)).toEqual([line(100)]);
    await expect(linesOf(pieces(`${line(50)}\n${line(101)}\n`), 100)).rejects.toThrow(LineTooLongError);
    await expect(linesOf(pieces(`${line(50)}\n${line(101)}`), 100)).rejects.toThrow(
      /Line 2 of export blob is longer than maxLineBytes = 100 bytes \(setting MAX_LINE_BYTES\)/,
    );
    await expect(linesOf(Readable.from([Buffer.from(`${line(101)}\n`)]), 100)).rejects.toThrow(LineTooLongError);
  });

  it('a gzip bomb (one endless line) fails on the cap after reading a sliver of it', async () => {
    // 256 MiB of one line inflate from about 250 KiB of gzip; made here, streamed, never held whole.
    const gzip = createGzip({ level: 1 });
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    const compressed: Buffer[] = [];
    gzip.on('data', (c: Buffer) => compressed.push(c));
    const done = new Promise((resolve) => gzip.on('end', resolve));
    gzip.write('{"p":"');
    for (let i = 0; i < 256; i++) gzip.write(chunk);
    gzip.end('"}\n');
    await done;
    const bomb = Buffer.concat(compressed);
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    let pulled = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < bomb.length; i += 1024) {
          pulled += Math.min(1024, bomb.length - i);
          yield bomb.subarray(i, i + 1024);
        }
      })(),
    );
    await expect(linesOf(source, 1024 * 1024)).rejects.toThrow(LineTooLongError);
    // Stopped at the cap: only a small part of the compressed bytes was ever pulled (and inflated).
    expect(pulled).toBeLessThan(bomb.length / 4);
  });

  it('recognises gzip even when it arrives one byte at a time', async () => {
    const bytes = gzipSync(Buffer.from('{"a":1}\n{"a":2}\n'));
    expect(await linesOf(Readable.from(Array.from(bytes, (b) => Buffer.from([b]))))).toEqual(['{"a":1}', '{"a":2}']);
  });

  it('surfaces a corrupt gzip stream as an error', async () => {
    const bytes = gzipSync(Buffer.from(expected.join('\n')));
    const corrupt = Buffer.concat([bytes.subarray(0, 20), Buffer.alloc(40, 7)]);
    await expect(linesOf(Readable.from([corrupt]))).rejects.toThrow();
  });
});
