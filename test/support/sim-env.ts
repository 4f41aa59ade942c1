// App settings (and test-only dependency overrides) that point the real app at a running simulator and Azurite.
// Shared by the demo, the end-to-end tests and the benchmark, so all three run the same configuration.
import type { DepsOverrides } from '../../src/app/create-deps.js';
import { type HostConfig, readHostConfig } from '../../src/host-config.js';
import type { Simulator } from '../simulator/index.js';
import type { Azurite } from './azurite.js';

export interface SimulatorEnvironment {
  settings: Record<string, string>;
  overrides: DepsOverrides;
}

export async function simulatorEnvironment(
  sim: Simulator,
  azurite: Azurite,
  extra: Record<string, string> = {},
): Promise<SimulatorEnvironment> {
  // The simulator's clock starts on a fixed date; the app checks a static token's expiry against the real clock.
  // Cover the gap between the two, plus a week, so the same tokens stay valid whenever the tests run.
  const week = 7 * 24 * 3600 + Math.max(0, Math.ceil((Date.now() - sim.clock.now()) / 1000));
  return {
    settings: {
      AzureWebJobsStorage: azurite.connectionString,
      PARTNER_CENTER_API_URL: sim.partnerCenterUrl,
      GRAPH_API_URL: sim.graphUrl,
      // A token from elsewhere, as a partner would paste one for a local run (static-token mode).
      AUTH_MODE: 'static-token',
      PARTNER_CENTER_ACCESS_TOKEN: sim.issueToken({ audience: 'partnercenter', appUser: true, ttlSeconds: week }),
      GRAPH_ACCESS_TOKEN: sim.issueToken({ audience: 'graph', ttlSeconds: week }),
      // The simulator's hosts are plain http on loopback; production links must be https to allow-listed hosts.
      ALLOW_INSECURE_LOOPBACK: 'true',
      LOCAL_CONCURRENCY: '4',
      ...extra,
    },
    // The simulator sends no Retry-After when an export starts; poll after 1 s instead of production's 30 s.
    overrides: { graphPollSeconds: 1 },
  };
}

/** The app's host.json with some values changed, e.g. fewer deliveries before poison so a test ends sooner. */
export function hostWith(changes: Partial<HostConfig>): HostConfig {
  return { ...readHostConfig(), ...changes, source: `host.json with ${JSON.stringify(changes)} (test)` };
}
