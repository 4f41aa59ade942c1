import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../simulator/index.js';

let sim: Simulator;
let plain: Simulator;
const invoice = {
  id: 'D0REPLAY01',
  kind: 'legacy' as const,
  billingPeriod: '2024-01',
  receipts: 0,
  parts: [{ provider: 'azure' as const, lineItemType: 'usage_line_items' as const, rows: 30 }],
};

beforeAll(async () => {
  sim = await startSimulator({ seed: 3, dataset: { invoices: [invoice] }, replay: true });
  plain = await startSimulator({ seed: 3, dataset: { invoices: [invoice] } });
});
afterAll(async () => {
  await sim?.stop();
  await plain?.stop();
});

const page = async (s: Simulator, offset: number, auth = true) => {
  const token = s.issueToken({ audience: 'partnercenter', ttlSeconds: 600 });
  const response = await fetch(
    `${s.partnerCenterUrl}/v1/invoices/${invoice.id}/lineitems/Azure/UsageLineItems?size=10&offset=${offset}`,
    { headers: auth ? { authorization: `Bearer ${token}` } : {} },
  );
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
};

describe('replay (benchmarks)', () => {
  it('answers a page again with the bytes it rendered the first time, which are the bytes without replay', async () => {
    const first = await page(sim, 10);
    const again = await page(sim, 10);
    expect(first.status).toBe(200);
    expect(again).toEqual(first);
    expect(again.body).toBe((await page(plain, 10)).body);
    // Another page is its own entry.
    expect((await page(sim, 20)).body).not.toBe(first.body);
  });

  it('never replays to a request without a token: the simulator answers it', async () => {
    await page(sim, 0);
    expect((await page(sim, 0, false)).status).toBe(401);
  });
});
