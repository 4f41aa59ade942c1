// Runs the simulator on its own for local demos and manual poking: `tsx test/simulator/main.ts --port 7071`
// prints the URLs, the app settings (with tokens valid now) and serves until Ctrl-C. See standalone.ts.
import { startStandalone, USAGE } from './standalone.js';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const running = await startStandalone(args);
process.stdout.write(running.banner);

const shutdown = () => {
  const served = running.sim.requests.length;
  void running.stop().then(() => {
    process.stdout.write(`\nStopped after ${served} requests.\n`);
    process.exit(0);
  });
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
