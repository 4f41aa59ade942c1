// The ledger in Azure Table Storage: one entity per invoice, one per invoice part, one per unusable list item;
// every update is ETag-conditional (two workers never overwrite each other) and every invoice state change is
// checked against the state machine in invoices.ts. The models themselves live in invoices.ts and parts.ts.
import { createHash } from 'node:crypto';
import { odata, RestError, type TableClient } from '@azure/data-tables';
import { assertSafeId } from '../ids.js';
import {
  INVOICE_TRANSITIONS,
  type InvoiceEntity,
  type InvoicePatch,
  type InvoiceState,
  invoiceEntitySchema,
  type NewInvoiceEntity,
  type RejectedItem,
  rejectedItemSchema,
} from './invoices.js';
import { type NewPartEntity, type PartEntity, type PartPatch, partEntitySchema } from './parts.js';
import {
  type SnapshotEntity,
  type SnapshotPatch,
  snapshotEntitySchema,
  UNBILLED_TRANSITIONS,
  type UnbilledState,
} from './unbilled.js';

/** lastError is capped: callers pass redacted text, and a Table property is limited to 64 KiB. */
export const MAX_LAST_ERROR_CHARS = 2000;
/**
 * A part's progress (continuation token + headers) must stay well under the 64 KiB property limit. Table Storage
 * counts strings in UTF-16, so 32 KiB is 16,384 characters.
 */
export const MAX_PROGRESS_CHARS = 16 * 1024;

export class LedgerError extends Error {
  override name = 'LedgerError';
}
export class LedgerNotFoundError extends LedgerError {
  override name = 'LedgerNotFoundError';
  readonly retriable = false;
}
export class IllegalTransitionError extends LedgerError {
  override name = 'IllegalTransitionError';
}
export class LedgerConflictError extends LedgerError {
  override name = 'LedgerConflictError';
}

const INVOICE_PARTITION = 'invoice';
const REJECTED_PARTITION = 'rejected';
const UNBILLED_PARTITION = 'unbilled';
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
    if (value === undefined || value === null || key === 'etag') continue;
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

function checkProgressSize(part: { progress?: string; invoiceId: string; partId: string }): void {
  if (part.progress !== undefined && part.progress.length > MAX_PROGRESS_CHARS) {
    throw new LedgerError(
      `Progress of part ${part.invoiceId}/${part.partId} is ${part.progress.length} characters; the limit is ${MAX_PROGRESS_CHARS} (32 KiB in UTF-16)`,
    );
  }
}

function parseInvoice(raw: Record<string, unknown>): InvoiceEntity {
  const parsed = invoiceEntitySchema.safeParse({
    ...fromTableProperties(raw),
    invoiceId: raw.rowKey,
    etag: String(raw.etag ?? ''),
  });
  if (!parsed.success)
    throw new LedgerError(`Ledger invoice ${String(raw.rowKey)} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

function parsePart(raw: Record<string, unknown>): PartEntity {
  const invoiceId = String(raw.partitionKey).slice('part-'.length);
  const parsed = partEntitySchema.safeParse({
    ...fromTableProperties(raw),
    invoiceId,
    partId: raw.rowKey,
    etag: String(raw.etag ?? ''),
  });
  if (!parsed.success) {
    throw new LedgerError(`Ledger part ${invoiceId}/${String(raw.rowKey)} is malformed: ${parsed.error.message}`);
  }
  return parsed.data;
}

function parseRejected(raw: Record<string, unknown>): RejectedItem {
  return rejectedItemSchema.parse({ ...fromTableProperties(raw), key: raw.rowKey });
}

function parseSnapshot(raw: Record<string, unknown>): SnapshotEntity {
  const parsed = snapshotEntitySchema.safeParse({
    ...fromTableProperties(raw),
    snapshotKey: raw.rowKey,
    etag: String(raw.etag ?? ''),
  });
  if (!parsed.success) {
    throw new LedgerError(`Ledger unbilled snapshot ${String(raw.rowKey)} is malformed: ${parsed.error.message}`);
  }
  return parsed.data;
}

function checkSnapshotTransition(key: string, from: UnbilledState, to: UnbilledState): void {
  if (from !== to && !UNBILLED_TRANSITIONS[from].includes(to)) {
    throw new IllegalTransitionError(`Unbilled snapshot ${key} cannot move from ${from} to ${to} (see unbilled.ts)`);
  }
}

function checkTransition(invoiceId: string, from: InvoiceState, to: InvoiceState): void {
  if (from !== to && !INVOICE_TRANSITIONS[from].includes(to)) {
    throw new IllegalTransitionError(`Invoice ${invoiceId} cannot move from ${from} to ${to} (see invoices.ts)`);
  }
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
   * to abort. A state change the state machine does not allow throws IllegalTransitionError and writes nothing.
   * Returns the entity as stored (the current one when `mutate` returned undefined).
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
        const next = truncateLastError(this.validateInvoice({ ...current, ...patch, invoiceId }));
        checkTransition(invoiceId, current.state, next.state);
        return next;
      },
      `invoice ${invoiceId}`,
    );
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

  /** The invoice's parts in RowKey (partId) order, each with the ETag it was read with. */
  async listParts(invoiceId: string): Promise<PartEntity[]> {
    assertSafeId(invoiceId);
    const parts: PartEntity[] = [];
    const filter = odata`PartitionKey eq ${partPartition(invoiceId)}`;
    for await (const raw of this.table.listEntities({ queryOptions: { filter } })) {
      parts.push(parsePart(raw as Record<string, unknown>));
    }
    return parts;
  }

  /**
   * Records an item of the invoice list that could not be used (keyed by a hash of the id as sent, so one odd item
   * seen on every run is one row with its first and last sighting).
   */
  async recordRejected(item: { idAsSent: string; reason: string; parentId?: string }, at: string): Promise<void> {
    const key = createHash('sha256')
      .update(`${item.parentId ?? ''}\u0000${item.idAsSent}`)
      .digest('hex')
      .slice(0, 32);
    const existing = await this.getRaw(REJECTED_PARTITION, key);
    const entity = rejectedItemSchema.parse({
      key,
      idAsSent: item.idAsSent,
      reason: item.reason.slice(0, MAX_LAST_ERROR_CHARS),
      parentId: item.parentId,
      firstSeenAt: existing ? String(existing.firstSeenAt) : at,
      lastSeenAt: at,
    });
    const { key: _key, ...stored } = entity;
    await this.table.upsertEntity(
      { ...toTableProperties(stored), partitionKey: REJECTED_PARTITION, rowKey: key },
      'Replace',
    );
  }

  async *listRejected(): AsyncIterable<RejectedItem> {
    const filter = odata`PartitionKey eq ${REJECTED_PARTITION}`;
    for await (const raw of this.table.listEntities({ queryOptions: { filter } })) {
      yield parseRejected(raw as Record<string, unknown>);
    }
  }

  // ---- unbilled snapshots (model: unbilled.ts; their parts are ordinary parts keyed by the snapshot key) ----

  async getSnapshot(key: string): Promise<SnapshotEntity | undefined> {
    assertSafeId(key, 'snapshot key');
    const raw = await this.getRaw(UNBILLED_PARTITION, key);
    return raw ? parseSnapshot(raw) : undefined;
  }

  /** Inserts the snapshot; returns false (and changes nothing) when that day's snapshot is already recorded. */
  async tryInsertSnapshot(entity: Omit<SnapshotEntity, 'etag'>): Promise<boolean> {
    const valid = truncateLastError(this.validateSnapshot(entity));
    return this.tryCreate(UNBILLED_PARTITION, valid.snapshotKey, valid);
  }

  /** Same contract as updateInvoice, with the snapshot state machine of unbilled.ts. */
  async updateSnapshot(
    key: string,
    mutate: (current: SnapshotEntity) => SnapshotPatch | undefined,
  ): Promise<SnapshotEntity> {
    assertSafeId(key, 'snapshot key');
    return this.conditionalUpdate(
      UNBILLED_PARTITION,
      key,
      parseSnapshot,
      (current) => {
        const patch = mutate(current);
        if (patch === undefined) return undefined;
        const next = truncateLastError(this.validateSnapshot({ ...current, ...patch, snapshotKey: key }));
        checkSnapshotTransition(key, current.state, next.state);
        return next;
      },
      `unbilled snapshot ${key}`,
    );
  }

  /** Every unbilled snapshot, optionally of one billing period (and currency), in key (day) order. */
  async *listSnapshots(options: { billingPeriod?: string; currency?: string } = {}): AsyncIterable<SnapshotEntity> {
    let filter = odata`PartitionKey eq ${UNBILLED_PARTITION}`;
    if (options.billingPeriod) filter += ` and ${odata`billingPeriod eq ${options.billingPeriod}`}`;
    if (options.currency) filter += ` and ${odata`currency eq ${options.currency}`}`;
    for await (const raw of this.table.listEntities({ queryOptions: { filter } })) {
      yield parseSnapshot(raw as Record<string, unknown>);
    }
  }

  private validateSnapshot(entity: Omit<SnapshotEntity, 'etag'>): SnapshotEntity {
    const parsed = snapshotEntitySchema.safeParse(entity);
    if (!parsed.success) {
      throw new LedgerError(`Invalid unbilled snapshot ${entity.snapshotKey}: ${parsed.error.message}`);
    }
    return parsed.data;
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
    checkProgressSize(parsed.data);
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
    const { invoiceId: _i, partId: _p, snapshotKey: _s, ...stored } = fields;
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
      const { invoiceId: _i, partId: _p, snapshotKey: _s, ...stored } = next;
      try {
        const response = await this.table.updateEntity(
          { ...toTableProperties(stored), partitionKey, rowKey },
          'Replace',
          { etag: String(raw.etag) },
        );
        return { ...next, etag: response.etag ?? '' };
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
