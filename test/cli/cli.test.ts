// The command line as a user runs it: main() in-process with captured output, against a real Azurite and the
// simulator over loopback. Exit codes, the reconciliation columns (the default data has one invoice whose line items
// fall 117.25 short of its totalCharges: G012040490), settings errors, `status` creating nothing, `resync`
// refusing an id Partner Center does not list, the App+User refusal explained once.
import { randomUUID } from 'node:crypto';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CliIo, main, type ProgramOptions } from '../../src/cli/main.js';
import { APP_USER_HINT } from '../../src/cli/progress.js';
import { type Simulator, startSimulator } from '../simulator/index.js';
import { type Azurite, freePort, startAzurite } from '../support/azurite.js';
import { simulatorEnvironment } from '../support/sim-env.js';

let azurite: Azurite;
let sim: Simulator;

beforeAll(async () => {
  azurite = await startAzurite();
  sim = await startSimulator({ seed: 7, v2: { retryAfterSeconds: 0 } });
});
afterAll(async () => {
  await sim?.stop();
  await azurite?.stop();
});

interface Captured extends CliIo {
  stdout: string;
  stderr: string;
}
function captureIo(): Captured {
  const io: Captured = {
    stdout: '',
    stderr: '',
    isTTY: false,
    out: (t) => {
      io.stdout += t;
    },
    err: (t) => {
      io.stderr += t;
    },
  };
  return io;
}

/** Settings for the simulator and Azurite with a container and ledger table of this test's own. */
async function environment(extra: Record<string, string> = {}, target = sim) {
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
  const env = await simulatorEnvironment(target, azurite, {
    INVOICE_CONTAINER: `cli${suffix}`,
    LEDGER_TABLE: `cli${suffix}`,
    ...extra,
  });
  const hooks: ProgramOptions = { overrides: { ...env.overrides, retryDelayMs: 10, maxRetryDelayMs: 50 } };
  return { settings: env.settings, hooks };
}

async function cli(args: string[], settings: Record<string, string | undefined>, hooks: ProgramOptions = {}) {
  const io = captureIo();
  const code = await main(['node', 'csp-invoice-sync', ...args], io, settings, hooks);
  return { code, ...io };
}

/** The table row of one invoice, split into its cells. */
function row(table: string, invoiceId: string): string[] {
  const line = table.split('\n').find((l) => l.startsWith(`│ ${invoiceId} `));
  expect(line, `a row for ${invoiceId}`).toBeDefined();
  return line!
    .split('│')
    .slice(1, -1)
    .map((c) => c.trim());
}

async function queueMessages(name: string): Promise<string[]> {
  const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(name);
  if (!(await queue.exists())) return [];
  const peeked = await queue.peekMessages({ numberOfMessages: 32 });
  return peeked.peekedMessageItems.map((m) => Buffer.from(m.messageText, 'base64').toString('utf8'));
}

async function clearQueue(name: string): Promise<void> {
  const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(name);
  if (await queue.exists()) await queue.clearMessages();
}

describe('run and status show the reconciliation the ledger stores', () => {
  let settings: Record<string, string>;
  let hooks: ProgramOptions;
  let run: Awaited<ReturnType<typeof cli>>;

  beforeAll(async () => {
    ({ settings, hooks } = await environment());
    await clearQueue('invoice-sync');
    run = await cli(['run'], settings, { ...hooks, progress: { partIntervalMs: 0 } });
  });

  test('a mismatch makes run exit 3 and is named in the summary', () => {
    expect(run.code).toBe(3);
    expect(run.stdout).toContain('10 invoices: 9 complete, 1 mismatch');
    expect(run.stdout).toMatch(
      /1 reconciliation mismatch .*\n {2}✗ G012040490 \(2025-11\): line items 8891\.61 USD against totalCharges 9008\.86, difference 117\.25 \(tolerance 0\.01\)/,
    );
  });

  test('every invoice has its currency, invoice total, line-item total, difference and ✓/✗', () => {
    expect(row(run.stdout, 'G012040490')).toEqual([
      'G012040490',
      '2025-11',
      'mismatch',
      '1/1 0/1',
      '27',
      'USD',
      '9008.86',
      '8891.61',
      '117.25',
      '✗',
    ]);
    for (const spec of sim.dataset.invoices().filter((s) => s.id !== 'G012040490')) {
      const cells = row(run.stdout, spec.id);
      expect(cells[2], spec.id).toBe('complete');
      expect(cells[6], spec.id).toBe(cells[7]);
      expect(cells[8], spec.id).toBe('0');
      expect(cells[9], spec.id).toBe('✓');
    }
    // The table fits 120 columns.
    const tableLines = run.stdout.split('\n').filter((l) => /^[┌│├└]/.test(l));
    expect(tableLines.length).toBeGreaterThan(10);
    for (const line of tableLines) expect(line.length).toBeLessThanOrEqual(120);
  });

  test('progress off a terminal: rows and pages of each part, and the wait for the Graph export', () => {
    expect(run.stderr).toMatch(/ {2}D02005YFHI azure-billing: \d+ rows, 1 page so far \(v1\), \d+\.\d s/);
    expect(run.stderr).toMatch(/ {2}G012040490 onetime-billing: waiting for the Graph export \(\d+\.\d s\)/);
    expect(run.stderr).toContain('  G012040490: mismatch (27 rows)');
  });

  test('status prints the same table and status --json the same fields, read from the ledger', async () => {
    const status = await cli(['status'], {
      AzureWebJobsStorage: settings.AzureWebJobsStorage,
      LEDGER_TABLE: settings.LEDGER_TABLE,
    });
    expect(status.code).toBe(0);
    expect(row(status.stdout, 'G012040490')).toEqual(row(run.stdout, 'G012040490'));
    const json = await cli(['status', '--json'], {
      AzureWebJobsStorage: settings.AzureWebJobsStorage,
      LEDGER_TABLE: settings.LEDGER_TABLE,
    });
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as {
      invoices: { invoiceId: string; state: string; reconciliation: Record<string, unknown> }[];
    };
    expect(parsed.invoices.find((i) => i.invoiceId === 'G012040490')).toMatchObject({
      state: 'mismatch',
      reconciliation: {
        currency: 'USD',
        invoiceTotal: '9008.86',
        lineItemTotal: '8891.61',
        difference: '117.25',
        matches: false,
        tolerance: '0.01',
      },
    });
    expect(parsed.invoices.filter((i) => i.reconciliation.matches === true)).toHaveLength(9);
  });

  test('resync --period queues every invoice of that period; --failed finds none; both need no Partner Center settings', async () => {
    const storageOnly = { AzureWebJobsStorage: settings.AzureWebJobsStorage, LEDGER_TABLE: settings.LEDGER_TABLE };
    await clearQueue('invoice-sync');
    const failed = await cli(['resync', '--failed'], storageOnly);
    expect(failed.code).toBe(0);
    expect(failed.stdout).toContain('The ledger has no failed invoices; nothing queued.');
    const period = await cli(['resync', '--period', '2025-03'], storageOnly);
    expect(period.code).toBe(0);
    expect(period.stdout).toContain('2 invoices queued');
    expect((await queueMessages('invoice-sync')).map((m) => JSON.parse(m))).toEqual([
      { invoiceId: 'G016907411', reason: 'resync' },
      { invoiceId: 'G016907412', reason: 'resync' },
    ]);
    // What was queued runs again, and what was complete is kept complete.
    const again = await cli(['run'], settings, hooks);
    expect(again.code).toBe(3);
    expect(row(again.stdout, 'G016907411')[2]).toBe('complete');
  });

  test('resync of an id Partner Center does not list is refused, and nothing is queued', async () => {
    await clearQueue('invoice-sync');
    const refused = await cli(['resync', 'G999999999'], settings, hooks);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `Refused: Partner Center does not list invoice G999999999 (10 invoices listed at ${settings.PARTNER_CENTER_API_URL})`,
    );
    expect(await queueMessages('invoice-sync')).toEqual([]);
    const known = await cli(['resync', 'G012040490', '--full'], settings, hooks);
    expect(known.code).toBe(0);
    expect(known.stdout).toContain('Queued G012040490 (was mismatch) for a full re-export.');
    expect((await queueMessages('invoice-sync')).map((m) => JSON.parse(m))).toEqual([
      { invoiceId: 'G012040490', reason: 'full' },
    ]);
    await clearQueue('invoice-sync');
  });
});

test('run exits 0 when every invoice is complete and reconciles', async () => {
  const specs = sim.dataset.invoices().filter((s) => s.id === 'D02005YFHI' || s.id === 'G016907411');
  const own = await startSimulator({ seed: 7, v2: { retryAfterSeconds: 0 }, dataset: { invoices: specs } });
  try {
    const { settings, hooks } = await environment({}, own);
    const run = await cli(['run'], settings, hooks);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('2 invoices: 2 complete');
    expect(row(run.stdout, 'G016907411').slice(5)).toEqual(['EUR', '13106.47', '13106.47', '0', '✓']);
  } finally {
    await own.stop();
  }
});

test('an app-only token on the App+User calls (403 code 2032) is explained once, with the way to fix it', async () => {
  const week = 7 * 24 * 3600 + Math.max(0, Math.ceil((Date.now() - sim.clock.now()) / 1000));
  const { settings, hooks } = await environment({
    PARTNER_CENTER_ACCESS_TOKEN: sim.issueToken({ audience: 'partnercenter', ttlSeconds: week }),
  });
  await clearQueue('invoice-sync');
  const run = await cli(['run'], settings, hooks);
  expect(run.code).toBe(2);
  expect(run.stdout).toContain('10 invoices: 10 failed');
  expect(run.stderr.split(APP_USER_HINT)).toHaveLength(2);
  expect(APP_USER_HINT).toContain('`csp-invoice-sync consent`');
  // No error line repeats the refusal: only the note, and the count of what it stood for.
  expect(run.stderr.split('\n').filter((l) => l.includes('2032') && !l.includes(APP_USER_HINT))).toEqual([
    expect.stringMatching(/^\(\d+ errors with code 2032 were not repeated/),
  ]);
});

describe('settings errors name the setting and show the bad value', () => {
  const storage = () => ({ AzureWebJobsStorage: azurite.connectionString });

  test('a connection string that is not one, with its key never shown', async () => {
    const garbage = await cli(['status'], { AzureWebJobsStorage: 'garbage' });
    expect(garbage.code).toBe(1);
    expect(garbage.stderr).toContain('AzureWebJobsStorage: not a storage connection string');
    expect(garbage.stderr).toContain('(got "garbage")');
    expect(garbage.stderr).not.toMatch(/^error: Invalid URL$/m);
    const keyed = await cli(['status'], {
      AzureWebJobsStorage: 'AccountName=x;AccountKey=s3cr3tkey;BlobEndpoint=nope',
    });
    expect(keyed.stderr).toContain('its blobendpoint is not a URL');
    expect(keyed.stderr).toContain('AccountKey=REDACTED');
    expect(keyed.stderr).not.toContain('s3cr3tkey');
  });

  test('numbers, switches and AUTH_MODE, every problem at once', async () => {
    const bad = await cli(['run'], {
      ...storage(),
      LINE_ITEM_PAGE_SIZE: 'abc',
      APP_USER_ENABLED: 'maybe',
      AUTH_MODE: 'managed-identity',
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('LINE_ITEM_PAGE_SIZE: expected a whole number from 1 to 2000 (got "abc")');
    expect(bad.stderr).not.toContain('NaN');
    expect(bad.stderr).toContain('APP_USER_ENABLED: expected true, false, 1 or 0 (got "maybe")');
    expect(bad.stderr).toContain(
      'AUTH_MODE: expected one of client-secret, certificate, workload-identity, static-token: ',
    );
    expect(bad.stderr).toContain('(got "managed-identity")');
    for (const [value, parsed] of [
      ['TRUE', 'true'],
      ['0', 'false'],
      ['False', 'false'],
      ['1', 'true'],
    ]) {
      const ok = await cli(['status'], { ...storage(), APP_USER_ENABLED: value, LEDGER_TABLE: 'nosuchledger' });
      expect(ok.stderr, `${value} → ${parsed}`).not.toContain('APP_USER_ENABLED');
    }
  });

  test('every missing auth setting is listed at once', async () => {
    const run = await cli(['run'], { ...storage(), AUTH_MODE: 'client-secret' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'AUTH_MODE=client-secret needs app settings: PARTNER_TENANT_ID, PARTNER_CLIENT_ID, PARTNER_CLIENT_SECRET, KEY_VAULT_URL',
    );
    const tokens = await cli(['run'], { ...storage(), AUTH_MODE: 'static-token' });
    expect(tokens.stderr).toContain(
      'AUTH_MODE=static-token needs app settings: PARTNER_CENTER_ACCESS_TOKEN, GRAPH_ACCESS_TOKEN',
    );
  });

  test('storage that does not answer is named as such before any pass starts', async () => {
    const port = await freePort();
    const nowhere =
      'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;' +
      `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:${port}/devstoreaccount1;` +
      `TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`;
    for (const command of ['status', 'run']) {
      const { settings, hooks } = await environment({ AzureWebJobsStorage: nowhere });
      const result = await cli([command], settings, hooks);
      expect(result.code, command).toBe(1);
      expect(result.stderr, command).toContain('is Azurite / the storage account reachable?');
      expect(result.stderr, command).toContain(`127.0.0.1:${port}`);
      expect(result.stderr, command).not.toContain('Syncing invoices');
    }
  });
});

test('storage that accepts connections but never answers is named after the short probe, not the SDK retries', async () => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as AddressInfo).port;
  try {
    const connection =
      'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;' +
      `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:${port}/devstoreaccount1;` +
      `TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`;
    const status = await cli(['status'], { AzureWebJobsStorage: connection }, { probeTimeoutMs: 300 });
    expect(status.code).toBe(1);
    expect(status.stderr).toContain(
      `Cannot read the ledger table "invoiceledger" at http://127.0.0.1:${port}/devstoreaccount1 (no answer within 0.3 s): ` +
        'is Azurite / the storage account reachable?',
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('status on a fresh account needs only storage, says the ledger does not exist yet, and creates nothing', async () => {
  const fresh = await startAzurite();
  try {
    const status = await cli(['status'], { AzureWebJobsStorage: fresh.connectionString });
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('The ledger does not exist yet: there is no table "invoiceledger"');
    expect(status.stderr).toContain('Nothing was created.');
    const json = await cli(['status', '--json'], { AzureWebJobsStorage: fresh.connectionString });
    expect(json.code).toBe(1);
    const resync = await cli(['resync', '--failed'], { AzureWebJobsStorage: fresh.connectionString });
    expect(resync.code).toBe(0);
    const containers = [];
    for await (const c of BlobServiceClient.fromConnectionString(fresh.connectionString).listContainers())
      containers.push(c.name);
    const queues = [];
    for await (const q of QueueServiceClient.fromConnectionString(fresh.connectionString).listQueues())
      queues.push(q.name);
    const tables = [];
    for await (const t of TableServiceClient.fromConnectionString(fresh.connectionString, {
      allowInsecureConnection: true,
    }).listTables())
      tables.push(t.name);
    expect({ containers, queues, tables }).toEqual({ containers: [], queues: [], tables: [] });
  } finally {
    await fresh.stop();
  }
});

test('--help lists the exit codes of every command', async () => {
  const help = await cli(['--help'], {});
  expect(help.code).toBe(0);
  expect(help.stdout).toContain('Exit codes:');
  for (const code of ['0  run: every invoice complete', '1  the command could not do its job', '2  run:', '3  run:']) {
    expect(help.stdout).toContain(code);
  }
  for (const command of ['run', 'status', 'resync', 'consent']) {
    const own = await cli([command, '--help'], {});
    expect(own.code, command).toBe(0);
    expect(own.stdout, command).toContain('Exit codes: 0 ');
  }
  const usage = await cli(['resync'], { AzureWebJobsStorage: azurite.connectionString });
  expect(usage.code).toBe(1);
  expect(usage.stderr).toContain('resync needs exactly one of: an invoice id, --failed, --period YYYY-MM');
});
