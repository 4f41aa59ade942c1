// Queue `lineitem-export`: stream one invoice part's line items into its NDJSON blob, resumably.
import { app } from '@azure/functions';
import { QUEUES } from '../src/config.js';
import { handlers } from '../src/sync/runtime.js';

app.storageQueue('exportLineItems', {
  queueName: QUEUES.lineItemExport,
  connection: 'AzureWebJobsStorage',
  handler: handlers.exportLineItems,
});
