import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ConfigError, loadSettings, SETTING_NAMES, settingsSchema } from '../../src/config.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('settings', () => {
  test('the README documents every setting the code reads', () => {
    const readme = read('README.md');
    const undocumented = SETTING_NAMES.filter(
      (name) => !readme.includes(`\`${name}\``) && !readme.includes(`\`__${name.split('__')[1]}\``),
    );
    expect(undocumented).toEqual([]);
  });

  test('local.settings.json.example uses only settings the code reads (plus the worker runtime)', () => {
    const example = JSON.parse(read('local.settings.json.example')) as { Values: Record<string, string> };
    const unknown = Object.keys(example.Values).filter(
      (name) => name !== 'FUNCTIONS_WORKER_RUNTIME' && !(SETTING_NAMES as string[]).includes(name),
    );
    expect(unknown).toEqual([]);
    // The example parses as real settings once its placeholders are the only thing left to fill in.
    expect(() => loadSettings(example.Values)).not.toThrow();
  });

  test('defaults are sane and documented values parse', () => {
    const defaults = settingsSchema.parse({});
    expect(defaults.PARTNER_CENTER_API_URL).toBe('https://api.partnercenter.microsoft.com');
    expect(defaults.GRAPH_API_URL).toBe('https://graph.microsoft.com');
    expect(defaults.INVOICE_CONTAINER).toBe('invoices');
    expect(defaults.SYNC_SCHEDULE).toBe('0 0 */6 * * *');
    expect(defaults.EXPORT_TIME_BUDGET_SECONDS * 1000).toBeLessThan(30 * 60_000);
  });

  test('missing storage and bad values fail with every problem named', () => {
    expect(() => loadSettings({})).toThrow(ConfigError);
    expect(() => loadSettings({})).toThrow(/AzureWebJobsStorage/);
    let message = '';
    try {
      loadSettings({
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
        V2_USAGE_FROM: '2022-13',
        HTTP_MAX_RETRIES: 'lots',
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/V2_USAGE_FROM: expected YYYY-MM/);
    expect(message).toMatch(/HTTP_MAX_RETRIES/);
  });

  test('identity-based storage needs all three service URIs', () => {
    expect(() => loadSettings({ AzureWebJobsStorage__blobServiceUri: 'https://a.blob.core.windows.net' })).toThrow(
      /__queueServiceUri/,
    );
    expect(
      loadSettings({
        AzureWebJobsStorage__blobServiceUri: 'https://a.blob.core.windows.net',
        AzureWebJobsStorage__queueServiceUri: 'https://a.queue.core.windows.net',
        AzureWebJobsStorage__tableServiceUri: 'https://a.table.core.windows.net',
      }).AzureWebJobsStorage,
    ).toBeUndefined();
  });
});
