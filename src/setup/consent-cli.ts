// Runs the consent from environment variables (the azd outputs), for use before the CLI's `consent` command
// exists:  set -a; eval "$(azd env get-values)"; set +a; npx tsx src/setup/consent-cli.ts [--open]
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ConsentOptions, type ConsentResult, runConsent } from './consent.js';

const REQUIRED = ['PARTNER_TENANT_ID', 'PARTNER_CLIENT_ID', 'KEY_VAULT_URL'] as const;

/** The consent options an environment (azd outputs or app settings) provides; throws listing what is missing. */
export function consentOptionsFromEnv(
  env: Record<string, string | undefined>,
  log: (message: string) => void,
  openBrowser = false,
): ConsentOptions {
  const missing = REQUIRED.filter((name) => !env[name]?.trim());
  if (missing.length > 0) {
    throw new Error(
      `Missing ${missing.join(', ')}. Run \`azd env get-values\` after \`azd provision\`, or set them by hand.`,
    );
  }
  return {
    tenantId: env.PARTNER_TENANT_ID!.trim(),
    clientId: env.PARTNER_CLIENT_ID!.trim(),
    keyVaultUrl: env.KEY_VAULT_URL!.trim(),
    authorityHost: env.AUTHORITY_HOST?.trim() || 'https://login.microsoftonline.com',
    secretName: env.REFRESH_TOKEN_SECRET_NAME?.trim() || 'partner-center-refresh-token',
    openBrowser,
    log,
  };
}

export async function consentFromEnv(
  env: Record<string, string | undefined> = process.env,
  log: (message: string) => void = (m) => console.log(m),
  openBrowser = false,
): Promise<ConsentResult> {
  return runConsent(consentOptionsFromEnv(env, log, openBrowser));
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  consentFromEnv(process.env, (m) => console.log(m), process.argv.includes('--open')).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    },
  );
}
