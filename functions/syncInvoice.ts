// Queue `invoice-sync`: fetch one invoice just in time, save its PDF, receipts and JSON, fan out its parts.
import { app } from '@azure/functions';
import { handlers } from '../src/app/runtime.js';
import { QUEUES } from '../src/config.js';

app.storageQueue('syncInvoice', {
  queueName: QUEUES.invoiceSync,
  connection: 'AzureWebJobsStorage',
  handler: handlers.syncInvoice,
});
