// The saved KQL and the operations guide name only events the code emits, and document every one of them.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { SYNC_EVENTS } from '../../src/telemetry/index.js';

const root = path.resolve(import.meta.dirname, '../..');
const queriesDir = path.join(root, 'docs/queries');
const queries = readdirSync(queriesDir)
  .filter((f) => f.endsWith('.kql'))
  .map((f) => ({ file: f, text: readFileSync(path.join(queriesDir, f), 'utf8') }));
const known = new Set(Object.keys(SYNC_EVENTS));

describe('docs/queries', () => {
  test('the six questions of the issue each have a query', () => {
    expect(queries.map((q) => q.file).sort()).toEqual(
      expect.arrayContaining([
        'failures.kql',
        'invoices-today.kql',
        'pdf-age.kql',
        'refresh-token-age.kql',
        'slowest-parts.kql',
        'throttling-by-endpoint.kql',
      ]),
    );
  });

  test.each(queries)('$file names only emitted events and starts with a comment', ({ text }) => {
    expect(text.startsWith('//')).toBe(true);
    const named = [
      ...text.matchAll(/event:([A-Za-z]+)/g),
      ...text.matchAll(/name (?:==|in) \(?"([A-Za-z]+)"/g),
      ...text.matchAll(/"([A-Z][A-Za-z]+)"/g),
    ].map((m) => m[1]!);
    const eventLike = named.filter((n) => /^(Invoice|Part|Pdf|Http|Refresh)[A-Z]/.test(n));
    for (const name of eventLike) expect(known, `${name} in a query`).toContain(name);
    // Balanced parentheses: a cheap guard against a query broken by an edit.
    expect((text.match(/\(/g) ?? []).length).toBe((text.match(/\)/g) ?? []).length);
  });
});

describe('docs/operations.md', () => {
  const guide = readFileSync(path.join(root, 'docs/operations.md'), 'utf8');
  test('documents every event, every saved query and every alert rule', () => {
    for (const name of known) expect(guide).toContain(`\`${name}\``);
    for (const { file } of queries) expect(guide).toContain(file);
    const alerts = readFileSync(path.join(root, 'infra/modules/alerts.bicep'), 'utf8');
    for (const match of alerts.matchAll(/name: '([a-z-]+)'\n\s+displayName/g)) expect(guide).toContain(match[1]!);
  });
});
