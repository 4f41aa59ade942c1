// Every setting the app reads, parsed once with zod, with its default and a clear error.
// The names are Azure Functions app settings: the Bicep app settings set exactly these (test/infra checks both
// directions), `local.settings.json.example` uses no other names, and the README documents each one (test/config).
import { z } from 'zod';

const bool = z
  .union([z.boolean(), z.string()])
  .transform((v) => (typeof v === 'boolean' ? v : ['1', 'true', 'yes', 'on'].includes(v.trim().toLowerCase())));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v?.trim() ? v.trim() : undefined));
const yearMonth = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'expected YYYY-MM');
const httpUrl = z
  .string()
  .url()
  .transform((v) => v.replace(/\/+$/, ''));

/** How the app-only credential is obtained (see src/auth/). */
export const AUTH_MODES = [
  'client-secret',
  'certificate',
  'workload-identity',
  'static-token',
  'managed-identity',
] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** App setting name → schema. Keys are exactly the names in the Bicep app settings. */
export const settingsSchema = z.object({
  // Storage: a connection string, or the identity-based form the Functions host also uses.
  AzureWebJobsStorage: optionalString,
  AzureWebJobsStorage__blobServiceUri: optionalString,
  AzureWebJobsStorage__queueServiceUri: optionalString,
  AzureWebJobsStorage__tableServiceUri: optionalString,
  AzureWebJobsStorage__clientId: optionalString,
  AzureWebJobsStorage__credential: optionalString,
  INVOICE_CONTAINER: z.string().default('invoices'),
  LEDGER_TABLE: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'table names are 3-63 letters and digits')
    .default('invoiceledger'),

  // Services.
  PARTNER_CENTER_API_URL: httpUrl.default('https://api.partnercenter.microsoft.com'),
  GRAPH_API_URL: httpUrl.default('https://graph.microsoft.com'),

  // Auth (src/auth/). Secrets are Key Vault references in Azure, never literal values.
  AUTH_MODE: z.enum(AUTH_MODES).default('client-secret'),
  PARTNER_TENANT_ID: optionalString,
  PARTNER_CLIENT_ID: optionalString,
  PARTNER_CLIENT_SECRET: optionalString,
  PARTNER_CLIENT_CERTIFICATE_PATH: optionalString,
  MANAGED_IDENTITY_CLIENT_ID: optionalString,
  AUTHORITY_HOST: httpUrl.default('https://login.microsoftonline.com'),
  KEY_VAULT_URL: optionalString,
  REFRESH_TOKEN_SECRET_NAME: z.string().default('partner-center-refresh-token'),
  APP_USER_ENABLED: bool.default(true),
  REFRESH_TOKEN_WARN_DAYS: int(1, 89).default(60),
  PARTNER_CENTER_ACCESS_TOKEN: optionalString,
  GRAPH_ACCESS_TOKEN: optionalString,

  // Schedule and work limits.
  SYNC_SCHEDULE: z.string().default('0 0 */6 * * *'),
  HTTP_TIMEOUT_SECONDS: int(5, 900).default(180),
  HTTP_MAX_RETRIES: int(0, 20).default(6),
  PARTNER_CENTER_CONCURRENCY: int(1, 64).default(4),
  LINE_ITEM_PAGE_SIZE: int(1, 2000).default(2000),
  EXPORT_TIME_BUDGET_SECONDS: int(30, 3600).default(1200),
  MAX_DEQUEUE_COUNT: int(1, 100).default(5),
  STUCK_AFTER_MINUTES: int(5, 10080).default(120),

  // Routing between the v1 line-item API and the Graph v2 exports (issue: v2 routing).
  V2_RECONCILIATION_FROM: yearMonth.default('2024-02'),
  V2_USAGE_FROM: yearMonth.default('2022-09'),
  SETTLE_DEADLINE_HOURS: int(1, 24 * 60).default(72),
  SETTLE_WINDOW_DAYS: int(0, 365).default(45),

  // Links are followed only to these host patterns (comma-separated globs), plus the configured API hosts.
  ALLOWED_LINK_HOSTS: z.string().default('*.blob.core.windows.net,api.partnercenter.microsoft.com'),
  ALLOW_INSECURE_LOOPBACK: bool.default(false),
});

export type Settings = z.infer<typeof settingsSchema>;

/** The names of every setting the code reads (used by the settings-drift test against the Bicep). */
export const SETTING_NAMES = Object.keys(settingsSchema.shape) as (keyof Settings)[];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parse settings from an environment-like record (process.env, or `Values` of local.settings.json).
 * Unknown variables are ignored; invalid values fail with every problem listed at once.
 */
export function loadSettings(env: Record<string, string | undefined> = process.env): Settings {
  const picked: Record<string, string> = {};
  for (const name of SETTING_NAMES) {
    const value = env[name];
    if (value !== undefined && value !== '') picked[name] = value;
  }
  const parsed = settingsSchema.safeParse(picked);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new ConfigError(`Invalid app settings:\n${problems}`);
  }
  const settings = parsed.data;
  if (
    !settings.AzureWebJobsStorage &&
    !(
      settings.AzureWebJobsStorage__blobServiceUri &&
      settings.AzureWebJobsStorage__queueServiceUri &&
      settings.AzureWebJobsStorage__tableServiceUri
    )
  ) {
    throw new ConfigError(
      'Storage is not configured: set AzureWebJobsStorage to a connection string (UseDevelopmentStorage=true for Azurite), ' +
        'or set AzureWebJobsStorage__blobServiceUri, __queueServiceUri and __tableServiceUri for identity-based access.',
    );
  }
  return settings;
}

/** Queue names are fixed: the function registrations and the Bicep pre-create them (with `-poison` twins). */
export const QUEUES = {
  invoiceSync: 'invoice-sync',
  lineItemExport: 'lineitem-export',
} as const;
