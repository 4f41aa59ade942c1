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
const BILLING_TOTAL_FIELDS = ['totalforcustomer', 'posttaxtotal', 'amount'];
const TOTAL_FIELDS: Record<string, string[]> = {
  billing: BILLING_TOTAL_FIELDS,
  usage: ['billingpretaxtotal', 'pretaxcharges'],
};

const NUMBER = '(-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)';

/** A total field as the scan uses it: its quoted lower-case name and its pattern. */
export interface TotalField {
  quoted: string;
  pattern: RegExp;
}

/**
 * The fields in the order they are preferred, compiled once per read-back. The pattern is `"<field>": <number or
 * "number">`, the key matched case-insensitively and not inside an escaped string; JSON whitespace only
 * ([ \t\r\n], not \s): the same in the text and in its latin1 reading. Sticky: tried at each place the field's
 * name occurs, in order, which finds the same first match as a scan.
 */
export const totalFields = (names: readonly string[]): TotalField[] =>
  names.map((field) => ({
    quoted: `"${field.toLowerCase()}"`,
    pattern: new RegExp(`(?<!\\\\)"(${field})"[ \\t\\r\\n]*:[ \\t\\r\\n]*(?:${NUMBER}|"${NUMBER}")`, 'iy'),
  }));

/**
 * A row's amount in its total field (first field present wins), as the decimal text the row carries. A targeted
 * scan of the raw text instead of JSON.parse per row: the rows are the API's flat line-item objects.
 */
export function rowTotal(row: string, fields: readonly TotalField[]): { text: string; field: string } | undefined {
  // A native case-insensitive pre-check: the pattern can only match where the lower-cased row has `"field"`
  // (field names are ASCII), so a row without any candidate costs no regular expression at all.
  const lower = row.toLowerCase();
  for (const { quoted, pattern } of fields) {
    for (let at = lower.indexOf(quoted); at !== -1; at = lower.indexOf(quoted, at + 1)) {
      pattern.lastIndex = at;
      const match = pattern.exec(row);
      if (!match) continue;
      const text = match[2] ?? match[3];
      // Group 1 (the name as the row spells it) is part of every match.
      if (text !== undefined) return { text, field: match[1]! };
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
  readonly #fields: TotalField[];
  /** The running exact sum (the same left fold as sumAmounts, without holding one Decimal per row). */
  #total: Decimal = new Decimal(0);
  #amounts = 0;
  /** The bytes after the last line break so far: the start of a line the next chunk completes. */
  #carry: Buffer = Buffer.alloc(0);
  #bytes = 0;
  #lines = 0;
  #totalField: string | undefined;

  constructor(lineItemType: string) {
    this.#fields = totalFields(TOTAL_FIELDS[lineItemType] ?? BILLING_TOTAL_FIELDS);
  }

  update(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    let lf = chunk.indexOf(10);
    if (lf === -1) {
      this.#carry = Buffer.concat([this.#carry, chunk]);
      return;
    }
    // The chunk's first line completes the one carried over (one copy per chunk, none per line).
    this.#line(Buffer.concat([this.#carry, chunk.subarray(0, lf)]));
    let start = lf + 1;
    for (lf = chunk.indexOf(10, start); lf !== -1; lf = chunk.indexOf(10, start)) {
      this.#line(chunk, start, lf);
      start = lf + 1;
    }
    // A copy: the stream may reuse the chunk's memory.
    this.#carry = Buffer.from(chunk.subarray(start));
  }

  digest(): VerifiedBlob {
    // The last line may lack its line break (an empty carry is no line: #line skips it).
    this.#line(this.#carry);
    this.#carry = Buffer.alloc(0);
    return {
      sha256: this.#hash.digest('hex'),
      bytes: this.#bytes,
      lines: this.#lines,
      // An empty file adds up to zero (the "$0 invoice": line items not published yet must show as a gap, not as
      // nothing).
      total: this.#amounts > 0 || this.#lines === 0 ? amountText(this.#total) : undefined,
      totalField: this.#totalField,
    };
  }

  #line(bytes: Buffer, start = 0, end = bytes.length): void {
    if (end === start) return;
    this.#lines++;
    // latin1: one byte per character, no UTF-8 decoding; the field names and amounts looked for are ASCII, and
    // no byte of a multi-byte UTF-8 character is ASCII, so the scan finds exactly what it finds in the text.
    const total = rowTotal(bytes.toString('latin1', start, end), this.#fields);
    if (total) {
      this.#total = this.#total.plus(new Decimal(total.text));
      this.#amounts++;
      this.#totalField ??= total.field;
    }
  }
}

export async function verifyNdjsonBlob(blob: BlockBlobClient, lineItemType: string): Promise<VerifiedBlob> {
  const digest = new NdjsonDigest(lineItemType);
  // A dropped connection mid-read resumes from the byte reached (the SDK's maxRetryRequests, 5 by default in
  // Node) instead of failing the check.
  const download = await blob.download(0);
  // Always present in Node (browsers get blobBody instead).
  for await (const chunk of download.readableStreamBody as AsyncIterable<Buffer>) digest.update(chunk);
  return digest.digest();
}
