// Settings drift: every setting src/config.ts reads is set in the Bicep app settings, and the Bicep sets
// nothing the code does not read, except the explicit allow-lists below. Checked on the parse tree.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QUEUES, SETTING_NAMES, settingsSchema } from '../../src/config.js';
import {
  declarations,
  declName,
  getProperty,
  INFRA_DIR,
  paramDefault,
  parseBicep,
  propertyKey,
  readTree,
  resources,
  type SyntaxNode,
  stringValue,
  varValue,
  walk,
} from './bicep.js';

/**
 * Read by the code for local runs only; deliberately never set in Azure.
 * Each entry says why, so removing a reason means setting it in infra/modules/function-app.bicep.
 */
const LOCAL_ONLY = {
  // Azure uses the identity-based AzureWebJobsStorage__* form; a connection string would need shared keys.
  AzureWebJobsStorage: 'connection string (Azurite); shared-key access is off in Azure',
  // static-token mode: tokens pasted from elsewhere for a local run; they expire within the hour.
  PARTNER_CENTER_ACCESS_TOKEN: 'static-token mode, local runs only',
  GRAPH_ACCESS_TOKEN: 'static-token mode, local runs only',
  // A file path on the developer machine; Azure uses workload identity (or a Key Vault secret reference).
  PARTNER_CLIENT_CERTIFICATE_PATH: 'certificate mode reads a local file',
  // Plain http to loopback exists for the simulator only.
  ALLOW_INSECURE_LOOPBACK: 'simulator only',
  // How many messages the local runner handles at once; in Azure host.json batchSize governs concurrency.
  LOCAL_CONCURRENCY: 'local runner (csp-invoice-sync run) only',
} as const;

/** Set in Azure for the Functions host / platform, not read by src/config.ts. */
const PLATFORM_ONLY = ['APPLICATIONINSIGHTS_CONNECTION_STRING', 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'] as const;

interface SettingsComparison {
  /** Read by the code, not set in the Bicep, not allow-listed as local-only. */
  missingInBicep: string[];
  /** Set in the Bicep, not read by the code, not allow-listed as platform-only. */
  notReadByCode: string[];
  /** Allow-listed as local-only but set in the Bicep anyway. */
  localOnlySetInBicep: string[];
}

function compareSettings(input: {
  codeNames: readonly string[];
  bicepNames: readonly string[];
  localOnly: readonly string[];
  platformOnly: readonly string[];
}): SettingsComparison {
  const bicep = new Set(input.bicepNames);
  const code = new Set(input.codeNames);
  return {
    missingInBicep: input.codeNames.filter((n) => !bicep.has(n) && !input.localOnly.includes(n)).sort(),
    notReadByCode: input.bicepNames.filter((n) => !code.has(n) && !input.platformOnly.includes(n)).sort(),
    localOnlySetInBicep: input.localOnly.filter((n) => bicep.has(n)).sort(),
  };
}

/** Keys of every object literal reachable from `var <name>`, following references to other vars in the file. */
function settingKeys(root: SyntaxNode, name: string, seen = new Set<string>()): string[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const value = varValue(root, name);
  if (!value) throw new Error(`var ${name} not found`);
  const varNames = new Set(declarations(root, 'variable_declaration').map(declName));
  const keys: string[] = [];
  walk(value, (n) => {
    if (n.type === 'object_property' && n.parent?.type === 'object') keys.push(propertyKey(n));
    if (n.type === 'identifier' && varNames.has(n.text) && n.parent?.type !== 'object_property') {
      keys.push(...settingKeys(root, n.text, seen));
    }
  });
  return keys;
}

const appModule = readTree('modules/function-app.bicep');

function deployedSettingsVar(): string {
  const config = resources(appModule).find(
    (r) =>
      r.type.startsWith('Microsoft.Web/sites/config@') && stringValue(getProperty(r.body, 'name')) === 'appsettings',
  );
  if (!config) throw new Error('no Microsoft.Web/sites/config appsettings resource');
  const properties = getProperty(config.body, 'properties');
  if (properties?.type !== 'identifier') throw new Error('appsettings properties must be a single var');
  return properties.text;
}

const bicepNames = settingKeys(appModule, deployedSettingsVar());

describe('app settings drift (src/config.ts SETTING_NAMES vs infra/modules/function-app.bicep)', () => {
  it('sets app settings in one place only (no siteConfig.appSettings on the site)', () => {
    const sites = resources(appModule).filter((r) => r.type.startsWith('Microsoft.Web/sites@'));
    expect(sites.length).toBe(1);
    expect(getProperty(sites[0]!.body, 'properties.siteConfig')).toBeDefined();
    expect(getProperty(sites[0]!.body, 'properties.siteConfig.appSettings')).toBeUndefined();
    const configs = resources(appModule).filter((r) => r.type.startsWith('Microsoft.Web/sites/config@'));
    expect(configs.length).toBe(1);
  });

  it('finds the deployed settings through the sites/config appsettings resource', () => {
    expect(deployedSettingsVar()).toBe('appSettings');
    expect(bicepNames.length).toBeGreaterThan(20);
    expect(new Set(bicepNames).size).toBe(bicepNames.length);
  });

  it('sets every setting the code reads and none it does not', () => {
    const result = compareSettings({
      codeNames: SETTING_NAMES,
      bicepNames,
      localOnly: Object.keys(LOCAL_ONLY),
      platformOnly: PLATFORM_ONLY,
    });
    expect(result).toEqual({ missingInBicep: [], notReadByCode: [], localOnlySetInBicep: [] });
  });

  it('keeps the allow-list honest: every local-only name is a real setting', () => {
    for (const name of Object.keys(LOCAL_ONLY)) expect(SETTING_NAMES).toContain(name);
  });

  it('fails when a setting is read but not set', () => {
    const result = compareSettings({
      codeNames: [...SETTING_NAMES, 'NEW_SETTING_NOBODY_DEPLOYS'],
      bicepNames,
      localOnly: Object.keys(LOCAL_ONLY),
      platformOnly: PLATFORM_ONLY,
    });
    expect(result.missingInBicep).toEqual(['NEW_SETTING_NOBODY_DEPLOYS']);
  });

  it('fails when a setting is set but not read', () => {
    const result = compareSettings({
      codeNames: SETTING_NAMES.filter((n) => n !== 'SETTLE_WINDOW_DAYS'),
      bicepNames,
      localOnly: Object.keys(LOCAL_ONLY),
      platformOnly: PLATFORM_ONLY,
    });
    expect(result.notReadByCode).toEqual(['SETTLE_WINDOW_DAYS']);
  });

  it('fails when a local-only setting is deployed', () => {
    const result = compareSettings({
      codeNames: SETTING_NAMES,
      bicepNames: [...bicepNames, 'PARTNER_CENTER_ACCESS_TOKEN'],
      localOnly: Object.keys(LOCAL_ONLY),
      platformOnly: PLATFORM_ONLY,
    });
    expect(result.localOnlySetInBicep).toEqual(['PARTNER_CENTER_ACCESS_TOKEN']);
  });

  it('parses keys from the real tree: removing one from the source is detected', () => {
    const source = readFileSync(join(INFRA_DIR, 'modules/function-app.bicep'), 'utf8');
    const edited = source.replace(/^\s*SETTLE_WINDOW_DAYS: .*$/m, '');
    expect(edited).not.toBe(source);
    const keys = settingKeys(parseBicep(edited).rootNode, 'appSettings');
    const result = compareSettings({
      codeNames: SETTING_NAMES,
      bicepNames: keys,
      localOnly: Object.keys(LOCAL_ONLY),
      platformOnly: PLATFORM_ONLY,
    });
    expect(result.missingInBicep).toEqual(['SETTLE_WINDOW_DAYS']);
  });
});

describe('deployed values', () => {
  const codeSettings = varValue(appModule, 'codeSettings');

  it('defaults AUTH_MODE to workload-identity in Azure (no secret anywhere)', () => {
    expect(getProperty(codeSettings, 'AUTH_MODE')?.text).toBe('authMode');
    expect(paramDefault(appModule, 'authMode')?.text).toBe("'workload-identity'");
    expect(paramDefault(readTree('main.bicep'), 'authMode')?.text).toBe("'workload-identity'");
  });

  it('uses the identity-based host storage form', () => {
    expect(stringValue(getProperty(codeSettings, 'AzureWebJobsStorage__credential'))).toBe('managedidentity');
    expect(getProperty(codeSettings, 'AzureWebJobsStorage__clientId')?.text).toBe('identityClientId');
  });

  it('sets the client secret only as a Key Vault reference, never a value', () => {
    const secret = getProperty(varValue(appModule, 'secretSettings')?.namedChildren[1], 'PARTNER_CLIENT_SECRET');
    expect(secret?.type).toBe('string');
    expect(secret?.text).toMatch(
      /^'@Microsoft\.KeyVault\(VaultName=\$\{keyVaultName\};SecretName=\$\{clientSecretName\}\)'$/,
    );
    // No param could carry a secret value into the template.
    for (const file of ['main.bicep', 'modules/function-app.bicep']) {
      const names = declarations(readTree(file), 'parameter_declaration').map(declName);
      expect(names.filter((n) => /secret(?!Name)|password|token(?!SecretName|WarnDays)/i.test(n))).toEqual([]);
    }
  });

  it('keeps the Bicep defaults equal to the src/config.ts defaults', () => {
    const defaults = settingsSchema.parse({});
    const main = readTree('main.bicep');
    const pairs: [string, keyof typeof defaults][] = [
      ['invoiceContainerName', 'INVOICE_CONTAINER'],
      ['ledgerTableName', 'LEDGER_TABLE'],
      ['partnerCenterApiUrl', 'PARTNER_CENTER_API_URL'],
      ['graphApiUrl', 'GRAPH_API_URL'],
      ['authorityHost', 'AUTHORITY_HOST'],
      ['refreshTokenSecretName', 'REFRESH_TOKEN_SECRET_NAME'],
      ['appUserEnabled', 'APP_USER_ENABLED'],
      ['refreshTokenWarnDays', 'REFRESH_TOKEN_WARN_DAYS'],
      ['syncSchedule', 'SYNC_SCHEDULE'],
      ['httpTimeoutSeconds', 'HTTP_TIMEOUT_SECONDS'],
      ['httpMaxRetries', 'HTTP_MAX_RETRIES'],
      ['lineItemPageSize', 'LINE_ITEM_PAGE_SIZE'],
      ['exportTimeBudgetSeconds', 'EXPORT_TIME_BUDGET_SECONDS'],
      ['leaseSeconds', 'LEASE_SECONDS'],
      ['stuckAfterMinutes', 'STUCK_AFTER_MINUTES'],
      ['failedRetryDays', 'FAILED_RETRY_DAYS'],
      ['reconciliationTolerance', 'RECONCILIATION_TOLERANCE'],
      ['maxLineBytes', 'MAX_LINE_BYTES'],
      ['maxPageBytes', 'MAX_PAGE_BYTES'],
      ['maxPdfBytes', 'MAX_PDF_BYTES'],
      ['v2ReconciliationFrom', 'V2_RECONCILIATION_FROM'],
      ['v2UsageFrom', 'V2_USAGE_FROM'],
      ['settleDeadlineHours', 'SETTLE_DEADLINE_HOURS'],
      ['settleWindowDays', 'SETTLE_WINDOW_DAYS'],
      ['allowedLinkHosts', 'ALLOWED_LINK_HOSTS'],
    ];
    for (const [param, setting] of pairs) {
      const node = paramDefault(main, param);
      const bicepDefault = node?.type === 'string' ? stringValue(node) : node?.text;
      expect({ param, value: bicepDefault }).toEqual({ param, value: String(defaults[setting]) });
    }
  });

  it('creates exactly the queues src/config.ts names', () => {
    const queueNames = varValue(readTree('main.bicep'), 'queueNames');
    const names = queueNames?.namedChildren.map((n) => stringValue(n));
    expect(names?.sort()).toEqual(Object.values(QUEUES).sort());
  });
});
