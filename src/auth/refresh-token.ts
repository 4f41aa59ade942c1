// App+User (Secure Application Model) credential: exchanges the refresh token kept in Key Vault through MSAL,
// writes the rotated refresh token back, and warns well before the 90-day inactivity expiry.
//
// The token is redeemed the way it was issued. The consent (src/setup/consent.ts) signs the user in with the device
// code flow as a PUBLIC client: it runs on an operator's machine, where no credential of the app registration exists
// (in Azure the app proves itself with the managed identity, which only Azure can use). Entra binds a refresh token
// to the kind of client that obtained it: a public one must be redeemed without client_secret / client_assertion, or
// the token endpoint answers invalid_client AADSTS700025 ("Client is public so neither 'client_assertion' nor
// 'client_secret' should be presented"). So this credential is a public client too, in every AUTH_MODE.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import {
  type AuthenticationResult,
  type Configuration,
  type INetworkModule,
  PublicClientApplication,
} from '@azure/msal-node';
import { ReconsentRequiredError } from './errors.js';
import type { SecretStore } from './secret-store.js';

export const PARTNER_CENTER_SCOPE = 'https://api.partnercenter.microsoft.com/.default';
/**
 * Refresh tokens lapse after 90 days without use (ref §8). The one definition: the credential's warning and the
 * RefreshTokenAge telemetry (src/telemetry/refresh-token-age.ts) both read it.
 */
export const REFRESH_TOKEN_LIFETIME_DAYS = 90;
const DAY_MS = 86_400_000;
/** Renew an access token this long before it expires. */
const EXPIRY_MARGIN_MS = 5 * 60_000;
/** Tag on the secret: when this refresh token was issued (written on rotation). */
export const ISSUED_AT_TAG = 'issuedAt';

export interface AuthLogger {
  warn(message: string, properties?: Record<string, string | number | boolean | undefined>): void;
}

export interface RefreshTokenCredentialOptions {
  tenantId: string;
  clientId: string;
  /** e.g. https://login.microsoftonline.com */
  authorityHost: string;
  secretStore: SecretStore;
  secretName: string;
  /** Warn when the refresh token is older than this many days (REFRESH_TOKEN_WARN_DAYS). */
  warnAfterDays?: number;
  logger?: AuthLogger;
  now?: () => number;
  /** Test and local-demo hooks: MSAL's network module and authority metadata (skip discovery). */
  networkClient?: INetworkModule;
  authorityMetadata?: string;
  cloudDiscoveryMetadata?: string;
}

/** OAuth errors and AADSTS codes that mean the refresh token can no longer be used. */
const RECONSENT_CODES = /AADSTS(50078|50076|700082|700084|70043|50173|70008|50133|65001)\b/;

/**
 * The stored token and the way it is redeemed disagree on the kind of client (public vs confidential). Entra reports
 * both as invalid_client, which is not a dead token; a fresh consent with this app's command fixes either.
 */
const CLIENT_KIND_MISMATCH: Record<string, string> = {
  AADSTS700025:
    'The stored App+User refresh token was issued to a public client (the device-code consent) but was redeemed with a ' +
    'client secret or assertion; Entra only accepts it without one (AADSTS700025, invalid_client)',
  AADSTS7000218:
    'The stored App+User refresh token cannot be redeemed without a client credential (AADSTS7000218, invalid_client): ' +
    'it was issued to a confidential client (for example a consent made with an app secret), or the app registration ' +
    'no longer allows public client flows (Authentication > Allow public client flows must be Yes)',
};

export class RefreshTokenCredential implements TokenCredential {
  readonly #options: RefreshTokenCredentialOptions;
  readonly #now: () => number;
  /** Access tokens by scope set; MSAL's refresh-token call never reads its own cache. */
  readonly #cached = new Map<string, AccessToken>();
  /** One exchange at a time: concurrent exchanges would each rotate the refresh token and race the write-back. */
  #exchanging: Promise<unknown> = Promise.resolve();
  #ageDays: number | undefined;

  constructor(options: RefreshTokenCredentialOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Age in days of the stored refresh token (from its issue tag, else the secret's update time). */
  async refreshTokenAgeDays(): Promise<number | undefined> {
    if (this.#ageDays === undefined) {
      const secret = await this.#options.secretStore.get(this.#options.secretName);
      if (secret) this.#ageDays = this.#age(secret);
    }
    return this.#ageDays;
  }

  async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    const requested = (Array.isArray(scopes) ? scopes : [scopes]).filter(Boolean);
    const scopeList = requested.length > 0 ? requested : [PARTNER_CENTER_SCOPE];
    const key = scopeList.join(' ');
    const fresh = () => {
      const cached = this.#cached.get(key);
      return cached && cached.expiresOnTimestamp - EXPIRY_MARGIN_MS > this.#now() ? cached : undefined;
    };
    const hit = fresh();
    if (hit) return hit;
    const exchange = this.#exchanging.then(() => fresh() ?? this.#exchange(scopeList, key));
    this.#exchanging = exchange.catch(() => undefined);
    return exchange;
  }

  async #exchange(scopes: string[], key: string): Promise<AccessToken> {
    const { secretStore, secretName } = this.#options;
    const secret = await secretStore.get(secretName);
    if (!secret?.value) throw new ReconsentRequiredError(`No refresh token in secret '${secretName}'`);
    this.#ageDays = this.#age(secret);
    this.#warnIfOld(this.#ageDays);

    const app = new PublicClientApplication(this.#msalConfig());
    let result: AuthenticationResult | null;
    try {
      result = await app.acquireTokenByRefreshToken({
        refreshToken: secret.value,
        scopes,
        forceCache: true,
      });
    } catch (error) {
      throw mapTokenError(error);
    }
    if (!result?.accessToken) throw new ReconsentRequiredError('The token endpoint returned no access token');

    const rotated = rotatedRefreshToken(app.getTokenCache().serialize(), this.#options.clientId);
    if (rotated && rotated !== secret.value) {
      try {
        await secretStore.set(secretName, rotated, { [ISSUED_AT_TAG]: new Date(this.#now()).toISOString() });
        this.#ageDays = 0;
      } catch (error) {
        // The access token is good and Entra keeps the previous refresh token valid, so the sync goes on; but an
        // operator must know, because the stored token keeps ageing towards its 90-day lapse until a write succeeds.
        this.#options.logger?.warn('Could not write the rotated App+User refresh token back to Key Vault', {
          secretName,
          error: (error as Error).message?.split('\n')[0]?.slice(0, 300),
        });
      }
    }
    const token: AccessToken = {
      token: result.accessToken,
      expiresOnTimestamp: result.expiresOn ? result.expiresOn.getTime() : this.#now() + 3_600_000,
      tokenType: 'Bearer',
    };
    this.#cached.set(key, token);
    return token;
  }

  #msalConfig(): Configuration {
    const { tenantId, clientId, authorityHost } = this.#options;
    const authority = `${authorityHost.replace(/\/+$/, '')}/${tenantId}`;
    return {
      auth: {
        // No client credential: the token was issued to a public client and must be redeemed as one (see the top).
        clientId,
        authority,
        ...(this.#options.authorityMetadata ? { authorityMetadata: this.#options.authorityMetadata } : {}),
        ...(this.#options.cloudDiscoveryMetadata
          ? { cloudDiscoveryMetadata: this.#options.cloudDiscoveryMetadata }
          : {}),
      },
      ...(this.#options.networkClient ? { system: { networkClient: this.#options.networkClient } } : {}),
    };
  }

  #age(secret: { updatedOn?: Date; createdOn?: Date; tags?: Record<string, string> }): number | undefined {
    const tagged = secret.tags?.[ISSUED_AT_TAG] ? Date.parse(secret.tags[ISSUED_AT_TAG]) : Number.NaN;
    const since = Number.isNaN(tagged) ? (secret.updatedOn ?? secret.createdOn)?.getTime() : tagged;
    return since === undefined ? undefined : Math.max(0, (this.#now() - since) / DAY_MS);
  }

  #warnIfOld(ageDays: number | undefined): void {
    const warnAfter = this.#options.warnAfterDays ?? 60;
    if (ageDays === undefined || ageDays < warnAfter) return;
    const daysLeft = Math.max(0, REFRESH_TOKEN_LIFETIME_DAYS - ageDays);
    this.#options.logger?.warn(
      `The App+User refresh token is ${Math.floor(ageDays)} days old; it lapses after ${REFRESH_TOKEN_LIFETIME_DAYS} ` +
        `days without renewal (about ${Math.floor(daysLeft)} left). If it is not rotated on the next run, re-run ` +
        '`npm run sync -- consent`.',
      {
        refreshTokenAgeDays: Math.floor(ageDays),
        daysLeft: Math.floor(daysLeft),
        secretName: this.#options.secretName,
      },
    );
  }
}

/** The refresh token MSAL cached for this client after the exchange (the rotated one, if the service rotated it). */
export function rotatedRefreshToken(serializedCache: string, clientId: string): string | undefined {
  const cache = JSON.parse(serializedCache) as {
    RefreshToken?: Record<string, { secret?: string; client_id?: string }>;
  };
  const entries = Object.values(cache.RefreshToken ?? {}).filter((e) => e.secret);
  const own = entries.filter((e) => !e.client_id || e.client_id === clientId);
  return (own.at(-1) ?? entries.at(-1))?.secret;
}

/** MSAL's error → a re-consent error when the token is dead, else the original (without any token in it). */
export function mapTokenError(error: unknown): Error {
  const e = error as { errorCode?: string; errorMessage?: string; subError?: string; message?: string };
  const text = `${e.errorCode ?? ''} ${e.subError ?? ''} ${e.errorMessage ?? e.message ?? ''}`;
  const aadsts = /AADSTS\d+/.exec(text)?.[0];
  const mismatch = aadsts ? CLIENT_KIND_MISMATCH[aadsts] : undefined;
  if (mismatch) return new ReconsentRequiredError(mismatch, aadsts);
  if (e.errorCode === 'invalid_grant' || RECONSENT_CODES.test(text) || e.subError === 'bad_token') {
    const reason = (e.errorMessage ?? e.message ?? '').split(/\r?\n/)[0]?.slice(0, 300);
    return new ReconsentRequiredError(
      `The token endpoint refused the App+User refresh token (${aadsts ?? e.errorCode ?? 'invalid_grant'}: ${reason})`,
      aadsts ?? e.errorCode,
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}
