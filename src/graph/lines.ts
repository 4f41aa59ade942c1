// Reads a manifest's blobs as JSON Lines: gunzip as a stream, split lines, chunk them, resume from a line checkpoint.
import { pipeline, Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type { ManifestCheckpoint, ManifestChunk } from './client.js';
import { blobUrl, type Manifest } from './manifest.js';

export interface ReadBlobLinesOptions {
  manifest: Manifest;
  checkpoint: ManifestCheckpoint;
  maxLines: number;
  open(url: string, blobIndex: number): Promise<NodeJS.ReadableStream>;
}

/**
 * Every chunk but the last carries where to resume; the last carries `next: null`. A chunk is held back until
 * one more row (or the end) is seen, so the final chunk is always known to be final without an extra request.
 */
export async function* readBlobLines(options: ReadBlobLinesOptions): AsyncGenerator<ManifestChunk> {
  const { manifest, checkpoint, maxLines } = options;
  let held: ManifestChunk | undefined;
  let lastIndex = Math.max(0, Math.min(checkpoint.blobIndex, manifest.blobs.length - 1));
  for (let blobIndex = checkpoint.blobIndex; blobIndex < manifest.blobs.length; blobIndex++) {
    lastIndex = blobIndex;
    const skip = blobIndex === checkpoint.blobIndex ? checkpoint.line : 0;
    const body = await options.open(blobUrl(manifest, manifest.blobs[blobIndex]!), blobIndex);
    let rows: string[] = [];
    let line = 0;
    for await (const row of jsonLines(body)) {
      if (line++ < skip) continue;
      if (held) {
        yield held;
        held = undefined;
      }
      if (rows.length === maxLines) {
        yield { rows, next: { blobIndex, line: line - 1 }, blobIndex };
        rows = [];
      }
      rows.push(row);
    }
    if (rows.length > 0) held = { rows, next: { blobIndex: blobIndex + 1, line: 0 }, blobIndex };
  }
  yield held ? { ...held, next: null } : { rows: [], next: null, blobIndex: lastIndex };
}

/** Non-empty lines of a (possibly gzip-compressed) byte stream, `\r` dropped, text untouched otherwise. */
export async function* jsonLines(body: NodeJS.ReadableStream): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let first = true;
  for await (const chunk of decompressed(body)) {
    let text = decoder.write(chunk);
    if (first) {
      text = text.replace(/^\uFEFF/, '');
      first = false;
    }
    pending += text;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = trimLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      if (line) yield line;
      newline = pending.indexOf('\n');
    }
  }
  const last = trimLine(pending + decoder.end());
  if (last) yield last;
}

function trimLine(line: string): string {
  const withoutCr = line.endsWith('\r') ? line.slice(0, -1) : line;
  return withoutCr.trim() ? withoutCr : '';
}

/** Gunzip when the bytes are gzip (the blob host may also have decoded a `Content-Encoding: gzip` already). */
async function* decompressed(body: NodeJS.ReadableStream): AsyncGenerator<Buffer> {
  const iterator = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  try {
    const head = await iterator.next();
    if (head.done) return;
    const firstChunk = Buffer.from(head.value);
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
    const gunzip = pipeline(bytes, createGunzip(), () => {
      // Errors surface through the async iteration of `gunzip` below.
    });
    yield* gunzip as AsyncIterable<Buffer>;
  } finally {
    // A reader that stops early (or fails) must not leave the blob connection open.
    (body as Readable).destroy?.();
  }
}
