import { ManagedIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, QUEUES } from '../../src/config.js';
import { createStorage, createStorageClients, storageCredential } from '../../src/storage/clients.js';
import { type Azurite, startAzurite } from '../support/azurite.js';

let azurite: Azurite;

beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

describe('createStorage', () => {
  it('ensure() creates the container, both queues with poison twins, and the table; repeating is harmless', async () => {
    const settings = loadSettings({ AzureWebJobsStorage: azurite.connectionString, INVOICE_CONTAINER: 'inv-test' });
    const storage = createStorage(settings);
    await storage.ensure();
    await storage.ensure();
    expect(await storage.container.exists()).toBe(true);
    const queues: string[] = [];
    for await (const queue of storage.queueService.listQueues()) queues.push(queue.name);
    expect(queues.sort()).toEqual(
      [
        QUEUES.invoiceSync,
        `${QUEUES.invoiceSync}-poison`,
        QUEUES.lineItemExport,
        `${QUEUES.lineItemExport}-poison`,
      ].sort(),
    );
    expect(storage.queues.invoiceSync.name).toBe('invoice-sync');
    expect(storage.queues.lineItemExport.name).toBe('lineitem-export');
    // The ledger works over the created table.
    expect(await storage.ledger.getInvoice('G1')).toBeUndefined();
    expect(storage.ledger.table.tableName).toBe('invoiceledger');
  });
});

describe('createStorageClients', () => {
  it('expands UseDevelopmentStorage=true to the local emulator endpoints for all three services', () => {
    const clients = createStorageClients({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
    expect(clients.blobService.url).toMatch(/^http:\/\/127\.0\.0\.1:10000\/devstoreaccount1\/?$/);
    expect(clients.queueService.url).toMatch(/^http:\/\/127\.0\.0\.1:10001\/devstoreaccount1\/?$/);
    expect(clients.tableClient('ledger').url).toMatch(/^http:\/\/127\.0\.0\.1:10002\/devstoreaccount1\/?$/);
  });

  it('uses the identity-based service URIs when there is no connection string', () => {
    const clients = createStorageClients({
      AzureWebJobsStorage__blobServiceUri: 'https://acct.blob.core.windows.net',
      AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
      AzureWebJobsStorage__tableServiceUri: 'https://acct.table.core.windows.net',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: '00000000-0000-0000-0000-000000000001',
    });
    expect(clients.blobService.url).toMatch(/^https:\/\/acct\.blob\.core\.windows\.net/);
    expect(clients.queueService.url).toMatch(/^https:\/\/acct\.queue\.core\.windows\.net/);
    expect(clients.tableClient('ledger').url).toMatch(/^https:\/\/acct\.table\.core\.windows\.net/);
    expect(
      storageCredential({ AzureWebJobsStorage__credential: 'managedidentity', AzureWebJobsStorage__clientId: 'x' }),
    ).toBeInstanceOf(ManagedIdentityCredential);
    expect(storageCredential({})).not.toBeInstanceOf(ManagedIdentityCredential);
  });

  it('fails clearly without any storage setting', () => {
    expect(() =>
      createStorageClients({ AzureWebJobsStorage__blobServiceUri: 'https://a.blob.core.windows.net' }),
    ).toThrow(/Storage is not configured/);
  });
});
