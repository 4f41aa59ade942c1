// The manifest line reader on real gzip bytes: chunking, CRLF and blank lines, resume equivalence across blobs.
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { type ManifestChunk, manifestSchema } from '../../src/graph/index.js';
import { jsonLines, readBlobLines } from '../../src/graph/lines.js';

const row = (b: number, i: number) =>
  `{"InvoiceNumber":"G000000001","Blob":${b},"Line":${i},"Note":"caf\u00e9 \\u00e9"}`;
const blobTexts = [
  Array.from({ length: 7 }, (_, i) => row(0, i)).join('\r\n'),
  '',
  `${Array.from({ length: 5 }, (_, i) => row(2, i)).join('\n')}\n\n`,
  Array.from({ length: 4 }, (_, i) => row(3, i)).join('\n'),
];
const expected = [0, 2, 3].flatMap((b) => Array.from({ length: b === 0 ? 7 : b === 2 ? 5 : 4 }, (_, i) => row(b, i)));

const manifest = manifestSchema.parse({
  eTag: 'e1',
  rootDirectory: 'https://x.blob.core.windows.net/c/dir',
  sasToken: 'sv=1&sig=abc',
  blobCount: blobTexts.length,
  blobs: blobTexts.map((_, i) => ({ name: `part-${i}.json.gz`, partitionValue: 'default' })),
});

/** Real gzip bytes, delivered in small pieces so lines and multi-byte characters straddle chunk edges. */
function gzipStream(text: string): NodeJS.ReadableStream {
  const bytes = gzipSync(Buffer.from(text, 'utf8'));
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 7) pieces.push(bytes.subarray(i, i + 7));
  return Readable.from(pieces);
}

async function collect(checkpoint = { blobIndex: 0, line: 0 }, maxLines = 3): Promise<ManifestChunk[]> {
  const chunks: ManifestChunk[] = [];
  for await (const chunk of readBlobLines({
    manifest,
    checkpoint,
    maxLines,
    open: async (url, blobIndex) => {
      expect(url).toBe(`https://x.blob.core.windows.net/c/dir/part-${blobIndex}.json.gz?sv=1&sig=abc`);
      return gzipStream(blobTexts[blobIndex]!);
    },
  })) {
    chunks.push(chunk);
  }
  return chunks;
}

describe('manifest lines', () => {
  it('yields every non-empty line verbatim, in chunks of at most maxLines, last chunk next=null', async () => {
    const chunks = await collect();
    expect(chunks.flatMap((c) => c.rows)).toEqual(expected);
    expect(chunks.every((c) => c.rows.length > 0 && c.rows.length <= 3)).toBe(true);
    expect(chunks.at(-1)!.next).toBeNull();
    expect(chunks.slice(0, -1).every((c) => c.next !== null)).toBe(true);
    // Rows never span blobs, so a chunk belongs to one blob.
    for (const c of chunks) expect(c.rows.every((r) => r.includes(`"Blob":${c.blobIndex},`))).toBe(true);
  });

  it('resuming from every checkpoint gives exactly the rest of a straight read', async () => {
    const straight = await collect();
    let seen: string[] = [];
    for (const chunk of straight) {
      seen = [...seen, ...chunk.rows];
      if (!chunk.next) break;
      const resumed = (await collect(chunk.next)).flatMap((c) => c.rows);
      expect([...seen, ...resumed]).toEqual(expected);
    }
  });

  it('a checkpoint at the end yields one empty final chunk', async () => {
    const chunks = await collect({ blobIndex: 4, line: 0 });
    expect(chunks).toEqual([{ rows: [], next: null, blobIndex: 3 }]);
  });

  it('reads plain (already decoded) bytes and a row count that is not a multiple of the chunk size', async () => {
    const lines: string[] = [];
    for await (const line of jsonLines(Readable.from([Buffer.from('{"a":1}\r\n{"a":2}\n\n{"a":3}')]))) lines.push(line);
    expect(lines).toEqual(['{"a":1}', '{"a":2}', '{"a":3}']);
  });

  it('surfaces a corrupt gzip stream as an error', async () => {
    const bytes = gzipSync(Buffer.from(expected.join('\n')));
    const corrupt = Buffer.concat([bytes.subarray(0, 20), Buffer.alloc(40, 7)]);
    await expect(async () => {
      for await (const _ of jsonLines(Readable.from([corrupt]))) {
        // drain
      }
    }).rejects.toThrow();
  });
});
