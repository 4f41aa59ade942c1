// Entry point for `azd up`: one resource group with the identity, monitoring, storage, Key Vault, Function App
// (Flex Consumption), role assignments, alerts and the status workbook, each in its own module under ./modules.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; names and tags derive from it.')
param environmentName string

@minLength(1)
@description('Azure region. It must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the user running azd: gets Key Vault Secrets Officer so the consent command can store the refresh token.')
param principalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Email address that receives every alert.')
param alertEmail string = ''

@description('Partner (CSP) tenant id.')
param partnerTenantId string

@description('Client (application) id of the partner\'s app registration.')
param partnerClientId string

@allowed([
  'workload-identity'
  'client-secret'
])
param authMode string = 'workload-identity'

@description('Version-level WORM retention on the invoices container in days; 0 = off (the default).')
@minValue(0)
param immutabilityDays int = 0

@description('Days to keep unbilled line-item snapshots (blobs under unbilled/ in the invoices container); a storage lifecycle rule deletes them after that.')
@minValue(1)
param unbilledRetentionDays int = 90

// App settings with the same defaults as src/config.ts.
param partnerCenterApiUrl string = 'https://api.partnercenter.microsoft.com'
param graphApiUrl string = 'https://graph.microsoft.com'
@description('Entra sign-in host; the default is this cloud\'s (https://login.microsoftonline.com/ in Azure public; the app ignores the trailing slash).')
param authorityHost string = environment().authentication.loginEndpoint
param invoiceContainerName string = 'invoices'
param ledgerTableName string = 'invoiceledger'
param refreshTokenSecretName string = 'partner-center-refresh-token'
param clientSecretName string = 'partner-client-secret'
param appUserEnabled bool = true

@minValue(1)
@maxValue(89)
param refreshTokenWarnDays int = 60

param syncSchedule string = '0 0 */6 * * *'
param httpTimeoutSeconds int = 180
param httpMaxRetries int = 6
param lineItemPageSize int = 2000
param exportTimeBudgetSeconds int = 1200
param leaseSeconds int = 60
param stuckAfterMinutes int = 120
param failedRetryDays int = 7

@description('Largest difference between the line items and the invoice total that still reconciles, in the invoice currency.')
param reconciliationTolerance string = '0.01'

param maxLineBytes int = 4194304
param maxPageBytes int = 268435456
param maxPdfBytes int = 536870912
param v2ReconciliationFrom string = '2024-02'
param v2UsageFrom string = '2022-09'
param settleDeadlineHours int = 72
param settleWindowDays int = 45
@description('Hosts a signed PDF link or a manifest blob may point at (src/http/link-policy.ts).')
param allowedLinkHosts string = '*.blob.${environment().suffixes.storage},api.partnercenter.microsoft.com'
@description('NCRONTAB schedule of the daily unbilled snapshots (UTC); empty = off.')
param unbilledSchedule string = '0 30 1 * * *'
@description('Currencies to snapshot unbilled data in, comma-separated (e.g. USD,EUR); empty = those of the invoices of the last 3 months.')
param unbilledCurrencies string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var appName = 'func-${resourceToken}'
// Queue names are fixed in src/config.ts QUEUES; the storage module adds each one's -poison twin.
var queueNames = [
  'invoice-sync'
  'lineitem-export'
]

// API version: docs.azure.cn/azure-resource-manager/bicep/create-resource-group (2025-04-01)
resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    invoiceContainerName: invoiceContainerName
    deploymentContainerName: 'app-package-${take(appName, 32)}'
    ledgerTableName: ledgerTableName
    queueNames: queueNames
    immutabilityDays: immutabilityDays
    unbilledRetentionDays: unbilledRetentionDays
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${take(resourceToken, 21)}'
    location: location
    tags: tags
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    planName: 'plan-${resourceToken}'
    appName: appName
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: keyVault.outputs.uri
    keyVaultName: keyVault.outputs.name
    invoiceContainerName: storage.outputs.invoiceContainerName
    ledgerTableName: storage.outputs.ledgerTableName
    authMode: authMode
    partnerTenantId: partnerTenantId
    partnerClientId: partnerClientId
    partnerCenterApiUrl: partnerCenterApiUrl
    graphApiUrl: graphApiUrl
    authorityHost: authorityHost
    refreshTokenSecretName: refreshTokenSecretName
    clientSecretName: clientSecretName
    appUserEnabled: appUserEnabled
    refreshTokenWarnDays: refreshTokenWarnDays
    syncSchedule: syncSchedule
    httpTimeoutSeconds: httpTimeoutSeconds
    httpMaxRetries: httpMaxRetries
    lineItemPageSize: lineItemPageSize
    exportTimeBudgetSeconds: exportTimeBudgetSeconds
    leaseSeconds: leaseSeconds
    stuckAfterMinutes: stuckAfterMinutes
    failedRetryDays: failedRetryDays
    reconciliationTolerance: reconciliationTolerance
    maxLineBytes: maxLineBytes
    maxPageBytes: maxPageBytes
    maxPdfBytes: maxPdfBytes
    v2ReconciliationFrom: v2ReconciliationFrom
    v2UsageFrom: v2UsageFrom
    settleDeadlineHours: settleDeadlineHours
    settleWindowDays: settleWindowDays
    allowedLinkHosts: allowedLinkHosts
    unbilledSchedule: unbilledSchedule
    unbilledCurrencies: unbilledCurrencies
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    namePrefix: appName
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmail: alertEmail
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

// azd writes these to .azure/<env>/.env; the consent command and docs/deploy.md read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URL string = keyVault.outputs.uri
output REFRESH_TOKEN_SECRET_NAME string = refreshTokenSecretName
output PARTNER_TENANT_ID string = partnerTenantId
output PARTNER_CLIENT_ID string = partnerClientId
output AUTHORITY_HOST string = authorityHost
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
// The federated credential on the app registration: issuer (this cloud's Entra endpoint, which ends in a slash, for
// the identity's tenant) + subject (the identity's object id).
output FEDERATED_CREDENTIAL_ISSUER string = '${environment().authentication.loginEndpoint}${identity.outputs.tenantId}/v2.0'
output FEDERATED_CREDENTIAL_SUBJECT string = identity.outputs.principalId
output ALERT_ACTION_GROUP_ID string = alerts.outputs.actionGroupId
output STATUS_WORKBOOK_ID string = workbook.outputs.id
