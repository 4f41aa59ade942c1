// Settings that must be refused at start-up with a clear error: an export budget whose last page could outlive the
// host's functionTimeout, names Storage would refuse; and the host facts read from host.json, not repeated.
import { describe, expect, test } from 'vitest';
import { ConfigError, loadSettings } from '../../src/config.js';
import { type HostConfig, parseHostConfig, readHostConfig } from '../../src/host-config.js';

const storage = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
const host = (changes: Partial<HostConfig> = {}): HostConfig => ({
  ...readHostConfig(),
  ...changes,
  source: 'test host.json',
});
const refusal = (env: Record<string, string>, h = host()) => {
  try {
    loadSettings({ ...storage, ...env }, h);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(env)}`);
};

describe('settings checked against host.json', () => {
  test('the budget plus the worst case of one page must end before functionTimeout', () => {
    // 1200 s budget + 180 s x 7 attempts = 2460 s: fits the shipped 1 h, not a 30 min timeout.
    expect(() => loadSettings(storage, host({ functionTimeoutSeconds: 3600 }))).not.toThrow();
    const message = refusal({}, host({ functionTimeoutSeconds: 1800 }));
    expect(message).toMatch(/EXPORT_TIME_BUDGET_SECONDS \(1200\)/);
    expect(message).toMatch(/HTTP_TIMEOUT_SECONDS/);
    expect(message).toMatch(/HTTP_MAX_RETRIES/);
    expect(message).toMatch(/functionTimeout \(1800 s in test host\.json\)/);
    // The audit's example: a budget of an hour with 900 s x 21 attempts.
    expect(
      refusal({ EXPORT_TIME_BUDGET_SECONDS: '3600', HTTP_TIMEOUT_SECONDS: '900', HTTP_MAX_RETRIES: '20' }),
    ).toMatch(/900 × 21 = 18900 s/);
    // Just inside and just outside the 60 s margin.
    const h = host({ functionTimeoutSeconds: 1000 });
    expect(() =>
      loadSettings(
        { ...storage, EXPORT_TIME_BUDGET_SECONDS: '220', HTTP_TIMEOUT_SECONDS: '120', HTTP_MAX_RETRIES: '5' },
        h,
      ),
    ).not.toThrow();
    expect(
      refusal({ EXPORT_TIME_BUDGET_SECONDS: '221', HTTP_TIMEOUT_SECONDS: '120', HTTP_MAX_RETRIES: '5' }, h),
    ).toMatch(/EXPORT_TIME_BUDGET_SECONDS \(221\)/);
  });

  test('the delivery count comes from host.json, not from an app setting that could differ', () => {
    expect(parseHostConfig('{"version":"2.0","extensions":{"queues":{"maxDequeueCount":3}}}').maxDequeueCount).toBe(3);
    expect(parseHostConfig('{"version":"2.0"}')).toMatchObject({ maxDequeueCount: 5, functionTimeoutSeconds: 1800 });
    expect(parseHostConfig('{"functionTimeout":"1.02:03:04"}').functionTimeoutSeconds).toBe(93_784);
    expect(() => parseHostConfig('{"functionTimeout":"forever"}')).toThrow(/timespan/);
    const settings = loadSettings({ ...storage, MAX_DEQUEUE_COUNT: '3' }, host({ maxDequeueCount: 5 }));
    expect(settings.host.maxDequeueCount).toBe(5);
  });

  test.each([
    ['INVOICE_CONTAINER', 'Bad_Name!'],
    ['INVOICE_CONTAINER', 'ab'],
    ['INVOICE_CONTAINER', 'a--b'],
    ['INVOICE_CONTAINER', '-invoices'],
    ['LEDGER_TABLE', '1ledger'],
    ['LEDGER_TABLE', 'ledger-table'],
    ['LEDGER_TABLE', 'tables'],
  ])('%s=%s is refused with the setting named', (name, value) => {
    expect(refusal({ [name]: value })).toMatch(new RegExp(name));
  });

  test('valid names pass', () => {
    expect(
      loadSettings({ ...storage, INVOICE_CONTAINER: 'csp-invoices-2', LEDGER_TABLE: 'Ledger2' }, host()),
    ).toMatchObject({
      INVOICE_CONTAINER: 'csp-invoices-2',
      LEDGER_TABLE: 'Ledger2',
    });
  });
});
