// The real Bicep compiler over infra/: `bicep build` of main.bicep and `bicep lint` of every file end with zero
// errors and zero warnings (default rules plus infra/bicepconfig.json, which raises the security rules to error).
// A canary file proves those rules and the compiler's own type checks fire, so a clean result means something.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BICEP_VERSION, BicepNotFoundError, findBicep, runtimeId } from '../../scripts/bicep.js';
import { armTemplate, infraBuild, snapshot } from './arm.js';
import { INFRA_DIR, parseDiagnostics } from './compile.js';

function bicepFiles(dir = INFRA_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? bicepFiles(join(dir, e.name)) : e.name.endsWith('.bicep') ? [join(dir, e.name)] : [],
    )
    .sort();
}

const build = infraBuild();

describe('the Bicep CLI', () => {
  it('was found (BICEP_CLI, PATH, az, or the pinned NuGet package)', () => {
    expect(build.error).toBeUndefined();
    expect(build.cli?.version).toMatch(/^Bicep CLI version \d+\.\d+\.\d+/);
  });

  it('is the pinned version when it came from NuGet or az', () => {
    if (build.cli?.source === 'nuget' || build.cli?.source === 'az') {
      expect(build.cli.version).toContain(`version ${BICEP_VERSION} `);
    } else {
      expect(['BICEP_CLI', 'PATH']).toContain(build.cli?.source);
    }
  });
});

describe('scripts/bicep.ts', () => {
  it('fails with one line saying how to get a Bicep CLI when there is none', () => {
    const home = mkdtempSync(join(tmpdir(), 'no-bicep-'));
    try {
      const error = (() => {
        try {
          findBicep({ PATH: '', HOME: home, BICEP_CACHE_DIR: join(home, 'cache') });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(BicepNotFoundError);
      const message = (error as Error).message;
      expect(message).not.toContain('\n');
      expect(message).toMatch(
        /^No Bicep CLI found: set BICEP_CLI .* `bicep` on PATH, .*`az bicep install`, .*\.NET SDK/,
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('takes BICEP_CLI first, and refuses one that does not run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fake-bicep-'));
    try {
      const fake = join(dir, 'bicep');
      writeFileSync(fake, '#!/bin/sh\necho "Bicep CLI version 9.9.9 (fake)"\n');
      chmodSync(fake, 0o755);
      expect(findBicep({ PATH: '', BICEP_CLI: fake })).toEqual({
        path: fake,
        source: 'BICEP_CLI',
        version: 'Bicep CLI version 9.9.9 (fake)',
      });
      expect(() => findBicep({ PATH: '', BICEP_CLI: join(dir, 'missing') })).toThrow(/does not run/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the NuGet package for this machine', () => {
    expect(runtimeId('linux', 'x64')).toBe('linux-x64');
    expect(runtimeId('darwin', 'arm64')).toBe('osx-arm64');
    expect(runtimeId('win32', 'x64')).toBe('win-x64');
    expect(runtimeId('aix', 'ppc64')).toBeUndefined();
  });
});

describe('bicep build infra/main.bicep', () => {
  it('compiles with no diagnostics at all', () => {
    expect(build.build?.stderr.trim()).toBe('');
    expect(build.build?.status).toBe(0);
    expect(armTemplate().$schema).toContain('subscriptionDeploymentTemplate.json');
  });

  it('is predicted by the ARM engine (snapshot) without diagnostics, for the defaults and the options', () => {
    for (const name of ['defaults', 'options'] as const) {
      expect(build.snapshots[name].run?.stderr.trim()).toBe('');
      expect(snapshot(name).diagnostics).toEqual([]);
      expect(snapshot(name).predictedResources.length).toBeGreaterThan(20);
    }
  });
});

describe('bicep lint infra/**/*.bicep', () => {
  it('covers every .bicep file, the entry point and one module per concern', () => {
    const names = bicepFiles().map((f) => relative(INFRA_DIR, f).replaceAll('\\', '/'));
    expect(names).toEqual(
      expect.arrayContaining([
        'main.bicep',
        'modules/alerts.bicep',
        'modules/function-app.bicep',
        'modules/identity.bicep',
        'modules/keyvault.bicep',
        'modules/monitoring.bicep',
        'modules/rbac.bicep',
        'modules/storage.bicep',
      ]),
    );
  });

  it('reports zero errors and zero warnings', () => {
    const output = `${build.lint?.stdout ?? ''}${build.lint?.stderr ?? ''}`;
    expect(parseDiagnostics(output)).toEqual([]);
    expect(output.trim()).toBe('');
    expect(build.lint?.status).toBe(0);
  });

  it('uses no registry or template-spec modules (they cannot be restored here)', () => {
    for (const file of bicepFiles()) {
      expect(readFileSync(file, 'utf8')).not.toMatch(/^\s*module\s+\w+\s+'(br|ts)[:/]/m);
    }
  });
});

describe('the lint catches mistakes (canary file, same bicepconfig.json)', () => {
  const diagnostics = parseDiagnostics(`${build.canary?.stdout ?? ''}${build.canary?.stderr ?? ''}`);
  const levelOf = (code: string) => diagnostics.filter((d) => d.code === code).map((d) => d.level);

  it.each([
    'secure-secrets-in-params',
    'secure-parameter-default',
    'outputs-should-not-contain-secrets',
    'no-hardcoded-env-urls',
    'adminusername-should-not-be-literal',
    'use-secure-value-for-secure-inputs',
  ])('%s is an error', (code) => {
    expect(levelOf(code).length).toBeGreaterThan(0);
    expect(new Set(levelOf(code))).toEqual(new Set(['Error']));
  });

  it('raises every security rule of bicepconfig.json to error', () => {
    const config = readFileSync(join(INFRA_DIR, 'bicepconfig.json'), 'utf8');
    for (const code of [
      'adminusername-should-not-be-literal',
      'no-hardcoded-env-urls',
      'outputs-should-not-contain-secrets',
      'protect-commandtoexecute-secrets',
      'secure-parameter-default',
      'secure-params-in-nested-deploy',
      'secure-params-in-parameters-file',
      'secure-secrets-in-params',
      'use-secure-value-for-secure-inputs',
    ]) {
      expect(config).toMatch(new RegExp(`"${code}": \\{ "level": "error" \\}`));
    }
  });

  it('reports an unknown property, an API version that does not exist, and an unused parameter', () => {
    const unknownProperty = diagnostics.filter((d) => /^BCP0(37|89)$/.test(d.code));
    expect(unknownProperty.map((d) => d.message).join('\n')).toContain('"allowSharedKeyAcess" is not allowed');
    expect(levelOf('BCP081').length).toBeGreaterThan(0); // @2099-01-01
    expect(levelOf('no-unused-params')).toEqual(['Warning']);
    expect(build.canary?.status).not.toBe(0);
  });
});
