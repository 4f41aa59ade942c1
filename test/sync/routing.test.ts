// Which API serves a part. A legacy invoice routed to a v2 export would ask Graph for data it does not have, and
// a new-commerce part routed to v1 after the cut-over reads the wrong source: each rule is pinned on both sides.
import { describe, expect, test } from 'vitest';
import { settingsSchema } from '../../src/config.js';
import { routePart } from '../../src/sync/routing.js';

const settings = settingsSchema.parse({});
const billing = { provider: 'onetime', lineItemType: 'billing' };
const usage = { provider: 'onetime', lineItemType: 'usage' };
// Well after both cut-overs: a new-commerce part goes to v2 unless its invoice is legacy.
const LATE = '2026-01';

describe('legacy invoices are read through v1 whatever their parts', () => {
  test.each([
    ['a D id without an invoice type', { id: 'D02005YFHI' }],
    ['a lower-case d id', { id: 'd02005yfhi' }],
    ['invoiceType Recurring', { id: 'G000123456', invoiceType: 'Recurring' }],
    ['invoiceType recurring in capitals', { id: 'G000123456', invoiceType: 'RECURRING' }],
    ['invoiceType with underscores', { id: 'G000123456', invoiceType: 'Re_curr_ing' }],
  ])('%s', (_name, invoice) => {
    for (const part of [billing, usage]) {
      const route = routePart(invoice, part, LATE, settings);
      expect(route.api).toBe('v1');
      expect(route.reason).toMatch(/legacy invoice/);
    }
  });

  test.each([
    ['a D that does not start the id', { id: 'G00D123456' }],
    ['invoiceType OneTime', { id: 'G000123456', invoiceType: 'OneTime' }],
    ['invoiceType that only contains recurring', { id: 'G000123456', invoiceType: 'NonRecurring' }],
    ['no invoiceType', { id: 'G000123456' }],
    ['an invoiceType that is not a string', { id: 'G000123456', invoiceType: 7 }],
  ])('not legacy: %s', (_name, invoice) => {
    expect(routePart(invoice, billing, LATE, settings)).toMatchObject({ api: 'v2', v2Kind: 'reconciliation' });
    expect(routePart(invoice, usage, LATE, settings)).toMatchObject({ api: 'v2', v2Kind: 'usage' });
  });
});

describe('what each route says about itself', () => {
  const modern = { id: 'G000123456', invoiceType: 'OneTime' };

  test('office and azure parts of a new-commerce invoice: v1, named', () => {
    for (const provider of ['office', 'azure']) {
      const route = routePart(modern, { provider, lineItemType: 'billing' }, LATE, settings);
      expect(route).toEqual({ api: 'v1', reason: `${provider} parts are legacy: v1 only` });
    }
  });

  test('the cut-over reasons name the month and the setting', () => {
    expect(routePart(modern, billing, '2024-01', settings).reason).toBe(
      `billing period 2024-01 < V2_RECONCILIATION_FROM ${settings.V2_RECONCILIATION_FROM}`,
    );
    expect(routePart(modern, usage, LATE, settings).reason).toBe(
      `billing period ${LATE} >= V2_USAGE_FROM ${settings.V2_USAGE_FROM}`,
    );
    expect(routePart(modern, billing, LATE, settings).reason).toBe(
      `billing period ${LATE} >= V2_RECONCILIATION_FROM ${settings.V2_RECONCILIATION_FROM}`,
    );
    expect(routePart(modern, usage, '2020-01', settings).reason).toBe(
      `billing period 2020-01 < V2_USAGE_FROM ${settings.V2_USAGE_FROM}`,
    );
  });

  test('a line-item type no API is known for goes to v1, saying so', () => {
    expect(routePart(modern, { provider: 'onetime', lineItemType: 'tax' }, LATE, settings)).toEqual({
      api: 'v1',
      reason: 'unknown line-item type: v1 is the only API that may know it',
    });
  });

  test('an unsupported part without a reason of its own still gets one', () => {
    expect(routePart(modern, { ...billing, supported: false }, LATE, settings)).toEqual({
      api: 'none',
      reason: 'no known request for this part',
    });
  });
});
