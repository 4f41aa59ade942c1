// Entry point of the `csp-invoice-sync` command.
import { main } from './main.js';

await main();
