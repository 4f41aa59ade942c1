// Credentials end-to-end against the simulator's Entra-like token endpoint: @azure/identity (client secret,
// workload-identity assertion) and the App+User refresh-token credential through real MSAL, with the refresh token
// kept in a Key Vault fake reached by the real SecretClient.
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authorityMetadataFor,
  type CredentialOptions,
  cloudDiscoveryMetadataFor,
  createCredentials,
  ISSUED_AT_TAG,
  originRewritingHttpClient,
  originRewritingNetworkClient,
  PARTNER_CENTER_SCOPE,
  ReconsentRequiredError,
  RefreshTokenCredential,
} from '../../src/auth/index.js';
import { loadSettings } from '../../src/config.js';
import { GRAPH_SCOPE } from '../../src/graph/index.js';
import { CLIENT_ID, PARTNER_TENANT_ID, type Simulator, startSimulator } from '../simulator/index.js';
import { type KeyVaultFake, startKeyVaultFake } from '../support/keyvault-fake.js';
import { makeTestCertificate } from './test-certificate.js';

const AUTHORITY_HOST = 'https://login.simulator.test';
const SECRET_NAME = 'partner-center-refresh-token';
const DAY = 86_400_000;

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

const fixedToken = (token: string): TokenCredential => ({
  getToken: async (): Promise<AccessToken> => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
});

describe('credentials against the simulator token endpoint', () => {
  let sim: Simulator;
  let vault: KeyVaultFake;
  let options: CredentialOptions;
  const warnings: { message: string; properties?: Record<string, unknown> }[] = [];

  const settingsFor = (extra: Record<string, string> = {}) =>
    loadSettings({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      AUTH_MODE: 'client-secret',
      PARTNER_TENANT_ID,
      PARTNER_CLIENT_ID: CLIENT_ID,
      PARTNER_CLIENT_SECRET: 'sim-client-secret',
      AUTHORITY_HOST,
      KEY_VAULT_URL: vault.vaultUrl,
      REFRESH_TOKEN_SECRET_NAME: SECRET_NAME,
      ...extra,
    });

  beforeAll(async () => {
    sim = await startSimulator({ auth: { publicAuthorityUrl: AUTHORITY_HOST } });
    vault = await startKeyVaultFake({ acceptToken: 'kv-token' });
    const origins = { [AUTHORITY_HOST]: sim.authorityUrl, [vault.vaultUrl]: vault.url };
    const authority = `${AUTHORITY_HOST}/${PARTNER_TENANT_ID}`;
    options = {
      httpClient: originRewritingHttpClient(origins),
      networkClient: originRewritingNetworkClient(origins),
      authorityMetadata: authorityMetadataFor(authority),
      cloudDiscoveryMetadata: cloudDiscoveryMetadataFor(authority),
      disableInstanceDiscovery: true,
      keyVaultCredential: fixedToken('kv-token'),
      logger: { warn: (message, properties) => warnings.push({ message, properties }) },
    };
  });
  afterAll(async () => {
    await sim.stop();
    await vault.stop();
  });

  const tokenRequests = () => sim.requests.filter((r) => r.host === 'token' && r.method === 'POST').length;

  it('client-secret: ClientSecretCredential gets app-only Partner Center and Graph tokens', async () => {
    const credentials = createCredentials(settingsFor({ APP_USER_ENABLED: 'false' }), options);
    const pc = await credentials.partnerCenterApp.getToken(PARTNER_CENTER_SCOPE);
    expect(claims(pc!.token)).toMatchObject({ aud: 'https://api.partnercenter.microsoft.com', tid: PARTNER_TENANT_ID });
    expect(claims(pc!.token).scp).toBeUndefined();
    const graph = await credentials.graph.getToken(GRAPH_SCOPE);
    expect(claims(graph!.token).aud).toBe('https://graph.microsoft.com');
  });

  it('workload-identity: the managed identity token for api://AzureADTokenExchange is the client assertion', async () => {
    const asked: (string | string[])[] = [];
    const managedIdentity: TokenCredential = {
      getToken: async (scopes) => {
        asked.push(scopes);
        return { token: 'eyJ.managed-identity-assertion.sig', expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    const credentials = createCredentials(
      settingsFor({ AUTH_MODE: 'workload-identity', APP_USER_ENABLED: 'false', PARTNER_CLIENT_SECRET: '' }),
      { ...options, assertionSource: managedIdentity },
    );
    const token = await credentials.partnerCenterApp.getToken(PARTNER_CENTER_SCOPE);
    expect(claims(token!.token).aud).toBe('https://api.partnercenter.microsoft.com');
    expect(asked).toContainEqual('api://AzureADTokenExchange/.default');
  });

  it('certificate: ClientCertificateCredential signs its assertion from the PEM; App+User redeems without one', async () => {
    const { pemPath } = makeTestCertificate();
    vault.seed('certificate-app-rt', sim.seedRefreshToken());
    const credentials = createCredentials(
      settingsFor({
        AUTH_MODE: 'certificate',
        PARTNER_CLIENT_SECRET: '',
        PARTNER_CLIENT_CERTIFICATE_PATH: pemPath,
        REFRESH_TOKEN_SECRET_NAME: 'certificate-app-rt',
      }),
      options,
    );
    const app = await credentials.partnerCenterApp.getToken(PARTNER_CENTER_SCOPE);
    expect(claims(app!.token).roles).toBeDefined();
    const user = await credentials.partnerCenterAppUser!.getToken(PARTNER_CENTER_SCOPE);
    expect(claims(user!.token).scp).toBe('user_impersonation');
    expect(vault.secrets.get('certificate-app-rt')).toHaveLength(2);
  });

  it('App+User: exchanges the Key Vault refresh token via MSAL, writes the rotated one back, warns when old, caches', async () => {
    const seeded = sim.seedRefreshToken();
    vault.seed(SECRET_NAME, seeded, { updated: new Date(Date.now() - 70 * DAY) });
    const credentials = createCredentials(settingsFor({ REFRESH_TOKEN_WARN_DAYS: '60' }), options);
    const appUser = credentials.partnerCenterAppUser as RefreshTokenCredential;
    expect(appUser).toBeInstanceOf(RefreshTokenCredential);
    expect(await appUser.refreshTokenAgeDays()).toBeGreaterThan(69);
    expect(await credentials.refreshTokenAgeDays()).toBeLessThan(71);

    const before = tokenRequests();
    const token = await appUser.getToken(PARTNER_CENTER_SCOPE);
    expect(claims(token.token)).toMatchObject({
      aud: 'https://api.partnercenter.microsoft.com',
      scp: 'user_impersonation',
    });
    expect(tokenRequests()).toBe(before + 1);

    const stored = vault.latest(SECRET_NAME)!;
    expect(stored.value).not.toBe(seeded);
    expect(stored.value).toMatch(/^0\.AAAA/);
    expect(stored.tags?.[ISSUED_AT_TAG]).toBeTruthy();
    expect(await appUser.refreshTokenAgeDays()).toBeLessThan(1);

    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/70 days old.*90/);
    expect(warnings[0]!.message).not.toContain(seeded);

    // The access token is reused until shortly before expiry: no second exchange, no second rotation.
    const again = await appUser.getToken(PARTNER_CENTER_SCOPE);
    expect(again.token).toBe(token.token);
    expect(tokenRequests()).toBe(before + 1);
    expect(vault.secrets.get(SECRET_NAME)).toHaveLength(2);

    // A new process starts from the rotated token in Key Vault.
    const next = createCredentials(settingsFor(), options).partnerCenterAppUser!;
    await next.getToken(PARTNER_CENTER_SCOPE);
    expect(vault.secrets.get(SECRET_NAME)).toHaveLength(3);
    expect(warnings).toHaveLength(1);
  });

  it('concurrent callers share one exchange (one rotation), and AADSTS50078 (MFA expired) asks for re-consent', async () => {
    vault.seed(SECRET_NAME, sim.seedRefreshToken());
    const versions = vault.secrets.get(SECRET_NAME)!.length;
    const before = tokenRequests();
    const appUser = createCredentials(settingsFor(), options).partnerCenterAppUser!;
    const tokens = await Promise.all([1, 2, 3].map(() => appUser.getToken(PARTNER_CENTER_SCOPE)));
    expect(new Set(tokens.map((t) => t?.token)).size).toBe(1);
    expect(tokenRequests()).toBe(before + 1);
    expect(vault.secrets.get(SECRET_NAME)).toHaveLength(versions + 1);

    sim.faults.add({
      host: 'token',
      path: '/oauth2/v2.0/token',
      kind: 'status',
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        error: 'interaction_required',
        error_description:
          'AADSTS50078: Presented multi-factor authentication has expired due to policies configured by your administrator.',
        error_codes: [50078],
      }),
    });
    const fresh = createCredentials(settingsFor(), options).partnerCenterAppUser!;
    const error = await fresh.getToken(PARTNER_CENTER_SCOPE).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReconsentRequiredError);
    expect((error as ReconsentRequiredError).code).toBe('AADSTS50078');
  });

  it('a failed write-back is a warning, not a failed sync; the next exchange still works', async () => {
    vault.seed('write-back-rt', sim.seedRefreshToken());
    const warned = warnings.length;
    vault.failNextWrites(1);
    const settings = settingsFor({ REFRESH_TOKEN_SECRET_NAME: 'write-back-rt' });
    const token = await createCredentials(settings, options).partnerCenterAppUser!.getToken(PARTNER_CENTER_SCOPE);
    expect(claims(token!.token).scp).toBe('user_impersonation');
    expect(vault.secrets.get('write-back-rt')).toHaveLength(1);
    expect(warnings.slice(warned).map((w) => w.message)).toEqual([
      'Could not write the rotated App+User refresh token back to Key Vault',
    ]);
    await createCredentials(settings, options).partnerCenterAppUser!.getToken(PARTNER_CENTER_SCOPE);
    expect(vault.secrets.get('write-back-rt')).toHaveLength(2);
  });

  it('a revoked refresh token (invalid_grant) asks the operator to re-run consent, without the token in the message', async () => {
    sim.revokeRefreshTokens();
    const stored = vault.latest(SECRET_NAME)!.value;
    const appUser = createCredentials(settingsFor(), options).partnerCenterAppUser!;
    const error = await appUser.getToken(PARTNER_CENTER_SCOPE).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReconsentRequiredError);
    expect((error as Error).message).toContain('npm run sync -- consent');
    expect((error as Error).message).toMatch(/AADSTS70000|invalid_grant/);
    expect((error as Error).message).not.toContain(stored);
  });

  it('a missing refresh token secret is a re-consent error too', async () => {
    const appUser = createCredentials(settingsFor({ REFRESH_TOKEN_SECRET_NAME: 'never-consented' }), options)
      .partnerCenterAppUser!;
    await expect(appUser.getToken(PARTNER_CENTER_SCOPE)).rejects.toThrowError(ReconsentRequiredError);
  });
});
