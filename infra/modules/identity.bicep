// The user-assigned managed identity the Function App runs as: storage, Key Vault, telemetry and the
// federated credential on the partner's app registration all trust this one identity.

param name string
param location string
param tags object

// API version: learn.microsoft.com/azure/templates/microsoft.managedidentity/userassignedidentities (2023-01-31, latest stable; 2025-01-31-preview is preview)
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
output tenantId string = identity.properties.tenantId
