// Security settings asserted on what ARM would deploy (the snapshot of the compiled template): storage (no shared
// keys, TLS 1.2, no public blobs, versioning, soft delete, WORM off by default, the unbilled lifecycle rule), Key
// Vault (RBAC, purge protection, no secrets), App Insights (local auth off, no ingestion sampling), the Flex
// Consumption app (UAMI, Node 22, identity-authenticated deployment) and exactly the roles granted to whom.
import { describe, expect, it } from 'vitest';
import { type ArmResource, armTemplate, oneOf, resourcesOf, roleGuid, snapshot } from './arm.js';

const ROLES = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a',
} as const;
const OWNER = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635';
const CONTRIBUTOR = 'b24988ac-6180-42a0-ab88-20f7382dd24c';

describe('storage account', () => {
  const account = oneOf('Microsoft.Storage/storageAccounts');
  const blob = oneOf('Microsoft.Storage/storageAccounts/blobServices');

  it('turns shared-key access off, requires TLS 1.2 and HTTPS, and allows no public blob access', () => {
    expect(account.apiVersion).toBe('2025-06-01');
    expect(account.properties).toMatchObject({
      allowSharedKeyAccess: false,
      minimumTlsVersion: 'TLS1_2',
      allowBlobPublicAccess: false,
      supportsHttpsTrafficOnly: true,
      defaultToOAuthAuthentication: true,
      allowCrossTenantReplication: false,
    });
  });

  it('keeps blob versions and 30 days of soft-deleted blobs and containers', () => {
    expect(blob.properties).toMatchObject({
      isVersioningEnabled: true,
      deleteRetentionPolicy: { enabled: true, days: 30 },
      containerDeleteRetentionPolicy: { enabled: true, days: 30 },
    });
  });

  it('has no immutability policy by default, and a version-level one when IMMUTABILITY_DAYS is set', () => {
    const type = 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies';
    expect(resourcesOf(type)).toEqual([]);
    expect(account.properties.immutableStorageWithVersioning).toEqual({ enabled: false });
    const policy = oneOf(type, 'options');
    expect(policy.name).toMatch(/\/default\/invoices\/default$/);
    expect(policy.properties).toEqual({
      immutabilityPeriodSinceCreationInDays: 2555,
      allowProtectedAppendWrites: false,
    });
    expect(oneOf('Microsoft.Storage/storageAccounts', 'options').properties.immutableStorageWithVersioning).toEqual({
      enabled: true,
    });
  });

  it('creates the invoices and deployment containers private, both queues with poison twins, and the ledger', () => {
    const containers = resourcesOf('Microsoft.Storage/storageAccounts/blobServices/containers');
    expect(containers.map((c) => c.name.split('/').at(-1)).sort()).toEqual(
      [`app-package-func-${tokenOf(account)}`, 'invoices'].sort(),
    );
    for (const c of containers) expect(c.properties.publicAccess).toBe('None');
    const queues = resourcesOf('Microsoft.Storage/storageAccounts/queueServices/queues').map((q) =>
      q.name.split('/').at(-1),
    );
    expect(queues.sort()).toEqual(['invoice-sync', 'invoice-sync-poison', 'lineitem-export', 'lineitem-export-poison']);
    expect(oneOf('Microsoft.Storage/storageAccounts/tableServices/tables').name).toMatch(/\/invoiceledger$/);
  });

  it('deletes unbilled snapshots (and only those) after UNBILLED_RETENTION_DAYS, 90 by default', () => {
    const rules = (policy: ArmResource) => policy.properties.policy.rules as { definition: unknown; name: string }[];
    const lifecycle = oneOf('Microsoft.Storage/storageAccounts/managementPolicies');
    expect(lifecycle.name).toMatch(/\/default$/);
    expect(rules(lifecycle)).toEqual([
      {
        name: 'delete-unbilled',
        enabled: true,
        type: 'Lifecycle',
        definition: {
          filters: { blobTypes: ['blockBlob'], prefixMatch: ['invoices/unbilled/'] },
          actions: {
            baseBlob: { delete: { daysAfterModificationGreaterThan: 90 } },
            version: { delete: { daysAfterCreationGreaterThan: 90 } },
            snapshot: { delete: { daysAfterCreationGreaterThan: 90 } },
          },
        },
      },
    ]);
    const custom = rules(oneOf('Microsoft.Storage/storageAccounts/managementPolicies', 'options'));
    expect(JSON.stringify(custom[0]?.definition)).toContain('"daysAfterModificationGreaterThan":30');
    expect(armTemplate().parameters.unbilledRetentionDays).toMatchObject({
      type: 'int',
      defaultValue: 90,
      minValue: 1,
    });
  });
});

/** The resource token in every name (st<token>, func-<token>, ...). */
function tokenOf(account: ArmResource): string {
  return account.name.replace(/^st/, '');
}

describe('Key Vault', () => {
  const vault = oneOf('Microsoft.KeyVault/vaults');

  it('uses RBAC (no access policies), soft delete and purge protection', () => {
    expect(vault.properties).toMatchObject({
      enableRbacAuthorization: true,
      enablePurgeProtection: true,
      enableSoftDelete: true,
      softDeleteRetentionInDays: 90,
    });
    expect(vault.properties.accessPolicies).toBeUndefined();
  });

  it('has no secret resource in either parameter set: values never pass through a template', () => {
    for (const set of ['defaults', 'options'] as const) {
      expect(snapshot(set).predictedResources.filter((r) => /secrets$/i.test(r.type))).toEqual([]);
    }
  });

  it('takes no secret as a parameter and outputs none', () => {
    const { parameters, outputs } = armTemplate();
    for (const [name, p] of Object.entries(parameters)) {
      expect({ name, type: p.type }).not.toEqual({ name, type: 'securestring' });
      expect(name).not.toMatch(/secret(?!Name)|password|token(?!SecretName|WarnDays)/i);
    }
    for (const name of Object.keys(outputs))
      expect(name).not.toMatch(/SECRET(?!_NAME)|PASSWORD|KEY$|CONNECTION_STRING/);
  });
});

describe('monitoring', () => {
  const ai = oneOf('Microsoft.Insights/components');

  it('disables local auth on App Insights, sends it to Log Analytics and samples nothing at ingestion', () => {
    expect(ai.properties).toMatchObject({ DisableLocalAuth: true, IngestionMode: 'LogAnalytics' });
    expect(ai.properties.WorkspaceResourceId).toBe(oneOf('Microsoft.OperationalInsights/workspaces').id);
    // Ingestion sampling would drop events the app sends unsampled; absent means 100 %.
    expect(ai.properties.SamplingPercentage ?? 100).toBe(100);
    expect(oneOf('Microsoft.OperationalInsights/workspaces').properties.features).toEqual({ disableLocalAuth: true });
  });

  it('authenticates telemetry with the managed identity', () => {
    const settings = oneOf('Microsoft.Web/sites/config').properties;
    expect(settings.APPLICATIONINSIGHTS_AUTHENTICATION_STRING).toMatch(
      /^\[format\('ClientId=\{0\};Authorization=AAD', reference\('[^']+\/userAssignedIdentities\/id-[a-z0-9]+', '2023-01-31'\)\.clientId\)\]$/,
    );
  });
});

describe('Function App', () => {
  const site = oneOf('Microsoft.Web/sites');
  const plan = oneOf('Microsoft.Web/serverfarms');
  const identity = oneOf('Microsoft.ManagedIdentity/userAssignedIdentities');

  it('runs on Flex Consumption (FC1, Linux), Node 22, HTTPS only, TLS 1.2, no always-on and no FTPS setting', () => {
    expect(plan.sku).toEqual({ name: 'FC1', tier: 'FlexConsumption' });
    expect(plan.properties).toEqual({ reserved: true });
    expect(site.kind).toBe('functionapp,linux');
    expect(site.properties.functionAppConfig.runtime).toEqual({ name: 'node', version: '22' });
    expect(site.properties.httpsOnly).toBe(true);
    expect(site.properties.siteConfig).toEqual({ alwaysOn: false, minTlsVersion: '1.2', http20Enabled: true });
  });

  it('scales within what Flex Consumption accepts', () => {
    expect(site.properties.functionAppConfig.scaleAndConcurrency).toEqual({
      instanceMemoryMB: 2048,
      maximumInstanceCount: 40,
    });
    const nested = JSON.stringify(armTemplate().resources);
    expect(nested).toContain('"instanceMemoryMB":{"type":"int","defaultValue":2048,"allowedValues":[512,2048,4096]}');
    expect(nested).toContain('"maximumInstanceCount":{"type":"int","defaultValue":40,"minValue":40,"maxValue":1000}');
    // Instance memory is a deployment choice (INSTANCE_MEMORY_MB): 512 supported, 2048 the default, passed through.
    expect(armTemplate().parameters.instanceMemoryMB).toMatchObject({
      type: 'int',
      defaultValue: 2048,
      allowedValues: [512, 2048, 4096],
    });
    expect(nested).toContain('"instanceMemoryMB":{"value":"[parameters(\'instanceMemoryMB\')]"}');
  });

  it('runs as the user-assigned identity, which also deploys the package and resolves Key Vault references', () => {
    expect(site.identity).toEqual({ type: 'UserAssigned', userAssignedIdentities: { [identity.id]: {} } });
    expect(site.properties.keyVaultReferenceIdentity).toBe(identity.id);
    expect(site.properties.functionAppConfig.deployment.storage).toMatchObject({
      type: 'blobContainer',
      authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identity.id },
    });
    expect(site.tags?.['azd-service-name']).toBe('api');
  });

  it('turns basic-auth publishing off', () => {
    const policies = resourcesOf('Microsoft.Web/sites/basicPublishingCredentialsPolicies');
    expect(policies.map((p) => [p.name.split('/').at(-1), p.properties.allow]).sort()).toEqual([
      ['ftp', false],
      ['scm', false],
    ]);
  });
});

describe('role assignments', () => {
  const assignments = resourcesOf('Microsoft.Authorization/roleAssignments');
  const account = oneOf('Microsoft.Storage/storageAccounts');
  const vault = oneOf('Microsoft.KeyVault/vaults');
  const ai = oneOf('Microsoft.Insights/components');
  const identity = oneOf('Microsoft.ManagedIdentity/userAssignedIdentities');
  const operator = '00000000-0000-0000-0000-000000000003';

  /** The resource a role assignment is scoped to, from its id as ARM computes it. */
  const scopeOf = (a: ArmResource) =>
    /^\[extensionResourceId\('([^']+)'/.exec(a.id)?.[1] ??
    a.id.replace(/\/providers\/Microsoft\.Authorization\/roleAssignments\/.*$/, '');
  const grants = (principal: (a: ArmResource) => boolean) =>
    assignments
      .filter(principal)
      .map((a) => [scopeOf(a), roleGuid(a.properties.roleDefinitionId), a.properties.principalType])
      .sort();
  const isApp = (a: ArmResource) =>
    String(a.properties.principalId).includes(`/userAssignedIdentities/${identity.name}'`);
  const isOperator = (a: ArmResource) => a.properties.principalId === operator;

  it('grants the app exactly what the code and the host need, each on one resource', () => {
    expect(grants(isApp)).toEqual(
      [
        [account.id, ROLES.storageBlobDataOwner, 'ServicePrincipal'],
        [account.id, ROLES.storageQueueDataContributor, 'ServicePrincipal'],
        [account.id, ROLES.storageTableDataContributor, 'ServicePrincipal'],
        [vault.id, ROLES.keyVaultSecretsOfficer, 'ServicePrincipal'],
        [ai.id, ROLES.monitoringMetricsPublisher, 'ServicePrincipal'],
      ].sort(),
    );
  });

  it('lets the operator run the runbook: status (blob and table read), resync (table write, queue send), consent', () => {
    expect(grants(isOperator)).toEqual(
      [
        [account.id, ROLES.storageBlobDataReader, 'User'],
        [account.id, ROLES.storageTableDataContributor, 'User'],
        [account.id, ROLES.storageQueueDataMessageSender, 'User'],
        [vault.id, ROLES.keyVaultSecretsOfficer, 'User'],
      ].sort(),
    );
  });

  it('grants nothing else: no Owner or Contributor, nothing subscription-wide, no operator grant without AZURE_PRINCIPAL_ID', () => {
    expect(assignments.length).toBe(9);
    for (const set of ['defaults', 'options'] as const) {
      for (const a of resourcesOf('Microsoft.Authorization/roleAssignments', set)) {
        expect([OWNER, CONTRIBUTOR]).not.toContain(roleGuid(a.properties.roleDefinitionId));
        expect(scopeOf(a)).toMatch(/\/resourceGroups\/rg-[^/]+\/providers\//);
      }
    }
    expect(resourcesOf('Microsoft.Authorization/roleAssignments', 'options').length).toBe(5);
  });
});
