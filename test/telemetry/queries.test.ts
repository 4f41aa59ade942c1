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

/** The first argument of every call matched by `call` (which ends at its opening parenthesis). */
function firstArguments(code: string, call: RegExp): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(call)) {
    let depth = 0;
    let end = m.index + m[0].length;
    for (; end < code.length; end++) {
      const c = code[end];
      if (c === '(') depth++;
      else if (c === ')' && depth-- === 0) break;
      else if (c === ',' && depth === 0) break;
    }
    out.push(code.slice(m.index + m[0].length, end));
  }
  return out;
}

describe('docs/queries', () => {
  test('the questions of the issues each have a query', () => {
    expect(queries.map((q) => q.file).sort()).toEqual(
      expect.arrayContaining([
        'daily-metrics.kql',
        'failures.kql',
        'invoices-by-state.kql',
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

  test.each(queries)('$file is right under sampling: it weighs rows by itemCount', ({ text }) => {
    const code = text.replace(/\/\/.*$/gm, '');
    // A sampled row stands for itemCount items: count()/countif() and unweighted percentiles undercount.
    expect(code).not.toMatch(/\bcount(if)?\(/);
    expect(code).not.toMatch(/\bpercentile\(/);
    for (const argument of firstArguments(code, /\bsum(?:if)?\(/g)) expect(argument).toMatch(/itemCount/);
    // Events come from customEvents (the unsampled path) and from trace lines; both keep itemCount.
    if (code.includes('SyncEvents')) {
      expect(code).toContain('(customEvents');
      expect(code.match(/project timestamp, name, p(?: = customDimensions)?, itemCount, operation_Id/g)).toHaveLength(
        2,
      );
    }
  });
});

/** The Events table of docs/operations.md: event name -> the dimensions its row lists (notes in parentheses dropped). */
function documentedDimensions(guide: string): Map<string, string[]> {
  const lines = guide.slice(guide.indexOf('\n## Events\n')).split('\n').slice(2);
  const first = lines.findIndex((l) => l.startsWith('|'));
  const end = lines.findIndex((l, i) => i > first && !l.startsWith('|'));
  const rows = new Map<string, string[]>();
  for (const line of lines.slice(first, end)) {
    const cells = line.split('|').map((c) => c.trim());
    const name = cells[1]?.match(/^`([A-Za-z]+)`$/)?.[1];
    if (!name || cells.length < 4) continue;
    let text = cells[3] ?? '';
    // Drop the notes in parentheses (nested ones included) and the bold marks.
    for (let before = ''; before !== text; ) {
      before = text;
      text = text.replace(/\([^()]*\)/g, '');
    }
    rows.set(
      name,
      text
        .replace(/\*\*/g, '')
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean),
    );
  }
  return rows;
}

describe('docs/operations.md', () => {
  const guide = readFileSync(path.join(root, 'docs/operations.md'), 'utf8');
  test('its Events table lists exactly the events of SYNC_EVENTS, each with every dimension the code declares', () => {
    const documented = documentedDimensions(guide);
    expect([...documented.keys()].sort()).toEqual([...known].sort());
    for (const [name, dimensions] of Object.entries(SYNC_EVENTS)) {
      for (const dimension of dimensions) expect(documented.get(name), `${name}.${dimension}`).toContain(dimension);
    }
  });

  test('documents every event, every saved query and every alert rule', () => {
    for (const name of known) expect(guide).toContain(`\`${name}\``);
    for (const { file } of queries) expect(guide).toContain(file);
    const alerts = readFileSync(path.join(root, 'infra/modules/alerts.bicep'), 'utf8');
    for (const match of alerts.matchAll(/name: '([a-z-]+)'\n\s+displayName/g)) expect(guide).toContain(match[1]!);
  });
});
