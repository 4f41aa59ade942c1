// Blob writes: the NDJSON block writer behind exportLineItems (one staged block per page, committed at the end),
// a streaming hash of a committed blob, and the hashed, optionally create-only uploads used for PDFs and JSON.
import { createHash } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type BlobClient, type BlockBlobClient, RestError } from '@azure/storage-blob';

/** Block ids must all have the same length within a blob, hence the fixed 10-digit index. */
const BLOCK_INDEX_DIGITS = 10;
const MAX_BLOCK_INDEX = 10 ** BLOCK_INDEX_DIGITS - 1;
/** A blob holds at most 50,000 committed blocks. */
export const MAX_BLOCKS = 50_000;

export class BlobWriteError extends Error {
  override name = 'BlobWriteError';
}

/** base64 of the zero-padded 10-digit index: `blockId(0)` is `MDAwMDAwMDAwMA==`. Deterministic, so re-staging replaces. */
export function blockId(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > MAX_BLOCK_INDEX) {
    throw new BlobWriteError(`Block index ${index} is not an integer between 0 and ${MAX_BLOCK_INDEX}`);
  }
  return Buffer.from(String(index).padStart(BLOCK_INDEX_DIGITS, '0'), 'utf8').toString('base64');
}

export interface StagedPage {
  /** Bytes staged (UTF-8, including the newline after every row); 0 for an empty page. */
  bytes: number;
  rows: number;
  /** False when the page was empty and nothing was staged (the index was not used). */
  staged: boolean;
}

export interface CommitOptions {
  contentType: string;
  metadata?: Record<string, string>;
  abortSignal?: AbortSignal;
}

/**
 * Writes one NDJSON blob as staged blocks: page i becomes block `blockId(i)`, and `commit(n)` commits blocks
 * 0..n-1 in order. Staged blocks are invisible to readers until the commit, and staging an id again replaces
 * it, so a writer that crashed after page k can resume from its checkpoint (a new instance, re-staging from
 * the page after the last recorded one, or re-staging that page) and produce byte-identical output.
 *
 * Empty pages: `stagePage(i, [])` stages nothing and returns `{ staged: false }`. The index counts STAGED blocks
 * only, so the caller must not advance it for an empty page (`blocksStaged` in the ledger is the next index).
 *
 * Uncommitted blocks are discarded by the service after about 7 days; `commit` checks that every block it is
 * about to commit exists, and fails with a clear error instead of committing a blob with a hole.
 */
function countLineFeeds(text: string): number {
  let count = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) count++;
  return count;
}

export class NdjsonBlockWriter {
  readonly blob: BlockBlobClient;

  constructor(blob: BlockBlobClient) {
    this.blob = blob;
  }

  async stagePage(
    index: number,
    rows: readonly string[],
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<StagedPage> {
    const id = blockId(index);
    if (index >= MAX_BLOCKS)
      throw new BlobWriteError(`Block index ${index} exceeds the ${MAX_BLOCKS}-block limit of a blob`);
    if (rows.length === 0) return { bytes: 0, rows: 0, staged: false };
    const text = `${rows.join('\n')}\n`;
    // A raw line break inside a row would split it into two NDJSON lines: the block must hold exactly one LF per
    // row and no CR. Checked once on the joined text (native scans) rather than row by row.
    if (text.indexOf('\r') >= 0 || countLineFeeds(text) !== rows.length) {
      throw new BlobWriteError(`A row on page ${index} contains a line break; NDJSON rows must be single lines`);
    }
    const body = Buffer.from(text, 'utf8');
    await this.blob.stageBlock(id, body, body.length, {
      transactionalContentMD5: createHash('md5').update(body).digest(),
      abortSignal: options.abortSignal,
    });
    return { bytes: body.length, rows: rows.length, staged: true };
  }

  /** Ids of the blocks staged and not yet committed (for resume checks). */
  async stagedBlockIds(): Promise<string[]> {
    try {
      const list = await this.blob.getBlockList('uncommitted');
      return (list.uncommittedBlocks ?? []).map((b) => b.name);
    } catch (error) {
      // No blob and no staged block yet.
      if (error instanceof RestError && error.statusCode === 404) return [];
      throw error;
    }
  }

  /**
   * Commits blocks 0..blockCount-1 as the blob's whole content (0 blocks = an empty blob). Repeating a commit
   * that already succeeded is harmless: the ids then name committed blocks with the same bytes.
   */
  async commit(blockCount: number, options: CommitOptions): Promise<{ etag: string }> {
    if (!Number.isInteger(blockCount) || blockCount < 0 || blockCount > MAX_BLOCKS) {
      throw new BlobWriteError(`Block count ${blockCount} is not an integer between 0 and ${MAX_BLOCKS}`);
    }
    const ids = Array.from({ length: blockCount }, (_, i) => blockId(i));
    if (blockCount > 0) {
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
          `Cannot commit ${this.blob.name}: block ${missing} of ${blockCount} is not staged (expired or never written); ` +
            'the export must restart from its first page',
        );
      }
    }
    const response = await this.blob.commitBlockList(ids, {
      blobHTTPHeaders: { blobContentType: options.contentType },
      metadata: options.metadata,
      abortSignal: options.abortSignal,
    });
    return { etag: response.etag ?? '' };
  }
}

export interface BlobDigest {
  sha256: string;
  bytes: number;
  /** Newline-terminated lines, plus one for a final line without a newline. */
  lines: number;
}

/** Reads the committed blob back as a stream and hashes it: memory stays bounded by one chunk. */
export async function hashBlob(blob: BlobClient, options: { abortSignal?: AbortSignal } = {}): Promise<BlobDigest> {
  // maxRetryRequests: a dropped connection mid-read resumes from the byte reached instead of failing the check.
  const response = await blob.download(0, undefined, { abortSignal: options.abortSignal, maxRetryRequests: 5 });
  const body = response.readableStreamBody;
  if (!body) throw new BlobWriteError(`Download of ${blob.name} returned no body`);
  const hash = createHash('sha256');
  let bytes = 0;
  let lines = 0;
  let last = -1;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    if (chunk.length > 0) last = chunk[chunk.length - 1] as number;
  }
  if (bytes > 0 && last !== 10) lines++;
  return { sha256: hash.digest('hex'), bytes, lines };
}

export interface HashedWrite {
  /** SHA-256 (hex) and size of the content we were given. */
  sha256: string;
  bytes: number;
  /** ETag of the blob as stored now. */
  etag: string;
  /** False when `createOnly` found the blob already there (nothing was written). */
  written: boolean;
  /** With `written: false`: the `sha256` metadata of the existing blob, if it has one. */
  existingSha256?: string;
}

export interface HashedWriteOptions {
  /**
   * Create-only (`If-None-Match: *`): a re-run never rewrites a blob that exists. On 409/412 the write is
   * treated as "already there": nothing is written, and the result carries the existing blob's `sha256`
   * metadata (when it has one) so the caller can compare it with `sha256` and decide whether that is a problem.
   */
  createOnly?: boolean;
  metadata?: Record<string, string>;
  abortSignal?: AbortSignal;
}

const isAlreadyThere = (error: unknown) =>
  error instanceof RestError && (error.statusCode === 409 || error.statusCode === 412);

async function existingFacts(blob: BlobClient, ours: { sha256: string; bytes: number }): Promise<HashedWrite> {
  const properties = await blob.getProperties();
  const existingSha256 = properties.metadata?.sha256;
  return { ...ours, etag: properties.etag ?? '', written: false, ...(existingSha256 ? { existingSha256 } : {}) };
}

/** Writes a JSON document (text is written verbatim; other values with JSON.stringify) with `sha256` metadata. */
export async function writeJsonBlob(
  blob: BlockBlobClient,
  value: unknown,
  options: HashedWriteOptions = {},
): Promise<HashedWrite> {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text === undefined) throw new BlobWriteError(`Value for ${blob.name} is not JSON-serialisable`);
  const body = Buffer.from(text, 'utf8');
  const sha256 = createHash('sha256').update(body).digest('hex');
  try {
    const response = await blob.upload(body, body.length, {
      blobHTTPHeaders: { blobContentType: 'application/json; charset=utf-8' },
      metadata: { ...options.metadata, sha256 },
      conditions: options.createOnly ? { ifNoneMatch: '*' } : undefined,
      abortSignal: options.abortSignal,
    });
    return { sha256, bytes: body.length, etag: response.etag ?? '', written: true };
  } catch (error) {
    if (options.createOnly && isAlreadyThere(error)) return existingFacts(blob, { sha256, bytes: body.length });
    throw error;
  }
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
        conditions: options.createOnly ? { ifNoneMatch: '*' } : undefined,
        abortSignal: options.abortSignal,
      }),
      piping,
    ]);
  } catch (error) {
    meter.destroy();
    source.destroy();
    await piping.catch(() => {});
    if (options.createOnly && isAlreadyThere(error)) {
      // The stream was read to the end before the commit was refused, so the digest covers the whole content.
      return existingFacts(blob, { sha256: hash.digest('hex'), bytes });
    }
    throw error;
  }
  const sha256 = hash.digest('hex');
  const tagged = await blob.setMetadata(
    { ...options.metadata, sha256 },
    { conditions: uploaded.etag ? { ifMatch: uploaded.etag } : undefined, abortSignal: options.abortSignal },
  );
  return { sha256, bytes, etag: tagged.etag ?? uploaded.etag ?? '', written: true };
}
