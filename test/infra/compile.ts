// Compiles infra/ with the real Bicep CLI (scripts/bicep.ts finds it) once per test run: `bicep build` of main.bicep,
// `bicep lint` of every .bicep file, `bicep lint` of a canary file full of mistakes (proof the rules fire), and
// `bicep snapshot` of main.bicep with two parameter sets, which runs the ARM template engine over the compiled JSON
// and predicts every resource with its properties evaluated (types, API versions and values as ARM sees them).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BicepNotFoundError, findBicep } from '../../scripts/bicep.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const INFRA_DIR = join(ROOT, 'infra');

export interface CliRun {
  args: string[];
  status: number;
  stdout: string;
  stderr: string;
}

export interface InfraBuild {
  /** Set when no Bicep CLI could be found or started: the one line saying how to get one. */
  error?: string;
  cli?: { version: string; source: string; path: string };
  dir: string;
  build?: CliRun;
  lint?: CliRun;
  canary?: CliRun;
  /** Paths of the compiled template and of the snapshots, by parameter set. */
  templatePath: string;
  snapshots: Record<SnapshotName, { run?: CliRun; path: string }>;
  canaryPath: string;
}

/** Deployment context of the snapshots (fixed, so every value is reproducible). */
export const SNAPSHOT_SCOPE = {
  tenantId: '00000000-0000-0000-0000-00000000000a',
  subscriptionId: '00000000-0000-0000-0000-00000000000b',
  location: 'swedencentral',
};

/** Parameter sets: what `azd up` passes by default, and the optional features switched on. */
export const SNAPSHOT_PARAMS = {
  defaults: {
    environmentName: 'ci',
    location: 'swedencentral',
    partnerTenantId: '00000000-0000-0000-0000-000000000001',
    partnerClientId: '00000000-0000-0000-0000-000000000002',
    principalId: '00000000-0000-0000-0000-000000000003',
    alertEmail: 'ops@partner.example',
  },
  options: {
    environmentName: 'ci-options',
    location: 'swedencentral',
    partnerTenantId: '00000000-0000-0000-0000-000000000001',
    partnerClientId: '00000000-0000-0000-0000-000000000002',
    principalId: '',
    authMode: 'client-secret',
    immutabilityDays: 2555,
    unbilledRetentionDays: 30,
  },
} as const;
export type SnapshotName = keyof typeof SNAPSHOT_PARAMS;

/**
 * One file that breaks each security rule bicepconfig.json raises to error, plus mistakes only the compiler sees
 * (an unknown property, an API version that does not exist, an unused parameter).
 */
export const CANARY = `param location string = resourceGroup().location
param adminPassword string
@secure()
param secretWithDefault string = 'not-a-secret-default'
param unusedThing string = 'x'

resource st 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: 'stcanary'
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAcess: false
  }
}

resource future 'Microsoft.Storage/storageAccounts@2099-01-01' = {
  name: 'stfuture'
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
}

resource vm 'Microsoft.Compute/virtualMachines@2024-07-01' = {
  name: 'vmcanary'
  location: location
  properties: {
    osProfile: {
      computerName: 'vm'
      adminUsername: 'azureadmin'
      adminPassword: adminPassword
    }
  }
}

output endpoint string = 'https://management.azure.com/'
output keys string = st.listKeys().keys[0].value
output secret string = secretWithDefault
`;

function runAsync(path: string, args: string[], cwd: string): Promise<CliRun> {
  return new Promise((done) => {
    execFile(
      path,
      args,
      {
        cwd,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' },
      },
      (error, stdout, stderr) => {
        const code =
          error && typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 0;
        done({ args, status: error ? code || 1 : 0, stdout, stderr });
      },
    );
  });
}

function bicepparam(dir: string, name: SnapshotName): string {
  const file = join(dir, `${name}.bicepparam`);
  const using = relative(dir, join(INFRA_DIR, 'main.bicep')).replaceAll('\\', '/');
  const lines = [`using '${using}'`];
  for (const [key, value] of Object.entries(SNAPSHOT_PARAMS[name]))
    lines.push(`param ${key} = ${JSON.stringify(value).replaceAll('"', "'")}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

export async function compileInfra(): Promise<InfraBuild> {
  const dir = mkdtempSync(join(tmpdir(), 'infra-build-'));
  const canaryDir = join(dir, 'canary');
  mkdirSync(canaryDir);
  const canaryPath = join(canaryDir, 'canary.bicep');
  writeFileSync(canaryPath, CANARY);
  const result: InfraBuild = {
    dir,
    templatePath: join(dir, 'main.json'),
    canaryPath,
    snapshots: {
      defaults: { path: join(dir, 'defaults.snapshot.json') },
      options: { path: join(dir, 'options.snapshot.json') },
    },
  };
  let cli: ReturnType<typeof findBicep>;
  try {
    cli = findBicep();
  } catch (error) {
    result.error = error instanceof BicepNotFoundError ? error.message : String(error);
    return result;
  }
  result.cli = { version: cli.version, source: cli.source, path: cli.path };
  const snapshot = (name: SnapshotName) =>
    runAsync(
      cli.path,
      [
        'snapshot',
        bicepparam(dir, name),
        '--mode',
        'overwrite',
        '--tenant-id',
        SNAPSHOT_SCOPE.tenantId,
        '--subscription-id',
        SNAPSHOT_SCOPE.subscriptionId,
        '--location',
        SNAPSHOT_SCOPE.location,
      ],
      ROOT,
    );
  const [build, lint, canary, defaults, options] = await Promise.all([
    runAsync(cli.path, ['build', join(INFRA_DIR, 'main.bicep'), '--outfile', result.templatePath], ROOT),
    runAsync(cli.path, ['lint', '--pattern', 'infra/**/*.bicep'], ROOT),
    runAsync(cli.path, ['lint', canaryPath, '--config', join(INFRA_DIR, 'bicepconfig.json')], ROOT),
    snapshot('defaults'),
    snapshot('options'),
  ]);
  Object.assign(result, { build, lint, canary });
  result.snapshots.defaults.run = defaults;
  result.snapshots.options.run = options;
  return result;
}

export interface Diagnostic {
  file: string;
  line: number;
  level: 'Error' | 'Warning' | 'Info';
  code: string;
  message: string;
}

/** Bicep's default diagnostics format: `path(line,col) : Level code: message`. */
export function parseDiagnostics(output: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const line of output.split(/\r?\n/)) {
    const m = /^(.*)\((\d+),\d+\) : (Error|Warning|Info) ([A-Za-z0-9-]+): (.*)$/.exec(line);
    if (m)
      out.push({ file: m[1]!, line: Number(m[2]), level: m[3] as Diagnostic['level'], code: m[4]!, message: m[5]! });
  }
  return out;
}
