// CPU cost per row of each step the exporter does to a page, measured in this process by calling the functions in
// src/ that the export runs (no copies): the v1 page reader on a page held in memory (the transport is the only
// part replaced: it returns the page's bytes instead of fetching them), stage's checks and MD5, and the
// read-back digest. `tsx bench/cpu-costs.ts`.
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { readManifestPages } from '../src/graph/lines.js';
import { ndjsonItems } from '../src/http/json-items.js';
import { lineItemPages } from '../src/partner-center/line-items.js';
import { checkedBlockMd5 } from '../src/storage/ndjson-writer.js';
import { NdjsonDigest } from '../src/sync/export/verify.js';
import { createDataset } from '../test/simulator/dataset.js';

export interface CpuCost {
  step: string;
  usPerRow: number;
  /** Counted in the exporter's total (the other lines break a counted one down). */
  counted: boolean;
}

/** A v1 page as the simulator renders it (items separated by `,\n`), as bytes. */
export function samplePage(rows: number): { bytes: Buffer; rows: string[] } {
  const dataset = createDataset(7, {
    invoices: [
      {
        id: 'D0BENCHCPU',
        kind: 'legacy',
        billingPeriod: '2024-01',
        parts: [{ provider: 'azure', lineItemType: 'usage_line_items', rows }],
      },
    ],
  });
  const part = dataset.findPart('D0BENCHCPU', 'azure', 'usage');
  if (!part) throw new Error('no part');
  const render = dataset.renderer('D0BENCHCPU', part);
  const list = Array.from({ length: rows }, (_, i) => render(i));
  const text = `{"totalCount":${rows},"items":[\n${list.join(',\n')}\n],"links":{"self":{"uri":"/x","method":"GET","headers":[]}},"attributes":{"objectType":"Collection"}}`;
  return { bytes: Buffer.from(text, 'utf8'), rows: list };
}

/** v2 rows as the simulator renders them, gzip JSON Lines of one blob. */
function sampleV2Blob(rows: number): Buffer {
  const dataset = createDataset(7, {
    invoices: [
      {
        id: 'G0BENCHCPU',
        kind: 'modern',
        billingPeriod: '2025-06',
        parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows }],
      },
    ],
  });
  const part = dataset.findPart('G0BENCHCPU', 'one_time', 'billing');
  if (!part) throw new Error('no v2 part');
  const render = dataset.renderer('G0BENCHCPU', part, true);
  return gzipSync(`${Array.from({ length: rows }, (_, i) => render(i)).join('\n')}\n`, { level: 1 });
}

/**
 * CPU time of this process (user + system, so time the machine gave to other work is not counted) per row, the
 * least of 5 rounds of `repeat` calls (the round least disturbed by other processes' cache and frequency effects).
 */
async function timePerRow(rows: number, repeat: number, fn: () => unknown): Promise<number> {
  await fn();
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const started = process.cpuUsage();
    for (let i = 0; i < repeat; i++) await fn();
    const used = process.cpuUsage(started);
    best = Math.min(best, (used.user + used.system) / (rows * repeat));
  }
  return best;
}

/** The real v1 reader (src/partner-center/line-items.ts) over one page held in memory. */
async function readV1Page(page: Buffer): Promise<{ ndjson: Buffer; rows: number }> {
  const pages = lineItemPages(
    { url: (uri) => `https://api.partnercenter.microsoft.com${uri}`, getBytes: async () => page },
    { path: '/v1/invoices/D0BENCHCPU/lineitems/Azure/UsageLineItems', query: 'size=2000', paging: 'offset' },
    null,
  );
  const first = await pages.next();
  await pages.return(undefined);
  if (first.done) throw new Error('no page');
  return first.value;
}

export async function measureCpuCosts(pageRows = 2000, repeat = 4): Promise<CpuCost[]> {
  const { bytes } = samplePage(pageRows);
  const page = await readV1Page(bytes);
  if (page.rows !== pageRows) throw new Error(`the reader found ${page.rows} rows of ${pageRows}`);
  const digestOf = (ndjson: Buffer) => {
    const digest = new NdjsonDigest('usage');
    // As the download arrives: 64 KiB chunks.
    for (let at = 0; at < ndjson.length; at += 65_536) digest.update(ndjson.subarray(at, at + 65_536));
    return digest.digest();
  };
  if (digestOf(page.ndjson).lines !== pageRows) throw new Error('the digest miscounted the lines');

  const v2Rows = 20_000;
  const blob = sampleV2Blob(v2Rows);
  /** The v2 reader over the sample blob, from the start, 2,000 lines a page. */
  const v2Pages = () =>
    readManifestPages(
      {
        eTag: 'e',
        rootDirectory: 'https://x.blob.core.windows.net/c',
        sasToken: '',
        blobCount: 1,
        blobs: [{ name: 'b' }],
      },
      {
        checkpoint: { blobIndex: 0, line: 0, rowsThrough: 0 },
        maxLines: 2000,
        maxLineBytes: 1024 * 1024,
        open: async () => Readable.from([blob]),
      },
    );
  const readV2 = async () => {
    let n = 0;
    for await (const p of v2Pages()) n += p.rows;
    if (n !== v2Rows) throw new Error(`v2 reader found ${n} rows of ${v2Rows}`);
  };
  const v2Ndjson = await (async () => {
    const parts: Buffer[] = [];
    for await (const p of v2Pages()) parts.push(p.ndjson);
    return Buffer.concat(parts);
  })();

  const v1Reader = await timePerRow(pageRows, repeat, () => readV1Page(bytes));
  const split = await timePerRow(pageRows, repeat, () => ndjsonItems(bytes));
  const stage = await timePerRow(pageRows, repeat, () => checkedBlockMd5('b', page.ndjson, pageRows));
  const verify = await timePerRow(pageRows, repeat, () => digestOf(page.ndjson));
  const v2Read = await timePerRow(v2Rows, 1, readV2);
  const v2Stage = await timePerRow(v2Rows, 1, () => {
    for (let at = 0; at < v2Ndjson.length; ) {
      // 2,000-line blocks, as the pages are.
      let end = at;
      for (let k = 0; k < 2000 && end < v2Ndjson.length; k++) end = v2Ndjson.indexOf(10, end) + 1;
      checkedBlockMd5('b', v2Ndjson.subarray(at, end), 2000);
      at = end;
    }
  });
  const v2Verify = await timePerRow(v2Rows, 1, () => {
    const digest = new NdjsonDigest('billing');
    for (let at = 0; at < v2Ndjson.length; at += 65_536) digest.update(v2Ndjson.subarray(at, at + 65_536));
    digest.digest();
  });
  return [
    {
      step: 'v1 read: lineItemPages on a page in memory (src/partner-center/line-items.ts: ndjsonItems + envelope checks)',
      usPerRow: v1Reader,
      counted: true,
    },
    {
      step: '  of which ndjsonItems (src/http/json-items.ts: validating byte scan + copy into the block)',
      usPerRow: split,
      counted: false,
    },
    {
      step: 'stage: checkedBlockMd5 (src/storage/ndjson-writer.ts: line checks + MD5)',
      usPerRow: stage,
      counted: true,
    },
    {
      step: 'verify: NdjsonDigest (src/sync/export/verify.ts: SHA-256, lines, amount per row)',
      usPerRow: verify,
      counted: true,
    },
    {
      step: 'v2 read: readManifestPages on a gzip blob in memory (src/graph/lines.ts: gunzip + lines + pages)',
      usPerRow: v2Read,
      counted: false,
    },
    { step: 'v2 stage: checkedBlockMd5 on 2,000-line blocks of v2 rows', usPerRow: v2Stage, counted: false },
    { step: 'v2 verify: NdjsonDigest on v2 rows', usPerRow: v2Verify, counted: false },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const costs = await measureCpuCosts();
  for (const cost of costs) process.stdout.write(`${cost.usPerRow.toFixed(2).padStart(8)} us/row  ${cost.step}\n`);
  const total = costs.filter((c) => c.counted).reduce((sum, c) => sum + c.usPerRow, 0);
  process.stdout.write(`${total.toFixed(2).padStart(8)} us/row  v1 total (read + stage + verify)\n`);
}
