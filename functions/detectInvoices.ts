// Timer: list every invoice, record new ones in the ledger and queue them (src/sync/detect-invoices.ts).
import { app } from '@azure/functions';
import { handlers, syncSchedule } from '../src/app/runtime.js';

app.timer('detectInvoices', {
  schedule: syncSchedule(),
  runOnStartup: false,
  handler: handlers.detectInvoices,
});
