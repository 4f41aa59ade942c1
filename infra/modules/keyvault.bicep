// The Key Vault (RBAC mode, purge protection) that holds the App+User refresh token and, only in
// client-secret mode, the app registration's secret. Bicep creates no secret: values never pass through a
// template or a parameter file. The consent command writes the refresh token; the app rotates it.

param name string
param location string
param tags object

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

// API version: learn.microsoft.com/azure/templates/Microsoft.KeyVault/vaults (2025-05-01, the newest stable)
resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
