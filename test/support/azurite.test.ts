import { TableClient, TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Azurite, SHARED_AZURITE_ENV, startAzurite } from './azurite.js';

let azurite: Azurite;
beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

test('the started Azurite serves blob, queue and table to the real SDKs', async () => {
  const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
  const container = blobs.getContainerClient('smoke');
  await container.createIfNotExists();
  await container.getBlockBlobClient('a.txt').upload('hello', 5);
  expect((await container.getBlobClient('a.txt').downloadToBuffer()).toString()).toBe('hello');

  const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient('smoke');
  await queue.createIfNotExists();
  await queue.sendMessage('m');
  const received = await queue.receiveMessages();
  expect(received.receivedMessageItems[0]?.messageText).toBe('m');

  const table = TableClient.fromConnectionString(azurite.connectionString, 'smoke', { allowInsecureConnection: true });
  await table.createTable();
  await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 1 });
  expect((await table.getEntity('p', 'r')).value).toBe(1);
});

test('a shared Azurite is handed to the next test file empty: no container, table or queue left', async () => {
  const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
  await blobs.getContainerClient('left-over').createIfNotExists();
  await blobs.getContainerClient('left-over').getBlockBlobClient('rows.ndjson').upload('{}\n', 3);
  const queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
  await queues.getQueueClient('left-over').createIfNotExists();
  const tables = TableServiceClient.fromConnectionString(azurite.connectionString, { allowInsecureConnection: true });
  await tables.createTable('leftover');

  const { stop: _stop, ...endpoints } = azurite;
  process.env[SHARED_AZURITE_ENV] = JSON.stringify(endpoints);
  try {
    const shared = await startAzurite();
    expect(shared.blobEndpoint).toBe(azurite.blobEndpoint);
    await shared.stop(); // the owner stops it, not a test file
  } finally {
    delete process.env[SHARED_AZURITE_ENV];
  }

  const names = async <T>(items: AsyncIterable<T>, name: (item: T) => string | undefined) => {
    const found: (string | undefined)[] = [];
    for await (const item of items) found.push(name(item));
    return found;
  };
  expect(await names(blobs.listContainers(), (c) => c.name)).toEqual([]);
  expect(await names(queues.listQueues(), (q) => q.name)).toEqual([]);
  expect(await names(tables.listTables(), (t) => t.name)).toEqual([]);
  // Still running: a shared Azurite's stop() is a no-op for the test file.
  await blobs.getContainerClient('after').create();
});
