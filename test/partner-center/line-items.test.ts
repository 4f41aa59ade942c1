import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from '../../src/http/paging.js';
import {
  PartnerCenterClient as Client,
  type Invoice,
  type InvoicePart,
  invoiceParts,
  type LineItemCheckpoint,
  type LineItemRequest,
  lineItemCheckpointSchema,
  lineItemRequestSchema,
  type PartnerCenterClient,
  partRequest,
} from '../../src/partner-center/index.js';
import { anyToken, startLoopbackServer } from '../http/loopback-server.js';
import { apiFault, type Simulator, startSimulator, throttle } from '../simulator/index.js';
import { collect, simClient } from './support.js';

const ROWS = 7;

async function partOf(pc: PartnerCenterClient, invoiceId: string, partId: string) {
  const { invoice } = await pc.getInvoice(invoiceId);
  const part = invoiceParts(invoice).parts.find((p) => p.partId === partId) as InvoicePart;
  expect(part, partId).toBeDefined();
  return { invoice, part };
}

/** The stored form of a part's request, as syncInvoice records it: it goes through JSON and back. */
async function requestOf(pc: PartnerCenterClient, invoiceId: string, partId: string, pageSize: number) {
  const { invoice, part } = await partOf(pc, invoiceId, partId);
  const request = lineItemRequestSchema.parse(JSON.parse(JSON.stringify(partRequest(invoice, part, pageSize))));
  return { invoice, part, request };
}

type LinePage = Page<LineItemCheckpoint>;

/** The rows of a page as text lines (each page's NDJSON ends every row with a newline). */
function rowsOf(page: LinePage): string[] {
  const text = page.ndjson.toString('utf8');
  if (page.rows === 0) {
    expect(text).toBe('');
    return [];
  }
  expect(text.endsWith('\n')).toBe(true);
  const rows = text.slice(0, -1).split('\n');
  expect(rows.length).toBe(page.rows);
  return rows;
}
const allRows = (pages: LinePage[]) => pages.flatMap(rowsOf);

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
    const { parts, skipped } = invoiceParts(invoice);
    expect(skipped).toEqual([]);
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
    const { request } = await requestOf(pc, 'D02005YFHI', 'office-billing', 3);
    expect(request).toEqual({
      path: '/v1/invoices/D02005YFHI/lineitems/Office/BillingLineItems',
      query: 'size=3',
      paging: 'offset',
    });
    const pages = await collect(pc.lineItemPages(request));
    const expected = expectedRows(sim, 'D02005YFHI', 'office', 'billing_line_items');
    expect(pages.map((p) => p.rows)).toEqual([3, 3, 1]);
    expect(pages.map((p) => p.rowsThrough)).toEqual([3, 6, 7]);
    expect(pages.map((p) => p.next?.pageIndex ?? null)).toEqual([1, 2, null]);
    // Regression: the first page added again on every loop / the last partial batch dropped.
    expect(allRows(pages)).toEqual(expected);
    expect(pages.at(-1)?.next).toBeNull();
    expect(pages[0]?.next).toEqual({ kind: 'offset', pageIndex: 1, offset: 3 });
    // Without a caller correlation id, one is made per reader, not per page.
    const reads = sim.requests.filter((r) => r.path.endsWith('/Office/BillingLineItems')).slice(-3);
    expect(new Set(reads.map((r) => r.headers['ms-correlationid'])).size).toBe(1);
    const requests = sim.requests.filter((r) => r.path === '/v1/invoices/D02005YFHI/lineitems/Office/BillingLineItems');
    expect(requests.map((r) => r.query.offset)).toEqual(['0', '3', '6']);
  });

  it('drifted types (mpnId number or string) reach the rows untouched', async () => {
    const { request } = await requestOf(pc, 'D02005YFHI', 'office-billing', 50);
    const rows = allRows(await collect(pc.lineItemPages(request)));
    const kinds = new Set(rows.map((r) => typeof (JSON.parse(r) as { mpnId: unknown }).mpnId));
    expect(kinds).toEqual(new Set(['number', 'string']));
  });

  it('seek paging (onetime): provider=onetime, every links.next header sent, stops without next', async () => {
    const { request } = await requestOf(pc, 'G000024130', 'onetime-billing', 4);
    expect(request.paging).toBe('seek');
    const before = sim.requests.length;
    const pages = await collect(pc.lineItemPages(request, { correlationId: 'export-1' }));
    const expected = expectedRows(sim, 'G000024130', 'one_time', 'billing_line_items');
    expect(allRows(pages)).toEqual(expected);
    expect(pages.map((p) => p.rows)).toEqual([4, 4, 1]);
    expect(pages.map((p) => p.rowsThrough)).toEqual([4, 8, 9]);
    expect(pages.map((p) => (p.next?.kind === 'seek' ? p.next.rowsThrough : null))).toEqual([4, 8, null]);
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
      const { invoice, request } = await requestOf(pc, id, 'onetime-usage', 5);
      const before = sim.requests.length;
      const rows = allRows(await collect(pc.lineItemPages(request)));
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
      const { request } = await requestOf(client, 'G200000001', 'onetime-billing', 3);
      const pages = await collect(client.lineItemPages(request));
      expect(pages).toEqual([{ ndjson: Buffer.alloc(0), rows: 0, rowsThrough: 0, next: null }]);
    } finally {
      await empty.stop();
    }
  });

  for (const [invoiceId, partId, provider, type] of [
    ['D070002ISK', 'azure-usage', 'azure', 'usage_line_items'],
    ['G000024135', 'onetime-usage', 'one_time', 'usage_line_items'],
  ] as const) {
    it(`resuming ${partId} from page k's checkpoint yields pages k+1.. exactly as a straight run`, async () => {
      const { request } = await requestOf(pc, invoiceId, partId, 2);
      const straight = await collect(pc.lineItemPages(request));
      expect(allRows(straight)).toEqual(expectedRows(sim, invoiceId, provider, type));
      expect(straight.length).toBeGreaterThan(3);
      for (let k = 0; k < straight.length - 1; k++) {
        // The checkpoint goes through JSON and the strict schema, as it does through the ledger.
        const checkpoint = lineItemCheckpointSchema.parse(JSON.parse(JSON.stringify(straight[k]?.next)));
        const resumed = await collect(pc.lineItemPages(request, { checkpoint }));
        expect(resumed).toEqual(straight.slice(k + 1));
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
        const { request } = await requestOf(client, invoiceId, partId, 3);
        const pages = await collect(client.lineItemPages(request));
        expect(allRows(pages)).toEqual(expectedRows(bad, invoiceId, provider, type));
        expect(pages.length).toBe(Math.ceil(bad.dataset.rows(invoiceId, provider, type) / 3));
      }
      expect(bad.requests.filter((r) => r.status !== 200)).toEqual([]);
    } finally {
      await bad.stop();
    }
  });

  it('a 429 and a 503 in the middle of paging are retried without losing or repeating a page', async () => {
    const { request } = await requestOf(pc, 'G016907411', 'onetime-billing', 3);
    sim.faults.add(throttle(0, { path: '/v1/invoices/G016907411/lineitems' }));
    sim.faults.add(throttle(undefined, { path: '/v1/invoices/G016907411/lineitems' }));
    const reader = pc.lineItemPages(request);
    const first = await reader.next();
    sim.faults.add(apiFault(503, 503, { path: '/v1/invoices/G016907411/lineitems' }));
    const rest = await collect({ [Symbol.asyncIterator]: () => reader });
    const rows = [...rowsOf(first.value as LinePage), ...allRows(rest)];
    expect(rows).toEqual(expectedRows(sim, 'G016907411', 'one_time', 'billing_line_items'));
    expect(sim.faults.pending).toEqual([]);
  });

  it('never sends provider=one_time', () => {
    expect(sim.requests.filter((r) => r.query.provider?.toLowerCase() === 'one_time')).toEqual([]);
  });

  it('a next link that does not move forward cannot re-read the first page (regression: first page added again)', async () => {
    const { request } = await requestOf(pc, 'D070002ISK', 'azure-billing', 3);
    const path = '/v1/invoices/D070002ISK/lineitems/Azure/BillingLineItems';
    const firstPage = expectedRows(sim, 'D070002ISK', 'azure', 'billing_line_items').slice(0, 3);
    sim.faults.add({
      kind: 'status',
      status: 200,
      path,
      body: `{"totalCount":3,"items":[${firstPage.join(',')}],"links":{"next":{"uri":"/invoices/D070002ISK/lineitems/Azure/BillingLineItems?size=3&offset=0","method":"GET","headers":[]}}}`,
    });
    const before = sim.requests.length;
    const rows = allRows(await collect(pc.lineItemPages(request)));
    expect(rows).toEqual(expectedRows(sim, 'D070002ISK', 'azure', 'billing_line_items'));
    expect(new Set(rows).size).toBe(rows.length);
    expect(sim.requests.slice(before).map((r) => r.query.offset)).toEqual(['0', '3', '6']);
  });

  it('rejects a checkpoint of the wrong kind for the part', async () => {
    const { request } = await requestOf(pc, 'D070002ISK', 'azure-billing', 3);
    const wrong: LineItemCheckpoint = { kind: 'seek', pageIndex: 1, uri: '/v1/x', headers: {}, rowsThrough: 3 };
    await expect(collect(pc.lineItemPages(request, { checkpoint: wrong }))).rejects.toThrow(/offset/);
  });

  it('is lazy: exactly one request per next(), none ahead', async () => {
    const { request } = await requestOf(pc, 'D02005YFHI', 'azure-billing', 2);
    const reads = () => sim.requests.filter((r) => r.path.endsWith('/Azure/BillingLineItems')).length;
    const before = reads();
    const pages = pc.lineItemPages(request);
    expect(reads()).toBe(before);
    await pages.next();
    expect(reads()).toBe(before + 1);
    await pages.next();
    expect(reads()).toBe(before + 2);
    await pages.return?.(undefined);
    expect(reads()).toBe(before + 2);
  });

  it('clamps the page size to 1..2000 (the service maximum)', async () => {
    const { invoice, part } = await partOf(pc, 'G000024130', 'onetime-billing');
    expect(new URLSearchParams(partRequest(invoice, part, 5000).query).get('size')).toBe('2000');
    expect(new URLSearchParams(partRequest(invoice, part, 0).query).get('size')).toBe('1');
    const office = await partOf(pc, 'D02005YFHI', 'office-billing');
    expect(partRequest(office.invoice, office.part, 2001).query).toBe('size=2000');
  });

  it('validates a stored request and checkpoint before any call', async () => {
    const { request } = await requestOf(pc, 'G000024130', 'onetime-billing', 3);
    const other = await requestOf(pc, 'G016907411', 'onetime-billing', 3);
    const before = sim.requests.length;
    const bad: unknown[] = [
      { ...request, path: '/v1/invoices/../lineitems' },
      { ...request, path: 'https://evil.example/v1/invoices/G1/lineitems' },
      { ...request, paging: 'cursor' },
      { ...request, extra: 1 },
    ];
    for (const r of bad) {
      await expect(collect(pc.lineItemPages(r as LineItemRequest))).rejects.toThrow(/unusable line-item request/);
    }
    const first = (await pc.lineItemPages(request).next()).value as LinePage;
    const next = first.next as Extract<LineItemCheckpoint, { kind: 'seek' }>;
    const { rowsThrough: _dropped, ...withoutCount } = next;
    for (const checkpoint of [withoutCount, { ...next, extra: true }, { ...next, uri: 'https://evil.example/v1/x' }]) {
      await expect(
        collect(pc.lineItemPages(request, { checkpoint: checkpoint as LineItemCheckpoint })),
      ).rejects.toThrow(/unusable line-item checkpoint/);
    }
    await expect(collect(pc.lineItemPages(other.request, { checkpoint: next }))).rejects.toThrow(
      /is not a page of \/v1\/invoices\/G016907411\/lineitems/,
    );
    // Only the one good first page reached the service.
    expect(sim.requests.length - before).toBe(1);
  });
});

describe('seek paging against a scripted server', () => {
  const row = (i: number) => `{"n":${i},"big":12345678901234567890,"s":"a\\u00e9"}`;

  it('falls back to the body continuationToken and forwards link headers byte for byte', async () => {
    const token = 'a,b/c=d+e %2F f';
    const server = await startLoopbackServer((_req, res, _seen, index) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const uri =
        '/invoices/G1/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=2&seekOperation=Next';
      if (index === 0) {
        // No headers on the link: the body token must be sent.
        res.end(
          `{"continuationToken":"body-token","items":[${row(0)},${row(1)}],"links":{"next":{"uri":"${uri}","headers":[]}}}`,
        );
      } else if (index === 1) {
        res.end(
          `{"items":[${row(2)}],"links":{"next":{"uri":"${uri}","headers":[{"key":"MS-ContinuationToken","value":${JSON.stringify(token)}}]}}}`,
        );
      } else {
        res.end(`{"items":[${row(3)}],"links":{}}`);
      }
    });
    try {
      const client = new Client({ baseUrl: server.url, credential: anyToken, retryDelayInMs: 1 });
      const request: LineItemRequest = {
        path: '/v1/invoices/G1/lineitems',
        query: 'provider=onetime&invoicelineitemtype=billinglineitems&size=2',
        paging: 'seek',
      };
      const pages = await collect(client.lineItemPages(request));
      expect(allRows(pages)).toEqual([row(0), row(1), row(2), row(3)]);
      expect(pages.map((p) => p.rowsThrough)).toEqual([2, 3, 4]);
      expect(server.requests.map((r) => r.headers['ms-continuationtoken'])).toEqual([undefined, 'body-token', token]);
      expect(server.requests.slice(1).every((r) => r.query.get('seekOperation') === 'Next')).toBe(true);
    } finally {
      await server.stop();
    }
  });
});
