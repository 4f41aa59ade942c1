// Queue `invoice-sync`: fetch one invoice just in time, save its PDF, receipts and JSON, fan out its parts.
import { app } from '@azure/functions';
import { handlers, queueTriggers } from '../src/app/runtime.js';

app.storageQueue('syncInvoice', {
  ...queueTriggers.syncInvoice,
  handler: handlers.syncInvoice,
});
