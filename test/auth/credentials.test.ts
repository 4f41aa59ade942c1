// Credential selection per AUTH_MODE, static tokens, certificate proofs and the Key Vault secret store
// (the real SecretClient against a loopback Key Vault fake).
import path from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { ClientAssertionCredential, ClientCertificateCredential, ClientSecretCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certificateProof,
  createCredentials,
  KeyVaultSecretStore,
  originRewritingHttpClient,
  RefreshTokenCredential,
  StaticTokenCredential,
  StaticTokenError,
} from '../../src/auth/index.js';
import { ConfigError, loadSettings } from '../../src/config.js';
import { type KeyVaultFake, startKeyVaultFake } from '../support/keyvault-fake.js';
import { makeTestCertificate } from './test-certificate.js';

const base = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
const ids = { PARTNER_TENANT_ID: 'contoso-tenant', PARTNER_CLIENT_ID: 'app-client-id' };

function jwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.signature`;
}

const fixedToken = (token: string): TokenCredential => ({
  getToken: async (): Promise<AccessToken> => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
});

describe('createCredentials', () => {
  it('client-secret builds ClientSecretCredential for app-only and Graph, and an App+User refresh-token credential', () => {
    const settings = loadSettings({
      ...base,
      ...ids,
      PARTNER_CLIENT_SECRET: 'not-a-real-secret',
      KEY_VAULT_URL: 'https://example.vault.azure.net',
    });
    const credentials = createCredentials(settings, { keyVaultCredential: fixedToken('kv') });
    expect(credentials.partnerCenterApp).toBeInstanceOf(ClientSecretCredential);
    expect(credentials.graph).toBeInstanceOf(ClientSecretCredential);
    expect(credentials.partnerCenterAppUser).toBeInstanceOf(RefreshTokenCredential);
    expect(credentials.describe()).toContain('client-secret');
    expect(credentials.describe()).not.toContain('not-a-real-secret');
  });

  it('names every missing setting in a ConfigError', () => {
    expect(() => createCredentials(loadSettings({ ...base, AUTH_MODE: 'client-secret' }))).toThrowError(
      /PARTNER_TENANT_ID, PARTNER_CLIENT_ID/,
    );
    expect(() => createCredentials(loadSettings({ ...base, ...ids, APP_USER_ENABLED: 'false' }))).toThrowError(
      /PARTNER_CLIENT_SECRET/,
    );
    expect(() =>
      createCredentials(loadSettings({ ...base, ...ids, AUTH_MODE: 'certificate', APP_USER_ENABLED: 'false' })),
    ).toThrowError(/PARTNER_CLIENT_CERTIFICATE_PATH/);
    expect(() =>
      createCredentials(loadSettings({ ...base, ...ids, PARTNER_CLIENT_SECRET: 's', APP_USER_ENABLED: 'true' })),
    ).toThrowError(/KEY_VAULT_URL/);
    try {
      createCredentials(loadSettings({ ...base, AUTH_MODE: 'workload-identity' }));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
    }
  });

  it('refuses managed-identity for Partner Center and explains why', () => {
    expect(() => createCredentials(loadSettings({ ...base, ...ids, AUTH_MODE: 'managed-identity' }))).toThrowError(
      /not .*app registration|workload-identity/,
    );
  });

  it('certificate mode checks the PEM (key + certificate) at start-up; App+User stays a public-client credential', () => {
    const { dir, pemPath, certOnlyPath } = makeTestCertificate();
    const proof = certificateProof(pemPath);
    expect(proof.thumbprintSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(proof.privateKey).toContain('PRIVATE KEY');
    const credentials = createCredentials(
      loadSettings({
        ...base,
        ...ids,
        AUTH_MODE: 'certificate',
        PARTNER_CLIENT_CERTIFICATE_PATH: pemPath,
        KEY_VAULT_URL: 'https://x.vault.azure.net',
      }),
      { keyVaultCredential: fixedToken('kv') },
    );
    expect(credentials.partnerCenterApp).toBeInstanceOf(ClientCertificateCredential);
    expect(credentials.partnerCenterAppUser).toBeInstanceOf(RefreshTokenCredential);
    expect(() => certificateProof(path.join(dir, 'missing.pem'))).toThrowError(ConfigError);
    expect(() => certificateProof(certOnlyPath)).toThrowError(/both the private key and the certificate/);
    const broken = {
      ...base,
      ...ids,
      AUTH_MODE: 'certificate',
      KEY_VAULT_URL: 'https://x.vault.azure.net',
      PARTNER_CLIENT_CERTIFICATE_PATH: certOnlyPath,
    };
    expect(() => createCredentials(loadSettings(broken))).toThrowError(/both the private key and the certificate/);
  });

  it('workload-identity uses a client assertion from the managed identity (api://AzureADTokenExchange)', () => {
    const credentials = createCredentials(
      loadSettings({
        ...base,
        ...ids,
        AUTH_MODE: 'workload-identity',
        MANAGED_IDENTITY_CLIENT_ID: 'mi',
        APP_USER_ENABLED: 'false',
      }),
    );
    expect(credentials.partnerCenterApp).toBeInstanceOf(ClientAssertionCredential);
    expect(credentials.partnerCenterAppUser).toBeUndefined();
  });
});

describe('static-token mode', () => {
  it('returns each token with the expiry from its JWT exp claim', async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const pc = jwt({ aud: 'https://api.partnercenter.microsoft.com', exp });
    const graph = jwt({ aud: 'https://graph.microsoft.com', exp: exp + 60 });
    const credentials = createCredentials(
      loadSettings({ ...base, AUTH_MODE: 'static-token', PARTNER_CENTER_ACCESS_TOKEN: pc, GRAPH_ACCESS_TOKEN: graph }),
    );
    const pcToken = await credentials.partnerCenterApp.getToken('https://api.partnercenter.microsoft.com/.default');
    expect(pcToken).toMatchObject({ token: pc, expiresOnTimestamp: exp * 1000 });
    expect((await credentials.graph.getToken('https://graph.microsoft.com/.default'))?.token).toBe(graph);
    expect(credentials.partnerCenterAppUser).toBe(credentials.partnerCenterApp);
  });

  it('fails clearly when a token is missing or expired', async () => {
    expect(() =>
      createCredentials(loadSettings({ ...base, AUTH_MODE: 'static-token', GRAPH_ACCESS_TOKEN: 'opaque' })),
    ).toThrowError(/PARTNER_CENTER_ACCESS_TOKEN/);
    const expired = new StaticTokenCredential('GRAPH_ACCESS_TOKEN', jwt({ exp: Math.floor(Date.now() / 1000) - 5 }));
    await expect(expired.getToken('x')).rejects.toThrowError(StaticTokenError);
    await expect(expired.getToken('x')).rejects.toThrowError(/GRAPH_ACCESS_TOKEN expired/);
    const opaque = await new StaticTokenCredential('GRAPH_ACCESS_TOKEN', 'Bearer opaque-token').getToken('x');
    expect(opaque.token).toBe('opaque-token');
    expect(opaque.expiresOnTimestamp).toBeGreaterThan(Date.now());
  });
});

describe('KeyVaultSecretStore (real SecretClient, Key Vault fake)', () => {
  let vault: KeyVaultFake;
  let store: KeyVaultSecretStore;
  beforeAll(async () => {
    vault = await startKeyVaultFake({ acceptToken: 'kv-token' });
    store = new KeyVaultSecretStore({
      vaultUrl: vault.vaultUrl,
      credential: fixedToken('kv-token'),
      httpClient: originRewritingHttpClient({ [vault.vaultUrl]: vault.url }),
    });
  });
  afterAll(() => vault.stop());

  it('answers the bearer challenge, reads, writes a new version with tags, and reports a missing secret', async () => {
    expect(await store.get('absent')).toBeUndefined();
    const updated = new Date('2026-01-02T03:04:05Z');
    vault.seed('rt', 'first-value', { updated });
    const read = await store.get('rt');
    expect(read).toMatchObject({ value: 'first-value' });
    expect(read?.updatedOn?.toISOString()).toBe(updated.toISOString());
    await store.set('rt', 'second-value', { issuedAt: '2026-03-01T00:00:00.000Z' });
    expect(vault.secrets.get('rt')).toHaveLength(2);
    expect(await store.get('rt')).toMatchObject({
      value: 'second-value',
      tags: { issuedAt: '2026-03-01T00:00:00.000Z' },
    });
    // The SDK's challenge flow: the first request goes out unauthenticated and gets the 401 challenge.
    expect(vault.requests[0]?.authorized).toBe(false);
    expect(vault.requests.some((r) => r.method === 'PUT' && r.authorized)).toBe(true);
  });
});
