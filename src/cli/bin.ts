// Entry point of the `csp-invoice-sync` command.
import { main } from './main.js';

process.exitCode = await main();
