// The daily unbilled snapshots (timer UNBILLED_SCHEDULE): for each currency, the current month, and the last month
// until its invoice is synced, get one snapshot a day. A snapshot is a ledger entity with two ordinary parts (usage,
// billing) queued on the export queue: claim, lease, the v2 source, staging, verification and the snapshot's
// manifest all come from the export path. A second run on the same day writes nothing for a finished snapshot,
// retries a failed one and re-queues a stuck one.
import { randomUUID } from 'node:crypto';
import { unbilledRowsPath } from '../../storage/layout.js';
import { type NewPartEntity, type PartEntity, PENDING, resetProgress } from '../../storage/parts.js';
import { encodeUnbilledTarget, type SnapshotEntity, snapshotKey, UNBILLED_PARTS } from '../../storage/unbilled.js';
import type { SyncDeps } from '../deps.js';
import { sendExportMessage } from '../export/context.js';
import { monthOf } from './target.js';

export type SnapshotAction = 'queued' | 'retried' | 'requeued' | 'in-progress' | 'done';

export interface UnbilledRunResult {
  snapshotDate: string;
  currencies: string[];
  /** Where the currencies came from: the setting, or the ledger's invoices of the last 3 months. */
  currencySource: 'setting' | 'ledger';
  snapshots: { snapshotKey: string; billingPeriod: string; currency: string; action: SnapshotAction }[];
  /** `last` months not asked for because their invoice is synced. */
  skipped: { billingPeriod: string; currency: string; reason: string }[];
}

/** An invoice whose billed line items are stored: its month needs no more unbilled snapshots. */
const SYNCED_STATES = new Set(['complete', 'mismatch']);

export async function takeUnbilledSnapshots(deps: SyncDeps): Promise<UnbilledRunResult> {
  const now = deps.now();
  const snapshotDate = new Date(now).toISOString().slice(0, 10);
  const current = monthOf(now);
  const last = monthOf(now, -1);
  const since = monthOf(now, -3);
  const recent = new Set<string>();
  const synced = new Set<string>();
  for await (const invoice of deps.storage.ledger.listInvoices()) {
    const currency = invoice.currencyCode.trim().toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency)) continue;
    if (invoice.billingPeriod >= since) recent.add(currency);
    if (SYNCED_STATES.has(invoice.state)) synced.add(`${invoice.billingPeriod}|${currency}`);
  }
  const configured = deps.settings.UNBILLED_CURRENCIES;
  const currencies = configured ?? [...recent].sort();
  const result: UnbilledRunResult = {
    snapshotDate,
    currencies,
    currencySource: configured ? 'setting' : 'ledger',
    snapshots: [],
    skipped: [],
  };
  if (currencies.length === 0) {
    deps.log.info('No currency to take unbilled snapshots of (UNBILLED_CURRENCIES unset, no invoice in 3 months)', {
      since,
    });
  }
  for (const currency of currencies) {
    const periods = [current];
    if (synced.has(`${last}|${currency}`)) {
      result.skipped.push({ billingPeriod: last, currency, reason: 'its invoice is synced' });
    } else {
      periods.push(last);
    }
    for (const billingPeriod of periods) {
      const action = await planSnapshot(deps, snapshotDate, billingPeriod, currency);
      result.snapshots.push({
        snapshotKey: snapshotKey(snapshotDate, billingPeriod, currency),
        billingPeriod,
        currency,
        action,
      });
    }
  }
  deps.log.info('Unbilled snapshots planned', {
    snapshotDate,
    currencies: currencies.join(','),
    queued: result.snapshots.filter((s) => s.action !== 'done' && s.action !== 'in-progress').length,
  });
  return result;
}

async function planSnapshot(
  deps: SyncDeps,
  snapshotDate: string,
  billingPeriod: string,
  currency: string,
): Promise<SnapshotAction> {
  const { ledger } = deps.storage;
  const key = snapshotKey(snapshotDate, billingPeriod, currency);
  const nowIso = new Date(deps.now()).toISOString();
  const inserted = await ledger.tryInsertSnapshot({
    snapshotKey: key,
    snapshotDate,
    billingPeriod,
    currency,
    state: 'queued',
    runs: 1,
    requestedAt: nowIso,
    updatedAt: nowIso,
    correlationId: randomUUID(),
  });
  const snapshot = await ledger.getSnapshot(key);
  if (!snapshot) throw new Error(`Unbilled snapshot ${key} vanished while being recorded`);
  if (snapshot.state === 'complete') return 'done';
  if (snapshot.state === 'failed') {
    const retried = await ledger.updateSnapshot(key, (current) =>
      current.state === 'failed'
        ? { state: 'queued', runs: current.runs + 1, lastError: undefined, updatedAt: nowIso }
        : undefined,
    );
    for (const part of await ledger.listParts(key)) {
      if (part.state === 'complete' || PENDING.has(part.state)) continue;
      // A part that gave up starts over from its first page, in a new message chain (older messages are stale).
      let reopened = false;
      const reset = await ledger.updatePart(key, part.partId, (current) => {
        reopened = !PENDING.has(current.state) && current.state !== 'complete';
        return reopened
          ? {
              ...resetProgress(),
              state: 'queued',
              turn: current.turn + 1,
              operationLocation: undefined,
              firstAttemptAt: undefined,
              dueAt: undefined,
              updatedAt: nowIso,
            }
          : undefined;
      });
      if (reopened) await send(deps, retried, reset);
    }
    await recordParts(deps, retried);
    deps.log.info('Failed unbilled snapshot queued again', { snapshotKey: key, correlationId: retried.correlationId });
    return 'retried';
  }
  const created = await recordParts(deps, snapshot);
  if (inserted) {
    deps.log.info('Unbilled snapshot queued', { snapshotKey: key, correlationId: snapshot.correlationId });
    return 'queued';
  }
  return (await requeueStuck(deps, snapshot)) || created ? 'requeued' : 'in-progress';
}

/** Records the snapshot's parts that are not recorded yet and queues them; true when any was new. */
async function recordParts(deps: SyncDeps, snapshot: SnapshotEntity): Promise<boolean> {
  let any = false;
  for (const spec of UNBILLED_PARTS) {
    const entity: NewPartEntity = {
      invoiceId: snapshot.snapshotKey,
      partId: spec.partId,
      provider: 'unbilled',
      lineItemType: spec.lineItemType,
      api: 'v2',
      v2Kind: spec.v2Kind,
      routeReason: 'unbilled snapshot (Graph unbilled export)',
      unbilled: encodeUnbilledTarget({ currencyCode: snapshot.currency, billingPeriod: snapshot.billingPeriod }),
      state: 'queued',
      blobPath: unbilledRowsPath(snapshot.billingPeriod, snapshot.snapshotDate, snapshot.currency, spec.lineItemType),
      rows: 0,
      bytes: 0,
      attempts: 0,
      updatedAt: new Date(deps.now()).toISOString(),
    };
    const { part, created } = await deps.storage.ledger.upsertPartIfAbsent(entity);
    if (created) {
      await send(deps, snapshot, part);
      any = true;
    }
  }
  return any;
}

/** A pending part nobody holds, with nothing due and no progress for STUCK_AFTER_MINUTES, gets its message again. */
async function requeueStuck(deps: SyncDeps, snapshot: SnapshotEntity): Promise<boolean> {
  const now = deps.now();
  const stuckMs = deps.settings.STUCK_AFTER_MINUTES * 60_000;
  let any = false;
  for (const part of await deps.storage.ledger.listParts(snapshot.snapshotKey)) {
    if (!PENDING.has(part.state)) continue;
    const leased = part.leaseOwner !== undefined && Date.parse(part.leaseUntil ?? '') > now;
    const due = part.dueAt !== undefined && Date.parse(part.dueAt) + stuckMs > now;
    const moved = Date.parse(part.progressAt ?? part.updatedAt) + stuckMs > now;
    if (leased || due || moved) continue;
    await send(deps, snapshot, part);
    any = true;
  }
  return any;
}

const send = (deps: SyncDeps, snapshot: SnapshotEntity, part: PartEntity) =>
  sendExportMessage(deps, {
    invoiceId: snapshot.snapshotKey,
    partId: part.partId,
    turn: part.turn,
    correlationId: snapshot.correlationId,
  });
