// Settings drift, read from what ARM would deploy (the snapshot of the compiled template): every setting
// src/config.ts reads is in the Function App's app settings, the Bicep sets nothing the code does not read (except
// the allow-lists below), the deployed defaults are the src/config.ts defaults, and the queues are the code's.
import { describe, expect, it } from 'vitest';
import { QUEUES, SETTING_NAMES, settingsSchema } from '../../src/config.js';
import { armTemplate, oneOf, resourcesOf } from './arm.js';
import { SNAPSHOT_PARAMS } from './compile.js';

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

/**
 * Set in Azure for the platform, not read by src/config.ts: the Functions host reads both, and
 * src/telemetry/azure-monitor.ts reads them for the unsampled events (docs/operations.md, "Sampling").
 */
const PLATFORM_ONLY = ['APPLICATIONINSIGHTS_CONNECTION_STRING', 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'] as const;

/** Settings whose Azure value differs from the local default on purpose. */
const AZURE_DIFFERS = {
  AUTH_MODE: 'workload-identity in Azure (no secret anywhere); client-secret is the local default',
} as const;

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

/**
 * Azure public cloud values of the environment() members the Bicep uses (the ARM environment() function docs,
 * learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-deployment#environment). The
 * snapshot leaves environment() unevaluated; ARM fills it in at deployment.
 */
const PUBLIC_CLOUD: Record<string, string> = {
  'environment().authentication.loginEndpoint': 'https://login.microsoftonline.com/',
  'environment().suffixes.storage': 'core.windows.net',
};

/** A deployed value: a literal, one environment() member, or format() over literals and such members. */
function publicCloudValue(value: string): string {
  if (!value.startsWith('[')) return value;
  const inner = value.slice(1, -1);
  const member = PUBLIC_CLOUD[inner];
  if (member !== undefined) return member;
  const format = /^format\('((?:[^']|'')*)', (.+)\)$/.exec(inner);
  if (format) {
    const args = format[2]!.split(/,\s*/).map((a) => {
      const literal = /^'((?:[^']|'')*)'$/.exec(a)?.[1];
      const resolved = literal ?? PUBLIC_CLOUD[a];
      if (resolved === undefined) throw new Error(`cannot evaluate ${a} in ${value}`);
      return resolved.replaceAll("''", "'");
    });
    return format[1]!.replaceAll("''", "'").replace(/\{(\d+)\}/g, (_, i: string) => args[Number(i)] ?? '');
  }
  throw new Error(`cannot evaluate ${value}`);
}

const config = oneOf('Microsoft.Web/sites/config');
const deployed = config.properties as Record<string, string>;
const withOptions = oneOf('Microsoft.Web/sites/config', 'options').properties as Record<string, string>;
/** Every name the Bicep can set: the defaults plus what only the optional modes add. */
const bicepNames = [...new Set([...Object.keys(deployed), ...Object.keys(withOptions)])];

describe('app settings drift (src/config.ts SETTING_NAMES vs the deployed sites/config appsettings)', () => {
  it('sets app settings in one place only (no siteConfig.appSettings on the site)', () => {
    expect(config.name).toMatch(/^func-[a-z0-9]+\/appsettings$/);
    expect(resourcesOf('Microsoft.Web/sites/config').length).toBe(1);
    expect(oneOf('Microsoft.Web/sites').properties.siteConfig.appSettings).toBeUndefined();
    expect(bicepNames.length).toBeGreaterThan(20);
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

  it('sets the same names in client-secret mode, plus only the secret as a Key Vault reference', () => {
    expect(Object.keys(withOptions).filter((n) => !(n in deployed))).toEqual(['PARTNER_CLIENT_SECRET']);
    expect(withOptions.PARTNER_CLIENT_SECRET).toMatch(
      /^@Microsoft\.KeyVault\(VaultName=kv-[a-z0-9]+;SecretName=partner-client-secret\)$/,
    );
    expect(deployed.PARTNER_CLIENT_SECRET).toBeUndefined();
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
});

describe('deployed values', () => {
  it('uses workload identity and the identity-based host storage form', () => {
    expect(deployed.AUTH_MODE).toBe('workload-identity');
    expect(armTemplate().parameters.authMode?.defaultValue).toBe('workload-identity');
    expect(deployed.AzureWebJobsStorage__credential).toBe('managedidentity');
    for (const name of ['AzureWebJobsStorage__clientId', 'MANAGED_IDENTITY_CLIENT_ID']) {
      expect(deployed[name]).toMatch(/userAssignedIdentities\/id-[a-z0-9]+', '2023-01-31'\)\.clientId\]$/);
    }
    for (const service of ['blob', 'queue', 'table']) {
      expect(deployed[`AzureWebJobsStorage__${service}ServiceUri`]).toMatch(
        new RegExp(`storageAccounts/st[a-z0-9]+', '2025-06-01'\\)\\.primaryEndpoints\\.${service}\\]$`),
      );
    }
  });

  it('deploys every defaulted setting with the src/config.ts default (as the app parses it)', () => {
    const defaults = settingsSchema.parse({}) as Record<string, unknown>;
    const shape = settingsSchema.shape as Record<string, { parse(v: unknown): unknown }>;
    const compared: string[] = [];
    for (const [name, raw] of Object.entries(deployed)) {
      if ((PLATFORM_ONLY as readonly string[]).includes(name) || name in AZURE_DIFFERS) continue;
      if (raw.includes('reference(')) continue; // known only at deployment (endpoints, client ids)
      if (Object.values(SNAPSHOT_PARAMS.defaults).includes(raw as never)) continue; // a required parameter
      if (!(name in defaults)) continue;
      expect({ name, value: shape[name]!.parse(publicCloudValue(raw)) }).toEqual({ name, value: defaults[name] });
      compared.push(name);
    }
    expect(compared.length).toBeGreaterThanOrEqual(24);
    expect(compared).toEqual(
      expect.arrayContaining(['AUTHORITY_HOST', 'ALLOWED_LINK_HOSTS', 'RECONCILIATION_TOLERANCE']),
    );
  });

  it('evaluates environment() only where it knows the public-cloud value', () => {
    expect(publicCloudValue("[format('*.blob.{0},x', environment().suffixes.storage)]")).toBe(
      '*.blob.core.windows.net,x',
    );
    expect(() => publicCloudValue('[environment().suffixes.sqlServerHostname]')).toThrow(/cannot evaluate/);
  });

  it('creates exactly the queues src/config.ts names, each with its poison twin', () => {
    const names = resourcesOf('Microsoft.Storage/storageAccounts/queueServices/queues').map((q) =>
      q.name.split('/').at(-1),
    );
    expect(names.sort()).toEqual(
      Object.values(QUEUES)
        .flatMap((q) => [q, `${q}-poison`])
        .sort(),
    );
  });
});
