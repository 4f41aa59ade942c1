// The Functions host cannot run here, so the registrations are checked by capturing the calls the real
// @azure/functions `app` receives when each functions/*.ts module is imported.
import { readFileSync } from 'node:fs';
import { app } from '@azure/functions';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';

type Registration = { kind: 'timer' | 'storageQueue'; name: string; options: Record<string, unknown> };

let registrations: Registration[];
beforeEach(() => {
  registrations = [];
  vi.resetModules();
  vi.spyOn(app, 'timer').mockImplementation((name, options) => {
    registrations.push({ kind: 'timer', name, options: options as unknown as Record<string, unknown> });
  });
  vi.spyOn(app, 'storageQueue').mockImplementation((name, options) => {
    registrations.push({ kind: 'storageQueue', name, options: options as unknown as Record<string, unknown> });
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.SYNC_SCHEDULE;
  delete process.env.UNBILLED_SCHEDULE;
});

describe('function registrations', () => {
  test('detectInvoices is a timer on SYNC_SCHEDULE (every 6 hours by default) that does not run on startup', async () => {
    await import('../../functions/detectInvoices.js');
    expect(registrations).toHaveLength(1);
    const [timer] = registrations;
    expect(timer?.kind).toBe('timer');
    expect(timer?.name).toBe('detectInvoices');
    expect(timer?.options.schedule).toBe('0 0 */6 * * *');
    expect(timer?.options.runOnStartup).toBe(false);
    expect(typeof timer?.options.handler).toBe('function');
  });

  test('the timer schedule follows the SYNC_SCHEDULE app setting', async () => {
    process.env.SYNC_SCHEDULE = '0 30 2 * * *';
    await import('../../functions/detectInvoices.js');
    expect(registrations[0]?.options.schedule).toBe('0 30 2 * * *');
  });

  test('unbilledSnapshots is a timer on UNBILLED_SCHEDULE (once a day by default), not registered when it is empty', async () => {
    await import('../../functions/unbilledSnapshots.js');
    expect(registrations.map((r) => [r.kind, r.name, r.options.schedule, r.options.runOnStartup])).toEqual([
      ['timer', 'unbilledSnapshots', '0 30 1 * * *', false],
    ]);
    expect(typeof registrations[0]?.options.handler).toBe('function');

    vi.resetModules();
    registrations = [];
    process.env.UNBILLED_SCHEDULE = '0 15 4 * * *';
    await import('../../functions/unbilledSnapshots.js');
    expect(registrations.map((r) => r.options.schedule)).toEqual(['0 15 4 * * *']);

    vi.resetModules();
    registrations = [];
    process.env.UNBILLED_SCHEDULE = '';
    await import('../../functions/unbilledSnapshots.js');
    expect(registrations).toEqual([]);
  });

  test('syncInvoice and exportLineItems are queue triggers on host storage', async () => {
    await import('../../functions/syncInvoice.js');
    await import('../../functions/exportLineItems.js');
    expect(registrations.map((r) => [r.kind, r.name, r.options.queueName, r.options.connection])).toEqual([
      ['storageQueue', 'syncInvoice', 'invoice-sync', 'AzureWebJobsStorage'],
      ['storageQueue', 'exportLineItems', 'lineitem-export', 'AzureWebJobsStorage'],
    ]);
  });

  test('host.json keeps base64 messages, the poison count the handlers read, and a timeout above the export budget', async () => {
    const text = readFileSync(new URL('../../host.json', import.meta.url), 'utf8');
    const host = JSON.parse(text);
    const { parseHostConfig, readHostConfig } = await import('../../src/host-config.js');
    const { loadSettings, settingsSchema } = await import('../../src/config.js');
    const defaults = settingsSchema.parse({});
    expect(host.extensions.queues.messageEncoding).toBe('base64');
    // The handlers read the delivery count from this very file: the app finds it from its own module.
    expect(readHostConfig()).toEqual(parseHostConfig(text, readHostConfig().source));
    expect(readHostConfig().maxDequeueCount).toBe(host.extensions.queues.maxDequeueCount);
    const [h, m, s] = String(host.functionTimeout).split(':').map(Number);
    expect((h ?? 0) * 3600 + (m ?? 0) * 60 + (s ?? 0)).toBeGreaterThan(defaults.EXPORT_TIME_BUDGET_SECONDS + 120);
    // The defaults pass the start-up check against host.json.
    expect(() => loadSettings({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' })).not.toThrow();
    // Failures are never sampled away.
    expect(host.logging.applicationInsights.samplingSettings.excludedTypes).toContain('Exception');
  });
});
