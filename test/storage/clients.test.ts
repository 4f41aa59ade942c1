import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, QUEUES } from '../../src/config.js';
import { createStorage, createStorageClients, storageCredential } from '../../src/storage/clients.js';
import { type Azurite, startAzurite } from '../support/azurite.js';

let azurite: Azurite;

// The first test lists every queue of the account: a shared Azurite (mutation runs) is handed over empty.
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

describe('storage settings', () => {
  it.each(['UseDevelopmentStorage=true', 'UseDevelopmentStorage=true;', '  usedevelopmentstorage = TRUE ; '])(
    '%j means the local emulator',
    (setting) => {
      const clients = createStorageClients({ AzureWebJobsStorage: setting });
      expect(clients.blobService.url).toMatch(/^http:\/\/127\.0\.0\.1:10000\/devstoreaccount1\/?$/);
      expect(clients.tableClient('ledger').url).toMatch(/^http:\/\/127\.0\.0\.1:10002\/devstoreaccount1\/?$/);
    },
  );

  // The SDKs read the exact shorthand themselves; these spellings only the expansion turns into the emulator.
  it.each(['UseDevelopmentStorage  =  true  ;  ', ' UseDevelopmentStorage=true ', '\tUseDevelopmentStorage\t=\ttrue'])(
    '%j means the local emulator too (any whitespace, with or without the semicolon)',
    (setting) => {
      const clients = createStorageClients({ AzureWebJobsStorage: setting });
      expect(clients.blobService.url).toMatch(/^http:\/\/127\.0\.0\.1:10000\/devstoreaccount1\/?$/);
      expect(clients.queueService.url).toMatch(/^http:\/\/127\.0\.0\.1:10001\/devstoreaccount1\/?$/);
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

describe('identity-based storage, against a local managed identity endpoint', () => {
  // The App Service managed identity protocol (IDENTITY_ENDPOINT + IDENTITY_HEADER), which @azure/identity reads
  // from the environment: a loopback server stands in for the platform's endpoint and records what is asked.
  let identity: http.Server;
  const asked: URLSearchParams[] = [];
  const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };
  beforeAll(async () => {
    identity = http.createServer((req, res) => {
      asked.push(new URL(req.url ?? '', 'http://x').searchParams);
      const expiresOn = String(Math.floor(Date.now() / 1000) + 3600);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: 'mi-token', expires_on: expiresOn, token_type: 'Bearer' }));
    });
    await new Promise<void>((resolve) => identity.listen(0, '127.0.0.1', resolve));
    process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${(identity.address() as AddressInfo).port}/msi/token`;
    process.env.IDENTITY_HEADER = 'identity-header';
  });
  afterAll(async () => {
    for (const [key, value] of [
      ['IDENTITY_ENDPOINT', saved.endpoint],
      ['IDENTITY_HEADER', saved.header],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await new Promise<void>((resolve) => identity.close(() => resolve()));
  });

  it.each([
    [
      { AzureWebJobsStorage__credential: 'managedidentity', AzureWebJobsStorage__clientId: 'user-assigned-1' },
      'user-assigned-1',
    ],
    [{ AzureWebJobsStorage__clientId: 'user-assigned-2' }, 'user-assigned-2'],
    [{ AzureWebJobsStorage__credential: 'managedidentity' }, null],
  ])('%j asks the identity endpoint for client_id %s', async (settings, clientId) => {
    asked.length = 0;
    const token = await storageCredential(settings).getToken('https://storage.azure.com/.default');
    expect(token?.token).toBe('mi-token');
    expect(asked.map((q) => q.get('client_id'))).toEqual([clientId]);
  });

  it('identity-based access needs https: an http endpoint is refused before a token is asked for', async () => {
    asked.length = 0;
    const clients = createStorageClients({
      AzureWebJobsStorage__blobServiceUri: azurite.blobEndpoint,
      AzureWebJobsStorage__queueServiceUri: azurite.queueEndpoint,
      AzureWebJobsStorage__tableServiceUri: azurite.tableEndpoint,
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: 'user-assigned-1',
    });
    const refused = /Bearer token authentication is not permitted for non-TLS protected \(non-https\) URLs/;
    await expect(clients.tableClient('identitytable').createTable()).rejects.toThrow(refused);
    await expect(clients.blobService.getContainerClient('identity').createIfNotExists()).rejects.toThrow(refused);
    expect(asked).toEqual([]);
  });
});
