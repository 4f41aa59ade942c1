// Chooses a TokenCredential per operation from AUTH_MODE: app-only for listing, line items and Graph exports;
// App+User (refresh token in Key Vault, redeemed as a public client) for get-invoice-by-id, statements and receipts
// (documented App+User only).
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import {
  ClientAssertionCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
} from '@azure/identity';
import type { INetworkModule } from '@azure/msal-node';
import { ConfigError, type Settings } from '../config.js';
import { type AuthLogger, RefreshTokenCredential } from './refresh-token.js';
import { KeyVaultSecretStore, type SecretStore } from './secret-store.js';
import { StaticTokenCredential } from './static-token.js';

/** Audience of a managed identity token used as a federated client assertion (workload identity federation). */
export const TOKEN_EXCHANGE_SCOPE = 'api://AzureADTokenExchange/.default';

export type AuthSettings = Pick<
  Settings,
  | 'AUTH_MODE'
  | 'PARTNER_TENANT_ID'
  | 'PARTNER_CLIENT_ID'
  | 'PARTNER_CLIENT_SECRET'
  | 'PARTNER_CLIENT_CERTIFICATE_PATH'
  | 'MANAGED_IDENTITY_CLIENT_ID'
  | 'AUTHORITY_HOST'
  | 'KEY_VAULT_URL'
  | 'REFRESH_TOKEN_SECRET_NAME'
  | 'APP_USER_ENABLED'
  | 'REFRESH_TOKEN_WARN_DAYS'
  | 'PARTNER_CENTER_ACCESS_TOKEN'
  | 'GRAPH_ACCESS_TOKEN'
>;

export interface CredentialOptions {
  logger?: AuthLogger;
  now?: () => number;
  /** Where the refresh token lives; default Key Vault (KEY_VAULT_URL) with `keyVaultCredential`. */
  secretStore?: SecretStore;
  /** Credential for Key Vault; default the managed identity (MANAGED_IDENTITY_CLIENT_ID) or DefaultAzureCredential. */
  keyVaultCredential?: TokenCredential;
  /** Managed identity whose token is the federated assertion (workload-identity); injectable for tests. */
  assertionSource?: TokenCredential;
  /** Test/local-demo hooks only: HTTP client for @azure/identity and Key Vault, network module for MSAL. */
  httpClient?: HttpClient;
  networkClient?: INetworkModule;
  authorityMetadata?: string;
  cloudDiscoveryMetadata?: string;
  /** Test hook: skip Entra instance discovery for a non-Microsoft authority host. */
  disableInstanceDiscovery?: boolean;
  /** Test hook: Key Vault fake on a different host than the challenge resource. */
  disableChallengeResourceVerification?: boolean;
}

export interface Credentials {
  /** App-only Partner Center token: list invoices, line items. */
  partnerCenterApp: TokenCredential;
  /** App+User Partner Center token: get invoice by id, statement and receipt PDFs. Absent when APP_USER_ENABLED=false. */
  partnerCenterAppUser?: TokenCredential;
  /** Graph token (PartnerBilling.Read.All) for the v2 exports. */
  graph: TokenCredential;
  /** One line for logs: the mode and which credentials exist, never a secret. */
  describe(): string;
  /** Age of the stored App+User refresh token in days (telemetry); undefined without App+User or a stored token. */
  refreshTokenAgeDays(): Promise<number | undefined>;
}

/** Every setting the chosen AUTH_MODE (and App+User) needs that is not set, all at once. */
export function missingAuthSettings(settings: AuthSettings): (keyof AuthSettings)[] {
  const needed: (keyof AuthSettings)[] =
    settings.AUTH_MODE === 'static-token'
      ? ['PARTNER_CENTER_ACCESS_TOKEN', 'GRAPH_ACCESS_TOKEN']
      : [
          'PARTNER_TENANT_ID',
          'PARTNER_CLIENT_ID',
          ...(settings.AUTH_MODE === 'client-secret' ? (['PARTNER_CLIENT_SECRET'] as const) : []),
          ...(settings.AUTH_MODE === 'certificate' ? (['PARTNER_CLIENT_CERTIFICATE_PATH'] as const) : []),
          ...(settings.APP_USER_ENABLED ? (['KEY_VAULT_URL'] as const) : []),
        ];
  return needed.filter((name) => !settings[name]);
}

export function createCredentials(settings: AuthSettings, options: CredentialOptions = {}): Credentials {
  const mode = settings.AUTH_MODE;
  // An injected secret store (tests) stands in for the vault.
  const missing = missingAuthSettings(settings).filter((n) => !(n === 'KEY_VAULT_URL' && options.secretStore));
  if (missing.length > 0) {
    throw new ConfigError(
      `AUTH_MODE=${mode} needs app settings: ${missing.join(', ')}` +
        (missing.includes('KEY_VAULT_URL')
          ? ' (KEY_VAULT_URL: where the App+User refresh token is kept; set APP_USER_ENABLED=false to run app-only)'
          : ''),
    );
  }
  if (mode === 'static-token') {
    const partnerCenter = new StaticTokenCredential(
      'PARTNER_CENTER_ACCESS_TOKEN',
      settings.PARTNER_CENTER_ACCESS_TOKEN,
      options.now,
    );
    const graph = new StaticTokenCredential('GRAPH_ACCESS_TOKEN', settings.GRAPH_ACCESS_TOKEN, options.now);
    return {
      partnerCenterApp: partnerCenter,
      // A pasted token is whatever the user signed in as; it serves the App+User endpoints too when it is delegated.
      partnerCenterAppUser: settings.APP_USER_ENABLED ? partnerCenter : undefined,
      graph,
      refreshTokenAgeDays: async () => undefined,
      describe: () =>
        `static-token (PARTNER_CENTER_ACCESS_TOKEN, GRAPH_ACCESS_TOKEN${settings.APP_USER_ENABLED ? ', also for App+User' : ''})`,
    };
  }

  const tenantId = settings.PARTNER_TENANT_ID!;
  const clientId = settings.PARTNER_CLIENT_ID!;
  const identityOptions = {
    authorityHost: settings.AUTHORITY_HOST,
    ...(options.httpClient ? { httpClient: options.httpClient } : {}),
    ...(options.disableInstanceDiscovery ? { disableInstanceDiscovery: true } : {}),
  };

  let app: TokenCredential;
  switch (mode) {
    case 'client-secret': {
      app = new ClientSecretCredential(tenantId, clientId, settings.PARTNER_CLIENT_SECRET!, identityOptions);
      break;
    }
    case 'certificate': {
      const certificatePath = settings.PARTNER_CLIENT_CERTIFICATE_PATH!;
      // Fail at start-up, not at the first token request, when the PEM lacks the key or the certificate.
      certificateProof(certificatePath);
      app = new ClientCertificateCredential(tenantId, clientId, { certificatePath }, identityOptions);
      break;
    }
    case 'workload-identity': {
      const managedIdentity =
        options.assertionSource ??
        new ManagedIdentityCredential(
          settings.MANAGED_IDENTITY_CLIENT_ID ? { clientId: settings.MANAGED_IDENTITY_CLIENT_ID } : {},
        );
      const assertion = async () => {
        const token = await managedIdentity.getToken(TOKEN_EXCHANGE_SCOPE);
        if (!token) throw new ConfigError('The managed identity returned no token for api://AzureADTokenExchange');
        return token.token;
      };
      app = new ClientAssertionCredential(tenantId, clientId, assertion, identityOptions);
      break;
    }
    default:
      throw new ConfigError(`Unknown AUTH_MODE ${String(mode)}`);
  }

  // App+User is redeemed as a public client in every mode: the consent issued the refresh token to one
  // (src/auth/refresh-token.ts explains why); the app-only credential above never touches it.
  let appUser: RefreshTokenCredential | undefined;
  if (settings.APP_USER_ENABLED) {
    const secretStore = options.secretStore ?? keyVaultStore(settings, options);
    appUser = new RefreshTokenCredential({
      tenantId,
      clientId,
      authorityHost: settings.AUTHORITY_HOST,
      secretStore,
      secretName: settings.REFRESH_TOKEN_SECRET_NAME,
      warnAfterDays: settings.REFRESH_TOKEN_WARN_DAYS,
      logger: options.logger,
      now: options.now,
      networkClient: options.networkClient,
      authorityMetadata: options.authorityMetadata,
      cloudDiscoveryMetadata: options.cloudDiscoveryMetadata,
    });
  }
  return {
    partnerCenterApp: app,
    partnerCenterAppUser: appUser,
    // The same app registration holds both Partner Center and Graph (PartnerBilling.Read.All) permissions.
    graph: app,
    refreshTokenAgeDays: async () => appUser?.refreshTokenAgeDays(),
    describe: () =>
      `${mode} (tenant ${tenantId}, client ${clientId})` +
      (appUser ? `; App+User from secret '${settings.REFRESH_TOKEN_SECRET_NAME}'` : '; App+User disabled'),
  };
}

function keyVaultStore(settings: AuthSettings, options: CredentialOptions): SecretStore {
  if (!settings.KEY_VAULT_URL) {
    throw new ConfigError(
      'APP_USER_ENABLED=true needs KEY_VAULT_URL (where the App+User refresh token is kept); set APP_USER_ENABLED=false to run app-only',
    );
  }
  const credential =
    options.keyVaultCredential ??
    (settings.MANAGED_IDENTITY_CLIENT_ID
      ? new ManagedIdentityCredential({ clientId: settings.MANAGED_IDENTITY_CLIENT_ID })
      : new DefaultAzureCredential());
  return new KeyVaultSecretStore({
    vaultUrl: settings.KEY_VAULT_URL,
    credential,
    httpClient: options.httpClient,
    disableChallengeResourceVerification: options.disableChallengeResourceVerification,
  });
}

/** MSAL wants the private key and the certificate's SHA-256 thumbprint; the PEM file holds both (as identity expects). */
export function certificateProof(path: string): { thumbprintSha256: string; privateKey: string; x5c: string } {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read PARTNER_CLIENT_CERTIFICATE_PATH (${path}): ${(error as Error).message}`);
  }
  const key =
    /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.exec(
      pem,
    )?.[0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!key || !cert) {
    throw new ConfigError(
      'PARTNER_CLIENT_CERTIFICATE_PATH must be a PEM file with both the private key and the certificate',
    );
  }
  const der = new X509Certificate(cert).raw;
  return { thumbprintSha256: createHash('sha256').update(der).digest('hex'), privateKey: key, x5c: cert };
}
