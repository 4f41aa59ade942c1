import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Invoice,
  type InvoicePart,
  invoiceParts,
  type LineItemCheckpoint,
  type LineItemPage,
  type PartnerCenterClient,
} from '../../src/partner-center/index.js';
import { apiFault, type Simulator, startSimulator, throttle } from '../simulator/index.js';
import { collect, simClient } from './support.js';

const ROWS = 7;

async function partOf(pc: PartnerCenterClient, invoiceId: string, partId: string) {
  const { invoice } = await pc.getInvoice(invoiceId);
  const part = invoiceParts(invoice).find((p) => p.partId === partId) as InvoicePart;
  expect(part, partId).toBeDefined();
  return { invoice, part };
}

/** The exact rows the simulator serves for a part, in order. */
function expectedRows(sim: Simulator, invoiceId: string, provider: string, type: string): string[] {
  const n = sim.dataset.rows(invoiceId, provider, type);
  return Array.from({ length: n }, (_, i) => sim.dataset.row(invoiceId, provider, type, i));
}

describe('line items', () => {
  let sim: Simulator;
  let pc: PartnerCenterClient;
  beforeAll(async () => {
    sim = await startSimulator({ dataset: { rowsPerPart: ROWS } });
    pc = simClient(sim);
  });
  afterAll(async () => {
    await sim.stop();
  });

  it('maps every invoiceDetails entry to a part; unknown providers/types are unsupported, never fatal', () => {
    const invoice: Invoice = {
      id: 'G1',
      currencyCode: 'USD',
      invoiceDetails: [
        { billingProvider: 'office', invoiceLineItemType: 'billing_line_items' },
        { billingProvider: 'azure', invoiceLineItemType: 'usage_line_items' },
        { billingProvider: 'one_time', invoiceLineItemType: 'billing_line_items' },
        { billingProvider: 'marketplace', invoiceLineItemType: 'usage_line_items' },
        { billingProvider: 'OneTime', invoiceLineItemType: 'BillingLineItems' },
        { billingProvider: 'azure_data_market', invoiceLineItemType: 'billing_line_items' },
        { billingProvider: 'office', invoiceLineItemType: 'usage_line_items' },
        { billingProvider: 'office', invoiceLineItemType: 'brand_new_type' },
      ],
    };
    const parts = invoiceParts(invoice);
    expect(parts.map((p) => [p.partId, p.supported, p.paging])).toEqual([
      ['office-billing', true, 'offset'],
      ['azure-usage', true, 'offset'],
      ['onetime-billing', true, 'seek'],
      ['onetime-usage', true, 'seek'],
      ['azuredatamarket-billing', false, undefined],
      ['office-usage', false, undefined],
      ['office-brandnewtype', false, undefined],
    ]);
    expect(parts.find((p) => p.partId === 'azuredatamarket-billing')?.reason).toContain('azure_data_market');
  });

  it('offset paging (office): N pages of distinct rows, the last partial page kept, rows verbatim', async () => {
    const { invoice, part } = await partOf(pc, 'D02005YFHI', 'office-billing');
    const pages = await collect(pc.lineItems(invoice, part).byPage({ pageSize: 3 }));
    const expected = expectedRows(sim, 'D02005YFHI', 'office', 'billing_line_items');
    expect(pages.map((p) => p.rows.length)).toEqual([3, 3, 1]);
    expect(pages.map((p) => p.pageIndex)).toEqual([0, 1, 2]);
    // Regression: the first page added again on every loop / the last partial batch dropped.
    expect(pages.flatMap((p) => p.rows)).toEqual(expected);
    expect(pages.at(-1)?.next).toBeNull();
    expect(pages[0]?.next).toEqual({ kind: 'offset', pageIndex: 1, offset: 3 });
    // Without a caller correlation id, one is made per reader, not per page.
    const reads = sim.requests.filter((r) => r.path.endsWith('/Office/BillingLineItems')).slice(-3);
    expect(new Set(reads.map((r) => r.headers['ms-correlationid'])).size).toBe(1);
    const requests = sim.requests.filter((r) => r.path === '/v1/invoices/D02005YFHI/lineitems/Office/BillingLineItems');
    expect(requests.map((r) => r.query.offset)).toEqual(['0', '3', '6']);
  });

  it('drifted types (mpnId number or string) reach the rows untouched', async () => {
    const { invoice, part } = await partOf(pc, 'D02005YFHI', 'office-billing');
    const rows = (await collect(pc.lineItems(invoice, part).byPage({ pageSize: 50 }))).flatMap((p) => p.rows);
    const kinds = new Set(rows.map((r) => typeof (JSON.parse(r) as { mpnId: unknown }).mpnId));
    expect(kinds).toEqual(new Set(['number', 'string']));
  });

  it('seek paging (onetime): provider=onetime, every links.next header sent, stops without next', async () => {
    const { invoice, part } = await partOf(pc, 'G000024130', 'onetime-billing');
    const before = sim.requests.length;
    const pages = await collect(pc.lineItems(invoice, part, { correlationId: 'export-1' }).byPage({ pageSize: 4 }));
    const expected = expectedRows(sim, 'G000024130', 'one_time', 'billing_line_items');
    expect(pages.flatMap((p) => p.rows)).toEqual(expected);
    expect(pages.map((p) => p.rows.length)).toEqual([4, 4, 1]);
    const requests = sim.requests.slice(before).filter((r) => r.path === '/v1/invoices/G000024130/lineitems');
    expect(requests.map((r) => r.query.provider)).toEqual(['onetime', 'onetime', 'onetime']);
    expect(requests[0]?.headers['ms-continuationtoken']).toBeUndefined();
    expect(requests[0]?.query.seekOperation).toBeUndefined();
    for (const [i, r] of requests.slice(1).entries()) {
      expect(r.query.seekOperation).toBe('Next');
      const checkpoint = pages[i]?.next as Extract<LineItemCheckpoint, { kind: 'seek' }>;
      expect(r.headers['ms-continuationtoken']).toBe(checkpoint.headers['MS-ContinuationToken']);
      expect(r.status).toBe(200);
    }
    expect(new Set(requests.map((r) => r.headers['ms-correlationid']))).toEqual(new Set(['export-1']));
    expect(pages.at(-1)?.next).toBeNull();
    expect(JSON.parse(JSON.stringify(pages[0]?.next))).toEqual(pages[0]?.next);
  });

  it('billed usage goes to provider=onetime with currencycode and period=previous (marketplace too)', async () => {
    for (const id of ['G000024130', 'G058476717']) {
      const { invoice, part } = await partOf(pc, id, 'onetime-usage');
      const before = sim.requests.length;
      const rows = (await collect(pc.lineItems(invoice, part).byPage({ pageSize: 5 }))).flatMap((p) => p.rows);
      const provider = id === 'G058476717' ? 'marketplace' : 'one_time';
      expect(rows).toEqual(expectedRows(sim, id, provider, 'usage_line_items'));
      const first = sim.requests[before];
      expect(first?.query).toMatchObject({
        provider: 'onetime',
        invoicelineitemtype: 'usagelineitems',
        currencycode: invoice.currencyCode,
        period: 'previous',
      });
    }
  });

  it('an empty part yields one empty last page', async () => {
    const empty = await startSimulator({
      dataset: {
        invoices: [
          {
            id: 'G200000001',
            kind: 'modern',
            billingPeriod: '2025-01',
            parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 0 }],
          },
        ],
      },
    });
    try {
      const client = simClient(empty);
      const { invoice, part } = await partOf(client, 'G200000001', 'onetime-billing');
      const pages = await collect(client.lineItems(invoice, part).byPage({ pageSize: 3 }));
      expect(pages).toEqual([{ pageIndex: 0, rows: [], next: null, requestId: expect.any(String) }]);
    } finally {
      await empty.stop();
    }
  });

  for (const [invoiceId, partId, provider, type] of [
    ['D070002ISK', 'azure-usage', 'azure', 'usage_line_items'],
    ['G000024135', 'onetime-usage', 'one_time', 'usage_line_items'],
  ] as const) {
    it(`resuming ${partId} from page k's checkpoint yields pages k+1.. exactly as a straight run`, async () => {
      const { invoice, part } = await partOf(pc, invoiceId, partId);
      const straight = await collect(pc.lineItems(invoice, part).byPage({ pageSize: 2 }));
      expect(straight.flatMap((p) => p.rows)).toEqual(expectedRows(sim, invoiceId, provider, type));
      expect(straight.length).toBeGreaterThan(3);
      for (let k = 0; k < straight.length - 1; k++) {
        // The checkpoint goes through JSON, as it does through the ledger.
        const checkpoint = JSON.parse(JSON.stringify(straight[k]?.next)) as LineItemCheckpoint;
        const resumed = await collect(pc.lineItems(invoice, part).byPage({ checkpoint, pageSize: 2 }));
        const strip = (pages: LineItemPage[]) => pages.map(({ pageIndex, rows, next }) => ({ pageIndex, rows, next }));
        expect(strip(resumed)).toEqual(strip(straight.slice(k + 1)));
      }
    });
  }

  it('tolerates the malformed next links of the docs (offset= truncated, size=2?seekOperation=Next)', async () => {
    const bad = await startSimulator({ malformedNextLinks: true, dataset: { rowsPerPart: ROWS } });
    try {
      const client = simClient(bad);
      for (const [invoiceId, partId, provider, type] of [
        ['D02005YFHI', 'azure-billing', 'azure', 'billing_line_items'],
        ['G016907411', 'onetime-billing', 'one_time', 'billing_line_items'],
      ] as const) {
        const { invoice, part } = await partOf(client, invoiceId, partId);
        const pages = await collect(client.lineItems(invoice, part).byPage({ pageSize: 3 }));
        expect(pages.flatMap((p) => p.rows)).toEqual(expectedRows(bad, invoiceId, provider, type));
        expect(pages.length).toBe(Math.ceil(bad.dataset.rows(invoiceId, provider, type) / 3));
      }
      expect(bad.requests.filter((r) => r.status !== 200)).toEqual([]);
    } finally {
      await bad.stop();
    }
  });

  it('a 429 and a 503 in the middle of paging are retried without losing or repeating a page', async () => {
    const { invoice, part } = await partOf(pc, 'G016907411', 'onetime-billing');
    sim.faults.add(throttle(0, { path: '/v1/invoices/G016907411/lineitems' }));
    sim.faults.add(throttle(undefined, { path: '/v1/invoices/G016907411/lineitems' }));
    const reader = pc.lineItems(invoice, part).byPage({ pageSize: 3 });
    const first = await reader.next();
    sim.faults.add(apiFault(503, 503, { path: '/v1/invoices/G016907411/lineitems' }));
    const rest = await collect({ [Symbol.asyncIterator]: () => reader });
    const rows = [...((first.value as LineItemPage).rows ?? []), ...rest.flatMap((p) => p.rows)];
    expect(rows).toEqual(expectedRows(sim, 'G016907411', 'one_time', 'billing_line_items'));
    expect(sim.faults.pending).toEqual([]);
  });

  it('never sends provider=one_time', () => {
    expect(sim.requests.filter((r) => r.query.provider?.toLowerCase() === 'one_time')).toEqual([]);
  });

  it('a next link that does not move forward cannot re-read the first page (regression: first page added again)', async () => {
    const { invoice, part } = await partOf(pc, 'D070002ISK', 'azure-billing');
    const path = '/v1/invoices/D070002ISK/lineitems/Azure/BillingLineItems';
    const firstPage = expectedRows(sim, 'D070002ISK', 'azure', 'billing_line_items').slice(0, 3);
    sim.faults.add({
      kind: 'status',
      status: 200,
      path,
      body: `{"totalCount":3,"items":[${firstPage.join(',')}],"links":{"next":{"uri":"/invoices/D070002ISK/lineitems/Azure/BillingLineItems?size=3&offset=0","method":"GET","headers":[]}}}`,
    });
    const before = sim.requests.length;
    const rows = (await collect(pc.lineItems(invoice, part).byPage({ pageSize: 3 }))).flatMap((p) => p.rows);
    expect(rows).toEqual(expectedRows(sim, 'D070002ISK', 'azure', 'billing_line_items'));
    expect(new Set(rows).size).toBe(rows.length);
    expect(sim.requests.slice(before).map((r) => r.query.offset)).toEqual(['0', '3', '6']);
  });

  it('rejects a checkpoint of the wrong kind for the part', async () => {
    const { invoice, part } = await partOf(pc, 'D070002ISK', 'azure-billing');
    const wrong: LineItemCheckpoint = { kind: 'seek', pageIndex: 1, uri: '/v1/x', headers: {} };
    await expect(collect(pc.lineItems(invoice, part).byPage({ checkpoint: wrong }))).rejects.toThrow(/offset/);
  });
});
