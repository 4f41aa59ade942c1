// The one storage account: host storage (timer locks), the invoices container, the Flex deployment container,
// both work queues with their poison twins, and the ledger table. Shared keys are off: everything uses Entra ID.

param name string
param location string
param tags object
param invoiceContainerName string
param deploymentContainerName string
param ledgerTableName string
param queueNames array

@description('Days of blob and container soft delete (recover an overwritten or deleted invoice file).')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 30

@description('Version-level WORM on the invoices container, for audit. 0 = off. Cannot be undone once locked in the portal.')
@minValue(0)
@maxValue(146000)
param immutabilityDays int = 0

@description('Days after which blobs under unbilled/ in the invoices container (unbilled line-item snapshots) are deleted.')
@minValue(1)
@maxValue(36500)
param unbilledRetentionDays int = 90

var immutabilityEnabled = immutabilityDays > 0

// API version: learn.microsoft.com/azure/templates/microsoft.storage/allversions (2025-06-01 is the newest for every Microsoft.Storage type used here)
resource account 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    dnsEndpointType: 'Standard'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    immutableStorageWithVersioning: {
      // Account-level support only: the container below decides whether a policy applies.
      enabled: immutabilityEnabled
    }
  }
}

// API version: learn.microsoft.com/azure/templates/microsoft.storage/allversions (2025-06-01)
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

// API version: learn.microsoft.com/azure/templates/microsoft.storage/allversions (2025-06-01)
resource invoiceContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: invoiceContainerName
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: {
      enabled: immutabilityEnabled
    }
  }
}

// Version-level (not legacy container-level) WORM: a resync still writes a new current version, while every
// earlier version stays protected for the period. Left unlocked so a mistaken period can be corrected.
// API version: learn.microsoft.com/en-us/azure/templates/microsoft.storage/2024-01-01/storageaccounts/blobservices/containers/immutabilitypolicies, newest listed on .../microsoft.storage/allversions is 2025-06-01
resource invoiceImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2025-06-01' = if (immutabilityEnabled) {
  parent: invoiceContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: immutabilityDays
    allowProtectedAppendWrites: false
  }
}

// API version: learn.microsoft.com/azure/templates/microsoft.storage/allversions (2025-06-01)
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Unbilled snapshots are working data, not audit records: a lifecycle rule deletes them (and their earlier versions
// and snapshots) UNBILLED_RETENTION_DAYS after they were written. Nothing outside unbilled/ is touched. With WORM on,
// versions still under retention are kept until it ends (the platform refuses the delete and retries daily).
// API version: learn.microsoft.com/azure/templates/microsoft.storage/storageaccounts/managementpolicies (2025-06-01,
// the newest listed for Microsoft.Storage on .../microsoft.storage/allversions)
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2025-06-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'delete-unbilled'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${invoiceContainer.name}/unbilled/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: unbilledRetentionDays
                }
              }
              version: {
                delete: {
                  daysAfterCreationGreaterThan: unbilledRetentionDays
                }
              }
              snapshot: {
                delete: {
                  daysAfterCreationGreaterThan: unbilledRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

// API version: learn.microsoft.com/azure/templates/microsoft.storage/allversions (2025-06-01)
resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2025-06-01' = {
  parent: account
  name: 'default'
}

// The host would create the poison queues on first failure; creating them up front lets the alert and a
// dashboard point at them from day one.
// API version: learn.microsoft.com/azure/templates/microsoft.storage/allversions (2025-06-01)
resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-06-01' = [
  for queueName in flatten(map(queueNames, q => [q, '${q}-poison'])): {
    parent: queueService
    name: queueName
  }
]

// API version: learn.microsoft.com/azure/templates/microsoft.storage/allversions (2025-06-01)
resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-06-01' = {
  parent: account
  name: 'default'
}

// API version: learn.microsoft.com/azure/templates/microsoft.storage/allversions (2025-06-01)
resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-06-01' = {
  parent: tableService
  name: ledgerTableName
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'
output invoiceContainerName string = invoiceContainer.name
output ledgerTableName string = ledgerTable.name
