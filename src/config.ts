// Every setting the app reads, parsed once with zod, with its default and a clear error.
// The names are Azure Functions app settings: the Bicep app settings set exactly these (test/infra checks both
// directions), `local.settings.json.example` uses no other names, and the README documents each one (test/config).
import { z } from 'zod';
import { type HostConfig, readHostConfig } from './host-config.js';
import { redactText } from './http/redact.js';

// A switch is true/false/1/0 (any case); anything else is refused, never read as false.
const bool = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const text = v.trim().toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  ctx.addIssue({ code: 'custom', message: 'expected true, false, 1 or 0' });
  return z.NEVER;
});
const wholeNumber = (min: number, max: number) => `expected a whole number from ${min} to ${max}`;
const int = (min: number, max: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = typeof v === 'number' ? v : /^\s*-?\d+\s*$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: wholeNumber(min, max) });
      return z.NEVER;
    }
    return n;
  });
const decimal = (min: number, max: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = typeof v === 'number' ? v : /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isFinite(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `expected a number from ${min} to ${max}, e.g. 0.01` });
      return z.NEVER;
    }
    return n;
  });
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v?.trim() ? v.trim() : undefined));
const yearMonth = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'expected YYYY-MM');
const httpUrl = z
  .string()
  .refine(
    (v) => /^https?:\/\/[^/\s]/i.test(v.trim()) && URL.canParse(v.trim()),
    'expected an http(s) URL, e.g. https://host',
  )
  .transform((v) => v.trim().replace(/\/+$/, ''));

/**
 * A storage connection string as the Storage SDKs read it: `UseDevelopmentStorage=true`, or `Key=value;` pairs
 * naming the account (AccountName + AccountKey, or a SharedAccessSignature) or its endpoints.
 */
function connectionStringProblem(value: string): string | undefined {
  if (/^\s*UseDevelopmentStorage\s*=\s*true\s*;?\s*$/i.test(value)) return undefined;
  const pairs = new Map<string, string>();
  for (const segment of value.split(';')) {
    if (!segment.trim()) continue;
    const at = segment.indexOf('=');
    if (at <= 0) return `"${segment.trim().slice(0, 40)}" is not Key=value`;
    pairs.set(segment.slice(0, at).trim().toLowerCase(), segment.slice(at + 1).trim());
  }
  const hasEndpoint = ['blobendpoint', 'queueendpoint', 'tableendpoint'].some((k) => pairs.has(k));
  if (!pairs.has('accountname') && !hasEndpoint) return 'it names no AccountName and no BlobEndpoint';
  if (!pairs.has('accountkey') && !pairs.has('sharedaccesssignature'))
    return 'it has no AccountKey and no SharedAccessSignature';
  for (const key of ['blobendpoint', 'queueendpoint', 'tableendpoint']) {
    const url = pairs.get(key);
    if (url !== undefined && !URL.canParse(url)) return `its ${key} is not a URL`;
  }
  return undefined;
}
const connectionString = optionalString.superRefine((v, ctx) => {
  const problem = v === undefined ? undefined : connectionStringProblem(v);
  if (problem) {
    ctx.addIssue({
      code: 'custom',
      message:
        `not a storage connection string (${problem}): expected UseDevelopmentStorage=true (Azurite) or ` +
        '"DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;EndpointSuffix=core.windows.net"',
    });
  }
});

/** How the app-only credential is obtained (see src/auth/). */
export const AUTH_MODES = ['client-secret', 'certificate', 'workload-identity', 'static-token'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** App setting name → schema. Keys are exactly the names in the Bicep app settings. */
export const settingsSchema = z.object({
  // Storage: a connection string, or the identity-based form the Functions host also uses.
  AzureWebJobsStorage: connectionString,
  AzureWebJobsStorage__blobServiceUri: httpUrl.optional(),
  AzureWebJobsStorage__queueServiceUri: httpUrl.optional(),
  AzureWebJobsStorage__tableServiceUri: httpUrl.optional(),
  AzureWebJobsStorage__clientId: optionalString,
  AzureWebJobsStorage__credential: optionalString,
  INVOICE_CONTAINER: z
    .string()
    .regex(
      /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/,
      'container names are 3-63 lowercase letters, digits and single dashes, starting and ending with a letter or digit',
    )
    .default('invoices'),
  LEDGER_TABLE: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'table names are 3-63 letters and digits, starting with a letter')
    .refine((v) => v.toLowerCase() !== 'tables', '"tables" is a reserved table name')
    .default('invoiceledger'),

  // Services.
  PARTNER_CENTER_API_URL: httpUrl.default('https://api.partnercenter.microsoft.com'),
  GRAPH_API_URL: httpUrl.default('https://graph.microsoft.com'),

  // Auth (src/auth/). Secrets are Key Vault references in Azure, never literal values.
  AUTH_MODE: z
    .string()
    .transform((v, ctx) => {
      const mode = v.trim().toLowerCase();
      if ((AUTH_MODES as readonly string[]).includes(mode)) return mode as AuthMode;
      ctx.addIssue({
        code: 'custom',
        message:
          `expected one of ${AUTH_MODES.join(', ')}` +
          (mode === 'managed-identity'
            ? ': Partner Center only accepts tokens of an app registration in the partner tenant, and a managed ' +
              'identity is not one; workload-identity makes the managed identity (MANAGED_IDENTITY_CLIENT_ID) a ' +
              'federated credential of the app registration (PARTNER_CLIENT_ID), so no secret is stored'
            : ''),
      });
      return z.NEVER;
    })
    .default('client-secret'),
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
  /** Messages the local runner (`csp-invoice-sync run`) handles at once; in Azure host.json `batchSize` governs. */
  LOCAL_CONCURRENCY: int(1, 64).default(4),
  LINE_ITEM_PAGE_SIZE: int(1, 2000).default(2000),
  EXPORT_TIME_BUDGET_SECONDS: int(30, 3600).default(1200),
  /** A part's lease in the ledger: renewed while its export works, so a dead worker's part is free within this. */
  LEASE_SECONDS: int(15, 600).default(60),
  STUCK_AFTER_MINUTES: int(5, 10080).default(120),
  /** Failed invoices and parts are retried by the timer (1 h, 2 h, 4 h ... at most 24 h apart) for this long. */
  FAILED_RETRY_DAYS: int(0, 90).default(7),
  /** Line items may differ from the invoice's totalCharges by at most this, in the invoice currency. */
  RECONCILIATION_TOLERANCE: decimal(0, 1_000_000).default(0.01),
  // Bounds on what one response may grow to; a response beyond them fails with a clear error, never exhausts memory.
  MAX_LINE_BYTES: int(1024, 1024 ** 3).default(4 * 1024 ** 2),
  MAX_PAGE_BYTES: int(64 * 1024, 512 * 1024 ** 2).default(256 * 1024 ** 2),
  MAX_PDF_BYTES: int(1024, 16 * 1024 ** 3).default(512 * 1024 ** 2),

  // Routing between the v1 line-item API and the Graph v2 exports (issue: v2 routing).
  V2_RECONCILIATION_FROM: yearMonth.default('2024-02'),
  V2_USAGE_FROM: yearMonth.default('2022-09'),
  SETTLE_DEADLINE_HOURS: int(1, 24 * 60).default(72),
  SETTLE_WINDOW_DAYS: int(0, 365).default(45),

  // Links are followed only to these host patterns (comma-separated globs), plus the configured API hosts.
  ALLOWED_LINK_HOSTS: z.string().default('*.blob.core.windows.net,api.partnercenter.microsoft.com'),
  ALLOW_INSECURE_LOOPBACK: bool.default(false),

  // Month to date: daily snapshots of the unbilled exports (src/sync/unbilled/). An empty schedule turns them off.
  UNBILLED_SCHEDULE: z.string().trim().default('0 30 1 * * *'),
  /** Comma-separated ISO currency codes; absent: the currencies of the ledger's invoices of the last 3 months. */
  UNBILLED_CURRENCIES: optionalString.pipe(
    z
      .string()
      .regex(/^[A-Za-z]{3}(\s*,\s*[A-Za-z]{3})*$/, 'expected ISO currency codes separated by commas, e.g. USD,EUR')
      .transform((v) => [...new Set(v.split(',').map((c) => c.trim().toUpperCase()))])
      .optional(),
  ),
});

/** The app settings, plus the host.json facts they are checked against (one owner: host.json). */
export type Settings = z.infer<typeof settingsSchema> & { readonly host: HostConfig };

/** Settings for which an empty value means "off" rather than "use the default". */
const EMPTY_MEANS_OFF: ReadonlySet<string> = new Set(['UNBILLED_SCHEDULE']);

/** The names of every setting the code reads (used by the settings-drift test against the Bicep). */
export const SETTING_NAMES = Object.keys(settingsSchema.shape) as (keyof z.infer<typeof settingsSchema>)[];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parse settings from an environment-like record (process.env, or `Values` of local.settings.json).
 * Unknown variables are ignored; invalid values fail with every problem listed at once.
 */
export function loadSettings(
  env: Record<string, string | undefined> = process.env,
  host: HostConfig = readHostConfig(),
): Settings {
  const picked: Record<string, string> = {};
  for (const name of SETTING_NAMES) {
    const value = env[name];
    if (value !== undefined && (value !== '' || EMPTY_MEANS_OFF.has(name))) picked[name] = value;
  }
  const parsed = settingsSchema.safeParse(picked);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => {
        const name = i.path.join('.');
        const value = picked[name];
        return `  ${name}: ${i.message}${value === undefined ? '' : ` (got ${JSON.stringify(settingValueForMessage(name, value))})`}`;
      })
      .join('\n');
    throw new ConfigError(`Invalid app settings:\n${problems}`);
  }
  const settings = { ...parsed.data, host };
  checkAgainstHost(settings);
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

/** Settings whose whole value is a credential: never echoed. */
const SECRET_SETTINGS = new Set(['PARTNER_CLIENT_SECRET', 'PARTNER_CENTER_ACCESS_TOKEN', 'GRAPH_ACCESS_TOKEN']);

/**
 * A setting's value as an error message may show it: secrets as their length only, a connection string with its
 * AccountKey / SharedAccessSignature removed, long values cut, anything token-like redacted.
 */
export function settingValueForMessage(name: string, value: string): string {
  if (SECRET_SETTINGS.has(name)) return `<redacted, ${value.length} characters>`;
  let shown = value;
  if (name === 'AzureWebJobsStorage') {
    shown = shown.replace(/((?:AccountKey|SharedAccessSignature)\s*=)[^;]*/gi, '$1REDACTED');
  }
  shown = redactText(shown);
  return shown.length > 120 ? `${shown.slice(0, 117)}...` : shown;
}

/** Seconds kept free at the end of an invocation, between its last page and the host's functionTimeout. */
export const FUNCTION_TIMEOUT_MARGIN_SECONDS = 60;

/**
 * An export hands over to a continuation message once EXPORT_TIME_BUDGET_SECONDS is used; the page it is
 * fetching then may still take HTTP_TIMEOUT_SECONDS for each of its attempts. All of it must end before the host's
 * functionTimeout kills the invocation, or the page is fetched (and its continuation token sent) again.
 */
function checkAgainstHost(settings: Settings): void {
  const attempts = settings.HTTP_MAX_RETRIES + 1;
  const worstPage = settings.HTTP_TIMEOUT_SECONDS * attempts;
  const limit = settings.host.functionTimeoutSeconds - FUNCTION_TIMEOUT_MARGIN_SECONDS;
  if (settings.EXPORT_TIME_BUDGET_SECONDS + worstPage > limit) {
    throw new ConfigError(
      `Invalid app settings:\n  EXPORT_TIME_BUDGET_SECONDS (${settings.EXPORT_TIME_BUDGET_SECONDS}) plus the worst case of one ` +
        `page, HTTP_TIMEOUT_SECONDS × attempts (${settings.HTTP_TIMEOUT_SECONDS} × ${attempts} = ${worstPage} s, ` +
        `HTTP_MAX_RETRIES=${settings.HTTP_MAX_RETRIES}), must end ${FUNCTION_TIMEOUT_MARGIN_SECONDS} s before functionTimeout ` +
        `(${settings.host.functionTimeoutSeconds} s in ${settings.host.source}): lower the budget, the timeout or the retries, ` +
        'or raise functionTimeout in host.json.',
    );
  }
}

/** Queue names are fixed: the function registrations and the Bicep pre-create them (with `-poison` twins). */
export const QUEUES = {
  invoiceSync: 'invoice-sync',
  lineItemExport: 'lineitem-export',
} as const;
