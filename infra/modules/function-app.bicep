// The Flex Consumption plan and the Function App (Node 22) running as the user-assigned identity, with every
// app setting the code reads (src/config.ts SETTING_NAMES; test/infra/settings-drift.test.ts checks both ways).

param planName string
param appName string
param location string
param tags object
param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerUrl string
param appInsightsConnectionString string
param keyVaultUri string
param keyVaultName string
param invoiceContainerName string
param ledgerTableName string

@allowed([
  'workload-identity'
  'client-secret'
])
@description('workload-identity: the app registration trusts the managed identity (no secret anywhere). client-secret: the secret is read from Key Vault through a reference.')
param authMode string = 'workload-identity'

param partnerTenantId string
param partnerClientId string
param partnerCenterApiUrl string
param graphApiUrl string
param authorityHost string
param refreshTokenSecretName string
param clientSecretName string
param appUserEnabled bool
param refreshTokenWarnDays int
param syncSchedule string
param httpTimeoutSeconds int
param httpMaxRetries int
param lineItemPageSize int
param exportTimeBudgetSeconds int
param leaseSeconds int
param stuckAfterMinutes int
param failedRetryDays int
param reconciliationTolerance string
param maxLineBytes int
param maxPageBytes int
param maxPdfBytes int
param v2ReconciliationFrom string
param v2UsageFrom string
param settleDeadlineHours int
param settleWindowDays int
param allowedLinkHosts string
param unbilledSchedule string
param unbilledCurrencies string

// Flex Consumption offers exactly these instance memory sizes (learn.microsoft.com/azure/azure-functions/flex-consumption-plan).
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Flex Consumption accepts a maximum instance count from 40 to 1000 (same article, instance limits).
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

// Platform settings read by the Functions host, not by src/config.ts (the drift test allow-lists them).
var platformSettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// Every value is configuration, never a secret: the only secret (client-secret mode) is a Key Vault reference.
var codeSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  INVOICE_CONTAINER: invoiceContainerName
  LEDGER_TABLE: ledgerTableName
  PARTNER_CENTER_API_URL: partnerCenterApiUrl
  GRAPH_API_URL: graphApiUrl
  AUTH_MODE: authMode
  PARTNER_TENANT_ID: partnerTenantId
  PARTNER_CLIENT_ID: partnerClientId
  MANAGED_IDENTITY_CLIENT_ID: identityClientId
  AUTHORITY_HOST: authorityHost
  KEY_VAULT_URL: keyVaultUri
  REFRESH_TOKEN_SECRET_NAME: refreshTokenSecretName
  APP_USER_ENABLED: string(appUserEnabled)
  REFRESH_TOKEN_WARN_DAYS: string(refreshTokenWarnDays)
  SYNC_SCHEDULE: syncSchedule
  HTTP_TIMEOUT_SECONDS: string(httpTimeoutSeconds)
  HTTP_MAX_RETRIES: string(httpMaxRetries)
  LINE_ITEM_PAGE_SIZE: string(lineItemPageSize)
  EXPORT_TIME_BUDGET_SECONDS: string(exportTimeBudgetSeconds)
  LEASE_SECONDS: string(leaseSeconds)
  STUCK_AFTER_MINUTES: string(stuckAfterMinutes)
  FAILED_RETRY_DAYS: string(failedRetryDays)
  RECONCILIATION_TOLERANCE: reconciliationTolerance
  MAX_LINE_BYTES: string(maxLineBytes)
  MAX_PAGE_BYTES: string(maxPageBytes)
  MAX_PDF_BYTES: string(maxPdfBytes)
  V2_RECONCILIATION_FROM: v2ReconciliationFrom
  V2_USAGE_FROM: v2UsageFrom
  SETTLE_DEADLINE_HOURS: string(settleDeadlineHours)
  SETTLE_WINDOW_DAYS: string(settleWindowDays)
  ALLOWED_LINK_HOSTS: allowedLinkHosts
  UNBILLED_SCHEDULE: unbilledSchedule
  UNBILLED_CURRENCIES: unbilledCurrencies
}

var secretSettings = authMode == 'client-secret'
  ? {
      PARTNER_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${clientSecretName})'
    }
  : {}

var appSettings = union(platformSettings, codeSettings, secretSettings)

// API version: learn.microsoft.com/azure/templates/microsoft.web/serverfarms (2024-11-01)
resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// API version: learn.microsoft.com/azure/templates/microsoft.web/sites (2024-11-01, has functionAppConfig for Flex Consumption)
resource site 'Microsoft.Web/sites@2024-11-01' = {
  name: appName
  location: location
  // azd finds the deploy target by this tag (azure.yaml service "api").
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the same identity that holds Key Vault Secrets Officer.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      // No ftpsState: Flex Consumption has no FTP(S) endpoint and rejects the property; publishing credentials
      // are turned off below.
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// API version: learn.microsoft.com/azure/templates/microsoft.web/sites/config-appsettings (same provider version as sites, 2024-11-01)
resource siteAppSettings 'Microsoft.Web/sites/config@2024-11-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// Basic-auth publishing (FTP/SCM) is off: deployments go through azd with Entra ID.
// API version: learn.microsoft.com/azure/templates/microsoft.web/sites (2024-11-01 provider version)
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

// API version: learn.microsoft.com/azure/templates/microsoft.web/sites (2024-11-01 provider version)
resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
