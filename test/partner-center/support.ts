// Test wiring for the v1 client against the simulator: a credential over `sim.issueToken` and fast retry settings.
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { PartnerCenterClient, type PartnerCenterClientOptions } from '../../src/partner-center/index.js';
import type { Simulator } from '../simulator/index.js';

/** Counts getToken calls, so tests can see the library's token cache at work. */
export function simCredential(sim: Simulator, appUser: boolean): TokenCredential & { calls: number } {
  const credential = {
    calls: 0,
    async getToken(): Promise<AccessToken> {
      credential.calls++;
      return {
        token: sim.issueToken({ audience: 'partnercenter', appUser, ttlSeconds: 3600 }),
        expiresOnTimestamp: Date.now() + 3600_000,
      };
    },
  };
  return credential;
}

export function simClient(sim: Simulator, options: Partial<PartnerCenterClientOptions> = {}): PartnerCenterClient {
  const blobOrigin = new URL(sim.blobUrl).origin;
  return new PartnerCenterClient({
    baseUrl: sim.partnerCenterUrl,
    credential: simCredential(sim, false),
    appUserCredential: simCredential(sim, true),
    retryDelayInMs: 2,
    maxRetryDelayInMs: 10,
    maxRetryAfterMs: 5_000,
    timeoutMs: 5_000,
    isAllowedLink: (url) => url.origin === blobOrigin,
    ...options,
  });
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}
