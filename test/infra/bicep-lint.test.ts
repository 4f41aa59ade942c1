// Every infra/**/*.bicep parses with tree-sitter-bicep and passes the structural lint; the lint itself is
// proven to catch each kind of mistake, so a clean result means something.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  formatProblems,
  INFRA_DIR,
  lintBicepFile,
  lintBicepSource,
  listBicepFiles,
  parseBicep,
  RESOURCE_TYPE_PATTERN,
} from './bicep.js';

const files = listBicepFiles();

describe('infra/**/*.bicep', () => {
  it('has the entry point and one module per concern', () => {
    const names = files.map((f) => relative(INFRA_DIR, f).replaceAll('\\', '/'));
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

  it.each(files.map((f) => [relative(INFRA_DIR, f), f]))('%s parses and lints clean', (_name, file) => {
    const problems = lintBicepFile(file);
    expect(formatProblems(problems)).toBe('');
  });

  it('uses no registry modules (they cannot be restored or checked here)', () => {
    for (const file of files) {
      const modules = parseBicep(readFileSync(file, 'utf8')).rootNode.namedChildren.filter(
        (n) => n.type === 'module_declaration',
      );
      for (const mod of modules) expect(mod.text).not.toMatch(/^module\s+\w+\s+'(br|ts)[:/]/);
    }
  });
});

describe('the lint catches mistakes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bicep-lint-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports a syntax error (a property without a value)', () => {
    const source = `param location string\nresource st 'Microsoft.Storage/storageAccounts@2025-06-01' = {\n  name: 'x'\n  location:\n  kind: 'StorageV2'\n}\n`;
    const problems = lintBicepSource(source, join(dir, 'broken.bicep'));
    expect(problems.some((p) => p.rule === 'syntax')).toBe(true);
  });

  it('reports the spread operator, which the grammar cannot parse (use union())', () => {
    const source = `var a = { x: 1 }\nvar b = { ...a, y: 2 }\noutput o object = b\n`;
    expect(lintBicepSource(source, join(dir, 'spread.bicep')).some((p) => p.rule === 'syntax')).toBe(true);
  });

  it('reports an unused parameter and an unused variable, by name and line', () => {
    const file = join(dir, 'unused.bicep');
    writeFileSync(
      file,
      `param used string\nparam forgotten int = 3\nvar alsoForgotten = 'x'\nvar v = { used: used }\noutput o object = v\n`,
    );
    const problems = lintBicepFile(file);
    expect(problems.map((p) => [p.rule, p.line, p.message])).toEqual([
      ['unused-param', 2, 'parameter "forgotten" is declared but never used'],
      ['unused-var', 3, 'variable "alsoForgotten" is declared but never used'],
    ]);
  });

  it('does not count an object key with the same name as a use', () => {
    const problems = lintBicepSource(
      `param name string\nvar v = { name: 'literal' }\noutput o object = v\n`,
      'x.bicep',
    );
    expect(problems.map((p) => p.message)).toEqual(['parameter "name" is declared but never used']);
  });

  it('reports a module whose file does not exist, and accepts one that does', () => {
    writeFileSync(join(dir, 'child.bicep'), "output o string = 'x'\n");
    const source = `module ok 'child.bicep' = {\n  name: 'ok'\n}\nmodule typo 'modules/chlid.bicep' = {\n  name: 'typo'\n}\n`;
    const problems = lintBicepSource(source, join(dir, 'main.bicep'));
    expect(problems.map((p) => [p.rule, p.line, p.message])).toEqual([
      ['module-not-found', 4, 'module file not found: modules/chlid.bicep'],
    ]);
  });

  it('reports malformed resource type strings', () => {
    const source = [
      `resource a 'Microsoft.Storage/storageAccounts' = {\n  name: 'a'\n}`,
      `resource b 'Microsoft.Storage/storageAccounts@2025-13-01' = {\n  name: 'b'\n}`,
      `resource c 'storageAccounts@2025-06-01' = {\n  name: 'c'\n}`,
      `resource d 'Microsoft.Web/sites@2024-11-01-preview' = {\n  name: 'd'\n}`,
    ].join('\n');
    const problems = lintBicepSource(source, join(dir, 'types.bicep'));
    expect(problems.filter((p) => p.rule === 'resource-type').map((p) => p.line)).toEqual([1, 4, 7]);
  });

  it('accepts nested child types and preview suffixes in the type pattern', () => {
    expect(
      RESOURCE_TYPE_PATTERN.test(
        'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2025-06-01',
      ),
    ).toBe(true);
    expect(RESOURCE_TYPE_PATTERN.test('Microsoft.Insights/metricAlerts@2024-03-01-preview')).toBe(true);
    expect(RESOURCE_TYPE_PATTERN.test('Microsoft.Insights/metricAlerts@24-03-01')).toBe(false);
  });
});
