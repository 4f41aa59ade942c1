// `resync`: put invoices back on invoice-sync so the app re-runs them (what is not complete; with --full,
// everything). Works with the operator's storage roles (table write, queue send): it creates nothing, and asks
// Partner Center only about an id the ledger does not know, which it refuses unless Partner Center lists it.
import { createSyncDeps, type DepsOverrides } from '../app/create-deps.js';
import type { Settings } from '../config.js';
import { describeError } from '../http/errors.js';
import { createStorage, sendQueueMessage } from '../storage/index.js';
import type { InvoiceEntity } from '../storage/invoices.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './progress.js';
import { probeStorage } from './storage-check.js';

export interface ResyncOptions {
  invoiceId?: string;
  failed?: boolean;
  period?: string;
  full?: boolean;
  overrides?: DepsOverrides;
  probeTimeoutMs?: number;
}

/** Whether Partner Center lists the invoice (the same app-only listing the timer reads); the count walked. */
async function partnerCenterLists(
  settings: Settings,
  invoiceId: string,
  overrides: DepsOverrides | undefined,
): Promise<{ listed: boolean; walked: number }> {
  const silent = { info() {}, warn() {}, error() {}, event() {} };
  const deps = await createSyncDeps(settings, { ...overrides, log: silent });
  let walked = 0;
  for await (const item of deps.partnerCenter.listInvoices()) {
    if (item.kind !== 'invoice') continue;
    walked++;
    if (item.invoice.id?.toLowerCase() === invoiceId.toLowerCase()) return { listed: true, walked };
  }
  return { listed: false, walked };
}

export async function resyncCommand(settings: Settings, options: ResyncOptions, io: CliIo): Promise<number> {
  const storage = createStorage(settings);
  const { ledgerExists } = await probeStorage(storage, { timeoutMs: options.probeTimeoutMs });
  const reason = options.full ? 'full' : 'resync';
  const targets: { invoiceId: string; known?: InvoiceEntity }[] = [];

  if (options.invoiceId !== undefined) {
    const known = ledgerExists ? await storage.ledger.getInvoice(options.invoiceId) : undefined;
    if (!known) {
      // Not in the ledger: only an id Partner Center lists can be synced; anything else would end in poison.
      let check: { listed: boolean; walked: number };
      try {
        check = await partnerCenterLists(settings, options.invoiceId, options.overrides);
      } catch (error) {
        io.err(
          `${options.invoiceId} is not in the ledger, and checking that Partner Center lists it failed: ` +
            `${describeError(error)}. Nothing queued.\n`,
        );
        return EXIT.error;
      }
      if (!check.listed) {
        io.err(
          `Refused: Partner Center does not list invoice ${options.invoiceId} (${check.walked} invoices listed at ` +
            `${settings.PARTNER_CENTER_API_URL}), and the ledger does not know it. Nothing queued; check the id ` +
            '(`csp-invoice-sync status` lists the invoices the ledger knows).\n',
        );
        return EXIT.error;
      }
    }
    targets.push({ invoiceId: options.invoiceId, known });
  } else if (ledgerExists) {
    for await (const invoice of storage.ledger.listInvoices(options.failed ? { states: ['failed'] } : {})) {
      if (options.period === undefined || invoice.billingPeriod === options.period) {
        targets.push({ invoiceId: invoice.invoiceId, known: invoice });
      }
    }
  }

  if (targets.length === 0) {
    const what = options.failed ? 'no failed invoices' : `no invoices of billing period ${options.period}`;
    io.out(`The ledger has ${ledgerExists ? what : 'no entries (it does not exist yet)'}; nothing queued.\n`);
    return EXIT.ok;
  }
  for (const { invoiceId, known } of targets.sort((a, b) => a.invoiceId.localeCompare(b.invoiceId))) {
    if (known) {
      await storage.ledger.updateInvoice(invoiceId, () => ({
        state: 'queued',
        lastError: undefined,
        updatedAt: new Date().toISOString(),
      }));
    }
    try {
      await sendQueueMessage(storage.queues.invoiceSync, { invoiceId, reason });
    } catch (error) {
      io.err(
        `Could not send the message for ${invoiceId} to queue "${storage.queues.invoiceSync.name}": ${describeError(error)}` +
          ' (the queue is created by the app; sending needs Storage Queue Data Message Sender).\n',
      );
      return EXIT.error;
    }
    io.out(
      `Queued ${invoiceId} (${known ? `was ${known.state}` : 'listed by Partner Center, not in the ledger yet'}) ` +
        `for ${options.full ? 'a full re-export' : 'a re-run of what is not complete'}.\n`,
    );
  }
  io.out(
    `${targets.length} invoice${targets.length === 1 ? '' : 's'} queued; \`run\` (or the deployed app) processes them.\n`,
  );
  return EXIT.ok;
}
