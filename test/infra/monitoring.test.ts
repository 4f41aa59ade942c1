// Alerts and the status workbook, read from what ARM would deploy (the snapshot of the compiled template): every
// log alert sums itemCount (sampling-proof), reads what the code really writes, and the events it relies on are sent
// the unsampled way; the workbook's tiles are exactly the queries in docs/queries.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isUnsampledEvent } from '../../src/telemetry/events.js';
import { type ArmResource, oneOf, resourcesOf } from './arm.js';
import { ROOT } from './compile.js';

const source = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const rules = resourcesOf('Microsoft.Insights/scheduledQueryRules');
const ruleNamed = (suffix: string): ArmResource => {
  const rule = rules.find((r) => r.name.endsWith(`-${suffix}`));
  if (!rule) throw new Error(`no alert rule ${suffix}`);
  return rule;
};
const queryOf = (suffix: string): string => ruleNamed(suffix).properties.criteria.allOf[0].query;
/** KQL without its // comments. */
const code = (kql: string) => kql.replace(/\/\/.*$/gm, '');

describe('log alerts', () => {
  it('exist for poison messages, failed/unsettled invoices, mismatches and the refresh token, on App Insights, mailing the group', () => {
    expect(rules.map((r) => r.name.replace(/^func-[a-z0-9]+-/, '')).sort()).toEqual([
      'invoice-failed-or-unsettled',
      'poison-queue',
      'reconciliation-mismatch',
      'refresh-token-expiry',
      'unbilled-snapshot-failed',
    ]);
    const ai = oneOf('Microsoft.Insights/components');
    const group = oneOf('Microsoft.Insights/actionGroups');
    for (const rule of rules) {
      expect(rule.apiVersion).toBe('2023-12-01');
      expect(rule.kind).toBe('LogAlert');
      expect(rule.properties.scopes).toEqual([ai.id]);
      expect(rule.properties.actions.actionGroups).toEqual([group.id]);
    }
    expect(group.properties.emailReceivers).toEqual([
      { name: 'operator', emailAddress: 'ops@partner.example', useCommonAlertSchema: true },
    ]);
  });

  it('count items, not rows: each query sums itemCount and the rule alerts on that Total', () => {
    for (const rule of rules) {
      const [criterion] = rule.properties.criteria.allOf;
      expect(code(criterion.query)).toMatch(/\| summarize items = sum\(itemCount\)\s*$/);
      expect(code(criterion.query)).not.toMatch(/\bcount(if)?\(/);
      expect(criterion).toMatchObject({
        timeAggregation: 'Total',
        metricMeasureColumn: 'items',
        operator: 'GreaterThan',
        threshold: 0,
      });
    }
  });

  it('poison: the handlers log "goes to poison" as an error on the last attempt, and errors are sent unsampled', () => {
    expect(queryOf('poison-queue')).toContain('message has "goes to poison"');
    expect(queryOf('poison-queue')).toContain('severityLevel >= 2');
    // An error line (deps.log.error); test/telemetry/unsampled.test.ts shows error lines take the unsampled path.
    expect(source('src/app/handlers.ts')).toContain('deps.log.error(');
    expect(source('src/app/handlers.ts')).toContain('failed for good; message goes to poison');
  });

  it('failed/unsettled: reads the InvoiceStateChanged and PartUnsettled events, which are sent unsampled', () => {
    const query = queryOf('invoice-failed-or-unsettled');
    expect(query).toContain('customEvents');
    expect(query).toContain(
      'name == "InvoiceStateChanged" and tostring(customDimensions.state) in ("failed", "unsettled")',
    );
    expect(query).toContain('name == "PartUnsettled"');
    expect(query).toContain('message startswith "event:InvoiceStateChanged"');
    for (const name of ['InvoiceStateChanged', 'PartUnsettled']) expect(isUnsampledEvent(name)).toBe(true);
    expect(source('src/app/handlers.ts')).toContain("deps.log.event('InvoiceStateChanged', {");
    expect(source('src/app/handlers.ts')).toContain("state: 'failed',");
    expect(source('src/sync/export/v2-source.ts')).toContain("log.event('PartUnsettled'");
  });

  it('mismatch: reads the ReconciliationMismatch event finalize writes, which is sent unsampled', () => {
    const query = queryOf('reconciliation-mismatch');
    expect(query).toContain('name == "ReconciliationMismatch"');
    expect(query).toContain('message startswith "event:ReconciliationMismatch"');
    expect(isUnsampledEvent('ReconciliationMismatch')).toBe(true);
    expect(source('src/sync/finalize.ts')).toContain("deps.log.event('ReconciliationMismatch', {");
  });

  it('unbilled snapshot failed: reads the UnbilledSnapshotFailed event the snapshot finalize writes, sent unsampled', () => {
    const query = queryOf('unbilled-snapshot-failed');
    expect(query).toContain('name == "UnbilledSnapshotFailed"');
    expect(query).toContain('message startswith "event:UnbilledSnapshotFailed"');
    expect(isUnsampledEvent('UnbilledSnapshotFailed')).toBe(true);
    expect(source('src/sync/unbilled/finalize.ts')).toContain("deps.log.event('UnbilledSnapshotFailed', {");
  });

  it('refresh token: the App+User credential warns and fails with "refresh token" or the AADSTS code in the message', () => {
    const query = queryOf('refresh-token-expiry');
    expect(query).toContain('message has "refresh token"');
    expect(query).toContain('message has "AADSTS700025"');
    expect(source('src/auth/refresh-token.ts')).toMatch(/warn\(\s*`The App\+User refresh token is/);
    expect(source('src/auth/errors.ts')).toContain('The App+User refresh token must be renewed');
    expect(source('src/auth/refresh-token.ts')).toContain(
      "'The stored App+User refresh token was issued to a public client",
    );
  });

  it('and a metric alert on failed function runs (requests are never sampled: host.json excludes Request)', () => {
    const metric = oneOf('Microsoft.Insights/metricAlerts');
    expect(metric.properties.criteria.allOf[0]).toMatchObject({
      metricName: 'requests/failed',
      timeAggregation: 'Count',
    });
    const host = JSON.parse(source('host.json'));
    expect(host.logging.applicationInsights.samplingSettings.excludedTypes.split(';')).toContain('Request');
  });
});

describe('status workbook', () => {
  const workbook = oneOf('Microsoft.Insights/workbooks');
  const data = JSON.parse(workbook.properties.serializedData) as {
    version: string;
    items: { type: number; name: string; content: { query?: string; title?: string; resourceType?: string } }[];
    fallbackResourceIds: string[];
  };
  const tiles = data.items.filter((i) => i.type === 3);

  it('is a shared App Insights workbook deployed next to the alerts', () => {
    const ai = oneOf('Microsoft.Insights/components');
    expect(workbook.apiVersion).toBe('2023-06-01');
    expect(workbook.kind).toBe('shared');
    expect(workbook.properties).toMatchObject({ category: 'workbook', sourceId: ai.id, version: 'Notebook/1.0' });
    expect(workbook.name).toMatch(/^\[guid\(|^[0-9a-f-]{36}$/);
    expect(data.fallbackResourceIds).toEqual([ai.id]);
  });

  it('has a tile per question, each the exact text of its docs/queries file', () => {
    expect(tiles.map((t) => t.name)).toEqual([
      'invoices-by-state',
      'failures',
      'daily-metrics',
      'pdf-age',
      'throttling-by-endpoint',
      'refresh-token-age',
      'unbilled-snapshots',
    ]);
    for (const tile of tiles) {
      expect({ tile: tile.name, query: tile.content.query }).toEqual({
        tile: tile.name,
        query: source(`docs/queries/${tile.name}.kql`),
      });
      expect(tile.content.resourceType).toBe('microsoft.insights/components');
    }
  });
});
