// The two queue-triggered functions bound to their queues (and `-poison` twins), as the Functions registrations
// declare them: the local queue host, the CLI and the benchmark all drive the handlers through these bindings.
import { QUEUES } from '../config.js';
import type { Storage } from '../storage/index.js';
import type { SyncHandlers } from './handlers.js';
import type { QueueBinding } from './queue-host.js';

export interface QueueBindings {
  syncInvoice: QueueBinding;
  exportLineItems: QueueBinding;
}

export function queueBindings(
  storage: Pick<Storage, 'queues' | 'queueService'>,
  handlers: SyncHandlers,
): QueueBindings {
  const { queues, queueService } = storage;
  return {
    syncInvoice: {
      functionName: 'syncInvoice',
      queue: queues.invoiceSync,
      poisonQueue: queueService.getQueueClient(`${QUEUES.invoiceSync}-poison`),
      handler: handlers.syncInvoice,
    },
    exportLineItems: {
      functionName: 'exportLineItems',
      queue: queues.lineItemExport,
      poisonQueue: queueService.getQueueClient(`${QUEUES.lineItemExport}-poison`),
      handler: handlers.exportLineItems,
    },
  };
}
