// Storage clients from the same settings the Functions host uses (AzureWebJobsStorage, connection string or
// identity-based), and the app's storage bundle: container, queues (with poison twins) and ledger.

import type { TokenCredential } from '@azure/core-auth';
import { TableClient } from '@azure/data-tables';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { type QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { QUEUES, type Settings } from '../config.js';
import { Ledger } from './ledger.js';

export interface StorageClients {
  blobService: BlobServiceClient;
  queueService: QueueServiceClient;
  tableClient(tableName: string): TableClient;
}

export type StorageSettings = Partial<
  Pick<
    Settings,
    | 'AzureWebJobsStorage'
    | 'AzureWebJobsStorage__blobServiceUri'
    | 'AzureWebJobsStorage__queueServiceUri'
    | 'AzureWebJobsStorage__tableServiceUri'
    | 'AzureWebJobsStorage__clientId'
    | 'AzureWebJobsStorage__credential'
  >
>;

// The Azurite account and its well-known development key (public, documented by Microsoft; not a secret).
// @azure/data-tables does not understand `UseDevelopmentStorage=true`, so it is expanded here for all three.
const DEVELOPMENT_STORAGE =
  'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;' +
  'AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;' +
  'BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;' +
  'TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;';

function expandConnectionString(connectionString: string): string {
  return /^\s*UseDevelopmentStorage\s*=\s*true\s*;?\s*$/i.test(connectionString)
    ? DEVELOPMENT_STORAGE
    : connectionString;
}

function usesHttp(connectionString: string): boolean {
  return /DefaultEndpointsProtocol=http(;|$)/i.test(connectionString) || /Endpoint=http:\/\//i.test(connectionString);
}

/** The credential for identity-based storage access, as the Functions host picks it. */
export function storageCredential(settings: StorageSettings): TokenCredential {
  if (settings.AzureWebJobsStorage__credential?.toLowerCase() === 'managedidentity') {
    return settings.AzureWebJobsStorage__clientId
      ? new ManagedIdentityCredential({ clientId: settings.AzureWebJobsStorage__clientId })
      : new ManagedIdentityCredential();
  }
  return new DefaultAzureCredential(
    settings.AzureWebJobsStorage__clientId ? { managedIdentityClientId: settings.AzureWebJobsStorage__clientId } : {},
  );
}

/** Blob, queue and table clients; a connection string wins over the identity-based service URIs. */
export function createStorageClients(settings: StorageSettings): StorageClients {
  if (settings.AzureWebJobsStorage) {
    const connectionString = expandConnectionString(settings.AzureWebJobsStorage);
    const allowInsecureConnection = usesHttp(connectionString);
    return {
      blobService: BlobServiceClient.fromConnectionString(connectionString),
      queueService: QueueServiceClient.fromConnectionString(connectionString),
      tableClient: (tableName) =>
        TableClient.fromConnectionString(connectionString, tableName, { allowInsecureConnection }),
    };
  }
  const blobUri = settings.AzureWebJobsStorage__blobServiceUri;
  const queueUri = settings.AzureWebJobsStorage__queueServiceUri;
  const tableUri = settings.AzureWebJobsStorage__tableServiceUri;
  if (!blobUri || !queueUri || !tableUri) {
    throw new Error(
      'Storage is not configured: set AzureWebJobsStorage, or AzureWebJobsStorage__blobServiceUri, ' +
        '__queueServiceUri and __tableServiceUri for identity-based access.',
    );
  }
  const credential = storageCredential(settings);
  return {
    blobService: new BlobServiceClient(blobUri, credential),
    queueService: new QueueServiceClient(queueUri, credential),
    // No allowInsecureConnection here: the SDKs refuse a bearer token over http whatever it says.
    tableClient: (tableName) => new TableClient(tableUri, tableName, credential),
  };
}

/** Everything the jobs use in storage. */
export interface Storage {
  blobService: BlobServiceClient;
  queueService: QueueServiceClient;
  container: ContainerClient;
  queues: { invoiceSync: QueueClient; lineItemExport: QueueClient };
  ledger: Ledger;
  /** Creates the container, both queues and their `-poison` twins, and the ledger table; safe to repeat. */
  ensure(): Promise<void>;
}

export type AppStorageSettings = StorageSettings & Pick<Settings, 'INVOICE_CONTAINER' | 'LEDGER_TABLE'>;

export function createStorage(settings: AppStorageSettings, clients = createStorageClients(settings)): Storage {
  const { blobService, queueService } = clients;
  const container = blobService.getContainerClient(settings.INVOICE_CONTAINER);
  const queues = {
    invoiceSync: queueService.getQueueClient(QUEUES.invoiceSync),
    lineItemExport: queueService.getQueueClient(QUEUES.lineItemExport),
  };
  const ledger = new Ledger(clients.tableClient(settings.LEDGER_TABLE));
  return {
    blobService,
    queueService,
    container,
    queues,
    ledger,
    async ensure() {
      const queueNames = Object.values(QUEUES).flatMap((name) => [name, `${name}-poison`]);
      await Promise.all([
        container.createIfNotExists(),
        ...queueNames.map((name) => queueService.getQueueClient(name).createIfNotExists()),
        ledger.ensure(),
      ]);
    },
  };
}
