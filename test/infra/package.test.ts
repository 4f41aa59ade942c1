// What `azd deploy` uploads builds, starts and registers every function. The test builds dist/app with the
// same function `npm run build` runs, packs it the way azd does (the folder azure.yaml names in `dist`, filtered by
// its .funcignore through a gitignore matcher, minus what azd always leaves out), then replays Flex Consumption's
// remote build (Oryx: `npm install`, then `npm run build` when package.json has one) in a temp folder that holds
// nothing else, and imports each package.json `main` entry with plain `node`.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import ignore from 'ignore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_DIR, bundleApp } from '../../scripts/bundle.js';
import { ROOT } from './compile.js';

const FUNCTIONS = ['detectInvoices', 'exportLineItems', 'syncInvoice', 'unbilledSnapshots'];
const rootPackage = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};

/** What azd's function-app packaging keeps (pkg/project/project_utils.go createDeployableZip). */
function azdUpload(source: string, target: string): string[] {
  const ignoreFile = join(source, '.funcignore');
  const matcher = existsSync(ignoreFile) ? ignore().add(readFileSync(ignoreFile, 'utf8')) : undefined;
  const kept: string[] = [];
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(source, path).replaceAll('\\', '/');
      const isDir = entry.isDirectory();
      // Always left out by azd: .azure folders, the ignore file itself, local.settings.json.
      if (isDir && entry.name === '.azure') continue;
      if (!isDir && (entry.name === '.funcignore' || entry.name === 'local.settings.json')) continue;
      if (matcher ? matcher.ignores(isDir ? `${rel}/` : rel) : isDir && entry.name === 'node_modules') continue;
      if (isDir) visit(path);
      else {
        mkdirSync(dirname(join(target, rel)), { recursive: true });
        copyFileSync(path, join(target, rel));
        kept.push(rel);
      }
    }
  };
  visit(source);
  return kept.sort();
}

/** package.json `main`, which may be a glob (`dist/functions/*.js`), expanded against the folder. */
function mainEntries(dir: string, main: string): string[] {
  const pattern = new RegExp(`^${main.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  const all: string[] = [];
  const visit = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === 'node_modules') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) visit(p);
      else all.push(relative(dir, p).replaceAll('\\', '/'));
    }
  };
  visit(dir);
  return all.filter((f) => pattern.test(f)).sort();
}

const npm = (args: string[], cwd: string) =>
  spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });

describe('the package azd deploys', () => {
  const work = mkdtempSync(join(tmpdir(), 'azd-package-'));
  const built = join(work, 'built');
  const upload = join(work, 'upload');
  let uploaded: string[] = [];
  let install: ReturnType<typeof npm>;
  let oryxBuild: ReturnType<typeof npm> | undefined;

  beforeAll(async () => {
    await bundleApp(built);
    uploaded = azdUpload(built, upload);
    install = npm(['install', '--no-audit', '--no-fund', '--prefer-offline'], upload);
    const scripts = (JSON.parse(readFileSync(join(upload, 'package.json'), 'utf8')) as { scripts?: { build?: string } })
      .scripts;
    if (scripts?.build) oryxBuild = npm(['run', 'build'], upload);
  }, 120_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('is dist/app, built by `npm run build` (which azd runs before packaging)', () => {
    const yaml = readFileSync(join(ROOT, 'azure.yaml'), 'utf8');
    expect(yaml).toMatch(new RegExp(`^ {4}dist: ${APP_DIR}$`, 'm'));
    expect(rootPackage.scripts.build).toContain('tsx scripts/bundle.ts');
    // azd refuses remoteBuild: true unless the project's .funcignore excludes node_modules.
    expect(
      ignore()
        .add(readFileSync(join(ROOT, '.funcignore'), 'utf8'))
        .ignores('node_modules/'),
    ).toBe(true);
  });

  it('uploads the bundle, host.json and its own package.json, and nothing else', () => {
    expect(uploaded).toEqual(['host.json', 'index.js', 'index.js.LEGAL.txt', 'package.json']);
    expect(readFileSync(join(upload, 'host.json'), 'utf8')).toBe(readFileSync(join(ROOT, 'host.json'), 'utf8'));
  });

  it('gives the remote build nothing to install or compile: no dependencies of any kind, no build script', () => {
    const pkg = JSON.parse(readFileSync(join(upload, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg).toMatchObject({ type: 'module', main: 'index.js', private: true });
    for (const key of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies', 'scripts']) {
      expect(pkg[key]).toBeUndefined();
    }
    expect(install.status).toBe(0);
    expect(oryxBuild).toBeUndefined();
    const installed = existsSync(join(upload, 'node_modules')) ? readdirSync(join(upload, 'node_modules')) : [];
    expect(installed.filter((n) => !n.startsWith('.'))).toEqual([]);
  });

  it('keeps azure-functions-core-tools out of Azure (it stays an optional dependency for local runs)', () => {
    expect(rootPackage.optionalDependencies).toHaveProperty('azure-functions-core-tools');
    expect(existsSync(join(upload, 'node_modules', 'azure-functions-core-tools'))).toBe(false);
    expect(readFileSync(join(upload, 'index.js'), 'utf8')).not.toContain('cdn.functions.azure.com');
  });

  it('starts with plain node and registers every function (the four of functions/) from each main entry', () => {
    const pkg = JSON.parse(readFileSync(join(upload, 'package.json'), 'utf8')) as { main: string };
    const entries = mainEntries(upload, pkg.main);
    expect(entries).toEqual(['index.js']);
    const env = { ...process.env };
    for (const name of Object.keys(env))
      if (/^(APPLICATIONINSIGHTS_|SYNC_SCHEDULE|UNBILLED_SCHEDULE)/.test(name)) delete env[name];
    const registered: string[] = [];
    for (const entry of entries) {
      const url = pathToFileURL(join(upload, entry)).href;
      // Outside the Functions host @azure/functions runs in test mode and says which registration it skipped.
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(url)})`], {
        cwd: upload,
        encoding: 'utf8',
        env,
      });
      expect(run.status).toBe(0);
      const output = `${run.stdout}${run.stderr}`;
      registered.push(...[...output.matchAll(/Skipping call to register function "(\w+)"/g)].map((m) => m[1]!));
    }
    expect(registered.sort()).toEqual(FUNCTIONS);
    expect(statSync(join(upload, 'index.js')).size).toBeGreaterThan(100_000); // the dependencies are inside
  });
});
