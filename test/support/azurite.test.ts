import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Azurite, startAzurite } from './azurite.js';

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
