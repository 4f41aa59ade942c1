// The Graph v2 export manifest (ref §6.3) and its rows: where the gzip JSON Lines blobs of one export live, how to
// check the manifest before reading, and how to read its blobs as pages resumable by line. Lines are found by
// scanning each new chunk of bytes once (never the whole unfinished line again), and no line may outgrow a cap.
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import { ndjsonOf, type Page } from '../http/paging.js';
import { LineTooLongError, ManifestMismatchError, UnsupportedDataFormatError } from './errors.js';

export const manifestBlobSchema = z.looseObject({
  name: z.string().min(1),
  partitionValue: z.string().optional(),
});

/** Unknown fields pass through: the service has added fields before (`ItemCount`, `SizeInBytes`). */
export const manifestSchema = z.looseObject({
  id: z.string().optional(),
  eTag: z.string(),
  rootDirectory: z.string().min(1),
  // The SAS has no leading `?` in every known manifest; tolerate one anyway.
  sasToken: z.string().transform((v) => v.replace(/^\?/, '')),
  blobCount: z.coerce.number().int().min(0),
  blobs: z.array(manifestBlobSchema),
  dataFormat: z.string().nullish(),
  schemaVersion: z.coerce.string().optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestBlob = z.infer<typeof manifestBlobSchema>;

/** Where to resume a manifest read: blob `blobIndex`, after its first `line` non-empty lines. */
export interface ManifestCheckpoint {
  blobIndex: number;
  /** Non-empty lines of blob `blobIndex` already served. */
  line: number;
  /** Rows served from the start of the manifest through the page that carried this checkpoint. */
  rowsThrough: number;
}

const count = z.number().int().min(0);
export const manifestCheckpointSchema: z.ZodType<ManifestCheckpoint> = z.strictObject({
  blobIndex: count,
  line: count,
  rowsThrough: count,
});

/** `${rootDirectory}/${name}?${sasToken}`, with each path segment of the blob name escaped. */
export function blobUrl(manifest: Manifest, blob: ManifestBlob): string {
  const root = manifest.rootDirectory.replace(/\/+$/, '');
  const name = blob.name.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
  return `${root}/${name}${manifest.sasToken ? `?${manifest.sasToken}` : ''}`;
}

/** The documented formats, all gzip JSON Lines (ref §6.3: the resource doc and every example disagree on the name). */
const JSON_LINES_FORMATS = new Set(['compressedjson', 'compressedjsonlines']);

/**
 * Refuses a manifest this reader cannot read completely, before any blob is fetched: an unknown dataFormat
 * (permanent), or a blobCount that does not match the blobs listed.
 */
export function checkManifest(manifest: Manifest): void {
  const format = manifest.dataFormat;
  if (format !== undefined && format !== null && !JSON_LINES_FORMATS.has(format.toLowerCase())) {
    throw new UnsupportedDataFormatError(format);
  }
  if (manifest.blobCount !== manifest.blobs.length) {
    throw new ManifestMismatchError(
      `the manifest says blobCount ${manifest.blobCount} but lists ${manifest.blobs.length} blobs`,
    );
  }
}

/** A blob's own row count, when the manifest carries one (`ItemCount` in Microsoft's sample model). */
function itemCountOf(blob: ManifestBlob, blobIndex: number): number | undefined {
  const value = blob.ItemCount ?? blob.itemCount;
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new ManifestMismatchError(
      `blob ${blobIndex} has an ItemCount that is not a count (${JSON.stringify(value)})`,
    );
  }
  return n;
}

export interface ManifestPagesOptions {
  checkpoint: ManifestCheckpoint;
  maxLines: number;
  maxLineBytes: number;
  open(url: string, blobIndex: number): Promise<NodeJS.ReadableStream>;
}

/**
 * The manifest's rows in pages of at most `maxLines`, in blob order; a page never spans two blobs. Every page but
 * the last carries where to resume; the last carries `next: null`. A page is held back until one more row (or the
 * end) is seen, so the final page is known to be final without an extra request. A blob whose manifest entry
 * carries an ItemCount must hold exactly that many lines.
 */
export async function* readManifestPages(
  manifest: Manifest,
  options: ManifestPagesOptions,
): AsyncGenerator<Page<ManifestCheckpoint>> {
  const { checkpoint, maxLines, maxLineBytes } = options;
  if (checkpoint.blobIndex > manifest.blobs.length) {
    throw new ManifestMismatchError(
      `checkpoint at blob ${checkpoint.blobIndex}, but the manifest lists ${manifest.blobs.length} blobs`,
    );
  }
  let rowsThrough = checkpoint.rowsThrough;
  let held: Page<ManifestCheckpoint> | undefined;
  for (let blobIndex = checkpoint.blobIndex; blobIndex < manifest.blobs.length; blobIndex++) {
    const blob = manifest.blobs[blobIndex] as ManifestBlob;
    const expected = itemCountOf(blob, blobIndex);
    const skip = blobIndex === checkpoint.blobIndex ? checkpoint.line : 0;
    const body = await options.open(blobUrl(manifest, blob), blobIndex);
    let rows: Buffer[] = [];
    let line = 0;
    // Lines come a decompressed chunk at a time: one await per chunk, a plain loop per line.
    for await (const batch of jsonLineBatches(body, { maxLineBytes, what: `blob ${blobIndex}` })) {
      for (const row of batch) {
        if (line++ < skip) continue;
        if (held) {
          yield held;
          held = undefined;
        }
        if (rows.length === maxLines) {
          rowsThrough += rows.length;
          yield {
            ndjson: ndjsonOf(rows),
            rows: rows.length,
            rowsThrough,
            next: { blobIndex, line: line - 1, rowsThrough },
          };
          rows = [];
        }
        rows.push(row);
      }
    }
    if (line < skip) {
      throw new ManifestMismatchError(`checkpoint at line ${skip} of blob ${blobIndex}, which has only ${line} lines`);
    }
    if (expected !== undefined && expected !== line) {
      throw new ManifestMismatchError(`blob ${blobIndex} has ${line} lines but its ItemCount is ${expected}`);
    }
    if (rows.length > 0) {
      rowsThrough += rows.length;
      const next = { blobIndex: blobIndex + 1, line: 0, rowsThrough };
      held = { ndjson: ndjsonOf(rows), rows: rows.length, rowsThrough, next };
    }
  }
  yield held ? { ...held, next: null } : { ndjson: Buffer.alloc(0), rows: 0, rowsThrough, next: null };
}

const LF = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function isBlank(line: Buffer): boolean {
  // A row starts with `{`: the loop ends at its first byte.
  for (let i = 0; i < line.length; i++) {
    const byte = line[i];
    if (byte !== 0x20 && byte !== 0x09 && byte !== CR) return false;
  }
  return true;
}

/**
 * Non-empty lines of a (possibly gzip-compressed) byte stream as Buffers: a leading UTF-8 BOM and each line's
 * trailing CR dropped, bytes untouched otherwise (a multi-byte character can never contain the newline byte, so
 * splitting bytes keeps UTF-8 intact). Each chunk is scanned once; a line longer than `maxLineBytes` (its CR not
 * counted) fails as soon as its bytes pass the cap, so a gzip bomb of one endless line costs bounded memory.
 */
export async function* jsonLines(
  body: NodeJS.ReadableStream,
  options: { maxLineBytes: number; what?: string },
): AsyncGenerator<Buffer> {
  for await (const batch of jsonLineBatches(body, options)) yield* batch;
}

/** The lines of `jsonLines`, a batch per decompressed chunk (the lines that chunk completes). */
export async function* jsonLineBatches(
  body: NodeJS.ReadableStream,
  options: { maxLineBytes: number; what?: string },
): AsyncGenerator<Buffer[]> {
  const { maxLineBytes } = options;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineNumber = 0;
  let first = true;
  const finish = (piece: Buffer): Buffer | undefined => {
    lineNumber++;
    let line = pending.length === 0 ? piece : Buffer.concat([...pending, piece], pendingBytes + piece.length);
    pending = [];
    pendingBytes = 0;
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    if (line.length > maxLineBytes) throw new LineTooLongError(lineNumber, maxLineBytes, options.what);
    return isBlank(line) ? undefined : line;
  };
  for await (const raw of decompressed(body)) {
    let chunk = raw;
    if (first) {
      first = false;
      if (chunk.subarray(0, 3).equals(BOM)) chunk = chunk.subarray(3);
    }
    const batch: Buffer[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(LF, start); newline >= 0; newline = chunk.indexOf(LF, start)) {
      const line = finish(chunk.subarray(start, newline));
      if (line) batch.push(line);
      start = newline + 1;
    }
    if (start < chunk.length) {
      // +1: the line's CR, if it has one, is not counted against the cap.
      if (pendingBytes + (chunk.length - start) > maxLineBytes + 1) {
        throw new LineTooLongError(lineNumber + 1, maxLineBytes, options.what);
      }
      // A tail cut from a larger chunk is copied, so the pending line does not pin the whole chunk.
      const rest = chunk.subarray(start);
      pending.push(start === 0 ? rest : Buffer.from(rest));
      pendingBytes += rest.length;
    }
    if (batch.length > 0) yield batch;
  }
  if (pendingBytes > 0) {
    const line = finish(Buffer.alloc(0));
    if (line) yield [line];
  }
}

/** Gunzip when the bytes are gzip (the blob host may also have decoded a `Content-Encoding: gzip` already). */
async function* decompressed(body: NodeJS.ReadableStream): AsyncGenerator<Buffer> {
  const iterator = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  try {
    // Enough bytes to see the gzip magic, however small the first chunks are.
    const heads: Buffer[] = [];
    let headBytes = 0;
    while (headBytes < 2) {
      const step = await iterator.next();
      if (step.done) break;
      heads.push(Buffer.from(step.value));
      headBytes += step.value.length;
    }
    if (headBytes === 0) return;
    const firstChunk = heads.length === 1 ? (heads[0] as Buffer) : Buffer.concat(heads);
    const bytes = Readable.from(
      (async function* () {
        yield firstChunk;
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
      })(),
      { objectMode: false },
    );
    if (firstChunk[0] !== 0x1f || firstChunk[1] !== 0x8b) {
      yield* bytes as AsyncIterable<Buffer>;
      return;
    }
    // 64 KiB output chunks (the default is 16): a quarter of the iterations for the same bytes.
    const gunzip = pipeline(bytes, createGunzip({ chunkSize: 64 * 1024 }), () => {
      // Errors surface through the async iteration of `gunzip` below.
    });
    yield* gunzip as AsyncIterable<Buffer>;
  } finally {
    // A reader that stops early (or fails) must not leave the blob connection open.
    (body as Readable).destroy?.();
  }
}
