#!/usr/bin/env node
// Runs the compiled CLI (npm run build); during development use `npm run sync -- <command>`.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/src/cli/bin.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    'csp-invoice-sync is not built yet: run `npm run build` (or use `npm run sync -- <command>`).\n',
  );
  process.exit(1);
}
await import(entry.href);
