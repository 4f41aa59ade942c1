// Least-privilege role assignments for exactly what the code and the Functions host do, and the one
// assignment the deploying user needs to run the consent command (write the refresh token).

param identityPrincipalId string
param storageAccountName string
param keyVaultName string
param appInsightsName string

@description('Object id of the user who runs azd (and the consent command). Empty = no user assignment.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

// Built-in role definition ids (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  // The host keeps timer locks and its own state as blobs with leases, and Flex reads the deployment package:
  // the host docs require Owner (not Contributor) for identity-based AzureWebJobsStorage.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Trigger (read, delete), fan-out (send) and the host's move to the -poison queue.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // The ledger: read, insert and ETag-conditional updates.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Read the refresh token and write its rotated successor (and resolve the client-secret reference).
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  // Entra-authenticated telemetry into App Insights with local auth disabled.
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // The operator (deployer) runs the runbook with their own sign-in: `csp-invoice-sync status` reads the files and
  // the ledger; `resync` writes the ledger entry and sends one message to invoice-sync. Nothing more: no delete of
  // invoice files, no receive or delete of queue messages.
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
}

// API version: learn.microsoft.com/azure/templates/microsoft.storage/allversions (2025-06-01)
resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

// API version: learn.microsoft.com/azure/templates/Microsoft.KeyVault/vaults (2025-05-01)
resource vault 'Microsoft.KeyVault/vaults@2025-05-01' existing = {
  name: keyVaultName
}

// API version: learn.microsoft.com/azure/templates/microsoft.insights/change-log/components (2020-02-02)
resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

var storageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

// API version: learn.microsoft.com/azure/templates/microsoft.authorization/roleassignments (2022-04-01, the newest stable)
resource storageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in storageRoles: {
    name: guid(storage.id, identityPrincipalId, roleId)
    scope: storage
    properties: {
      principalId: identityPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

// The vault holds only this app's secrets, so vault scope is the secret scope; a per-secret scope would need
// the secret to exist before the consent command has created it.
// API version: learn.microsoft.com/azure/templates/microsoft.authorization/roleassignments (2022-04-01)
resource vaultAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}

// API version: learn.microsoft.com/azure/templates/microsoft.authorization/roleassignments (2022-04-01)
resource telemetryAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

var deployerStorageRoles = empty(deployerPrincipalId)
  ? []
  : [
      roles.storageBlobDataReader
      roles.storageTableDataContributor
      roles.storageQueueDataMessageSender
    ]

// The operator checks the result (files, ledger) and queues a resync with their own sign-in.
// API version: learn.microsoft.com/azure/templates/microsoft.authorization/roleassignments (2022-04-01)
resource deployerStorageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in deployerStorageRoles: {
    name: guid(storage.id, deployerPrincipalId, roleId)
    scope: storage
    properties: {
      principalId: deployerPrincipalId
      principalType: deployerPrincipalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

// The deployer stores the refresh token once (consent command) and may set the client secret.
// API version: learn.microsoft.com/azure/templates/microsoft.authorization/roleassignments (2022-04-01)
resource deployerVaultAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}
