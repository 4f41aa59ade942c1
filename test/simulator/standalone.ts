// The standalone simulator (main.ts) as a function, so its tests can run it in-process: parse the flags, start the
// simulator (and optionally Azurite), and build the banner with the URLs, the Azurite connection string and app
// settings whose tokens the app accepts now, whatever today's date is.
import { parseArgs } from 'node:util';
import { type Azurite, startAzurite } from '../support/azurite.js';
import type { BillingPeriodFields } from './dataset.js';
import type { NextLinkStyle } from './http.js';
import { type Simulator, type SimulatorOptions, startSimulator } from './index.js';

export const USAGE = [
  'Usage: tsx test/simulator/main.ts [options]',
  '  --port N                   first port (Partner Center N, Graph N+1, blob N+2, token N+3); default: free ports',
  '  --seed N                   dataset seed (default 1)',
  '  --rows-per-part N          rows of generated parts (default 25)',
  '  --start-time ISO           pin the simulator clock start (default: the real current time)',
  '  --token-hours N            lifetime of the printed access tokens (default 12)',
  '  --azurite                  also start Azurite (from node_modules, temp folder) and print its connection string',
  '  --latency-ms N             added to every Partner Center / Graph response',
  '  --pdf-link-mode M          signed (default) | relative',
  '  --manifest-mode M          link (default) | inline | both',
  '  --data-format F            v2 manifest dataFormat (default compressedJSON)',
  '  --item-count M             v2 per-blob ItemCount: omit (default) | exact | lie',
  '  --next-link-style S        relative (default) | relativeV1 | absolute',
  '  --billing-period-fields F  byIdOnly (default) | both | listOnly | neither',
  '  --amendments M             nested (default) | both (also at the top level of the list)',
  '  --single-use-seek-tokens   accept each continuation token once',
  '  --no-auth                  accept requests without a bearer token',
  '  --app-only-ok              let app-only tokens fetch invoices by id, statements and receipts',
  '  --bom                      prefix Partner Center JSON with a UTF-8 BOM',
  '  --malformed-next-links     emit the docs-style malformed next links',
  '',
].join('\n');

export interface Standalone {
  sim: Simulator;
  azurite?: Azurite;
  /** What main.ts prints: URLs, clock, the app settings (with tokens) and the invoices. */
  banner: string;
  /** The settings of the banner, by name. */
  settings: Record<string, string>;
  stop(): Promise<void>;
}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new Error(`--${flag} must be one of ${allowed.join(', ')}, not ${value}`);
  }
  return value as T;
}

function int(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`--${flag} must be a whole number, not ${value}`);
  return Number(value);
}

/** Parses main.ts flags; `help` means print USAGE and exit. */
export function parseStandaloneArgs(args: string[]): {
  help: boolean;
  options: SimulatorOptions;
  tokenHours: number;
  azurite: boolean;
} {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      seed: { type: 'string' },
      'rows-per-part': { type: 'string' },
      'start-time': { type: 'string' },
      'token-hours': { type: 'string' },
      azurite: { type: 'boolean' },
      'latency-ms': { type: 'string' },
      'pdf-link-mode': { type: 'string' },
      'manifest-mode': { type: 'string' },
      'data-format': { type: 'string' },
      'item-count': { type: 'string' },
      'next-link-style': { type: 'string' },
      'billing-period-fields': { type: 'string' },
      amendments: { type: 'string' },
      'single-use-seek-tokens': { type: 'boolean' },
      'no-auth': { type: 'boolean' },
      'app-only-ok': { type: 'boolean' },
      bom: { type: 'boolean' },
      'malformed-next-links': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const startText = values['start-time'];
  const startTime = startText === undefined ? Date.now() : Date.parse(startText);
  if (Number.isNaN(startTime)) throw new Error(`--start-time must be an ISO date, not ${startText}`);
  const tokenHours = int('token-hours', values['token-hours']) ?? 12;
  if (tokenHours < 1) throw new Error('--token-hours must be at least 1');
  const options: SimulatorOptions = {
    port: int('port', values.port),
    seed: int('seed', values.seed),
    // The real current time unless pinned: tokens the simulator issues are then valid for the app, which checks
    // static tokens against the real clock.
    startTime,
    dataset: {
      rowsPerPart: int('rows-per-part', values['rows-per-part']),
      billingPeriodFields: oneOf<BillingPeriodFields>('billing-period-fields', values['billing-period-fields'], [
        'byIdOnly',
        'both',
        'listOnly',
        'neither',
      ]),
      amendments: oneOf('amendments', values.amendments, ['nested', 'both'] as const),
    },
    latencyMs: int('latency-ms', values['latency-ms']),
    pdfLinkMode: oneOf('pdf-link-mode', values['pdf-link-mode'], ['signed', 'relative'] as const),
    nextLinkStyle: oneOf<NextLinkStyle>('next-link-style', values['next-link-style'], [
      'relative',
      'relativeV1',
      'absolute',
    ]),
    seekTokens: { singleUse: values['single-use-seek-tokens'] ?? false },
    v2: {
      manifestMode: oneOf('manifest-mode', values['manifest-mode'], ['link', 'inline', 'both'] as const),
      dataFormat: values['data-format'],
      itemCount: oneOf('item-count', values['item-count'], ['omit', 'exact', 'lie'] as const),
    },
    requireAuth: !values['no-auth'],
    enforceAppUser: !values['app-only-ok'],
    bom: values.bom ?? false,
    malformedNextLinks: values['malformed-next-links'] ?? false,
  };
  return { help: values.help ?? false, options, tokenHours, azurite: values.azurite ?? false };
}

export async function startStandalone(args: string[]): Promise<Standalone> {
  const parsed = parseStandaloneArgs(args);
  const sim = await startSimulator(parsed.options);
  let azurite: Azurite | undefined;
  try {
    if (parsed.azurite) azurite = await startAzurite();
  } catch (error) {
    await sim.stop();
    throw error;
  }
  // The simulator checks a token against its clock, the app against the real one: valid on both for tokenHours.
  const realNow = Date.now();
  const simNow = sim.clock.now();
  const ttlSeconds = parsed.tokenHours * 3600 + Math.max(0, Math.ceil((realNow - simNow) / 1000));
  const validUntil = new Date(Math.min(realNow, simNow) + ttlSeconds * 1000).toISOString();
  const settings: Record<string, string> = {
    AzureWebJobsStorage: azurite?.connectionString ?? 'UseDevelopmentStorage=true',
    PARTNER_CENTER_API_URL: sim.partnerCenterUrl,
    GRAPH_API_URL: sim.graphUrl,
    AUTH_MODE: 'static-token',
    // App+User (a delegated token: `scp`), so it also serves get-by-id, statements and receipts.
    PARTNER_CENTER_ACCESS_TOKEN: sim.issueToken({ audience: 'partnercenter', appUser: true, ttlSeconds }),
    GRAPH_ACCESS_TOKEN: sim.issueToken({ audience: 'graph', ttlSeconds }),
    ALLOW_INSECURE_LOOPBACK: 'true',
  };
  const pinned = Math.abs(simNow - realNow) > 5_000;
  const banner = [
    'Partner Center + Graph simulator running:',
    `  Partner Center:  ${sim.partnerCenterUrl}/v1/invoices`,
    `  Graph:           ${sim.graphUrl}/v1.0/reports/partners/billing/...`,
    `  blob host:       ${sim.blobUrl}`,
    `  token endpoint:  ${sim.authorityUrl}/{tenant}/oauth2/v2.0/token (client_credentials with any secret)`,
    `  simulator clock: ${new Date(simNow).toISOString()}${pinned ? ' (pinned by --start-time; runs on from there)' : ' (real time)'}`,
    azurite
      ? `  Azurite:         ${azurite.blobEndpoint} (data in ${azurite.location}, removed on stop)`
      : '  Azurite:         not started: run `npx azurite --silent --skipApiVersionCheck --disableTelemetry --location .azurite` (default ports), or pass --azurite',
    '',
    `App settings (environment or local.settings.json "Values"); the tokens are valid until ${validUntil}:`,
    ...Object.entries(settings).map(([name, value]) => `  ${name}=${value}`),
    '',
    'PARTNER_CENTER_ACCESS_TOKEN is App+User (scp): by-id, statements and receipts need that; an app-only token',
    '(roles, e.g. from the token endpoint) gets 403 code 2032 there unless the simulator runs with --app-only-ok.',
    '',
    `Invoices: ${sim.dataset
      .invoices()
      .map((s) => s.id)
      .join(', ')}`,
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
  return {
    sim,
    azurite,
    banner,
    settings,
    async stop() {
      await sim.stop();
      await azurite?.stop();
    },
  };
}
