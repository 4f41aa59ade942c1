// A TokenCredential over an access token obtained elsewhere (static-token mode, for local runs).
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { StaticTokenError } from './errors.js';

/** The `exp` claim of a JWT, in ms since the epoch; undefined when the token is not a readable JWT. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export class StaticTokenCredential implements TokenCredential {
  readonly #token: string;
  readonly #expiresOn: number | undefined;
  readonly #now: () => number;

  constructor(
    /** The setting the token came from, for error messages. */
    readonly settingName: string,
    token: string | undefined,
    now: () => number = Date.now,
  ) {
    if (!token?.trim()) {
      throw new StaticTokenError(`AUTH_MODE=static-token needs ${settingName}: paste an access token for this API`);
    }
    this.#token = token.trim().replace(/^Bearer\s+/i, '');
    this.#expiresOn = jwtExpiry(this.#token);
    this.#now = now;
  }

  async getToken(_scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    const now = this.#now();
    if (this.#expiresOn !== undefined && this.#expiresOn <= now) {
      throw new StaticTokenError(
        `The access token in ${this.settingName} expired at ${new Date(this.#expiresOn).toISOString()}; get a new one`,
      );
    }
    // An opaque token has no readable expiry: trust it for an hour and let the API say 401 if it is stale.
    return { token: this.#token, expiresOnTimestamp: this.#expiresOn ?? now + 3_600_000, tokenType: 'Bearer' };
  }
}
