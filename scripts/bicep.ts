// Finds a Bicep CLI and runs it: `npm run bicep -- build infra/main.bicep --stdout`.
// Order: BICEP_CLI (a path), `bicep` on PATH, the Azure CLI's own copy (`az bicep install` pins BICEP_VERSION), and
// where `dotnet` exists, the pinned NuGet package Azure.Bicep.CommandLine.<rid> restored into a user cache (it
// carries a self-contained `bicep` executable). Nothing else is downloaded, and nothing lands in the repository.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Bicep version CI pins (NuGet package and `az bicep install`); a `bicep` on PATH may differ and says so. */
export const BICEP_VERSION = '0.49.2';

export interface BicepCli {
  /** Absolute path of the executable. */
  path: string;
  /** How it was found, for the log line. */
  source: 'BICEP_CLI' | 'PATH' | 'az' | 'nuget';
  /** What `bicep --version` printed, e.g. "Bicep CLI version 0.49.2 (b34271ac51)". */
  version: string;
}

export class BicepNotFoundError extends Error {
  override name = 'BicepNotFoundError';
}

const NOT_FOUND =
  'No Bicep CLI found: set BICEP_CLI to a bicep executable, put `bicep` on PATH, run `az bicep install`, ' +
  `or install the .NET SDK so the pinned NuGet package Azure.Bicep.CommandLine.<rid> ${BICEP_VERSION} can be restored.`;

/** Environment for child processes: no .NET or Bicep telemetry leaves this machine. */
function quietEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1', BICEP_TRACING_ENABLED: 'false' };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(command, args, { encoding: 'utf8', env: quietEnv(env), maxBuffer: 64 * 1024 * 1024 });
}

function versionOf(path: string): string | undefined {
  const result = run(path, ['--version']);
  return result.status === 0 ? result.stdout.trim() : undefined;
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const exts = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const candidate = join(dir, `${name}${ext}`);
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

/** The NuGet runtime identifier of this machine's Bicep package, or undefined where Bicep ships none. */
export function runtimeId(platform = process.platform, arch = process.arch): string | undefined {
  const os = platform === 'linux' ? 'linux' : platform === 'darwin' ? 'osx' : platform === 'win32' ? 'win' : undefined;
  const cpu = arch === 'x64' ? 'x64' : arch === 'arm64' ? 'arm64' : undefined;
  return os && cpu ? `${os}-${cpu}` : undefined;
}

/** Where the restored package lives: BICEP_CACHE_DIR, else the user cache (XDG_CACHE_HOME or ~/.cache). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BICEP_CACHE_DIR) return env.BICEP_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'csp-invoice-sync', 'bicep');
}

/**
 * Restores Azure.Bicep.CommandLine.<rid> at exactly BICEP_VERSION with `dotnet restore` of a throw-away project
 * (PackageDownload: the package is fetched, not referenced, so no target framework has to match it). A second run
 * finds the executable and restores nothing.
 */
export function restoreFromNuGet(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const rid = runtimeId();
  if (!rid || !onPath('dotnet', env)) return undefined;
  const id = `Azure.Bicep.CommandLine.${rid}`;
  const root = cacheDir(env);
  const packages = join(root, 'packages');
  const exe = join(packages, id.toLowerCase(), BICEP_VERSION, 'tools', rid.startsWith('win') ? 'bicep.exe' : 'bicep');
  if (existsSync(exe)) return exe;

  const sdk = run('dotnet', ['--version'], env);
  const major = /^(\d+)\./.exec(sdk.stdout ?? '')?.[1];
  if (sdk.status !== 0 || !major) return undefined;
  const project = join(root, 'restore');
  mkdirSync(project, { recursive: true });
  writeFileSync(
    join(project, 'restore.csproj'),
    [
      '<Project Sdk="Microsoft.NET.Sdk">',
      `  <PropertyGroup><TargetFramework>net${major}.0</TargetFramework></PropertyGroup>`,
      `  <ItemGroup><PackageDownload Include="${id}" Version="[${BICEP_VERSION}]" /></ItemGroup>`,
      '</Project>',
      '',
    ].join('\n'),
  );
  const restore = run('dotnet', ['restore', join(project, 'restore.csproj'), '--packages', packages, '-v', 'q'], env);
  if (restore.status !== 0 || !existsSync(exe)) {
    const why = `${restore.stdout ?? ''}${restore.stderr ?? ''}`.trim().split('\n').filter(Boolean).at(-1) ?? '';
    throw new BicepNotFoundError(`dotnet restore of ${id} ${BICEP_VERSION} failed: ${why || `exit ${restore.status}`}`);
  }
  return exe;
}

/** The Azure CLI's Bicep, installed at the pinned version if it is not there yet (the CI runner has `az`). */
function fromAzureCli(env: NodeJS.ProcessEnv): string | undefined {
  const az = onPath('az', env);
  if (!az) return undefined;
  const exe = join(homedir(), '.azure', 'bin', process.platform === 'win32' ? 'bicep.exe' : 'bicep');
  if (!versionOf(exe)?.includes(` ${BICEP_VERSION} `))
    run(az, ['bicep', 'install', '--version', `v${BICEP_VERSION}`], env);
  return versionOf(exe) ? exe : undefined;
}

let found: BicepCli | undefined;

/**
 * Finds a working Bicep CLI (cached per process for the process environment); throws BicepNotFoundError with one
 * line saying how to get one.
 */
export function findBicep(env: NodeJS.ProcessEnv = process.env): BicepCli {
  const cacheable = env === process.env;
  if (cacheable && found) return found;
  const candidates: [BicepCli['source'], () => string | undefined][] = [
    ['BICEP_CLI', () => env.BICEP_CLI || undefined],
    ['PATH', () => onPath('bicep', env)],
    ['az', () => fromAzureCli(env)],
    ['nuget', () => restoreFromNuGet(env)],
  ];
  for (const [source, locate] of candidates) {
    const path = locate();
    if (!path) continue;
    const version = versionOf(path);
    if (!version) {
      if (source === 'BICEP_CLI')
        throw new BicepNotFoundError(`BICEP_CLI=${path} does not run (bicep --version failed)`);
      continue;
    }
    const cli: BicepCli = { path, source, version };
    if (cacheable) found = cli;
    return cli;
  }
  throw new BicepNotFoundError(NOT_FOUND);
}

export interface BicepRun {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with these arguments. */
export function bicep(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): BicepRun {
  const cli = findBicep(options.env);
  const result = spawnSync(cli.path, args, {
    cwd: options.cwd,
    encoding: 'utf8',
    env: quietEnv(options.env ?? process.env),
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status ?? 1, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  try {
    const cli = findBicep();
    process.stderr.write(`${cli.version} (${cli.source}: ${cli.path})\n`);
    const result = spawnSync(cli.path, process.argv.slice(2), { stdio: 'inherit', env: quietEnv(process.env) });
    process.exit(result.status ?? 1);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
