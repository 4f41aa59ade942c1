// Starts a real Azurite (from node_modules) on free loopback ports with its data in a temp folder, and stops it.
// Used by the tests, the demo and the benchmark; nothing here is mocked.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';

export interface Azurite {
  /** A full connection string for the running instance (account devstoreaccount1). */
  connectionString: string;
  blobEndpoint: string;
  queueEndpoint: string;
  tableEndpoint: string;
  location: string;
  /** The Azurite process (the bench reads its CPU time); absent when the instance is another process's. */
  pid?: number;
  stop(): Promise<void>;
}

const ACCOUNT = 'devstoreaccount1';
// The well-known Azurite development key (public, documented by Microsoft); it is not a secret.
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Azurite exited early with code ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Azurite did not open port ${port} in time`);
}

/** Set by test/mutation/azurite.global.ts: one Azurite for a whole mutation run instead of one per test file. */
export const SHARED_AZURITE_ENV = 'CSP_SYNC_SHARED_AZURITE';

export async function startAzurite(options: { startTimeoutMs?: number } = {}): Promise<Azurite> {
  const shared = process.env[SHARED_AZURITE_ENV];
  if (shared) {
    // Stopped by its owner, the global setup. A test file starts on an empty account, as on an Azurite of its own:
    // what an earlier file (or an earlier run of this one) left must neither fail its set-up (a container that
    // already exists) nor stand in for what the code under test should have written.
    const endpoints = JSON.parse(shared) as Omit<Azurite, 'stop'>;
    await emptyAccount(endpoints.connectionString);
    return { ...endpoints, stop: async () => {} };
  }
  return spawnAzurite(options);
}

/**
 * Deletes every container, table and queue of the account. Only for an Azurite that one test file at a time uses
 * (the global setup of a mutation run: each run's test files go one after another in its own process).
 */
export async function emptyAccount(connectionString: string): Promise<void> {
  const blobs = BlobServiceClient.fromConnectionString(connectionString);
  for await (const container of blobs.listContainers()) await blobs.deleteContainer(container.name);
  const tables = TableServiceClient.fromConnectionString(connectionString, { allowInsecureConnection: true });
  for await (const table of tables.listTables()) if (table.name) await tables.deleteTable(table.name);
  const queues = QueueServiceClient.fromConnectionString(connectionString);
  for await (const queue of queues.listQueues()) await queues.deleteQueue(queue.name);
}

export async function spawnAzurite(options: { startTimeoutMs?: number } = {}): Promise<Azurite> {
  // A free port is free when asked, not when Azurite binds it: another test file's process can take it in
  // between (EADDRINUSE). Such a start is tried again on new ports; any other failure is thrown at once.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnAzuriteOnce(options);
    } catch (error) {
      if (attempt >= 5 || !/EADDRINUSE/.test((error as Error).message)) throw error;
    }
  }
}

async function spawnAzuriteOnce(options: { startTimeoutMs?: number }): Promise<Azurite> {
  const require = createRequire(import.meta.url);
  const entry = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
  const location = await mkdtemp(path.join(os.tmpdir(), 'azurite-'));
  const [blobPort, queuePort, tablePort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [
      entry,
      '--silent',
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--loose',
      '--location',
      location,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(blobPort),
      '--queueHost',
      '127.0.0.1',
      '--queuePort',
      String(queuePort),
      '--tableHost',
      '127.0.0.1',
      '--tablePort',
      String(tablePort),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  try {
    for (const port of [blobPort, queuePort, tablePort]) await waitForPort(port, child, deadline);
  } catch (error) {
    child.kill('SIGKILL');
    await rm(location, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}${stderr ? `\n${stderr}` : ''}`);
  }
  const blobEndpoint = `http://127.0.0.1:${blobPort}/${ACCOUNT}`;
  const queueEndpoint = `http://127.0.0.1:${queuePort}/${ACCOUNT}`;
  const tableEndpoint = `http://127.0.0.1:${tablePort}/${ACCOUNT}`;
  let stopped = false;
  return {
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};` +
      `BlobEndpoint=${blobEndpoint};QueueEndpoint=${queueEndpoint};TableEndpoint=${tableEndpoint};`,
    blobEndpoint,
    queueEndpoint,
    tableEndpoint,
    location,
    pid: child.pid,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(location, { recursive: true, force: true });
    },
  };
}
