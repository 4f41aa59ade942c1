// Writes an invoice's typed dataset, billing_lines.parquet, from its committed billing NDJSON blobs (which stay the
// record), as part of finalizing the invoice: streamed one row group at a time, staged as blocks and committed only
// when its BilledCost sum equals the reconciliation's line-item total. Unchanged inputs write nothing.
import { createHash } from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type BlockBlobClient, type ContainerClient, RestError } from '@azure/storage-blob';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { amountText, Decimal } from '../money.js';
import type { InvoiceEntity, Reconciliation } from '../storage/invoices.js';
import { billingLinesPath } from '../storage/layout.js';
import { MAX_BLOCKS } from '../storage/ndjson-writer.js';
import type { PartEntity } from '../storage/parts.js';
import { COLUMNS, DATASET_SCHEMA_VERSION, DECIMAL_SCALE, parquetSchema } from './columns.js';
import { type Cell, DatasetRowError, type RowOrigin, typedRow } from './rows.js';

export const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';
/** Key-value metadata keys in the Parquet footer (readers can see what the file was made from). */
export const KV_PREFIX = 'csp_invoice_sync.';

/** One NDJSON file the dataset was made from, as the ledger recorded it when the part completed. */
export interface DatasetInput {
  path: string;
  sha256: string;
  rows: number;
  source: 'v1' | 'v2';
}

/** The manifest's record of the dataset file. */
export interface DatasetArtifact {
  kind: 'dataset';
  path: string;
  bytes: number;
  sha256: string;
  rows: number;
  /** Exact sum of BilledCost; absent when no line has one. */
  total?: string;
  schemaVersion: number;
  inputs: DatasetInput[];
}

export type DatasetOutcome =
  /** Written now, or already there from the same inputs (nothing written). */
  | { state: 'written' | 'unchanged'; artifact: DatasetArtifact }
  /** Not every billing part is complete (the invoice is failed or unsettled): no dataset for now. */
  | { state: 'skipped' }
  /** The dataset cannot be made, or does not add up to the reconciliation: the invoice is not complete. */
  | { state: 'invalid'; problem: string }
  /** Another writer committed the file in between: finalize starts again from fresh parts. */
  | { state: 'raced' };

export interface DatasetOptions {
  /** Rows per row group: what is held in memory at once (default ROW_GROUP_ROWS). */
  rowGroupRows?: number;
  abortSignal?: AbortSignal;
}

const BILLED_COST = COLUMNS.findIndex((c) => c.name === 'BilledCost');
const BILLED_COST_SCALE = DECIMAL_SCALE.decimal;

/** The billing parts a dataset is made from: the reconciliation's (complete billing parts), in path order. */
export function datasetInputs(parts: readonly PartEntity[]): DatasetInput[] {
  return parts
    .filter((p) => p.lineItemType === 'billing' && p.state === 'complete')
    .map((p) => ({ path: p.blobPath, sha256: p.sha256 ?? '', rows: p.rows, source: p.source ?? p.api }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** What identifies a dataset's content: the schema version and every input file's hash (sha256, hex). */
export function inputsFingerprint(inputs: readonly DatasetInput[]): string {
  const text = JSON.stringify({ schemaVersion: DATASET_SCHEMA_VERSION, inputs: inputs.map((i) => [i.path, i.sha256]) });
  return createHash('sha256').update(text).digest('hex');
}

const isConditionFailure = (error: unknown) =>
  error instanceof RestError && (error.statusCode === 412 || error.statusCode === 409);

/** Blob metadata written with the file (lower-case keys: the service compares names case-insensitively). */
interface StoredSummary {
  inputs: string;
  sha256: string;
  rows: string;
  billedcost: string;
}

/**
 * Makes sure billing_lines.parquet matches the invoice's committed billing parts, and that its BilledCost sum
 * equals `reconciliation.lineItemTotal` exactly. Storage errors are thrown (the message is retried).
 */
export async function syncBillingLines(
  container: ContainerClient,
  invoice: Pick<InvoiceEntity, 'invoiceId' | 'billingPeriod' | 'currencyCode'>,
  parts: readonly PartEntity[],
  reconciliation: Pick<Reconciliation, 'lineItemTotal'>,
  options: DatasetOptions = {},
): Promise<DatasetOutcome> {
  const billing = parts.filter((p) => p.lineItemType === 'billing');
  if (billing.some((p) => p.state === 'failed' || p.state === 'unsettled')) return { state: 'skipped' };
  const inputs = datasetInputs(parts);
  const fingerprint = inputsFingerprint(inputs);
  const path = billingLinesPath(invoice.billingPeriod, invoice.invoiceId);
  const blob = container.getBlockBlobClient(path);

  const existing = await blob.getProperties({ abortSignal: options.abortSignal }).catch((error: unknown) => {
    if (error instanceof RestError && error.statusCode === 404) return undefined;
    throw error;
  });
  const stored = existing?.metadata as Partial<StoredSummary> | undefined;
  if (stored?.inputs === fingerprint && stored.sha256 && stored.rows !== undefined && existing?.contentLength) {
    const artifact = artifactOf(
      path,
      existing.contentLength,
      stored.sha256,
      Number(stored.rows),
      stored.billedcost,
      inputs,
    );
    const problem = sumProblem(path, artifact.total, reconciliation, invoice.currencyCode);
    return problem ? { state: 'invalid', problem } : { state: 'unchanged', artifact };
  }

  const writer = new StagedBlocks(blob, fingerprint.slice(0, 16), options.abortSignal);
  let written: { rows: number; billedCost: bigint | undefined };
  try {
    written = await writeParquet(container, writer, invoice, inputs, fingerprint, options);
  } catch (error) {
    if (error instanceof DatasetRowError || error instanceof DatasetInputError) {
      return { state: 'invalid', problem: `${path}: ${error.message}` };
    }
    throw error;
  }
  const total = written.billedCost === undefined ? undefined : decimalOf(written.billedCost);
  const problem = sumProblem(path, total, reconciliation, invoice.currencyCode);
  // A file that does not add up is never committed: readers keep seeing the previous one (or none).
  if (problem) return { state: 'invalid', problem };

  const sha256 = writer.sha256();
  const metadata: StoredSummary = { inputs: fingerprint, sha256, rows: String(written.rows), billedcost: total ?? '' };
  try {
    await blob.commitBlockList(writer.ids, {
      blobHTTPHeaders: { blobContentType: PARQUET_CONTENT_TYPE },
      metadata: { ...metadata },
      conditions: existing?.etag ? { ifMatch: existing.etag } : { ifNoneMatch: '*' },
      abortSignal: options.abortSignal,
    });
  } catch (error) {
    if (isConditionFailure(error)) return { state: 'raced' };
    throw error;
  }
  return { state: 'written', artifact: artifactOf(path, writer.bytes, sha256, written.rows, total, inputs) };
}

function artifactOf(
  path: string,
  bytes: number,
  sha256: string,
  rows: number,
  total: string | undefined,
  inputs: DatasetInput[],
): DatasetArtifact {
  return {
    kind: 'dataset',
    path,
    bytes,
    sha256,
    rows,
    ...(total ? { total } : {}),
    schemaVersion: DATASET_SCHEMA_VERSION,
    inputs,
  };
}

const decimalOf = (unscaled: bigint): string =>
  amountText(new Decimal(unscaled.toString()).div(10 ** BILLED_COST_SCALE));

/** Why the dataset's BilledCost sum is not the reconciliation's line-item total, or undefined when it is. */
function sumProblem(
  path: string,
  total: string | undefined,
  reconciliation: Pick<Reconciliation, 'lineItemTotal'>,
  currency: string,
): string | undefined {
  const expected = reconciliation.lineItemTotal ?? undefined;
  const same = total === undefined || expected === undefined ? total === expected : new Decimal(total).eq(expected);
  if (same) return undefined;
  return (
    `${path}: BilledCost sums to ${total ?? 'nothing'} ${currency}, the reconciliation's billing line items to ` +
    `${expected ?? 'nothing'} ${currency}; the dataset was not written`
  );
}

/** An input file that is not what the ledger recorded (changed since, or shorter/longer). */
class DatasetInputError extends Error {
  override name = 'DatasetInputError';
}

/**
 * Rows per row group of billing_lines.parquet: about as many rows as one full v1 page, so a row group's cells
 * stay a few MiB in memory. Decided here, not by LINE_ITEM_PAGE_SIZE: a small page size (a throttled tenant)
 * must not cut the file into tiny row groups, each a staged block and a set of column chunks to write and read.
 */
export const ROW_GROUP_ROWS = 2000;

/** Rows typed between two turns of the event loop (about 3 ms of CPU at ~50 µs a row). */
const YIELD_EVERY_ROWS = 64;

/** Streams every input's rows into the Parquet writer, one row group at a time. */
async function writeParquet(
  container: ContainerClient,
  writer: StagedBlocks,
  invoice: Pick<InvoiceEntity, 'invoiceId' | 'billingPeriod' | 'currencyCode'>,
  inputs: DatasetInput[],
  fingerprint: string,
  options: DatasetOptions,
): Promise<{ rows: number; billedCost: bigint | undefined }> {
  const groupRows = Math.max(1, options.rowGroupRows ?? ROW_GROUP_ROWS);
  const parquet = new ParquetWriter({
    writer,
    schema: parquetSchema(),
    createdBy: 'csp-invoice-sync (hyparquet-writer)',
    // The footer says what the file was made from; nothing time-dependent, so the same inputs give the same bytes.
    kvMetadata: [
      { key: `${KV_PREFIX}schema_version`, value: String(DATASET_SCHEMA_VERSION) },
      { key: `${KV_PREFIX}invoice_id`, value: invoice.invoiceId },
      { key: `${KV_PREFIX}inputs_fingerprint`, value: fingerprint },
      { key: `${KV_PREFIX}inputs`, value: JSON.stringify(inputs) },
    ],
  });
  let columns: Cell[][] = COLUMNS.map(() => []);
  let inGroup = 0;
  let rows = 0;
  let billedCost: bigint | undefined;
  const flushGroup = async () => {
    if (inGroup === 0) return;
    await parquet.write({
      columnData: COLUMNS.map((column, i) => ({ name: column.name, data: columns[i] as Cell[] })),
      rowGroupSize: inGroup,
    });
    columns = COLUMNS.map(() => []);
    inGroup = 0;
  };

  for (const input of inputs) {
    const origin: RowOrigin = {
      invoiceId: invoice.invoiceId,
      billingPeriod: invoice.billingPeriod,
      currencyCode: invoice.currencyCode,
      provider: providerOf(input.path),
      source: input.source,
      path: input.path,
    };
    const hash = createHash('sha256');
    let lineNumber = 0;
    let inputCost: bigint | undefined;
    for await (const line of ndjsonLines(container.getBlockBlobClient(input.path), hash, options.abortSignal)) {
      lineNumber++;
      // Typing is CPU on the one thread the other invocations share: let their I/O in every few milliseconds.
      if (lineNumber % YIELD_EVERY_ROWS === 0) await yieldToEventLoop();
      const cells = typedRow(line, lineNumber, origin);
      cells.forEach((cell, i) => {
        (columns[i] as Cell[]).push(cell);
      });
      const cost = cells[BILLED_COST];
      if (typeof cost === 'bigint') inputCost = (inputCost ?? 0n) + cost;
      rows++;
      if (++inGroup >= groupRows) await flushGroup();
    }
    const sha256 = hash.digest('hex');
    if (sha256 !== input.sha256) {
      throw new DatasetInputError(`${input.path} has sha256 ${sha256}, the ledger recorded ${input.sha256}`);
    }
    if (lineNumber !== input.rows) {
      throw new DatasetInputError(`${input.path} has ${lineNumber} rows, the ledger recorded ${input.rows}`);
    }
    // As the reconciliation counts a part: an empty file adds 0, a file whose rows carry no amount adds nothing.
    if (lineNumber === 0) inputCost = 0n;
    if (inputCost !== undefined) billedCost = (billedCost ?? 0n) + inputCost;
  }
  await flushGroup();
  await parquet.finish();
  return { rows, billedCost };
}

/** `.../lineitems/provider={p}/line_item_type=...`: the provider the part was requested as. */
function providerOf(path: string): string {
  const match = /\/provider=([^/]+)\//.exec(path);
  if (!match?.[1]) throw new DatasetInputError(`${path} names no provider folder`);
  return match[1];
}

/**
 * The blob's lines, decoded one by one (LF never occurs inside a UTF-8 multi-byte character, so lines are cut on
 * bytes); every byte also goes into `hash`. Only the current chunk and a partial line are held.
 */
async function* ndjsonLines(
  blob: BlockBlobClient,
  hash: ReturnType<typeof createHash>,
  abortSignal?: AbortSignal,
): AsyncGenerator<string> {
  // maxRetryRequests: a dropped connection mid-read resumes from the byte reached instead of failing.
  const download = await blob.download(0, undefined, { maxRetryRequests: 5, abortSignal });
  const body = download.readableStreamBody;
  let carry: Buffer = Buffer.alloc(0);
  if (body) {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      let start = 0;
      for (let lf = chunk.indexOf(10); lf !== -1; lf = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, lf);
        const line = carry.length > 0 ? Buffer.concat([carry, piece]) : piece;
        carry = Buffer.alloc(0);
        start = lf + 1;
        if (line.length > 0) yield line.toString('utf8');
      }
      if (start < chunk.length) carry = Buffer.concat([carry, chunk.subarray(start)]);
    }
  }
  if (carry.length > 0) yield carry.toString('utf8');
}

/**
 * The Parquet writer's output, staged as one block per row group (and one for the footer). Block ids carry the
 * inputs' fingerprint, so two writers of different inputs never mix blocks; the same inputs give the same bytes.
 */
class StagedBlocks extends ByteWriter {
  readonly ids: string[] = [];
  bytes = 0;
  readonly #hash = createHash('sha256');

  constructor(
    readonly blob: BlockBlobClient,
    readonly idPrefix: string,
    readonly abortSignal?: AbortSignal,
  ) {
    super(1 << 20);
  }

  flush(): Promise<void> {
    if (this.index === 0) return Promise.resolve();
    // Copied: the writer reuses its buffer for the next row group while this block uploads.
    const block = Buffer.from(this.buffer.slice(0, this.index));
    this.index = 0;
    if (this.ids.length >= MAX_BLOCKS) {
      throw new Error(`${this.blob.name}: more than ${MAX_BLOCKS} row groups; raise the row group size`);
    }
    const id = Buffer.from(`${this.idPrefix}${String(this.ids.length).padStart(6, '0')}`).toString('base64');
    this.ids.push(id);
    this.bytes += block.length;
    this.#hash.update(block);
    return this.blob
      .stageBlock(id, block, block.length, {
        transactionalContentMD5: createHash('md5').update(block).digest(),
        abortSignal: this.abortSignal,
      })
      .then(() => undefined);
  }

  override finish(): Promise<void> {
    return this.flush();
  }

  sha256(): string {
    return this.#hash.copy().digest('hex');
  }
}
