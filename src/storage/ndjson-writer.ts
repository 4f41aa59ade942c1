// Blob writes: the NDJSON block writer behind exportLineItems (one staged block per page, committed at the end)
// and the hashed uploads used for PDFs and JSON documents.
import { createHash } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type BlockBlobClient, RestError } from '@azure/storage-blob';

/** Block ids must all have the same length within a blob: a 6-digit lease epoch and a 10-digit block index. */
const EPOCH_DIGITS = 6;
const BLOCK_INDEX_DIGITS = 10;
const MAX_EPOCH = 10 ** EPOCH_DIGITS - 1;
/** A blob holds at most 50,000 committed blocks. */
export const MAX_BLOCKS = 50_000;

export class BlobWriteError extends Error {
  override name = 'BlobWriteError';
}

/**
 * base64 of `<6-digit epoch><10-digit index>`: deterministic, so re-staging an id replaces it, and the epoch (the
 * claim of the part that staged it) keeps a block staged by a worker that lost its lease out of every commit.
 */
export function blockId(epoch: number, index: number): string {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    throw new BlobWriteError(`Block epoch ${epoch} is not an integer between 0 and ${MAX_EPOCH}`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= MAX_BLOCKS) {
    throw new BlobWriteError(`Block index ${index} is not an integer between 0 and ${MAX_BLOCKS - 1} (a blob's limit)`);
  }
  const text = `${String(epoch).padStart(EPOCH_DIGITS, '0')}${String(index).padStart(BLOCK_INDEX_DIGITS, '0')}`;
  return Buffer.from(text, 'utf8').toString('base64');
}

export interface CommitOptions {
  contentType: string;
  metadata?: Record<string, string>;
  abortSignal?: AbortSignal;
}

/** Line feeds in a buffer (a native scan per line). */
export function countLineFeeds(bytes: Buffer): number {
  let count = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) count++;
  return count;
}

/**
 * What `stage` does to a block before it is sent: checks it is exactly `rows` NDJSON lines (each ending in LF, no
 * CR) and returns its MD5, which the service checks on receipt.
 */
export function checkedBlockMd5(id: string, ndjson: Buffer, rows: number): Buffer {
  if (rows === 0 || ndjson.length === 0) throw new BlobWriteError('An empty page stages no block');
  if (ndjson.indexOf(13) !== -1 || countLineFeeds(ndjson) !== rows || ndjson[ndjson.length - 1] !== 10) {
    throw new BlobWriteError(`Block ${id} is not ${rows} NDJSON lines (a row contains a line break?)`);
  }
  return createHash('md5').update(ndjson).digest();
}

/**
 * Writes one NDJSON blob as staged blocks. Staged blocks are invisible to readers until the commit, and staging
 * an id again replaces it, so a writer that crashed after page k resumes from its checkpoint and produces
 * byte-identical output. Uncommitted blocks are discarded by the service after about 7 days; `commit` checks that
 * every block it is about to commit exists, and fails with a clear error instead of committing a blob with a hole.
 */
export class NdjsonBlockWriter {
  readonly blob: BlockBlobClient;

  constructor(blob: BlockBlobClient) {
    this.blob = blob;
  }

  /**
   * Stages one page's NDJSON as block `id`. The block must hold exactly `rows` lines, each ending in LF, and no
   * CR: a raw line break inside a row would split it into two NDJSON lines.
   */
  async stage(id: string, ndjson: Buffer, rows: number, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const md5 = checkedBlockMd5(id, ndjson, rows);
    await this.blob.stageBlock(id, ndjson, ndjson.length, {
      transactionalContentMD5: md5,
      abortSignal: options.abortSignal,
    });
  }

  /**
   * Commits `ids` in order as the blob's whole content (none = an empty blob). Repeating a commit that already
   * succeeded is harmless: the ids then name committed blocks with the same bytes.
   */
  async commit(ids: readonly string[], options: CommitOptions): Promise<{ etag: string }> {
    if (ids.length > MAX_BLOCKS) throw new BlobWriteError(`${ids.length} blocks exceed the ${MAX_BLOCKS}-block limit`);
    if (ids.length > 0) {
      const known = new Set<string>();
      try {
        const list = await this.blob.getBlockList('all', { abortSignal: options.abortSignal });
        for (const block of [...(list.committedBlocks ?? []), ...(list.uncommittedBlocks ?? [])]) known.add(block.name);
      } catch (error) {
        if (!(error instanceof RestError && error.statusCode === 404)) throw error;
      }
      const missing = ids.findIndex((id) => !known.has(id));
      if (missing !== -1) {
        throw new BlobWriteError(
          `Cannot commit ${this.blob.name}: block ${missing} of ${ids.length} is not staged (expired or never written); ` +
            'the export must restart from its first page',
        );
      }
    }
    const response = await this.blob.commitBlockList([...ids], {
      blobHTTPHeaders: { blobContentType: options.contentType },
      metadata: options.metadata,
      abortSignal: options.abortSignal,
    });
    return { etag: response.etag ?? '' };
  }
}

export interface HashedWrite {
  /** SHA-256 (hex) and size of the content we were given. */
  sha256: string;
  bytes: number;
  /** ETag of the blob as stored now. */
  etag: string;
}

export interface HashedWriteOptions {
  metadata?: Record<string, string>;
  abortSignal?: AbortSignal;
}

/** Writes a JSON document (text is written verbatim; other values with JSON.stringify) with `sha256` metadata. */
export async function writeJsonBlob(
  blob: BlockBlobClient,
  value: unknown,
  options: HashedWriteOptions & { conditions?: { ifMatch?: string; ifNoneMatch?: string } } = {},
): Promise<HashedWrite> {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text === undefined) throw new BlobWriteError(`Value for ${blob.name} is not JSON-serialisable`);
  const body = Buffer.from(text, 'utf8');
  const sha256 = createHash('sha256').update(body).digest('hex');
  const response = await blob.upload(body, body.length, {
    blobHTTPHeaders: { blobContentType: 'application/json; charset=utf-8' },
    metadata: { ...options.metadata, sha256 },
    conditions: options.conditions,
    abortSignal: options.abortSignal,
  });
  return { sha256, bytes: body.length, etag: response.etag ?? '' };
}

export interface UploadStreamOptions extends HashedWriteOptions {
  contentType: string;
  /** Fail (and write nothing) when the stream is longer than this. */
  maxBytes?: number;
}

const UPLOAD_BUFFER_BYTES = 4 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 2;

/**
 * Streams `source` into the blob (4 MiB blocks, 2 in flight) while hashing it, then records the hash in the
 * blob's `sha256` metadata (conditional on the upload's ETag). Memory stays bounded by the two buffers.
 * Nothing becomes visible if the stream fails or exceeds `maxBytes`: the blocks are never committed.
 */
export async function uploadStreamToBlob(
  blob: BlockBlobClient,
  source: Readable,
  options: UploadStreamOptions,
): Promise<HashedWrite> {
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (options.maxBytes !== undefined && bytes > options.maxBytes) {
        callback(new BlobWriteError(`${blob.name}: the stream exceeds the ${options.maxBytes}-byte limit`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  const piping = pipeline(source, meter);
  let uploaded: { etag?: string };
  try {
    [uploaded] = await Promise.all([
      blob.uploadStream(meter, UPLOAD_BUFFER_BYTES, UPLOAD_CONCURRENCY, {
        blobHTTPHeaders: { blobContentType: options.contentType },
        metadata: options.metadata,
        abortSignal: options.abortSignal,
      }),
      piping,
    ]);
  } catch (error) {
    meter.destroy();
    source.destroy();
    await piping.catch(() => {});
    throw error;
  }
  const sha256 = hash.digest('hex');
  const tagged = await blob.setMetadata(
    { ...options.metadata, sha256 },
    { conditions: uploaded.etag ? { ifMatch: uploaded.etag } : undefined, abortSignal: options.abortSignal },
  );
  return { sha256, bytes, etag: tagged.etag ?? uploaded.etag ?? '' };
}
