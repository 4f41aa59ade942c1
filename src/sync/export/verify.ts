// Reads a committed NDJSON blob back, streaming: its SHA-256, bytes, line count and the exact sum of the rows'
// amounts, so the ledger and the manifest record what is really stored, not what the writer believes it wrote.
import { createHash } from 'node:crypto';
import type { BlockBlobClient } from '@azure/storage-blob';
import { amountText, Decimal } from '../../money.js';

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
const quotedCache = new Map<string, string>();
const quotedLower = (field: string) => {
  let quoted = quotedCache.get(field);
  if (quoted === undefined) {
    quoted = `"${field.toLowerCase()}"`;
    quotedCache.set(field, quoted);
  }
  return quoted;
};
/** `"<field>": <number or "number">`, the key matched case-insensitively and not inside an escaped string. */
function fieldPattern(field: string): RegExp {
  let pattern = patternCache.get(field);
  if (!pattern) {
    // JSON whitespace only ([ \t\r\n], not \s): the same in the text and in its latin1 reading.
    // Sticky: tried at each place the field's name occurs, in order, which finds the same first match as a scan.
    pattern = new RegExp(`(?<!\\\\)"(${field})"[ \\t\\r\\n]*:[ \\t\\r\\n]*(?:${NUMBER}|"${NUMBER}")`, 'iy');
    patternCache.set(field, pattern);
  }
  return pattern;
}

/**
 * A row's amount in its total field (first candidate present wins), as the decimal text the row carries. A
 * targeted search on the raw text instead of JSON.parse per row: the rows are the API's flat line-item objects.
 */
export function rowTotal(row: string, candidates: string[]): { text: string; field: string } | undefined {
  // A native case-insensitive pre-check: the pattern can only match where the lower-cased row has `"field"`
  // (field names are ASCII), so a row without any candidate costs no regular expression at all.
  const lower = row.toLowerCase();
  for (const candidate of candidates) {
    const quoted = quotedLower(candidate);
    const pattern = fieldPattern(candidate);
    for (let at = lower.indexOf(quoted); at !== -1; at = lower.indexOf(quoted, at + 1)) {
      pattern.lastIndex = at;
      const match = pattern.exec(row);
      if (!match) continue;
      const text = match[2] ?? match[3];
      if (text !== undefined) return { text, field: match[1] ?? candidate };
    }
  }
  return undefined;
}

/**
 * What a read-back measures, fed the blob's bytes chunk by chunk as they arrive: SHA-256, bytes, lines, and the
 * exact sum of each line's amount. Lines are cut on bytes (LF never occurs inside a UTF-8 multi-byte character).
 */
export class NdjsonDigest {
  readonly #hash = createHash('sha256');
  readonly #candidates: string[];
  /** The running exact sum (the same left fold as sumAmounts, without holding one Decimal per row). */
  #total: Decimal = new Decimal(0);
  #amounts = 0;
  #carry: Buffer = Buffer.alloc(0);
  #result: VerifiedBlob = { sha256: '', bytes: 0, lines: 0 };

  constructor(lineItemType: string) {
    this.#candidates = TOTAL_FIELDS[lineItemType] ?? TOTAL_FIELDS.billing ?? [];
  }

  update(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.#result.bytes += chunk.length;
    let start = 0;
    for (let lf = chunk.indexOf(10); lf !== -1; lf = chunk.indexOf(10, start)) {
      if (this.#carry.length > 0) {
        this.#line(Buffer.concat([this.#carry, chunk.subarray(start, lf)]));
        this.#carry = Buffer.alloc(0);
      } else {
        this.#line(chunk, start, lf);
      }
      start = lf + 1;
    }
    if (start < chunk.length) this.#carry = Buffer.concat([this.#carry, chunk.subarray(start)]);
  }

  digest(): VerifiedBlob {
    if (this.#carry.length > 0) this.#line(this.#carry);
    this.#carry = Buffer.alloc(0);
    const result = this.#result;
    result.sha256 = this.#hash.digest('hex');
    // An empty file adds up to zero (the "$0 invoice": line items not published yet must show as a gap, not as nothing).
    if (this.#amounts > 0 || result.lines === 0) result.total = amountText(this.#total);
    return result;
  }

  #line(bytes: Buffer, start = 0, end = bytes.length): void {
    if (end === start) return;
    this.#result.lines++;
    // latin1: one byte per character, no UTF-8 decoding; the field names and amounts searched for are ASCII, and
    // no byte of a multi-byte UTF-8 character is ASCII, so the search finds exactly what it finds in the text.
    const total = rowTotal(bytes.toString('latin1', start, end), this.#candidates);
    if (total) {
      this.#total = this.#total.plus(new Decimal(total.text));
      this.#amounts++;
      this.#result.totalField ??= total.field;
    }
  }
}

export async function verifyNdjsonBlob(blob: BlockBlobClient, lineItemType: string): Promise<VerifiedBlob> {
  const digest = new NdjsonDigest(lineItemType);
  // maxRetryRequests: a dropped connection mid-read resumes from the byte reached instead of failing the check.
  const download = await blob.download(0, undefined, { maxRetryRequests: 5 });
  const body = download.readableStreamBody;
  if (body) for await (const chunk of body as AsyncIterable<Buffer>) digest.update(chunk);
  return digest.digest();
}
