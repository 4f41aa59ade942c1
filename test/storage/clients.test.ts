import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, QUEUES } from '../../src/config.js';
import { createStorage, createStorageClients, storageCredential } from '../../src/storage/clients.js';
import { type Azurite, spawnAzurite } from '../support/azurite.js';

let azurite: Azurite;

// An Azurite of its own even in a mutation run that shares one: the first test lists every queue of the account.
beforeAll(async () => {
  azurite = await spawnAzurite();
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

describe('storage settings', () => {
  it.each(['UseDevelopmentStorage=true', 'UseDevelopmentStorage=true;', '  usedevelopmentstorage = TRUE ; '])(
    '%j means the local emulator',
    (setting) => {
      const clients = createStorageClients({ AzureWebJobsStorage: setting });
      expect(clients.blobService.url).toMatch(/^http:\/\/127\.0\.0\.1:10000\/devstoreaccount1\/?$/);
      expect(clients.tableClient('ledger').url).toMatch(/^http:\/\/127\.0\.0\.1:10002\/devstoreaccount1\/?$/);
    },
  );

  it.each(['UseDevelopmentStorage=false', 'xUseDevelopmentStorage=true'])('%j is not expanded', (setting) => {
    let url: string | undefined;
    try {
      // @azure/data-tables does not know the development shorthand: only the expansion gives it the emulator.
      url = createStorageClients({ AzureWebJobsStorage: setting }).tableClient('t').url;
    } catch {
      url = undefined;
    }
    expect(url ?? '').not.toMatch(/127\.0\.0\.1:10002/);
  });

  it('a connection string whose table endpoint is plain http reaches Azurite (insecure allowed there)', async () => {
    // The protocol says https; only the endpoint is http.
    const https = azurite.connectionString.replace(
      /DefaultEndpointsProtocol=http;/i,
      'DefaultEndpointsProtocol=https;',
    );
    const table = createStorageClients({ AzureWebJobsStorage: https }).tableClient('insecureok');
    await expect(table.createTable()).resolves.toBeUndefined();
  });

  it.each([
    ['AzureWebJobsStorage__blobServiceUri'],
    ['AzureWebJobsStorage__queueServiceUri'],
    ['AzureWebJobsStorage__tableServiceUri'],
  ])('without %s (and no connection string) it fails, saying what to set', (missing) => {
    const settings: Record<string, string> = {
      AzureWebJobsStorage__blobServiceUri: 'https://a.blob.core.windows.net',
      AzureWebJobsStorage__queueServiceUri: 'https://a.queue.core.windows.net',
      AzureWebJobsStorage__tableServiceUri: 'https://a.table.core.windows.net',
    };
    delete settings[missing];
    expect(() => createStorageClients(settings)).toThrow(
      new Error(
        'Storage is not configured: set AzureWebJobsStorage, or AzureWebJobsStorage__blobServiceUri, ' +
          '__queueServiceUri and __tableServiceUri for identity-based access.',
      ),
    );
  });

  it('the credential: managed identity whatever the case, with or without a client id; otherwise the default chain', () => {
    expect(storageCredential({ AzureWebJobsStorage__credential: 'ManagedIdentity' })).toBeInstanceOf(
      ManagedIdentityCredential,
    );
    expect(
      storageCredential({ AzureWebJobsStorage__credential: 'MANAGEDIDENTITY', AzureWebJobsStorage__clientId: 'id' }),
    ).toBeInstanceOf(ManagedIdentityCredential);
    expect(storageCredential({ AzureWebJobsStorage__credential: 'other' })).toBeInstanceOf(DefaultAzureCredential);
    expect(storageCredential({ AzureWebJobsStorage__clientId: 'id' })).toBeInstanceOf(DefaultAzureCredential);
  });
});
