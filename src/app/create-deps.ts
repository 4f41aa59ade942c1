// Builds the jobs' dependencies from the app settings: credentials per operation, the two API clients (links
// restricted by the allow-list) and storage. Overrides exist for tests and the local demo only.
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { type CredentialOptions, type Credentials, createCredentials } from '../auth/index.js';
import type { Settings } from '../config.js';
import { GraphBillingClient } from '../graph/index.js';
import { linkPolicy } from '../http/link-policy.js';
import { PartnerCenterClient } from '../partner-center/index.js';
import { createStorage } from '../storage/index.js';
import type { SyncDeps } from '../sync/deps.js';
import { correlatingLogger, httpRequestEvents, redactingLogger, withRefreshTokenAge } from '../telemetry/index.js';
import { consoleLogger, type SyncLogger } from '../telemetry/logger.js';

export interface DepsOverrides {
  log?: SyncLogger;
  now?: () => number;
  credentialOptions?: CredentialOptions;
  /** Replace the credentials entirely (tests). */
  credentials?: { partnerCenterApp: TokenCredential; partnerCenterAppUser?: TokenCredential; graph: TokenCredential };
  httpClient?: HttpClient;
  /** Shorter retry delays for tests; production uses the library defaults with jitter. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Seconds to wait before polling a v2 export that gave no Retry-After (default 30; the simulator runs use 1). */
  graphPollSeconds?: number;
  /** Minimum time between two RefreshTokenAge events (default one hour). */
  refreshTokenAgeIntervalMs?: number;
  /** First retry delay after v2 "no data yet" (default 30 s). */
  v2NoDataBaseSeconds?: number;
}

export async function createSyncDeps(settings: Settings, overrides: DepsOverrides = {}): Promise<SyncDeps> {
  // Every line is redacted before it leaves, and carries its invoice's correlation id when one is known.
  const log = redactingLogger(correlatingLogger(overrides.log ?? consoleLogger()));
  const created =
    overrides.credentials ??
    createCredentials(settings, {
      logger: { warn: (message, properties) => log.warn(message, properties) },
      ...overrides.credentialOptions,
    });
  const tokenAge = 'refreshTokenAgeDays' in created ? (created as Credentials) : undefined;
  const credentials = {
    ...created,
    partnerCenterAppUser:
      created.partnerCenterAppUser && tokenAge
        ? withRefreshTokenAge(created.partnerCenterAppUser, {
            ageDays: () => tokenAge.refreshTokenAgeDays(),
            log,
            warnAfterDays: settings.REFRESH_TOKEN_WARN_DAYS,
            intervalMs: overrides.refreshTokenAgeIntervalMs,
            now: overrides.now,
          })
        : created.partnerCenterAppUser,
  };
  const onRequestCompleted = httpRequestEvents(log);
  const isAllowedLink = linkPolicy(settings);
  const timeoutMs = settings.HTTP_TIMEOUT_SECONDS * 1000;
  const partnerCenter = new PartnerCenterClient({
    baseUrl: settings.PARTNER_CENTER_API_URL,
    credential: credentials.partnerCenterApp,
    appUserCredential: credentials.partnerCenterAppUser,
    timeoutMs,
    maxRetries: settings.HTTP_MAX_RETRIES,
    isAllowedLink,
    allowInsecureLoopback: settings.ALLOW_INSECURE_LOOPBACK,
    onRequestCompleted,
    maxPageBytes: settings.MAX_PAGE_BYTES,
    maxPdfBytes: settings.MAX_PDF_BYTES,
    ...(overrides.retryDelayMs !== undefined ? { retryDelayInMs: overrides.retryDelayMs } : {}),
    ...(overrides.maxRetryDelayMs !== undefined ? { maxRetryDelayInMs: overrides.maxRetryDelayMs } : {}),
    ...(overrides.httpClient ? { httpClient: overrides.httpClient } : {}),
  });
  const graph = new GraphBillingClient({
    baseUrl: settings.GRAPH_API_URL,
    credential: credentials.graph,
    isAllowedLink,
    allowInsecureLoopback: settings.ALLOW_INSECURE_LOOPBACK,
    onRequestCompleted,
    ...(overrides.retryDelayMs !== undefined ? { retryDelayInMs: overrides.retryDelayMs } : {}),
    ...(overrides.maxRetryDelayMs !== undefined ? { maxRetryDelayInMs: overrides.maxRetryDelayMs } : {}),
    ...(overrides.graphPollSeconds !== undefined ? { defaultRetryAfterSeconds: overrides.graphPollSeconds } : {}),
    maxLineBytes: settings.MAX_LINE_BYTES,
    maxPageBytes: settings.MAX_PAGE_BYTES,
    timeoutMs,
    maxRetries: settings.HTTP_MAX_RETRIES,
    ...(overrides.httpClient ? { httpClient: overrides.httpClient } : {}),
  });
  return {
    settings,
    partnerCenter,
    graph,
    storage: createStorage(settings),
    log,
    now: overrides.now ?? Date.now,
    ...(overrides.v2NoDataBaseSeconds !== undefined ? { v2NoDataBaseSeconds: overrides.v2NoDataBaseSeconds } : {}),
  };
}
