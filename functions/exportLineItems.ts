// Queue `lineitem-export`: stream one invoice part's line items into its NDJSON blob, resumably.
import { app } from '@azure/functions';
import { handlers } from '../src/app/runtime.js';
import { QUEUES } from '../src/config.js';

app.storageQueue('exportLineItems', {
  queueName: QUEUES.lineItemExport,
  connection: 'AzureWebJobsStorage',
  handler: handlers.exportLineItems,
});
