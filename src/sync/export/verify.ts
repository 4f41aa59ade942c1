// Reads a committed NDJSON blob back, streaming: its SHA-256, bytes, line count and the exact sum of the rows'
// amounts, so the ledger and the manifest record what is really stored, not what the writer believes it wrote.
import { createHash } from 'node:crypto';
import type { BlockBlobClient } from '@azure/storage-blob';
import { amountText, Decimal, sumAmounts } from '../../money.js';

export interface VerifiedBlob {
  sha256: string;
  bytes: number;
  lines: number;
  /** Exact decimal sum of each row's amount field: '0' for an empty file, undefined when rows have none. */
  total?: string;
  totalField?: string;
}

/** The amount field that adds up to the invoice, by line-item type; names are matched case-insensitively (v2 is PascalCase). */
const TOTAL_FIELDS: Record<string, string[]> = {
  billing: ['totalforcustomer', 'posttaxtotal', 'amount'],
  usage: ['billingpretaxtotal', 'pretaxcharges'],
};

const NUMBER = '(-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)';
const patternCache = new Map<string, RegExp>();
/** `"<field>": <number or "number">`, the key matched case-insensitively and not inside an escaped string. */
function fieldPattern(field: string): RegExp {
  let pattern = patternCache.get(field);
  if (!pattern) {
    pattern = new RegExp(`(?<!\\\\)"(${field})"\\s*:\\s*(?:${NUMBER}|"${NUMBER}")`, 'i');
    patternCache.set(field, pattern);
  }
  return pattern;
}

/**
 * A row's amount in its total field (first candidate present wins), as the decimal text the row carries. A
 * targeted search on the raw text instead of JSON.parse per row: the rows are the API's flat line-item objects.
 */
export function rowTotal(row: string, candidates: string[]): { text: string; field: string } | undefined {
  for (const candidate of candidates) {
    const match = fieldPattern(candidate).exec(row);
    if (!match) continue;
    const text = match[2] ?? match[3];
    if (text !== undefined) return { text, field: match[1] ?? candidate };
  }
  return undefined;
}

export async function verifyNdjsonBlob(blob: BlockBlobClient, lineItemType: string): Promise<VerifiedBlob> {
  const hash = createHash('sha256');
  const candidates = TOTAL_FIELDS[lineItemType] ?? TOTAL_FIELDS.billing ?? [];
  const result: VerifiedBlob = { sha256: '', bytes: 0, lines: 0 };
  const amounts: Decimal[] = [];
  // maxRetryRequests: a dropped connection mid-read resumes from the byte reached instead of failing the check.
  const download = await blob.download(0, undefined, { maxRetryRequests: 5 });
  const body = download.readableStreamBody;
  // Lines are cut on bytes (LF never occurs inside a UTF-8 multi-byte character), then decoded one by one.
  let carry: Buffer = Buffer.alloc(0);
  const takeLine = (line: Buffer) => {
    if (line.length === 0) return;
    result.lines++;
    const total = rowTotal(line.toString('utf8'), candidates);
    if (total) {
      amounts.push(new Decimal(total.text));
      result.totalField ??= total.field;
    }
  };
  if (body) {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      result.bytes += chunk.length;
      let start = 0;
      for (let lf = chunk.indexOf(10); lf !== -1; lf = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, lf);
        takeLine(carry.length > 0 ? Buffer.concat([carry, piece]) : piece);
        carry = Buffer.alloc(0);
        start = lf + 1;
      }
      if (start < chunk.length) carry = Buffer.concat([carry, chunk.subarray(start)]);
    }
  }
  takeLine(carry);
  result.sha256 = hash.digest('hex');
  // An empty file adds up to zero (the "$0 invoice": line items not published yet must show as a gap, not as nothing).
  if (amounts.length > 0 || result.lines === 0) result.total = amountText(sumAmounts(amounts));
  return result;
}
