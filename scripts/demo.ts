// `npm run demo`: the whole sync on the embedded default — a real Azurite (from node_modules, temp folder) and the
// Partner Center + Graph simulator on loopback — then a look at what it produced. Stops everything it started.

import { runPass } from '../src/app/run-pass.js';
import { runCommand } from '../src/cli/main.js';
import { formatBytes } from '../src/cli/report.js';
import { latestUnbilledSnapshots, unbilledTable } from '../src/cli/unbilled-status.js';
import { loadSettings } from '../src/config.js';
import { apiFault, startSimulator, throttle } from '../test/simulator/index.js';
import { startAzurite } from '../test/support/azurite.js';
import { simulatorEnvironment } from '../test/support/sim-env.js';

async function demo(): Promise<number> {
  process.stderr.write('Starting Azurite (temp folder) and the Partner Center + Graph simulator on loopback...\n');
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
      {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
        isTTY: Boolean(process.stderr.isTTY),
      },
    );

    // Month to date: today's unbilled snapshot (what the unbilledSnapshots timer does), on the simulator's clock so
    // "current" is the month the simulator serves.
    process.stderr.write('\nTaking the unbilled snapshot of the day (usage and billing, current and last month)...\n');
    await runPass(
      {
        ...deps,
        now: sim.clock.now,
        settings: { ...deps.settings, UNBILLED_CURRENCIES: deps.settings.UNBILLED_CURRENCIES ?? ['USD'] },
      },
      { skipDetect: true, unbilledSnapshots: true, retryVisibilitySeconds: 0 },
    );
    process.stdout.write(`\n${unbilledTable(await latestUnbilledSnapshots(deps.storage.ledger))}\n`);

    process.stdout.write(`\nWhat landed in container "${settings.INVOICE_CONTAINER}" (${azurite.blobEndpoint}):\n`);
    const byKind = new Map<string, { count: number; bytes: number }>();
    const lines: string[] = [];
    for await (const blob of deps.storage.container.listBlobsFlat()) {
      const bytes = blob.properties.contentLength ?? 0;
      const kind = blob.name.endsWith('.pdf')
        ? 'pdf'
        : blob.name.endsWith('.ndjson')
          ? 'ndjson'
          : blob.name.endsWith('manifest.json')
            ? 'manifest'
            : 'json';
      const entry = byKind.get(kind) ?? { count: 0, bytes: 0 };
      byKind.set(kind, { count: entry.count + 1, bytes: entry.bytes + bytes });
      lines.push(`  ${blob.name.padEnd(118)} ${formatBytes(bytes).padStart(10)}`);
    }
    process.stdout.write(`${lines.join('\n')}\n\n`);
    for (const [kind, { count, bytes }] of byKind) {
      process.stdout.write(
        `  ${kind.padEnd(9)} ${String(count).padStart(4)} files  ${formatBytes(bytes).padStart(10)}\n`,
      );
    }
    const apis = new Map<string, number>();
    for (const request of sim.requests) apis.set(request.host, (apis.get(request.host) ?? 0) + 1);
    process.stdout.write(
      `\nRequests the simulator answered: ${[...apis].map(([host, n]) => `${host} ${n}`).join(', ')}\n` +
        'Query the line items in place, e.g. with DuckDB:\n' +
        "  SELECT billing_period, invoice_id, provider, count(*) FROM read_ndjson('invoices/billing_period=*/invoice_id=*/lineitems/provider=*/line_item_type=*/rows.ndjson', hive_partitioning=true) GROUP BY ALL;\n" +
        '  (unbilled beside billed: the `unbilled-vs-billed` query in the README)\n',
    );
    process.stdout.write(
      exitCode === 0 ? '\nEvery invoice is complete.\n' : '\nSome invoices are not complete (see the table).\n',
    );
    return exitCode;
  } finally {
    await sim.stop();
    await azurite.stop();
  }
}

process.exitCode = await demo();
