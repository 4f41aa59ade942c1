import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlobWriteError,
  blockId,
  hashBlob,
  NdjsonBlockWriter,
  uploadStreamToBlob,
  writeJsonBlob,
} from '../../src/storage/ndjson-writer.js';
import { type Azurite, startAzurite } from '../support/azurite.js';

let azurite: Azurite;
let container: ContainerClient;

beforeAll(async () => {
  azurite = await startAzurite();
  container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('writer-test');
  await container.create();
});
afterAll(async () => {
  await azurite?.stop();
});

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const download = async (name: string) => (await container.getBlobClient(name).downloadToBuffer()).toString('utf8');

/** Five small pages of verbatim JSON rows, with non-ASCII text. */
const pages = Array.from({ length: 5 }, (_, page) =>
  Array.from({ length: page + 1 }, (_, row) =>
    JSON.stringify({ page, row, name: `Contoso Größe ${page}.${row} – 請求` }),
  ),
);
const expectedText = pages.map((rows) => `${rows.join('\n')}\n`).join('');

describe('blockId', () => {
  it('is base64 of the zero-padded 10-digit index, with a fixed length', () => {
    expect(blockId(0)).toBe(Buffer.from('0000000000').toString('base64'));
    expect(Buffer.from(blockId(42), 'base64').toString()).toBe('0000000042');
    const lengths = new Set([0, 9, 10, 49_999, 9_999_999_999].map((i) => blockId(i).length));
    expect(lengths.size).toBe(1);
    expect(() => blockId(-1)).toThrow(BlobWriteError);
    expect(() => blockId(1.5)).toThrow(BlobWriteError);
    expect(() => blockId(10_000_000_000)).toThrow(BlobWriteError);
  });
});

describe('NdjsonBlockWriter', () => {
  it('stages one block per page and commits them in order; every line ends with a newline', async () => {
    const blob = container.getBlockBlobClient('straight/rows.ndjson');
    const writer = new NdjsonBlockWriter(blob);
    let bytes = 0;
    for (const [index, rows] of pages.entries()) {
      const staged = await writer.stagePage(index, rows);
      expect(staged).toMatchObject({ rows: rows.length, staged: true });
      bytes += staged.bytes;
    }
    await writer.commit(pages.length, { contentType: 'application/x-ndjson', metadata: { rows: '15' } });
    expect(await download('straight/rows.ndjson')).toBe(expectedText);
    expect(bytes).toBe(Buffer.byteLength(expectedText));
    const properties = await blob.getProperties();
    expect(properties.contentType).toBe('application/x-ndjson');
    expect(properties.metadata).toEqual({ rows: '15' });
  });

  it('resumes after a crash (new writer, re-staging pages 2-4) byte-identically to a straight run', async () => {
    const blob = container.getBlockBlobClient('resumed/rows.ndjson');
    const first = new NdjsonBlockWriter(blob);
    expect(await first.stagedBlockIds()).toEqual([]);
    for (const index of [0, 1, 2]) await first.stagePage(index, pages[index] ?? []);
    // "Crash": the first writer is gone; a new instance resumes from the checkpoint after page 1.
    const second = new NdjsonBlockWriter(container.getBlockBlobClient('resumed/rows.ndjson'));
    expect((await second.stagedBlockIds()).sort()).toEqual([blockId(0), blockId(1), blockId(2)]);
    for (const index of [2, 3, 4]) await second.stagePage(index, pages[index] ?? []);
    await second.commit(5, { contentType: 'application/x-ndjson' });
    const resumed = await download('resumed/rows.ndjson');
    expect(resumed).toBe(await download('straight/rows.ndjson'));
    expect(sha256(resumed)).toBe(sha256(expectedText));
    expect(await second.stagedBlockIds()).toEqual([]);
    // A redelivered message that commits again changes nothing.
    await second.commit(5, { contentType: 'application/x-ndjson' });
    expect(await download('resumed/rows.ndjson')).toBe(expectedText);
  });

  it('uncommitted blocks are invisible to readers', async () => {
    const blob = container.getBlockBlobClient('invisible/rows.ndjson');
    const writer = new NdjsonBlockWriter(blob);
    await writer.stagePage(0, pages[0] ?? []);
    expect(await blob.exists()).toBe(false);
    await writer.commit(1, { contentType: 'application/x-ndjson' });
    const committed = await download('invisible/rows.ndjson');
    // Staging a replacement for a committed blob does not change what readers see until the next commit.
    await writer.stagePage(0, ['{"replaced":true}']);
    await writer.stagePage(1, ['{"more":true}']);
    expect(await download('invisible/rows.ndjson')).toBe(committed);
    await writer.commit(2, { contentType: 'application/x-ndjson' });
    expect(await download('invisible/rows.ndjson')).toBe('{"replaced":true}\n{"more":true}\n');
  });

  it('an empty page stages nothing and does not use its index', async () => {
    const blob = container.getBlockBlobClient('empty-page/rows.ndjson');
    const writer = new NdjsonBlockWriter(blob);
    let index = 0;
    for (const rows of [['{"a":1}'], [], ['{"b":2}']]) {
      const staged = await writer.stagePage(index, rows);
      if (staged.staged) index++;
    }
    expect(index).toBe(2);
    await writer.commit(index, { contentType: 'application/x-ndjson' });
    expect(await download('empty-page/rows.ndjson')).toBe('{"a":1}\n{"b":2}\n');
  });

  it('zero blocks commit an empty blob', async () => {
    const writer = new NdjsonBlockWriter(container.getBlockBlobClient('no-rows/rows.ndjson'));
    await writer.commit(0, { contentType: 'application/x-ndjson' });
    expect(await hashBlob(container.getBlobClient('no-rows/rows.ndjson'))).toEqual({
      sha256: sha256(''),
      bytes: 0,
      lines: 0,
    });
  });

  it('refuses to commit a blob with a missing block, and rows with line breaks', async () => {
    const writer = new NdjsonBlockWriter(container.getBlockBlobClient('hole/rows.ndjson'));
    await writer.stagePage(0, ['{"a":1}']);
    await writer.stagePage(2, ['{"c":3}']);
    await expect(writer.commit(3, { contentType: 'application/x-ndjson' })).rejects.toThrow(
      /block 1 of 3 is not staged/,
    );
    expect(await container.getBlobClient('hole/rows.ndjson').exists()).toBe(false);
    await expect(writer.stagePage(3, ['{"a":\n1}'])).rejects.toThrow(/line break/);
  });
});

describe('hashBlob', () => {
  it('streams the committed blob: sha256, bytes and lines', async () => {
    const digest = await hashBlob(container.getBlobClient('straight/rows.ndjson'));
    expect(digest).toEqual({ sha256: sha256(expectedText), bytes: Buffer.byteLength(expectedText), lines: 15 });
  });

  it('counts a final line without a newline, across chunk boundaries of a larger blob', async () => {
    const text = `${'{"x":"y"}\n'.repeat(200_000)}{"last":true}`;
    await container.getBlockBlobClient('big.ndjson').upload(text, Buffer.byteLength(text));
    const digest = await hashBlob(container.getBlobClient('big.ndjson'));
    expect(digest).toEqual({ sha256: sha256(text), bytes: Buffer.byteLength(text), lines: 200_001 });
  });
});

describe('writeJsonBlob', () => {
  it('writes text verbatim and values as JSON, with sha256 metadata', async () => {
    const text = '{\n  "id": "G1",\n  "amount": 10.10\n}';
    const result = await writeJsonBlob(container.getBlockBlobClient('json/invoice.json'), text);
    expect(result).toMatchObject({ sha256: sha256(text), bytes: Buffer.byteLength(text), written: true });
    expect(await download('json/invoice.json')).toBe(text);
    const properties = await container.getBlobClient('json/invoice.json').getProperties();
    expect(properties.contentType).toBe('application/json; charset=utf-8');
    expect(properties.metadata?.sha256).toBe(sha256(text));
    expect(properties.etag).toBe(result.etag);
    await writeJsonBlob(container.getBlockBlobClient('json/value.json'), { a: [1, 'ü'] });
    expect(await download('json/value.json')).toBe('{"a":[1,"ü"]}');
    // A re-run without createOnly replaces the document instead of failing (a same-day re-run must work).
    const rerun = await writeJsonBlob(container.getBlockBlobClient('json/value.json'), { a: [2] });
    expect(rerun.written).toBe(true);
    expect(await download('json/value.json')).toBe('{"a":[2]}');
  });

  it('create-only leaves an existing blob alone and reports its sha256', async () => {
    const blob = container.getBlockBlobClient('json/once.json');
    const first = await writeJsonBlob(blob, '{"v":1}', { createOnly: true });
    expect(first.written).toBe(true);
    const again = await writeJsonBlob(blob, '{"v":2}', { createOnly: true });
    expect(again).toMatchObject({ written: false, sha256: sha256('{"v":2}'), existingSha256: sha256('{"v":1}') });
    expect(again.etag).toBe(first.etag);
    expect(await download('json/once.json')).toBe('{"v":1}');
  });
});

describe('uploadStreamToBlob', () => {
  const pdfBytes = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(300_000, 7), Buffer.from('\n%%EOF\n')]);
  const pdfStream = () => Readable.from([pdfBytes.subarray(0, 100_000), pdfBytes.subarray(100_000)]);

  it('streams, hashes on the way and records sha256 in metadata', async () => {
    const blob = container.getBlockBlobClient('pdf/invoice.pdf');
    const result = await uploadStreamToBlob(blob, pdfStream(), { contentType: 'application/pdf' });
    expect(result).toMatchObject({ sha256: sha256(pdfBytes), bytes: pdfBytes.length, written: true });
    expect((await blob.downloadToBuffer()).equals(pdfBytes)).toBe(true);
    const properties = await blob.getProperties();
    expect(properties.contentType).toBe('application/pdf');
    expect(properties.metadata?.sha256).toBe(sha256(pdfBytes));
    expect(properties.etag).toBe(result.etag);
  });

  it('create-only: a re-run does not rewrite the PDF and reports whether the content matches', async () => {
    const blob = container.getBlockBlobClient('pdf/once.pdf');
    const first = await uploadStreamToBlob(blob, pdfStream(), { contentType: 'application/pdf', createOnly: true });
    expect(first.written).toBe(true);
    const same = await uploadStreamToBlob(blob, pdfStream(), { contentType: 'application/pdf', createOnly: true });
    expect(same).toMatchObject({
      written: false,
      sha256: first.sha256,
      existingSha256: first.sha256,
      etag: first.etag,
    });
    const other = await uploadStreamToBlob(blob, Readable.from([Buffer.from('%PDF-other')]), {
      contentType: 'application/pdf',
      createOnly: true,
    });
    expect(other).toMatchObject({ written: false, sha256: sha256('%PDF-other'), existingSha256: first.sha256 });
    expect((await blob.downloadToBuffer()).equals(pdfBytes)).toBe(true);
  });

  it('a stream over maxBytes fails and leaves nothing behind', async () => {
    const blob = container.getBlockBlobClient('pdf/too-big.pdf');
    await expect(
      uploadStreamToBlob(blob, pdfStream(), { contentType: 'application/pdf', maxBytes: 1000 }),
    ).rejects.toThrow(/exceeds the 1000-byte limit/);
    expect(await blob.exists()).toBe(false);
  });

  it('a source that fails mid-stream leaves nothing behind', async () => {
    const blob = container.getBlockBlobClient('pdf/broken.pdf');
    async function* broken() {
      yield Buffer.from('%PDF-1.7 partial');
      throw new Error('connection reset');
    }
    await expect(uploadStreamToBlob(blob, Readable.from(broken()), { contentType: 'application/pdf' })).rejects.toThrow(
      /connection reset/,
    );
    expect(await blob.exists()).toBe(false);
  });
});
