// Queue `lineitem-export`: stream one invoice part's line items into its NDJSON blob, resumably.
import { app } from '@azure/functions';
import { handlers, queueTriggers } from '../src/app/runtime.js';

app.storageQueue('exportLineItems', {
  ...queueTriggers.exportLineItems,
  handler: handlers.exportLineItems,
});
