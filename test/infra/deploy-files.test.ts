// The files around the Bicep: azure.yaml (azd provisions infra/ and deploys the app), the parameters file
// (only azd variables, never a secret), the outputs the docs and the consent command rely on, the GitHub
// workflows (CI runs the README's test command; deploy signs in with OIDC only) and the consent env reader.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BICEP_VERSION } from '../../scripts/bicep.js';
import { consentOptionsFromEnv } from '../../src/setup/consent-cli.js';
import { armTemplate } from './arm.js';
import { ROOT } from './compile.js';

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('azure.yaml', () => {
  const yaml = read('azure.yaml');

  it('provisions infra/main.bicep and deploys this folder as a TypeScript Function App', () => {
    expect(yaml).toMatch(/^infra:\n {2}provider: bicep\n {2}path: infra\n {2}module: main$/m);
    expect(yaml).toMatch(/^services:\n {2}api:\n {4}project: \.\n {4}language: ts\n {4}host: function$/m);
    expect(yaml).toMatch(/^ {4}remoteBuild: true$/m);
  });

  it('matches the service name to the azd-service-name tag on the site', () => {
    // The tag itself is asserted on the deployed site in security.test.ts.
    expect(read('infra/modules/function-app.bicep')).toContain("'azd-service-name': 'api'");
  });

  it('only mentions outputs main.bicep really has', () => {
    const outputs = new Set(Object.keys(armTemplate().outputs));
    const used = [...yaml.matchAll(/\$(?:env:)?([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) expect(outputs).toContain(name);
  });
});

describe('infra/main.parameters.json', () => {
  const parameters = JSON.parse(read('infra/main.parameters.json')).parameters as Record<string, { value: unknown }>;
  const declared = Object.keys(armTemplate().parameters);

  it('passes only declared parameters, and every required one', () => {
    for (const name of Object.keys(parameters)) expect(declared).toContain(name);
    const required = declared.filter((n) => armTemplate().parameters[n]?.defaultValue === undefined);
    for (const name of required) expect(Object.keys(parameters)).toContain(name);
  });

  it('takes every value from an azd variable, so no value (let alone a secret) lives in the file', () => {
    for (const [name, { value }] of Object.entries(parameters)) {
      expect({ name, value }).toEqual({ name, value: expect.stringMatching(/^\$\{[A-Z_]+(=[^}]*)?\}$/) });
    }
  });
});

describe('main.bicep outputs', () => {
  it('exposes what azd, the consent command and the federated credential need', () => {
    const outputs = Object.keys(armTemplate().outputs);
    expect(outputs).toEqual(
      expect.arrayContaining([
        'AZURE_FUNCTION_APP_NAME',
        'AZURE_RESOURCE_GROUP',
        'KEY_VAULT_URL',
        'REFRESH_TOKEN_SECRET_NAME',
        'PARTNER_TENANT_ID',
        'PARTNER_CLIENT_ID',
        'AUTHORITY_HOST',
        'FEDERATED_CREDENTIAL_ISSUER',
        'FEDERATED_CREDENTIAL_SUBJECT',
      ]),
    );
  });

  it('feeds the consent command: the azd outputs are exactly the env it reads', () => {
    const env = {
      PARTNER_TENANT_ID: 'tenant',
      PARTNER_CLIENT_ID: 'client',
      KEY_VAULT_URL: 'https://kv-x.vault.azure.net/',
      AUTHORITY_HOST: 'https://login.microsoftonline.com',
      REFRESH_TOKEN_SECRET_NAME: 'partner-center-refresh-token',
    };
    const options = consentOptionsFromEnv(env, () => {});
    expect(options).toMatchObject({
      tenantId: 'tenant',
      clientId: 'client',
      keyVaultUrl: 'https://kv-x.vault.azure.net/',
      secretName: 'partner-center-refresh-token',
      openBrowser: false,
    });
    expect(() => consentOptionsFromEnv({ PARTNER_TENANT_ID: 'tenant' }, () => {})).toThrow(
      /Missing PARTNER_CLIENT_ID, KEY_VAULT_URL/,
    );
  });
});

describe('GitHub workflows', () => {
  const ci = read('.github/workflows/ci.yml');
  const deploy = read('.github/workflows/deploy.yml');

  it('CI runs the README test command on push and pull request, on Node 20 and 22', () => {
    expect(ci).toMatch(/^on:\n {2}push:\n {2}pull_request:$/m);
    expect(ci).toContain('node: [20, 22]');
    expect(ci).toMatch(/- run: npm ci\n\s+- run: npm test\n/);
    // The runner's Azure CLI installs the Bicep version the NuGet package pins everywhere else.
    expect(ci).toContain(`az bicep install --version v${BICEP_VERSION}`);
    expect(ci).toContain('BICEP_CLI=$HOME/.azure/bin/bicep');
    expect(read('README.md')).toContain('npm test');
  });

  it('deploy signs in with OIDC federation and stores no cloud secret', () => {
    expect(deploy).toMatch(/^permissions:\n {2}id-token: write\n {2}contents: read$/m);
    expect(deploy).toContain('uses: azure/login@v2');
    expect(deploy).not.toMatch(/secrets\./);
    expect(deploy).not.toMatch(/client-secret|creds:|AZURE_CREDENTIALS|password/i);
  });

  it('deploy provisions and deploys with azd, only after CI succeeded on main (or by hand)', () => {
    expect(deploy).toContain('workflows: [CI]');
    expect(deploy).toContain('branches: [main]');
    expect(deploy).toContain("github.event.workflow_run.conclusion == 'success'");
    expect(deploy.indexOf('azd provision --no-prompt')).toBeGreaterThan(0);
    expect(deploy.indexOf('azd deploy --no-prompt')).toBeGreaterThan(deploy.indexOf('azd provision --no-prompt'));
  });
});
