// The App+User flow end to end, as in Azure: the consent command signs the user in with the device code flow
// (MSAL, public client) against the simulator's Entra-like endpoints, the refresh token lands in the Key Vault fake
// through the real SecretClient, the app's credential (workload identity for app-only) redeems it the way it was
// issued, and the rotated token is written back. The simulator refuses a redemption by the other kind of client
// exactly as Entra does (invalid_client AADSTS700025 / AADSTS7000218), and the app says what to do about it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { ConfidentialClientApplication, PublicClientApplication } from '@azure/msal-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authorityMetadataFor,
  cloudDiscoveryMetadataFor,
  createCredentials,
  ISSUED_AT_TAG,
  KeyVaultSecretStore,
  mapTokenError,
  originRewritingHttpClient,
  originRewritingNetworkClient,
  PARTNER_CENTER_SCOPE,
  REFRESH_TOKEN_LIFETIME_DAYS,
  ReconsentRequiredError,
} from '../../src/auth/index.js';
import { loadSettings } from '../../src/config.js';
import { runConsent } from '../../src/setup/consent.js';
import { REFRESH_TOKEN_LIFETIME_DAYS as TELEMETRY_LIFETIME } from '../../src/telemetry/index.js';
import { CLIENT_ID, PARTNER_TENANT_ID, type Simulator, startSimulator } from '../simulator/index.js';
import { type KeyVaultFake, startKeyVaultFake } from '../support/keyvault-fake.js';

const AUTHORITY_HOST = 'https://login.simulator.test';
const AUTHORITY = `${AUTHORITY_HOST}/${PARTNER_TENANT_ID}`;
const SECRET_NAME = 'partner-center-refresh-token';

const claims = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
const fixedToken = (token: string): TokenCredential => ({
  getToken: async (): Promise<AccessToken> => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
});

describe('consent → Key Vault → redemption → rotation', () => {
  let sim: Simulator;
  let vault: KeyVaultFake;
  let origins: Record<string, string>;
  const msal = () => ({
    networkClient: originRewritingNetworkClient(origins),
    authorityMetadata: authorityMetadataFor(AUTHORITY),
    cloudDiscoveryMetadata: cloudDiscoveryMetadataFor(AUTHORITY),
  });
  const store = () =>
    new KeyVaultSecretStore({
      vaultUrl: vault.vaultUrl,
      credential: fixedToken('kv-token'),
      httpClient: originRewritingHttpClient(origins),
      disableChallengeResourceVerification: true,
    });

  beforeAll(async () => {
    sim = await startSimulator({ auth: { publicAuthorityUrl: AUTHORITY_HOST, deviceCodePendingPolls: 1 } });
    vault = await startKeyVaultFake({ acceptToken: 'kv-token' });
    origins = { [AUTHORITY_HOST]: sim.authorityUrl, [vault.vaultUrl]: vault.url };
  });
  afterAll(async () => {
    await sim.stop();
    await vault.stop();
  });

  const tokenPosts = () => sim.requests.filter((r) => r.host === 'token' && r.method === 'POST');

  it('works in workload-identity mode: the consented token is redeemed as a public client and rotated', async () => {
    const lines: string[] = [];
    const consent = await runConsent({
      tenantId: PARTNER_TENANT_ID,
      clientId: CLIENT_ID,
      authorityHost: AUTHORITY_HOST,
      keyVaultUrl: vault.vaultUrl,
      secretName: SECRET_NAME,
      log: (m) => lines.push(m),
      secretStore: store(),
      timeoutSeconds: 30,
      now: () => new Date('2026-11-22T10:00:00.000Z'),
      ...msal(),
    });
    expect(consent.secretName).toBe(SECRET_NAME);
    expect(lines.join('\n')).toContain('https://microsoft.com/devicelogin');
    const consented = vault.latest(SECRET_NAME)!;
    expect(consented.value).toMatch(/^0\.AAAA/);
    expect(consented.tags?.[ISSUED_AT_TAG]).toBe('2026-11-22T10:00:00.000Z');
    expect(lines.join('\n')).not.toContain(consented.value);

    const managedIdentity = fixedToken('eyJ.managed-identity-assertion.sig');
    const settings = loadSettings({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      AUTH_MODE: 'workload-identity',
      PARTNER_TENANT_ID,
      PARTNER_CLIENT_ID: CLIENT_ID,
      MANAGED_IDENTITY_CLIENT_ID: '11111111-1111-1111-1111-111111111111',
      AUTHORITY_HOST,
      KEY_VAULT_URL: vault.vaultUrl,
      REFRESH_TOKEN_SECRET_NAME: SECRET_NAME,
    });
    const credentials = createCredentials(settings, {
      ...msal(),
      httpClient: originRewritingHttpClient(origins),
      disableInstanceDiscovery: true,
      disableChallengeResourceVerification: true,
      keyVaultCredential: fixedToken('kv-token'),
      assertionSource: managedIdentity,
    });
    const before = tokenPosts().length;
    const token = await credentials.partnerCenterAppUser!.getToken(PARTNER_CENTER_SCOPE);
    expect(claims(token!.token)).toMatchObject({
      scp: 'user_impersonation',
      aud: 'https://api.partnercenter.microsoft.com',
    });
    // One token request, without any client credential: the token was issued to a public client.
    expect(tokenPosts().length).toBe(before + 1);
    const rotated = vault.latest(SECRET_NAME)!;
    expect(rotated.value).not.toBe(consented.value);
    expect(vault.secrets.get(SECRET_NAME)).toHaveLength(2);
    expect(Date.parse(rotated.tags?.[ISSUED_AT_TAG] ?? '')).toBeGreaterThan(Date.parse('2026-11-22T10:00:00.000Z'));

    // The app-only credential of the same registration still proves itself with the managed identity assertion.
    const appOnly = await credentials.partnerCenterApp.getToken(PARTNER_CENTER_SCOPE);
    expect(claims(appOnly!.token).roles).toBeDefined();
  });

  it('Entra refuses a confidential redemption of a public token (AADSTS700025); the app maps it to re-consent', async () => {
    const publicToken = sim.seedRefreshToken();
    const confidential = new ConfidentialClientApplication({
      auth: { clientId: CLIENT_ID, clientSecret: 'app-secret', authority: AUTHORITY, ...msal() },
      system: { networkClient: msal().networkClient },
    });
    const refused = await confidential
      .acquireTokenByRefreshToken({ refreshToken: publicToken, scopes: [PARTNER_CENTER_SCOPE] })
      .catch((e: unknown) => e);
    expect((refused as { errorCode?: string }).errorCode).toBe('invalid_client');
    expect(String((refused as Error).message)).toContain(
      "AADSTS700025: Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    );
    const mapped = mapTokenError(refused);
    expect(mapped).toBeInstanceOf(ReconsentRequiredError);
    expect((mapped as ReconsentRequiredError).code).toBe('AADSTS700025');
    expect(mapped.message).toMatch(/issued to a public client.*redeemed with a client secret or assertion/);
    expect(mapped.message).toContain('npm run sync -- consent');
    expect(mapped.message).not.toContain(publicToken);
  });

  it('and a public redemption of a confidential token (AADSTS7000218) gets its own clear message', async () => {
    // A confidential client's device-code sign-in (client secret on the token request) issues a confidential token.
    const post = async (endpoint: string, form: Record<string, string>) =>
      (await (
        await fetch(`${sim.authorityUrl}/${PARTNER_TENANT_ID}/oauth2/v2.0/${endpoint}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(form),
        })
      ).json()) as Record<string, string>;
    const scope = `${PARTNER_CENTER_SCOPE} offline_access`;
    const { device_code } = await post('devicecode', { client_id: CLIENT_ID, scope });
    const form = {
      grant_type: 'device_code',
      client_id: CLIENT_ID,
      client_secret: 's',
      device_code: device_code!,
      scope,
    };
    expect((await post('token', form)).error).toBe('authorization_pending');
    const confidentialToken = (await post('token', form)).refresh_token!;
    expect(confidentialToken).toMatch(/^0\.AAAA/);
    const publicClient = new PublicClientApplication({
      auth: { clientId: CLIENT_ID, authority: AUTHORITY, ...msal() },
      system: { networkClient: msal().networkClient },
    });
    const refused = await publicClient
      .acquireTokenByRefreshToken({ refreshToken: confidentialToken, scopes: [PARTNER_CENTER_SCOPE] })
      .catch((e: unknown) => e);
    const mapped = mapTokenError(refused);
    expect((mapped as ReconsentRequiredError).code).toBe('AADSTS7000218');
    expect(mapped.message).toMatch(/confidential client.*Allow public client flows/);
  });
});

describe('REFRESH_TOKEN_LIFETIME_DAYS', () => {
  it('has one definition in src/, which telemetry re-exports', () => {
    const src = path.resolve(import.meta.dirname, '../../src');
    const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
    const definitions = files.filter((f) =>
      /REFRESH_TOKEN_LIFETIME_DAYS\s*=/.test(readFileSync(path.join(src, f), 'utf8')),
    );
    expect(definitions.map((f) => f.replaceAll('\\', '/'))).toEqual(['auth/refresh-token.ts']);
    expect(TELEMETRY_LIFETIME).toBe(REFRESH_TOKEN_LIFETIME_DAYS);
  });
});
