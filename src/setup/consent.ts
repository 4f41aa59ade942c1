// The one-time App+User consent: a partner user (with MFA) signs in through the device code flow, and the
// refresh token MSAL receives is stored in Key Vault, tagged with when it was issued, for src/auth/ to use and rotate.
// The device code flow makes this a PUBLIC client (no app credential exists on the operator's machine), so Entra
// binds the refresh token to a public client, and the app redeems it as one (src/auth/refresh-token.ts).
import { spawn } from 'node:child_process';
import type { TokenCredential } from '@azure/core-auth';
import { DefaultAzureCredential } from '@azure/identity';
import { type Configuration, type INetworkModule, PublicClientApplication } from '@azure/msal-node';
import { ISSUED_AT_TAG, PARTNER_CENTER_SCOPE, rotatedRefreshToken } from '../auth/refresh-token.js';
import { KeyVaultSecretStore, type SecretStore } from '../auth/secret-store.js';

/** Scopes of the consent: Partner Center as the user, plus a refresh token. */
export const CONSENT_SCOPES = [PARTNER_CENTER_SCOPE, 'offline_access'] as const;

export interface ConsentOptions {
  /** The partner tenant (PARTNER_TENANT_ID). */
  tenantId: string;
  /** The app registration (PARTNER_CLIENT_ID); "Allow public client flows" must be on for the device code flow. */
  clientId: string;
  /** AUTHORITY_HOST, e.g. https://login.microsoftonline.com */
  authorityHost: string;
  /** KEY_VAULT_URL */
  keyVaultUrl: string;
  /** REFRESH_TOKEN_SECRET_NAME */
  secretName: string;
  /** Who writes the secret (needs Key Vault Secrets Officer); defaults to DefaultAzureCredential (az/azd login). */
  credentialForKeyVault?: TokenCredential;
  /** Also open the sign-in page in the local browser (the code is still printed). */
  openBrowser?: boolean;
  /** Where the sign-in instructions go. Never receives a token. */
  log: (message: string) => void;
  /** Test and local-demo seams: where the secret is written, and MSAL's network/discovery (loopback authorities). */
  secretStore?: SecretStore;
  networkClient?: INetworkModule;
  authorityMetadata?: string;
  cloudDiscoveryMetadata?: string;
  /** Give up waiting for the user after this many seconds (the service's own device-code expiry also applies). */
  timeoutSeconds?: number;
  now?: () => Date;
}

export interface ConsentResult {
  /** The signed-in user (UPN), for the operator's record. */
  username: string | undefined;
  secretName: string;
  issuedAt: string;
}

export class ConsentError extends Error {
  override name = 'ConsentError';
}

/** Signs the partner user in and stores the App+User refresh token in Key Vault. */
export async function runConsent(options: ConsentOptions): Promise<ConsentResult> {
  const authority = `${options.authorityHost.replace(/\/+$/, '')}/${options.tenantId}`;
  const config: Configuration = {
    auth: {
      clientId: options.clientId,
      authority,
      ...(options.authorityMetadata ? { authorityMetadata: options.authorityMetadata } : {}),
      ...(options.cloudDiscoveryMetadata ? { cloudDiscoveryMetadata: options.cloudDiscoveryMetadata } : {}),
    },
    ...(options.networkClient ? { system: { networkClient: options.networkClient } } : {}),
  };
  const app = new PublicClientApplication(config);

  let result: Awaited<ReturnType<PublicClientApplication['acquireTokenByDeviceCode']>>;
  try {
    result = await app.acquireTokenByDeviceCode({
      scopes: [...CONSENT_SCOPES],
      ...(options.timeoutSeconds ? { timeout: options.timeoutSeconds } : {}),
      deviceCodeCallback: (response) => {
        // The message names the sign-in page and the one-time user code; it carries no token.
        options.log(response.message);
        options.log('Sign in as a partner user with MFA (Admin agent or billing admin) who may read invoices.');
        if (options.openBrowser) openInBrowser(response.verificationUri);
      },
    });
  } catch (error) {
    throw new ConsentError(`Sign-in did not complete: ${describeMsalError(error)}`);
  }
  if (!result) throw new ConsentError('Sign-in did not complete: no token was returned');

  const refreshToken = rotatedRefreshToken(app.getTokenCache().serialize(), options.clientId);
  if (!refreshToken) {
    throw new ConsentError(
      'The sign-in returned no refresh token: check that the app registration allows public client flows and ' +
        'that offline_access is not blocked by a Conditional Access policy.',
    );
  }

  const issuedAt = (options.now?.() ?? new Date()).toISOString();
  const store =
    options.secretStore ??
    new KeyVaultSecretStore({
      vaultUrl: options.keyVaultUrl,
      credential: options.credentialForKeyVault ?? new DefaultAzureCredential(),
    });
  try {
    await store.set(options.secretName, refreshToken, {
      [ISSUED_AT_TAG]: issuedAt,
      grantedBy: result.account?.username ?? 'unknown',
      tenantId: options.tenantId,
      clientId: options.clientId,
    });
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    const hint =
      status === 403
        ? ' (the signed-in Azure user needs Key Vault Secrets Officer on the vault; azd grants it to the deployer)'
        : '';
    throw new ConsentError(
      `Could not store the refresh token in ${options.keyVaultUrl} as "${options.secretName}"${hint}: ${
        error instanceof Error ? error.message.split('\n')[0] : String(error)
      }`,
    );
  }
  options.log(`Stored the App+User refresh token in Key Vault secret "${options.secretName}" (issued ${issuedAt}).`);
  return { username: result.account?.username, secretName: options.secretName, issuedAt };
}

/** MSAL error → one line with the AADSTS code and reason; MSAL never puts tokens in these, but keep one line. */
function describeMsalError(error: unknown): string {
  const e = error as { errorCode?: string; errorMessage?: string; message?: string };
  const text = (e.errorMessage ?? e.message ?? String(error)).split(/\r?\n/)[0] ?? '';
  return e.errorCode ? `${e.errorCode}: ${text}` : text;
}

function openInBrowser(url: string): void {
  if (!/^https:\/\//.test(url)) return;
  const [command, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '', url]]
        : ['xdg-open', [url]];
  try {
    const child = spawn(command, args as string[], { stdio: 'ignore', detached: true });
    // A missing opener is not an error: the code and URL are already printed.
    child.on('error', () => {});
    child.unref();
  } catch {
    // Same: printing the instructions is enough.
  }
}
