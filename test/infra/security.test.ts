// Security settings asserted on the parse tree: storage (no shared keys, TLS 1.2, no public blobs, versioning,
// soft delete, WORM off by default), Key Vault (RBAC, purge protection), App Insights (local auth off), the
// Flex Consumption app (UAMI, Node 22, identity-authenticated deployment) and the exact roles granted.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  getProperty,
  INFRA_DIR,
  listBicepFiles,
  paramDefault,
  type ResourceDecl,
  readTree,
  resources,
  stringValue,
  varValue,
} from './bicep.js';

function resourceOf(file: string, typePrefix: string): ResourceDecl {
  const found = resources(readTree(file)).filter((r) => r.type.startsWith(`${typePrefix}@`) && !r.existing);
  if (found.length !== 1) throw new Error(`${file}: expected one ${typePrefix}, found ${found.length}`);
  return found[0]!;
}

const text = (r: ResourceDecl, path: string) => getProperty(r.body, path)?.text;

describe('storage account', () => {
  const account = resourceOf('modules/storage.bicep', 'Microsoft.Storage/storageAccounts');
  const blob = resourceOf('modules/storage.bicep', 'Microsoft.Storage/storageAccounts/blobServices');

  it('turns shared-key access off, requires TLS 1.2 and HTTPS, and allows no public blob access', () => {
    expect(text(account, 'properties.allowSharedKeyAccess')).toBe('false');
    expect(text(account, 'properties.minimumTlsVersion')).toBe("'TLS1_2'");
    expect(text(account, 'properties.allowBlobPublicAccess')).toBe('false');
    expect(text(account, 'properties.supportsHttpsTrafficOnly')).toBe('true');
    expect(text(account, 'properties.defaultToOAuthAuthentication')).toBe('true');
  });

  it('keeps blob versions and soft-deleted blobs and containers', () => {
    expect(text(blob, 'properties.isVersioningEnabled')).toBe('true');
    expect(text(blob, 'properties.deleteRetentionPolicy.enabled')).toBe('true');
    expect(text(blob, 'properties.containerDeleteRetentionPolicy.enabled')).toBe('true');
    expect(paramDefault(readTree('modules/storage.bicep'), 'softDeleteDays')?.text).toBe('30');
  });

  it('has an immutability policy on the invoices container that is off by default', () => {
    const policy = resourceOf(
      'modules/storage.bicep',
      'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies',
    );
    expect(policy.conditional).toBe(true);
    expect(policy.node.text).toMatch(/= if \(immutabilityEnabled\)/);
    expect(getProperty(policy.body, 'parent')?.text).toBe('invoiceContainer');
    expect(varValue(readTree('modules/storage.bicep'), 'immutabilityEnabled')?.text).toBe('immutabilityDays > 0');
    expect(paramDefault(readTree('modules/storage.bicep'), 'immutabilityDays')?.text).toBe('0');
    expect(paramDefault(readTree('main.bicep'), 'immutabilityDays')?.text).toBe('0');
    const parameters = JSON.parse(readFileSync(join(INFRA_DIR, 'main.parameters.json'), 'utf8'));
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Bicep/azd placeholder, not a JS template
    expect(parameters.parameters.immutabilityDays.value).toBe('${IMMUTABILITY_DAYS=0}');
  });

  it('creates the invoices and deployment containers private, both queues with poison twins, and the ledger', () => {
    const storage = readTree('modules/storage.bicep');
    const containers = resources(storage).filter((r) =>
      r.type.startsWith('Microsoft.Storage/storageAccounts/blobServices/containers@'),
    );
    expect(containers.map((c) => c.name).sort()).toEqual(['deploymentContainer', 'invoiceContainer']);
    for (const c of containers) expect(text(c, 'properties.publicAccess')).toBe("'None'");
    const queues = resourceOf('modules/storage.bicep', 'Microsoft.Storage/storageAccounts/queueServices/queues');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Bicep/azd placeholder, not a JS template
    expect(queues.node.text).toContain("map(queueNames, q => [q, '${q}-poison'])");
    resourceOf('modules/storage.bicep', 'Microsoft.Storage/storageAccounts/tableServices/tables');
  });
});

describe('Key Vault', () => {
  const vault = resourceOf('modules/keyvault.bicep', 'Microsoft.KeyVault/vaults');

  it('uses RBAC (no access policies), soft delete and purge protection', () => {
    expect(text(vault, 'properties.enableRbacAuthorization')).toBe('true');
    expect(text(vault, 'properties.enablePurgeProtection')).toBe('true');
    expect(text(vault, 'properties.enableSoftDelete')).toBe('true');
    expect(getProperty(vault.body, 'properties.accessPolicies')).toBeUndefined();
  });

  it('has no secret resource: values never pass through a template', () => {
    for (const file of listBicepFiles()) {
      expect(readFileSync(file, 'utf8')).not.toMatch(/Microsoft\.KeyVault\/vaults\/secrets@/);
    }
  });
});

describe('monitoring', () => {
  it('disables local auth on App Insights and sends it to Log Analytics', () => {
    const ai = resourceOf('modules/monitoring.bicep', 'Microsoft.Insights/components');
    expect(text(ai, 'properties.DisableLocalAuth')).toBe('true');
    expect(text(ai, 'properties.WorkspaceResourceId')).toBe('workspace.id');
  });

  it('authenticates telemetry with the managed identity', () => {
    const settings = varValue(readTree('modules/function-app.bicep'), 'platformSettings');
    expect(getProperty(settings, 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING')?.text).toBe(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Bicep/azd placeholder, not a JS template
      "'ClientId=${identityClientId};Authorization=AAD'",
    );
  });

  it('alerts on poison messages, failed/unsettled invoices, refresh-token expiry and function failures', () => {
    const alerts = readTree('modules/alerts.bicep');
    const rules = varValue(alerts, 'logRules');
    const names = rules?.namedChildren.map((r) => stringValue(getProperty(r, 'name')));
    expect(names).toEqual(['poison-queue', 'invoice-failed-or-unsettled', 'refresh-token-expiry']);
    const logAlerts = resourceOf('modules/alerts.bicep', 'Microsoft.Insights/scheduledQueryRules');
    expect(logAlerts.node.text).toContain('actionGroup.id');
    const metric = resourceOf('modules/alerts.bicep', 'Microsoft.Insights/metricAlerts');
    expect(metric.node.text).toContain("metricName: 'requests/failed'");
    const group = resourceOf('modules/alerts.bicep', 'Microsoft.Insights/actionGroups');
    expect(getProperty(group.body, 'properties.emailReceivers')?.text).toContain('alertEmail');
  });
});

describe('Function App', () => {
  const site = resourceOf('modules/function-app.bicep', 'Microsoft.Web/sites');
  const plan = resourceOf('modules/function-app.bicep', 'Microsoft.Web/serverfarms');

  it('runs on Flex Consumption (FC1), Node 22, HTTPS only', () => {
    expect(text(plan, 'sku.name')).toBe("'FC1'");
    expect(text(plan, 'sku.tier')).toBe("'FlexConsumption'");
    expect(text(site, 'properties.functionAppConfig.runtime.name')).toBe("'node'");
    expect(text(site, 'properties.functionAppConfig.runtime.version')).toBe("'22'");
    expect(text(site, 'properties.httpsOnly')).toBe('true');
    expect(text(site, 'properties.siteConfig.minTlsVersion')).toBe("'1.2'");
  });

  it('runs as the user-assigned identity, which also deploys the package and resolves Key Vault references', () => {
    expect(text(site, 'identity.type')).toBe("'UserAssigned'");
    expect(text(site, 'properties.keyVaultReferenceIdentity')).toBe('identityId');
    expect(text(site, 'properties.functionAppConfig.deployment.storage.authentication.type')).toBe(
      "'UserAssignedIdentity'",
    );
  });

  it('turns basic-auth publishing off', () => {
    const policies = resources(readTree('modules/function-app.bicep')).filter((r) =>
      r.type.startsWith('Microsoft.Web/sites/basicPublishingCredentialsPolicies@'),
    );
    expect(policies.map((p) => [stringValue(getProperty(p.body, 'name')), text(p, 'properties.allow')])).toEqual([
      ['ftp', 'false'],
      ['scm', 'false'],
    ]);
  });
});

describe('role assignments', () => {
  const rbac = readTree('modules/rbac.bicep');
  const roles = varValue(rbac, 'roles');
  const roleIds = Object.fromEntries(
    (roles?.namedChildren ?? [])
      .filter((n) => n.type === 'object_property')
      .map((p) => [p.namedChildren[0]!.text, stringValue(p.namedChildren[1])]),
  );

  it('grants exactly the least-privilege built-in roles the code and host need', () => {
    expect(roleIds).toEqual({
      storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
      storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
      storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
      keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
      monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
      storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
      storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6',
    });
  });

  it('uses every role it defines, each scoped to one resource, never subscription-wide Owner/Contributor', () => {
    const source = readFileSync(join(INFRA_DIR, 'modules/rbac.bicep'), 'utf8');
    for (const key of Object.keys(roleIds)) expect(source).toContain(`roles.${key}`);
    const assignments = resources(rbac).filter((r) => r.type.startsWith('Microsoft.Authorization/roleAssignments@'));
    expect(assignments.length).toBe(5);
    for (const a of assignments) expect(['storage', 'vault', 'appInsights']).toContain(text(a, 'scope'));
    for (const file of listBicepFiles()) {
      const all = readFileSync(file, 'utf8');
      expect(all).not.toContain('8e3af657-a8ff-443c-a75c-2fe8c4bcb635'); // Owner
      expect(all).not.toContain('b24988ac-6180-42a0-ab88-20f7382dd24c'); // Contributor
    }
  });

  it('gives the operator read-only data roles plus secret write, and the app no reader-only role', () => {
    const source = readFileSync(join(INFRA_DIR, 'modules/rbac.bicep'), 'utf8');
    const deployerBlock = source.slice(source.indexOf('var deployerStorageRoles'));
    expect(deployerBlock).toContain('roles.storageBlobDataReader');
    expect(deployerBlock).toContain('roles.storageTableDataReader');
    expect(deployerBlock).not.toMatch(/roles\.storage\w+(Owner|Contributor)/);
    const appStorage = varValue(rbac, 'storageRoles')?.text ?? '';
    expect(appStorage).not.toContain('Reader');
  });
});

describe('alert queries match what the code logs', () => {
  const rules = varValue(readTree('modules/alerts.bicep'), 'logRules');
  const queryOf = (name: string) =>
    rules?.namedChildren.find((r) => stringValue(getProperty(r, 'name')) === name)?.text ?? '';
  const source = (path: string) => readFileSync(join(INFRA_DIR, '..', path), 'utf8');

  it('poison: the handlers log "goes to poison" on the last attempt', () => {
    expect(queryOf('poison-queue')).toContain('message has "goes to poison"');
    expect(source('src/app/handlers.ts')).toContain('message goes to poison');
  });

  it('failed/unsettled: events are logged as "event:<Name> {json}" with a state field', () => {
    const query = queryOf('invoice-failed-or-unsettled');
    expect(query).toContain('"event:InvoiceStateChanged"');
    expect(query).toContain('"event:PartUnsettled"');
    expect(query).toContain(`'"state":"failed"'`);
    // In Azure every line goes through the invocation (src/app/invocation-logger.ts invocationLogger) in this format.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a template literal
    expect(source('src/app/invocation-logger.ts')).toContain('formatLine(`event:${name}`, p)');
    const handlers = source('src/app/handlers.ts');
    expect(handlers).toContain("deps.log.event('InvoiceStateChanged', {");
    expect(handlers).toContain("state: 'failed',");
    expect(source('src/sync/export/v2-source.ts')).toContain("log.event('PartUnsettled'");
  });

  it('refresh token: the App+User credential warns and fails with "refresh token" in the message', () => {
    expect(queryOf('refresh-token-expiry')).toContain('message has "refresh token"');
    expect(queryOf('refresh-token-expiry')).toContain('severityLevel >= 2');
    expect(source('src/auth/refresh-token.ts')).toMatch(/warn\(\s*`The App\+User refresh token is/);
    expect(source('src/auth/errors.ts')).toContain('The App+User refresh token must be renewed');
  });
});
