import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Pipeline, PipelineRequest } from '@azure/core-rest-pipeline';
import {
  BlobServiceClient,
  BlockBlobClient,
  type ContainerClient,
  newPipeline,
  RestError,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlobWriteError,
  blockId,
  checkedBlockMd5,
  countLineFeeds,
  MAX_BLOCKS,
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
const ndjson = (rows: readonly string[]) => Buffer.from(`${rows.join('\n')}\n`, 'utf8');
/** Stages page `index` of `pages` (or `rows`) as block (epoch, index). */
const stage = (writer: NdjsonBlockWriter, epoch: number, index: number, rows: readonly string[] = pages[index] ?? []) =>
  writer.stage(blockId(epoch, index), ndjson(rows), rows.length);
const ids = (epoch: number, count: number) => Array.from({ length: count }, (_, i) => blockId(epoch, i));

describe('blockId', () => {
  it('is base64 of a 6-digit epoch and a 10-digit index, with a fixed length', () => {
    expect(blockId(0, 0)).toBe(Buffer.from('0000000000000000').toString('base64'));
    expect(Buffer.from(blockId(7, 42), 'base64').toString()).toBe('0000070000000042');
    const lengths = new Set(
      [
        [0, 0],
        [1, 9],
        [999_999, 49_999],
      ].map(([e, i]) => blockId(e ?? 0, i ?? 0).length),
    );
    expect(lengths.size).toBe(1);
    expect(blockId(1, 3)).not.toBe(blockId(2, 3));
    expect(() => blockId(0, -1)).toThrow(BlobWriteError);
    expect(() => blockId(0, 1.5)).toThrow(BlobWriteError);
    expect(() => blockId(0, 50_000)).toThrow(/limit/);
    expect(() => blockId(1_000_000, 0)).toThrow(BlobWriteError);
  });
});

describe('NdjsonBlockWriter', () => {
  it('stages one block per page and commits them in order; every line ends with a newline', async () => {
    const blob = container.getBlockBlobClient('straight/rows.ndjson');
    const writer = new NdjsonBlockWriter(blob);
    for (const index of pages.keys()) await stage(writer, 1, index);
    await writer.commit(ids(1, pages.length), { contentType: 'application/x-ndjson', metadata: { rows: '15' } });
    expect(await download('straight/rows.ndjson')).toBe(expectedText);
    const properties = await blob.getProperties();
    expect(properties.contentType).toBe('application/x-ndjson');
    expect(properties.metadata).toEqual({ rows: '15' });
  });

  it('resumes after a crash (new writer, new epoch from page 3) byte-identically to a straight run', async () => {
    const blob = container.getBlockBlobClient('resumed/rows.ndjson');
    const first = new NdjsonBlockWriter(blob);
    for (const index of [0, 1, 2]) await stage(first, 1, index);
    // "Crash" after page 2 was staged but before its checkpoint: a new owner (epoch 2) resumes at page 2.
    const second = new NdjsonBlockWriter(container.getBlockBlobClient('resumed/rows.ndjson'));
    for (const index of [2, 3, 4]) await stage(second, 2, index);
    const committed = [blockId(1, 0), blockId(1, 1), blockId(2, 2), blockId(2, 3), blockId(2, 4)];
    await second.commit(committed, { contentType: 'application/x-ndjson' });
    const resumed = await download('resumed/rows.ndjson');
    expect(resumed).toBe(await download('straight/rows.ndjson'));
    expect(sha256(resumed)).toBe(sha256(expectedText));
    // The first owner's orphaned copy of page 2 is not part of the blob; a repeated commit changes nothing.
    const list = await blob.getBlockList('all');
    expect(list.committedBlocks?.map((b) => b.name)).toEqual(committed);
    await second.commit(committed, { contentType: 'application/x-ndjson' });
    expect(await download('resumed/rows.ndjson')).toBe(expectedText);
  });

  it('a block staged by an old epoch after the lease moved on is never committed', async () => {
    const blob = container.getBlockBlobClient('stale-writer/rows.ndjson');
    const current = new NdjsonBlockWriter(blob);
    await stage(current, 2, 0, ['{"owner":"current"}']);
    // A worker that lost its lease wakes up and stages the same index: a different id, so no harm done.
    await stage(new NdjsonBlockWriter(blob), 1, 0, ['{"owner":"stale"}']);
    await current.commit([blockId(2, 0)], { contentType: 'application/x-ndjson' });
    expect(await download('stale-writer/rows.ndjson')).toBe('{"owner":"current"}\n');
  });

  it('uncommitted blocks are invisible to readers', async () => {
    const blob = container.getBlockBlobClient('invisible/rows.ndjson');
    const writer = new NdjsonBlockWriter(blob);
    await stage(writer, 1, 0);
    expect(await blob.exists()).toBe(false);
    await writer.commit([blockId(1, 0)], { contentType: 'application/x-ndjson' });
    const committed = await download('invisible/rows.ndjson');
    // Staging a replacement for a committed blob does not change what readers see until the next commit.
    await stage(writer, 1, 0, ['{"replaced":true}']);
    await stage(writer, 1, 1, ['{"more":true}']);
    expect(await download('invisible/rows.ndjson')).toBe(committed);
    await writer.commit(ids(1, 2), { contentType: 'application/x-ndjson' });
    expect(await download('invisible/rows.ndjson')).toBe('{"replaced":true}\n{"more":true}\n');
  });

  it('zero blocks commit an empty blob', async () => {
    const writer = new NdjsonBlockWriter(container.getBlockBlobClient('no-rows/rows.ndjson'));
    await writer.commit([], { contentType: 'application/x-ndjson' });
    expect(await download('no-rows/rows.ndjson')).toBe('');
  });

  it('refuses to commit a blob with a missing block, and blocks that are not the rows they claim', async () => {
    const writer = new NdjsonBlockWriter(container.getBlockBlobClient('hole/rows.ndjson'));
    await stage(writer, 1, 0, ['{"a":1}']);
    await stage(writer, 1, 2, ['{"c":3}']);
    await expect(writer.commit(ids(1, 3), { contentType: 'application/x-ndjson' })).rejects.toThrow(
      /block 1 of 3 is not staged/,
    );
    expect(await container.getBlobClient('hole/rows.ndjson').exists()).toBe(false);
    await expect(stage(writer, 1, 3, ['{"a":\n1}'])).rejects.toThrow(/line break/);
    await expect(writer.stage(blockId(1, 3), Buffer.from('{"a":1}\r\n'), 1)).rejects.toThrow(/line break/);
    await expect(writer.stage(blockId(1, 3), Buffer.from('{"a":1}'), 1)).rejects.toThrow(/not 1 NDJSON lines/);
    await expect(writer.stage(blockId(1, 3), Buffer.alloc(0), 0)).rejects.toThrow(/empty page/);
  });
});

describe('writeJsonBlob', () => {
  it('writes text verbatim and values as JSON, with sha256 metadata', async () => {
    const text = '{\n  "id": "G1",\n  "amount": 10.10\n}';
    const result = await writeJsonBlob(container.getBlockBlobClient('json/invoice.json'), text);
    expect(result).toMatchObject({ sha256: sha256(text), bytes: Buffer.byteLength(text) });
    expect(await download('json/invoice.json')).toBe(text);
    const properties = await container.getBlobClient('json/invoice.json').getProperties();
    expect(properties.contentType).toBe('application/json; charset=utf-8');
    expect(properties.metadata?.sha256).toBe(sha256(text));
    expect(properties.etag).toBe(result.etag);
    await writeJsonBlob(container.getBlockBlobClient('json/value.json'), { a: [1, 'ü'] });
    expect(await download('json/value.json')).toBe('{"a":[1,"ü"]}');
    // A re-run replaces the document instead of failing (a same-day re-run must work).
    await writeJsonBlob(container.getBlockBlobClient('json/value.json'), { a: [2] });
    expect(await download('json/value.json')).toBe('{"a":[2]}');
  });

  it('a conditional write fails when the blob changed since it was read (the manifest is written so)', async () => {
    const blob = container.getBlockBlobClient('json/conditional.json');
    const first = await writeJsonBlob(blob, '{"v":1}', { conditions: { ifNoneMatch: '*' } });
    await expect(writeJsonBlob(blob, '{"v":0}', { conditions: { ifNoneMatch: '*' } })).rejects.toMatchObject({
      statusCode: 409,
    });
    const second = await writeJsonBlob(blob, '{"v":2}', { conditions: { ifMatch: first.etag } });
    await expect(writeJsonBlob(blob, '{"v":3}', { conditions: { ifMatch: first.etag } })).rejects.toMatchObject({
      statusCode: 412,
    });
    expect(await download('json/conditional.json')).toBe('{"v":2}');
    expect(second.etag).not.toBe(first.etag);
  });
});

describe('uploadStreamToBlob', () => {
  const pdfBytes = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(300_000, 7), Buffer.from('\n%%EOF\n')]);
  const pdfStream = () => Readable.from([pdfBytes.subarray(0, 100_000), pdfBytes.subarray(100_000)]);

  it('streams, hashes on the way and records sha256 in metadata', async () => {
    const blob = container.getBlockBlobClient('pdf/invoice.pdf');
    const result = await uploadStreamToBlob(blob, pdfStream(), { contentType: 'application/pdf' });
    expect(result).toMatchObject({ sha256: sha256(pdfBytes), bytes: pdfBytes.length });
    expect((await blob.downloadToBuffer()).equals(pdfBytes)).toBe(true);
    const properties = await blob.getProperties();
    expect(properties.contentType).toBe('application/pdf');
    expect(properties.metadata?.sha256).toBe(sha256(pdfBytes));
    expect(properties.etag).toBe(result.etag);
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

describe('block checks', () => {
  it('block ids refuse an epoch or index out of range, saying the range', () => {
    expect(() => blockId(-1, 0)).toThrow(new BlobWriteError('Block epoch -1 is not an integer between 0 and 999999'));
    expect(() => blockId(0.5, 0)).toThrow('Block epoch 0.5 is not an integer between 0 and 999999');
    expect(() => blockId(1_000_000, 0)).toThrow('Block epoch 1000000 is not an integer between 0 and 999999');
    expect(Buffer.from(blockId(999_999, 49_999), 'base64').toString()).toBe('9999990000049999');
    expect(() => blockId(0, 50_000)).toThrow(
      new BlobWriteError("Block index 50000 is not an integer between 0 and 49999 (a blob's limit)"),
    );
    expect(() => blockId(0, -1)).toThrow("Block index -1 is not an integer between 0 and 49999 (a blob's limit)");
    expect(() => blockId(0, Number.NaN)).toThrow(BlobWriteError);
    expect(new BlobWriteError('x').name).toBe('BlobWriteError');
  });

  it('countLineFeeds counts every LF and nothing else', () => {
    expect(countLineFeeds(Buffer.alloc(0))).toBe(0);
    expect(countLineFeeds(Buffer.from('abc'))).toBe(0);
    expect(countLineFeeds(Buffer.from('\n'))).toBe(1);
    expect(countLineFeeds(Buffer.from('\n\n'))).toBe(2);
    expect(countLineFeeds(Buffer.from('a\nb\r\nc\n'))).toBe(3);
  });

  it('a block is exactly `rows` LF-terminated lines without CR; its MD5 is returned', () => {
    const block = Buffer.from('{"a":1}\n{"b":2}\n');
    expect(checkedBlockMd5('id', block, 2).equals(createHash('md5').update(block).digest())).toBe(true);
    expect(() => checkedBlockMd5('id', block, 0)).toThrow(new BlobWriteError('An empty page stages no block'));
    expect(() => checkedBlockMd5('id', Buffer.alloc(0), 1)).toThrow('An empty page stages no block');
    expect(() => checkedBlockMd5('id', block, 1)).toThrow(
      new BlobWriteError('Block id is not 1 NDJSON lines (a row contains a line break?)'),
    );
    expect(() => checkedBlockMd5('id', block, 3)).toThrow('Block id is not 3 NDJSON lines');
    // The right number of LFs, but the last line is not terminated.
    expect(() => checkedBlockMd5('id', Buffer.from('{"a":\n1}'), 1)).toThrow('Block id is not 1 NDJSON lines');
    expect(() => checkedBlockMd5('id', Buffer.from('{"a":1}\r\n'), 1)).toThrow('Block id is not 1 NDJSON lines');
    expect(() => checkedBlockMd5('id', Buffer.from('{"a":"\r"}\n'), 1)).toThrow(BlobWriteError);
  });
});

describe('NdjsonBlockWriter limits, errors and aborts', () => {
  const aborted = () => {
    const controller = new AbortController();
    controller.abort();
    return controller.signal;
  };

  it('commit refuses more than 50,000 blocks before asking the service; 50,000 are checked like any list', async () => {
    const writer = new NdjsonBlockWriter(container.getBlockBlobClient('limits/rows.ndjson'));
    const many = (count: number) => Array.from({ length: count }, (_, i) => blockId(1, i % MAX_BLOCKS));
    await expect(writer.commit(many(MAX_BLOCKS + 1), { contentType: 'application/x-ndjson' })).rejects.toThrow(
      new BlobWriteError('50001 blocks exceed the 50000-block limit'),
    );
    await expect(writer.commit(many(MAX_BLOCKS), { contentType: 'application/x-ndjson' })).rejects.toThrow(
      'block 0 of 50000 is not staged',
    );
    expect(await container.getBlobClient('limits/rows.ndjson').exists()).toBe(false);
  });

  it('commit of blocks never staged on a blob that does not exist says which block is missing', async () => {
    const writer = new NdjsonBlockWriter(container.getBlockBlobClient('never/rows.ndjson'));
    const error = await writer
      .commit([blockId(1, 0)], { contentType: 'application/x-ndjson' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BlobWriteError);
    expect((error as Error).message).toBe(
      'Cannot commit never/rows.ndjson: block 0 of 1 is not staged (expired or never written); ' +
        'the export must restart from its first page',
    );
  });

  it('commit finds blocks both committed and newly staged, and returns the blob’s ETag', async () => {
    const blob = container.getBlockBlobClient('mixed/rows.ndjson');
    const writer = new NdjsonBlockWriter(blob);
    await stage(writer, 1, 0, ['{"a":1}']);
    const first = await writer.commit([blockId(1, 0)], { contentType: 'application/x-ndjson' });
    expect(first.etag).toBe((await blob.getProperties()).etag);
    await stage(writer, 1, 1, ['{"b":2}']);
    const second = await writer.commit([blockId(1, 0), blockId(1, 1)], { contentType: 'application/x-ndjson' });
    expect(second.etag).toBe((await blob.getProperties()).etag);
    expect(second.etag).not.toBe(first.etag);
    expect(await download('mixed/rows.ndjson')).toBe('{"a":1}\n{"b":2}\n');
  });

  it('an aborted stage, block-list read or commit fails with the abort and writes nothing', async () => {
    const blob = container.getBlockBlobClient('aborted/rows.ndjson');
    const writer = new NdjsonBlockWriter(blob);
    await expect(writer.stage(blockId(1, 0), ndjson(['{"a":1}']), 1, { abortSignal: aborted() })).rejects.toMatchObject(
      { name: 'AbortError' },
    );
    expect((await blob.getBlockList('all').catch(() => undefined))?.uncommittedBlocks ?? []).toEqual([]);
    await stage(writer, 1, 0, ['{"a":1}']);
    await expect(
      writer.commit([blockId(1, 0)], { contentType: 'application/x-ndjson', abortSignal: aborted() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await expect(
      writer.commit([], { contentType: 'application/x-ndjson', abortSignal: aborted() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(await blob.exists()).toBe(false);
  });
});

describe('hashed writes: metadata, limits and aborts', () => {
  it('writeJsonBlob keeps the caller’s metadata beside sha256, and refuses what JSON cannot hold', async () => {
    const blob = container.getBlockBlobClient('json/with-metadata.json');
    const result = await writeJsonBlob(blob, { v: 1 }, { metadata: { kind: 'manifest' } });
    expect((await blob.getProperties()).metadata).toEqual({ kind: 'manifest', sha256: sha256('{"v":1}') });
    expect(result).toEqual({ sha256: sha256('{"v":1}'), bytes: 7, etag: (await blob.getProperties()).etag });
    const missing = container.getBlockBlobClient('json/undefined.json');
    await expect(writeJsonBlob(missing, undefined)).rejects.toThrow(
      new BlobWriteError('Value for json/undefined.json is not JSON-serialisable'),
    );
    await expect(writeJsonBlob(missing, () => 1)).rejects.toThrow(BlobWriteError);
    expect(await missing.exists()).toBe(false);
    const controller = new AbortController();
    controller.abort();
    await expect(writeJsonBlob(missing, { v: 1 }, { abortSignal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(await missing.exists()).toBe(false);
  });

  it('uploadStreamToBlob accepts exactly maxBytes, keeps the caller’s metadata and honours an abort', async () => {
    const blob = container.getBlockBlobClient('pdf/exact.pdf');
    const body = Buffer.from('%PDF-1.7 exactly sized');
    const result = await uploadStreamToBlob(blob, Readable.from([body]), {
      contentType: 'application/pdf',
      maxBytes: body.length,
      metadata: { invoice: 'G1' },
    });
    expect(result).toEqual({ sha256: sha256(body), bytes: body.length, etag: (await blob.getProperties()).etag });
    expect((await blob.getProperties()).metadata).toEqual({ invoice: 'G1', sha256: sha256(body) });
    const over = container.getBlockBlobClient('pdf/one-over.pdf');
    await expect(
      uploadStreamToBlob(over, Readable.from([body]), { contentType: 'application/pdf', maxBytes: body.length - 1 }),
    ).rejects.toThrow(new BlobWriteError(`pdf/one-over.pdf: the stream exceeds the ${body.length - 1}-byte limit`));
    expect(await over.exists()).toBe(false);
    const controller = new AbortController();
    controller.abort();
    const cancelled = container.getBlockBlobClient('pdf/aborted.pdf');
    await expect(
      uploadStreamToBlob(cancelled, Readable.from([body]), {
        contentType: 'application/pdf',
        abortSignal: controller.signal,
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(await cancelled.exists()).toBe(false);
  });

  it('a source that never ends is stopped once it passes maxBytes', async () => {
    let finished = false;
    async function* endless() {
      try {
        for (;;) yield Buffer.alloc(1024, 1);
      } finally {
        finished = true;
      }
    }
    const blob = container.getBlockBlobClient('pdf/endless.pdf');
    await expect(
      uploadStreamToBlob(blob, Readable.from(endless()), { contentType: 'application/pdf', maxBytes: 10_000 }),
    ).rejects.toThrow(/exceeds the 10000-byte limit/);
    expect(finished).toBe(true);
    expect(await blob.exists()).toBe(false);
  });
});

describe('storage errors on the way are not mistaken for something else', () => {
  /** The account name and key of the test Azurite, from its connection string. */
  const account = () => {
    const field = (name: string) => new RegExp(`${name}=([^;]+)`).exec(azurite.connectionString)?.[1] ?? '';
    return { name: field('AccountName'), key: field('AccountKey') };
  };
  /**
   * A client of blob `name` whose every request first goes through `before` (a real request to Azurite follows).
   * The blob clients keep their request pipeline in `storageClientContext`, which has no public accessor.
   */
  const interceptedClient = (name: string, before: (request: PipelineRequest) => Promise<void>) => {
    const blob = container.getBlockBlobClient(name);
    const { pipeline } = (blob as unknown as { storageClientContext: { pipeline: Pipeline } }).storageClientContext;
    pipeline.addPolicy({
      name: 'before-request',
      async sendRequest(request, next) {
        await before(request);
        return next(request);
      },
    });
    return blob;
  };

  it('a block list that cannot be read for another reason than a missing blob fails the commit with that error', async () => {
    const blob = container.getBlockBlobClient('refused/rows.ndjson');
    await stage(new NdjsonBlockWriter(blob), 1, 0, ['{"a":1}']);
    // The same blob through a client with a wrong account key: every request is refused with 403.
    const { name } = account();
    const wrongKey = Buffer.alloc(64, 1).toString('base64');
    const refused = new BlockBlobClient(blob.url, newPipeline(new StorageSharedKeyCredential(name, wrongKey)));
    const error = await new NdjsonBlockWriter(refused)
      .commit([blockId(1, 0)], { contentType: 'application/x-ndjson' })
      .catch((e: unknown) => e);
    // Not "block 0 is not staged" (which would send the export back to its first page): the 403 itself.
    expect(error).toBeInstanceOf(RestError);
    expect(error).toMatchObject({ statusCode: 403 });
    expect(await blob.exists()).toBe(false);
  });

  it('uploadStreamToBlob records the hash only on the content it uploaded: a blob replaced meanwhile keeps its own', async () => {
    const name = 'pdf/replaced-meanwhile.pdf';
    const other = Buffer.from('%PDF-1.7 written by someone else');
    const blob = interceptedClient(name, async (request) => {
      // Just before the hash is recorded, another writer replaces the blob.
      if (request.method === 'PUT' && new URL(request.url).searchParams.get('comp') === 'metadata') {
        await container.getBlockBlobClient(name).upload(other, other.length, { metadata: { writer: 'other' } });
      }
    });
    const body = Buffer.from('%PDF-1.7 ours');
    await expect(
      uploadStreamToBlob(blob, Readable.from([body]), { contentType: 'application/pdf' }),
    ).rejects.toMatchObject({ statusCode: 412 });
    const stored = container.getBlockBlobClient(name);
    expect((await stored.downloadToBuffer()).equals(other)).toBe(true);
    // Our hash is not attached to the other writer's bytes.
    expect((await stored.getProperties()).metadata).toEqual({ writer: 'other' });
  });
});
