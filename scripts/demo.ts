// `npm run demo`: the whole sync on the embedded default — a real Azurite (from node_modules, temp folder) and the
// Partner Center + Graph simulator on loopback — then a look at what it produced. Stops everything it started.
// `npm run demo -- --keep DIR` also copies every file it produced to DIR (same layout) and prints the DuckDB query.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runPass } from '../src/app/run-pass.js';
import { runCommand } from '../src/cli/main.js';
import { formatBytes } from '../src/cli/report.js';
import { latestUnbilledSnapshots, unbilledTable } from '../src/cli/unbilled-status.js';
import { loadSettings } from '../src/config.js';
import { apiFault, startSimulator, throttle } from '../test/simulator/index.js';
import { startAzurite } from '../test/support/azurite.js';
import { simulatorEnvironment } from '../test/support/sim-env.js';

/** The README's per-customer query (the text between its `<!-- query: customer-month -->` marker and the fence). */
export async function readmeQuery(name: string): Promise<string> {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const match = new RegExp(`<!-- query: ${name} -->\\s*\`\`\`sql\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!match?.[1]) throw new Error(`README.md has no query "${name}"`);
  return match[1].trim();
}

export interface DemoOptions {
  keep?: string;
  out?: (text: string) => void;
  err?: (text: string) => void;
}

export async function demo(options: DemoOptions = {}): Promise<number> {
  const out = options.out ?? ((t: string) => process.stdout.write(t));
  const err = options.err ?? ((t: string) => process.stderr.write(t));
  err('Starting Azurite (temp folder) and the Partner Center + Graph simulator on loopback...\n');
  const azurite = await startAzurite();
  const sim = await startSimulator({ seed: 7 });
  // A little of what the real service does: throttling with Retry-After, a transient 503. The sync rides through.
  sim.faults.add(throttle(1, { path: '/lineitems', times: 2 }));
  sim.faults.add(apiFault(503, 'ServiceUnavailable', { path: '/v1/invoices/', times: 1 }));
  try {
    const env = await simulatorEnvironment(sim, azurite);
    const settings = loadSettings(env.settings);
    const { exitCode, deps } = await runCommand(
      settings,
      { overrides: env.overrides },
      { out, err, isTTY: options.out ? false : Boolean(process.stderr.isTTY) },
    );
    out(
      '\nThe simulator was told to answer 2 line-item requests with 429 (Retry-After) and one invoice request with 503:\n' +
        'those are the "failed attempts" above. Each was retried by the HTTP pipeline and its call then succeeded\n' +
        '("recovered"), so no invoice failed because of them. The ✗ invoice was published before all its line items\n' +
        '(the simulator holds back 117.25): its reconciliation is reported as measured, and `run` exits 3.\n',
    );

    // Month to date: today's unbilled snapshot (what the unbilledSnapshots timer does), on the simulator's clock so
    // "current" is the month the simulator serves.
    err('\nTaking the unbilled snapshot of the day (usage and billing, current and last month)...\n');
    await runPass(
      {
        ...deps,
        now: sim.clock.now,
        settings: { ...deps.settings, UNBILLED_CURRENCIES: deps.settings.UNBILLED_CURRENCIES ?? ['USD'] },
      },
      { skipDetect: true, unbilledSnapshots: true, retryVisibilitySeconds: 0 },
    );
    out(`\n${unbilledTable(await latestUnbilledSnapshots(deps.storage.ledger))}\n`);

    out(`\nWhat landed in container "${settings.INVOICE_CONTAINER}" (${azurite.blobEndpoint}):\n`);
    const byKind = new Map<string, { count: number; bytes: number }>();
    const blobs: { name: string; bytes: number }[] = [];
    for await (const blob of deps.storage.container.listBlobsFlat()) {
      const bytes = blob.properties.contentLength ?? 0;
      const kind = blob.name.endsWith('.pdf')
        ? 'pdf'
        : blob.name.endsWith('.ndjson')
          ? 'ndjson'
          : blob.name.endsWith('.parquet')
            ? 'parquet'
            : blob.name.endsWith('manifest.json')
              ? 'manifest'
              : 'json';
      const entry = byKind.get(kind) ?? { count: 0, bytes: 0 };
      byKind.set(kind, { count: entry.count + 1, bytes: entry.bytes + bytes });
      blobs.push({ name: blob.name, bytes });
    }
    const width = Math.min(106, Math.max(...blobs.map((b) => b.name.length)));
    out(`${blobs.map((b) => `  ${b.name.padEnd(width)} ${formatBytes(b.bytes).padStart(10)}`).join('\n')}\n\n`);
    for (const [kind, { count, bytes }] of byKind) {
      out(`  ${kind.padEnd(9)} ${String(count).padStart(4)} files  ${formatBytes(bytes).padStart(10)}\n`);
    }
    const apis = new Map<string, number>();
    for (const request of sim.requests) apis.set(request.host, (apis.get(request.host) ?? 0) + 1);
    out(`\nRequests the simulator answered: ${[...apis].map(([host, n]) => `${host} ${n}`).join(', ')}\n`);

    if (options.keep) {
      const dir = path.resolve(options.keep);
      for (const blob of blobs) {
        const target = path.join(dir, ...blob.name.split('/'));
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, await deps.storage.container.getBlobClient(blob.name).downloadToBuffer());
      }
      const query = await readmeQuery('customer-month');
      out(
        `\nKept ${blobs.length} files (NDJSON, Parquet, manifests, PDFs) under ${dir}, in the container's layout.\n` +
          'Query them with DuckDB (the `duckdb` CLI, or @duckdb/node-api), e.g. the README query per customer and month:\n\n' +
          `SET VARIABLE invoices = '${dir.replaceAll("'", "''")}';\n${query}\n` +
          '(unbilled beside billed: the `unbilled-vs-billed` query in the README)\n',
      );
    } else {
      out('Keep the files to query them: npm run demo -- --keep DIR\n');
    }
    // The demo succeeds when the sync did what it should with the demo data: every invoice complete, except the
    // mismatches the simulator planted, which must show as mismatches (no more, no fewer). `run` itself exits 3 on
    // any mismatch; the demo's own exit code says whether the demo worked.
    const planted = sim.dataset
      .invoices()
      .filter((s) => (s.chargesAdjustment ?? 0) !== 0)
      .map((s) => s.id)
      .sort();
    const mismatched: string[] = [];
    for await (const invoice of deps.storage.ledger.listInvoices({ states: ['mismatch'] }))
      mismatched.push(invoice.invoiceId);
    mismatched.sort();
    const asPlanted = exitCode === 3 && mismatched.join() === planted.join();
    out(
      exitCode === 0
        ? '\nEvery invoice is complete.\n'
        : asPlanted
          ? `\nEvery invoice finished; the ✗ one (${mismatched.join(', ')}) does not reconcile, as the demo data plants it: ` +
            '`run` exits 3 on it; the demo exits 0.\n'
          : '\nSome invoices are not complete, or do not reconcile unexpectedly (see the table).\n',
    );
    return asPlanted ? 0 : exitCode;
  } finally {
    await sim.stop();
    await azurite.stop();
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (isMain) {
  const { values } = parseArgs({ options: { keep: { type: 'string' } } });
  process.exitCode = await demo({ keep: values.keep });
}
