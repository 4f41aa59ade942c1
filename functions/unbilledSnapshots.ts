// Timer: take today's unbilled snapshots (usage and billing, per currency, current and last month) through the
// export queue (src/sync/unbilled/snapshots.ts). Not registered when UNBILLED_SCHEDULE is empty.
import { app } from '@azure/functions';
import { handlers, unbilledSchedule } from '../src/app/runtime.js';

const schedule = unbilledSchedule();
if (schedule) {
  app.timer('unbilledSnapshots', { schedule, runOnStartup: false, handler: handlers.unbilledSnapshots });
}
