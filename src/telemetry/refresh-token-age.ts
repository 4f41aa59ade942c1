// Reports the App+User refresh token's age (it lapses after 90 days unused) as a `RefreshTokenAge` event whenever
// the App+User credential hands out a token, at most once per interval, so a dashboard can chart the countdown.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { REFRESH_TOKEN_LIFETIME_DAYS } from '../auth/refresh-token.js';
import type { SyncLogger } from './logger.js';

// One owner: the App+User credential (src/auth/refresh-token.ts) defines the lifetime; re-exported for callers of
// this module.
export { REFRESH_TOKEN_LIFETIME_DAYS };

export interface RefreshTokenAgeOptions {
  /** The age in days of the stored refresh token (Credentials.refreshTokenAgeDays), undefined when unknown. */
  ageDays(): Promise<number | undefined>;
  log: Pick<SyncLogger, 'event'>;
  /** REFRESH_TOKEN_WARN_DAYS, reported with the age so a query can compare without the app settings. */
  warnAfterDays: number;
  /** Minimum time between two events (default one hour). */
  intervalMs?: number;
  now?: () => number;
}

/** The same credential, reporting the refresh token's age after a successful token request. */
export function withRefreshTokenAge(credential: TokenCredential, options: RefreshTokenAgeOptions): TokenCredential {
  const intervalMs = options.intervalMs ?? 3_600_000;
  const now = options.now ?? Date.now;
  let lastReported: number | undefined;
  return {
    async getToken(scopes: string | string[], getTokenOptions?: GetTokenOptions): Promise<AccessToken | null> {
      const token = await credential.getToken(scopes, getTokenOptions);
      const at = now();
      if (token && (lastReported === undefined || at - lastReported >= intervalMs)) {
        lastReported = at;
        try {
          const ageDays = await options.ageDays();
          if (ageDays !== undefined) {
            options.log.event('RefreshTokenAge', {
              ageDays: Math.round(ageDays * 10) / 10,
              warnAfterDays: options.warnAfterDays,
              daysLeft: Math.max(0, Math.floor(REFRESH_TOKEN_LIFETIME_DAYS - ageDays)),
            });
          }
        } catch {
          // The age is telemetry; reading it must never fail a token request.
        }
      }
      return token;
    },
  };
}
