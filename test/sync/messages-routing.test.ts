import { describe, expect, test } from 'vitest';
import { settingsSchema } from '../../src/config.js';
import { linkPolicy } from '../../src/http/link-policy.js';
import {
  invoiceSyncMessageSchema,
  lineItemExportMessageSchema,
  MalformedMessageError,
  parseMessage,
} from '../../src/sync/messages.js';
import { routePart } from '../../src/sync/routing.js';

describe('queue messages are validated before any I/O', () => {
  test('a well-formed message parses, from an object or from JSON text', () => {
    expect(parseMessage(invoiceSyncMessageSchema, { invoiceId: 'G000123456' }, 'invoice-sync')).toEqual({
      invoiceId: 'G000123456',
      reason: 'new',
    });
    expect(parseMessage(invoiceSyncMessageSchema, '{"invoiceId":"D02005YFHI","reason":"resync"}', 'q').reason).toBe(
      'resync',
    );
  });

  test.each([
    ['bad JSON', '{"invoiceId":', /not JSON/],
    ['a path-traversal id', { invoiceId: '../x' }, /invoiceId must be/],
    ['an id with a slash', { invoiceId: 'G1/../../x' }, /invoiceId must be/],
    ['an empty id', { invoiceId: '' }, /invoiceId must be/],
    ['an over-long id', { invoiceId: 'G'.repeat(65) }, /invoiceId must be/],
    ['an unknown field', { invoiceId: 'G000123456', rows: [1, 2] }, /Unrecognized key/i],
    ['no id at all', {}, /invoiceId/],
    ['an array', [1], /expected object/i],
  ])('%s is rejected with a clear error', (_label, payload, pattern) => {
    const attempt = () => parseMessage(invoiceSyncMessageSchema, payload, 'invoice-sync');
    expect(attempt).toThrow(MalformedMessageError);
    expect(attempt).toThrow(pattern);
    expect(attempt).toThrow(/Malformed invoice-sync message/);
  });

  test('export messages need a safe part id', () => {
    expect(() =>
      parseMessage(lineItemExportMessageSchema, { invoiceId: 'G000123456', partId: '../../etc' }, 'lineitem-export'),
    ).toThrow(/partId must be/);
    expect(
      parseMessage(lineItemExportMessageSchema, { invoiceId: 'G000123456', partId: 'onetime-billing' }, 'q').turn,
    ).toBe(0);
    // Where an export stands lives in the ledger only: a message carrying a checkpoint is malformed.
    expect(() =>
      parseMessage(
        lineItemExportMessageSchema,
        { invoiceId: 'G000123456', partId: 'onetime-billing', checkpoint: { offset: 5 } },
        'q',
      ),
    ).toThrow(/Malformed/);
  });
});

describe('routing each part to the API that has its data', () => {
  const settings = settingsSchema.parse({});
  const modern = { id: 'G000123456', invoiceType: 'OneTime' };
  test('legacy invoices and office/azure parts always use v1', () => {
    expect(
      routePart(
        { id: 'D02005YFHI', invoiceType: 'Recurring' },
        { provider: 'onetime', lineItemType: 'billing' },
        '2026-01',
        settings,
      ).api,
    ).toBe('v1');
    expect(routePart(modern, { provider: 'azure', lineItemType: 'usage' }, '2026-01', settings).api).toBe('v1');
  });
  test('new-commerce billing uses the reconciliation export from V2_RECONCILIATION_FROM on', () => {
    expect(routePart(modern, { provider: 'onetime', lineItemType: 'billing' }, '2024-01', settings).api).toBe('v1');
    expect(routePart(modern, { provider: 'onetime', lineItemType: 'billing' }, '2024-02', settings)).toMatchObject({
      api: 'v2',
      v2Kind: 'reconciliation',
    });
  });
  test('new-commerce usage uses the usage export from V2_USAGE_FROM on, and the cut-overs are settings', () => {
    expect(routePart(modern, { provider: 'onetime', lineItemType: 'usage' }, '2022-08', settings).api).toBe('v1');
    expect(routePart(modern, { provider: 'marketplace', lineItemType: 'usage' }, '2022-09', settings)).toMatchObject({
      api: 'v2',
      v2Kind: 'usage',
    });
    const moved = settingsSchema.parse({ V2_USAGE_FROM: '2023-01' });
    expect(routePart(modern, { provider: 'onetime', lineItemType: 'usage' }, '2022-09', moved).api).toBe('v1');
  });
  test('a part no request is known for is not routed', () => {
    expect(
      routePart(
        modern,
        { provider: 'future', lineItemType: 'billing', supported: false, reason: 'unknown provider' },
        '2026-01',
        settings,
      ),
    ).toEqual({
      api: 'none',
      reason: 'unknown provider',
    });
  });
});

describe('links are only followed where they belong', () => {
  const allow = linkPolicy(settingsSchema.parse({}));
  test.each([
    ['https://adlsreconbuprodeastus201.blob.core.windows.net/x/y.json.gz?sig=abc', true],
    ['https://api.partnercenter.microsoft.com/v1/invoices/G1/documents/statement', true],
    ['https://graph.microsoft.com/v1.0/reports/partners/billing/operations/1', true],
    ['http://adls.blob.core.windows.net/x', false],
    ['https://evil.example.com/x.pdf', false],
    ['https://blob.core.windows.net.evil.com/x', false],
    ['https://user:pw@x.blob.core.windows.net/x', false],
    ['http://127.0.0.1:1234/x', false],
    ['file:///etc/passwd', false],
  ])('%s → %s', (url, expected) => {
    expect(allow(new URL(url))).toBe(expected);
  });
  test('plain http to loopback only when ALLOW_INSECURE_LOOPBACK is on', () => {
    const local = linkPolicy(settingsSchema.parse({ ALLOW_INSECURE_LOOPBACK: 'true' }));
    expect(local(new URL('http://127.0.0.1:1234/x'))).toBe(true);
    expect(local(new URL('http://10.0.0.1/x'))).toBe(false);
  });
});
