// The ledger in Azure Table Storage: one entity per invoice and one per invoice part, their state machines,
// and ETag-conditional updates so two workers never overwrite each other.
import { odata, RestError, type TableClient } from '@azure/data-tables';
import { z } from 'zod';
import { assertSafeId } from '../ids.js';

/*
 * Invoice state machine (transitionInvoice enforces it; updateInvoice is the raw, unchecked write):
 *
 *   discovered ──► queued ──► pdf_saved ──► exporting ──► complete
 *                    ▲  │         │             │    └──► unsettled (line totals differ from the invoice)
 *                    │  └─────────┴─────────────┴───────► failed
 *                    └── any state but discovered (re-queue of a stuck invoice, retry after failed, operator resync)
 *
 * - discovered: recorded by detectInvoices BEFORE its message is sent, so a failed enqueue only delays it.
 * - queued: the message is durable; a stuck invoice (no progress for STUCK_AFTER_MINUTES) is queued again.
 * - pdf_saved → exporting: the PDF, receipts and invoice.json are saved and parts recorded, then exported.
 * - pdf_saved may go straight to complete/unsettled when the invoice has no exportable parts.
 * - complete, unsettled and failed are resting states; only a re-queue (queued) leaves them.
 */
export const INVOICE_STATES = [
  'discovered',
  'queued',
  'pdf_saved',
  'exporting',
  'complete',
  'failed',
  'unsettled',
] as const;
export type InvoiceState = (typeof INVOICE_STATES)[number];

export const INVOICE_TRANSITIONS: Readonly<Record<InvoiceState, readonly InvoiceState[]>> = {
  discovered: ['queued', 'failed'],
  queued: ['queued', 'pdf_saved', 'failed'],
  pdf_saved: ['queued', 'pdf_saved', 'exporting', 'complete', 'unsettled', 'failed'],
  exporting: ['queued', 'exporting', 'complete', 'unsettled', 'failed'],
  complete: ['queued'],
  unsettled: ['queued', 'complete', 'unsettled'],
  failed: ['queued', 'failed'],
};

export const PART_STATES = [
  'pending',
  'queued',
  'exporting',
  'waiting',
  'complete',
  'failed',
  'unsettled',
  'unsupported',
] as const;
export type PartState = (typeof PART_STATES)[number];

/** The schema version written on every part entity, so a later layout change can recognise old rows. */
export const PART_ENTITY_VERSION = 1;
/** lastError is capped: callers pass redacted text, and a Table property is limited to 64 KiB. */
export const MAX_LAST_ERROR_CHARS = 2000;
/**
 * A checkpoint (continuation token + headers) must stay well under the 64 KiB property limit. Table Storage
 * counts strings in UTF-16, so 32 KiB is 16,384 characters.
 */
export const MAX_CHECKPOINT_CHARS = 16 * 1024;

const optionalText = z.string().optional();
const count = z.number().int().min(0);

export const invoiceEntitySchema = z.object({
  invoiceId: z.string(),
  billingPeriod: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/),
  invoiceDate: z.string(),
  documentType: z.string(),
  invoiceType: z.string(),
  amendsOf: optionalText,
  currencyCode: z.string(),
  /** A string so the amount stays exactly as Partner Center sent it. */
  totalCharges: z.string(),
  state: z.enum(INVOICE_STATES),
  attempts: count,
  lastError: optionalText,
  discoveredAt: z.string(),
  updatedAt: z.string(),
  queuedAt: optionalText,
  completedAt: optionalText,
  correlationId: z.string(),
  pdfSha256: optionalText,
  pdfBytes: count.optional(),
  partsTotal: count.optional(),
  partsComplete: count.optional(),
  manifestEtag: optionalText,
});
export type InvoiceEntity = z.output<typeof invoiceEntitySchema>;
export type NewInvoiceEntity = z.input<typeof invoiceEntitySchema>;

export const partEntitySchema = z.object({
  invoiceId: z.string(),
  partId: z.string(),
  provider: z.string(),
  lineItemType: z.string(),
  api: z.enum(['v1', 'v2']),
  state: z.enum(PART_STATES),
  /** JSON of the next page to fetch (LineItemCheckpoint or Graph position); absent before the first page. */
  checkpoint: optionalText,
  /** Blocks staged so far = the index of the next block (empty pages stage nothing). */
  blocksStaged: count,
  rows: count,
  bytes: count,
  attempts: count,
  lastError: optionalText,
  operationLocation: optionalText,
  v2Kind: optionalText,
  v2Etag: optionalText,
  firstAttemptAt: optionalText,
  nextCheckAt: optionalText,
  sha256: optionalText,
  blobPath: z.string(),
  /** Which API produced the committed blob (may differ from `api` after a fallback). */
  source: optionalText,
  /** Sum of the billing rows' totals, as text (reconciliation). */
  lineTotal: optionalText,
  /** JSON array of earlier versions of this part's file, kept when v2 data changed: {path, v2Etag, rows, bytes, sha256, replacedAt}. */
  history: optionalText,
  /** The export invocation that currently owns the part, and until when (a lease kept in the ledger). */
  leaseOwner: optionalText,
  leaseUntil: optionalText,
  updatedAt: z.string(),
  version: z.number().int().default(PART_ENTITY_VERSION),
});
export type PartEntity = z.output<typeof partEntitySchema>;
export type NewPartEntity = z.input<typeof partEntitySchema>;

/** What a mutate callback returns: the fields to change (`undefined` value = remove the field), or undefined = no write. */
export type InvoicePatch = Partial<Omit<InvoiceEntity, 'invoiceId'>>;
export type PartPatch = Partial<Omit<PartEntity, 'invoiceId' | 'partId'>>;

export class LedgerError extends Error {
  override name = 'LedgerError';
}
export class LedgerNotFoundError extends LedgerError {
  override name = 'LedgerNotFoundError';
}
export class IllegalTransitionError extends LedgerError {
  override name = 'IllegalTransitionError';
}
export class LedgerConflictError extends LedgerError {
  override name = 'LedgerConflictError';
}

const INVOICE_PARTITION = 'invoice';
const partPartition = (invoiceId: string) => `part-${invoiceId}`;
// Characters Table Storage forbids in keys, plus controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const FORBIDDEN_KEY = /[/\\#?\u0000-\u001f\u007f-\u009f]/;

function assertPartId(partId: string): void {
  if (typeof partId !== 'string' || partId === '' || partId.length > 255 || FORBIDDEN_KEY.test(partId)) {
    throw new LedgerError(
      `Invalid part id ${JSON.stringify(String(partId)).slice(0, 80)}: 1-255 characters, no / \\ # ? or controls`,
    );
  }
}

const statusOf = (error: unknown) => (error instanceof RestError ? error.statusCode : undefined);

/** Table properties: drop undefined (Replace mode then removes the property), numbers as Double (exact to 2^53). */
function toTableProperties(entity: Record<string, unknown>): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entity)) {
    if (value === undefined || value === null) continue;
    properties[key] = typeof value === 'number' ? { value, type: 'Double' } : value;
  }
  return properties;
}

function fromTableProperties(raw: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'partitionKey' || key === 'rowKey' || key === 'etag' || key === 'timestamp' || key === 'odata.metadata')
      continue;
    fields[key] = typeof value === 'bigint' ? Number(value) : value;
  }
  return fields;
}

function truncateLastError<T extends { lastError?: string }>(entity: T): T {
  if (entity.lastError !== undefined && entity.lastError.length > MAX_LAST_ERROR_CHARS) {
    return { ...entity, lastError: `${entity.lastError.slice(0, MAX_LAST_ERROR_CHARS - 1)}…` };
  }
  return entity;
}

function checkCheckpoint(part: { checkpoint?: string; invoiceId: string; partId: string }): void {
  if (part.checkpoint !== undefined && part.checkpoint.length > MAX_CHECKPOINT_CHARS) {
    throw new LedgerError(
      `Checkpoint for part ${part.invoiceId}/${part.partId} is ${part.checkpoint.length} characters; the limit is ${MAX_CHECKPOINT_CHARS} (32 KiB in UTF-16)`,
    );
  }
}

function parseInvoice(raw: Record<string, unknown>): InvoiceEntity {
  const parsed = invoiceEntitySchema.safeParse({ ...fromTableProperties(raw), invoiceId: raw.rowKey });
  if (!parsed.success)
    throw new LedgerError(`Ledger invoice ${String(raw.rowKey)} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

function parsePart(raw: Record<string, unknown>): PartEntity {
  const invoiceId = String(raw.partitionKey).slice('part-'.length);
  const parsed = partEntitySchema.safeParse({ ...fromTableProperties(raw), invoiceId, partId: raw.rowKey });
  if (!parsed.success) {
    throw new LedgerError(`Ledger part ${invoiceId}/${String(raw.rowKey)} is malformed: ${parsed.error.message}`);
  }
  return parsed.data;
}

export interface LedgerOptions {
  /** How many times a conditional update is re-read and re-applied after a 412 before giving up (default 20). */
  maxConflictRetries?: number;
}

export class Ledger {
  readonly table: TableClient;
  private readonly maxConflictRetries: number;

  constructor(table: TableClient, options: LedgerOptions = {}) {
    this.table = table;
    this.maxConflictRetries = options.maxConflictRetries ?? 20;
  }

  /** Creates the table; succeeds when it already exists. */
  async ensure(): Promise<void> {
    await this.table.createTable();
  }

  async getInvoice(invoiceId: string): Promise<InvoiceEntity | undefined> {
    assertSafeId(invoiceId);
    const raw = await this.getRaw(INVOICE_PARTITION, invoiceId);
    return raw ? parseInvoice(raw) : undefined;
  }

  /** Inserts the invoice; returns false (and changes nothing) when it is already recorded. */
  async tryInsertInvoice(entity: NewInvoiceEntity): Promise<boolean> {
    assertSafeId(entity.invoiceId);
    const valid = truncateLastError(this.validateInvoice(entity));
    return this.tryCreate(INVOICE_PARTITION, valid.invoiceId, valid);
  }

  /**
   * Read, apply `mutate`, write with the read ETag (Replace). On 412 someone else wrote in between: re-read and
   * re-apply, up to `maxConflictRetries` times. `mutate` may run more than once, so it must be pure; it may throw
   * to abort. Returns the entity as stored (the current one when `mutate` returned undefined).
   */
  async updateInvoice(
    invoiceId: string,
    mutate: (current: InvoiceEntity) => InvoicePatch | undefined,
  ): Promise<InvoiceEntity> {
    assertSafeId(invoiceId);
    return this.conditionalUpdate(
      INVOICE_PARTITION,
      invoiceId,
      parseInvoice,
      (current) => {
        const patch = mutate(current);
        if (patch === undefined) return undefined;
        return truncateLastError(this.validateInvoice({ ...current, ...patch, invoiceId }));
      },
      `invoice ${invoiceId}`,
    );
  }

  /**
   * Moves the invoice to `to` when its state is one of `from` and the state machine allows it; otherwise throws
   * IllegalTransitionError and writes nothing. `extra` fields are written in the same update; updatedAt is set.
   */
  async transitionInvoice(
    invoiceId: string,
    from: readonly InvoiceState[],
    to: InvoiceState,
    extra: InvoicePatch = {},
  ): Promise<InvoiceEntity> {
    for (const state of from) {
      if (!INVOICE_TRANSITIONS[state].includes(to)) {
        throw new IllegalTransitionError(`Invoice transition ${state} → ${to} is not allowed by the state machine`);
      }
    }
    return this.updateInvoice(invoiceId, (current) => {
      if (!from.includes(current.state)) {
        throw new IllegalTransitionError(
          `Invoice ${invoiceId} is ${current.state}; expected ${from.join(' or ')} to move to ${to}`,
        );
      }
      return { ...extra, state: to, updatedAt: extra.updatedAt ?? new Date().toISOString() };
    });
  }

  /** Every invoice, optionally only those in `states`, in RowKey order. */
  async *listInvoices(options: { states?: readonly InvoiceState[] } = {}): AsyncIterable<InvoiceEntity> {
    let filter = odata`PartitionKey eq ${INVOICE_PARTITION}`;
    if (options.states) {
      if (options.states.length === 0) return;
      filter += ` and (${options.states.map((s) => odata`state eq ${s}`).join(' or ')})`;
    }
    for await (const raw of this.table.listEntities({ queryOptions: { filter } })) {
      yield parseInvoice(raw as Record<string, unknown>);
    }
  }

  async getPart(invoiceId: string, partId: string): Promise<PartEntity | undefined> {
    assertSafeId(invoiceId);
    assertPartId(partId);
    const raw = await this.getRaw(partPartition(invoiceId), partId);
    return raw ? parsePart(raw) : undefined;
  }

  /** Records the part unless it exists (an existing part keeps its progress). Returns the stored part. */
  async upsertPartIfAbsent(entity: NewPartEntity): Promise<{ part: PartEntity; created: boolean }> {
    assertSafeId(entity.invoiceId);
    assertPartId(entity.partId);
    const valid = truncateLastError(this.validatePart(entity));
    const created = await this.tryCreate(partPartition(valid.invoiceId), valid.partId, valid);
    if (created) return { part: valid, created };
    const stored = await this.getPart(valid.invoiceId, valid.partId);
    if (!stored) throw new LedgerError(`Part ${valid.invoiceId}/${valid.partId} vanished while being recorded`);
    return { part: stored, created };
  }

  /** Same contract as updateInvoice, for a part. */
  async updatePart(
    invoiceId: string,
    partId: string,
    mutate: (current: PartEntity) => PartPatch | undefined,
  ): Promise<PartEntity> {
    assertSafeId(invoiceId);
    assertPartId(partId);
    return this.conditionalUpdate(
      partPartition(invoiceId),
      partId,
      parsePart,
      (current) => {
        const patch = mutate(current);
        if (patch === undefined) return undefined;
        return truncateLastError(this.validatePart({ ...current, ...patch, invoiceId, partId }));
      },
      `part ${invoiceId}/${partId}`,
    );
  }

  /** The invoice's parts in RowKey (partId) order. */
  async listParts(invoiceId: string): Promise<PartEntity[]> {
    assertSafeId(invoiceId);
    const parts: PartEntity[] = [];
    const filter = odata`PartitionKey eq ${partPartition(invoiceId)}`;
    for await (const raw of this.table.listEntities({ queryOptions: { filter } })) {
      parts.push(parsePart(raw as Record<string, unknown>));
    }
    return parts;
  }

  private validateInvoice(entity: NewInvoiceEntity): InvoiceEntity {
    const parsed = invoiceEntitySchema.safeParse(entity);
    if (!parsed.success) throw new LedgerError(`Invalid invoice entity ${entity.invoiceId}: ${parsed.error.message}`);
    return parsed.data;
  }

  private validatePart(entity: NewPartEntity): PartEntity {
    const parsed = partEntitySchema.safeParse(entity);
    if (!parsed.success) {
      throw new LedgerError(`Invalid part entity ${entity.invoiceId}/${entity.partId}: ${parsed.error.message}`);
    }
    checkCheckpoint(parsed.data);
    return parsed.data;
  }

  private async getRaw(partitionKey: string, rowKey: string): Promise<Record<string, unknown> | undefined> {
    try {
      return (await this.table.getEntity(partitionKey, rowKey)) as Record<string, unknown>;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  private async tryCreate(partitionKey: string, rowKey: string, fields: Record<string, unknown>): Promise<boolean> {
    const { invoiceId: _i, partId: _p, ...stored } = fields;
    try {
      await this.table.createEntity({ ...toTableProperties(stored), partitionKey, rowKey });
      return true;
    } catch (error) {
      if (statusOf(error) === 409) return false;
      throw error;
    }
  }

  private async conditionalUpdate<T extends Record<string, unknown>>(
    partitionKey: string,
    rowKey: string,
    parse: (raw: Record<string, unknown>) => T,
    apply: (current: T) => T | undefined,
    what: string,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const raw = await this.getRaw(partitionKey, rowKey);
      if (!raw) throw new LedgerNotFoundError(`No ledger entry for ${what}`);
      const current = parse(raw);
      const next = apply(current);
      if (next === undefined) return current;
      const { invoiceId: _i, partId: _p, ...stored } = next;
      try {
        await this.table.updateEntity({ ...toTableProperties(stored), partitionKey, rowKey }, 'Replace', {
          etag: String(raw.etag),
        });
        return next;
      } catch (error) {
        const status = statusOf(error);
        if (status !== 412 && status !== 404) throw error;
        if (attempt >= this.maxConflictRetries) {
          throw new LedgerConflictError(`Gave up updating ${what} after ${attempt + 1} ETag conflicts`);
        }
        // Spread the contenders out a little so they do not collide again in lockstep.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 10 * 2 ** attempt)));
      }
    }
  }
}
