import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/http/index.js';
import { rawTopLevelValue } from '../../src/http/json-items.js';
import {
  type Invoice,
  invoiceParts,
  type ListedItem,
  type PartnerCenterClient,
  taxReceipts,
} from '../../src/partner-center/index.js';
import { apiFault, type Simulator, startSimulator, throttle } from '../simulator/index.js';
import { collect, simClient } from './support.js';

/** The listed invoices (every item judged usable), failing the test on any rejected item. */
async function listedInvoices(
  pc: PartnerCenterClient,
  options: Parameters<PartnerCenterClient['listInvoices']>[0] = {},
) {
  const listed: ListedItem[] = await collect(pc.listInvoices(options));
  expect(listed.filter((l) => l.kind === 'rejected')).toEqual([]);
  return listed.flatMap((l) => (l.kind === 'invoice' ? [l.invoice] : []));
}

describe('PartnerCenterClient invoices', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ invoicePageSize: 3 });
  });
  afterAll(async () => {
    await sim.stop();
  });

  it('lists every page by following links.next (regression: only the first page of invoices read)', async () => {
    const pc = simClient(sim);
    const before = sim.requests.length;
    const invoices = await listedInvoices(pc, { correlationId: 'list-1' });
    const listRequests = sim.requests.slice(before).filter((r) => r.path === '/v1/invoices');
    const expectedTopLevel = sim.dataset.invoices().filter((s) => s.listed ?? !s.amendsOf);
    expect(listRequests.length).toBe(Math.ceil(expectedTopLevel.length / 3));
    expect(listRequests.length).toBeGreaterThan(1);
    expect(new Set(listRequests.map((r) => r.headers['ms-correlationid']))).toEqual(new Set(['list-1']));
    // Every invoice, amendments included, exactly once.
    const ids = invoices.map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(
      sim.dataset
        .invoices()
        .map((s) => s.id)
        .sort(),
    );
  });

  it('flattens amendments after their parent and keeps amendsOf', async () => {
    const invoices = await listedInvoices(simClient(sim));
    const amendment = invoices.find((i) => i.id === 'G000024136') as Invoice;
    expect(amendment.amendsOf).toBe('G000024135');
    expect(invoices.findIndex((i) => i.id === 'G000024135')).toBeLessThan(invoices.indexOf(amendment));
  });

  it('dedupes an invoice that appears both top-level and nested', async () => {
    const dup = await startSimulator({
      invoicePageSize: 2,
      dataset: {
        invoices: [
          { id: 'G100000001', kind: 'modern', billingPeriod: '2025-01' },
          { id: 'G100000002', kind: 'modern', billingPeriod: '2025-01', amendsOf: 'G100000001', listed: true },
          { id: 'G100000003', kind: 'modern', billingPeriod: '2025-02' },
        ],
      },
    });
    try {
      const ids = (await listedInvoices(simClient(dup))).map((i) => i.id);
      expect(ids.sort()).toEqual(['G100000001', 'G100000002', 'G100000003']);
    } finally {
      await dup.stop();
    }
  });

  it('passes unknown fields and enum values through untouched (Marketplace, new documentType)', async () => {
    const invoices = await listedInvoices(simClient(sim));
    const modern = invoices.find((i) => i.id === 'G058476717') as Invoice;
    expect(modern.documentType).toBe('consolidated_statement');
    expect(modern.attributes).toEqual({ objectType: 'Invoice' });
    const { parts } = invoiceParts(modern);
    expect(parts.map((p) => p.partId)).toEqual(['onetime-billing', 'onetime-usage']);
    expect(parts.every((p) => p.supported)).toBe(true);
  });

  it('gets one invoice by id with the App+User token; raw is the body as received', async () => {
    const pc = simClient(sim);
    const { invoice, raw } = await pc.getInvoice('D02005YFHI', { correlationId: 'sync-1' });
    expect(invoice.id).toBe('D02005YFHI');
    expect(JSON.parse(raw)).toEqual(invoice);
    const last = sim.requests.at(-1);
    expect(last?.path).toBe('/v1/invoices/D02005YFHI');
    expect(last?.headers['ms-correlationid']).toBe('sync-1');
  });

  it('the app-only credential is refused by-id (403 code 2032), as a typed non-retriable ApiError', async () => {
    const pc = simClient(sim, { appUserCredential: undefined });
    const error = await pc.getInvoice('D02005YFHI').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 403, code: '2032', description: 'Access denied', retriable: false });
  });

  it('404 ApiFault with a numeric code becomes ApiError with the request id', async () => {
    const error = (await simClient(sim)
      .getInvoice('G999999999')
      .catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 404, code: '1000', description: 'Not found', retriable: false });
    expect(error.requestId).toBe(sim.requests.at(-1)?.headers['ms-requestid']);
    expect(error.url).toContain('/v1/invoices/G999999999');
  });

  it('rejects ids that could change the path, before any request', async () => {
    const pc = simClient(sim);
    const before = sim.requests.length;
    for (const bad of ['../invoices', 'G1/lineitems', 'G1?x=1', '', 'a'.repeat(65), 'G1%2F']) {
      await expect(pc.getInvoice(bad)).rejects.toMatchObject({ code: 'InvalidId' });
      await expect(pc.openInvoicePdf(bad)).rejects.toMatchObject({ code: 'InvalidId' });
    }
    expect(sim.requests.length).toBe(before);
  });

  it('strips a leading UTF-8 BOM from every JSON response', async () => {
    const bom = await startSimulator({ bom: true, invoicePageSize: 4 });
    try {
      const pc = simClient(bom);
      const invoices = await listedInvoices(pc);
      expect(invoices.length).toBe(bom.dataset.invoices().length);
      const { raw } = await pc.getInvoice('G000024130');
      expect(raw.charCodeAt(0)).toBe('{'.charCodeAt(0));
    } finally {
      await bom.stop();
    }
  });

  it('keeps listing through a 429 with Retry-After (regression: 429 treated as fatal)', async () => {
    sim.faults.add(throttle(0, { path: '/v1/invoices', times: 2 }));
    const invoices = await listedInvoices(simClient(sim));
    expect(invoices.length).toBe(sim.dataset.invoices().length);
    expect(sim.faults.pending.length).toBe(0);
  });

  it('never follows an absolute next link to another host (no token leaves Partner Center)', async () => {
    sim.faults.add({
      kind: 'status',
      status: 200,
      path: '/v1/invoices',
      body: JSON.stringify({
        totalCount: 0,
        items: [],
        links: { next: { uri: 'https://evil.example/v1/invoices?offset=4', method: 'GET', headers: [] } },
      }),
    });
    const before = sim.requests.length;
    await expect(collect(simClient(sim).listInvoices())).rejects.toMatchObject({ code: 'LinkNotAllowed' });
    expect(sim.requests.length - before).toBe(1);
  });

  it('an invoice without the fields the code relies on fails with a clear schema error', async () => {
    sim.faults.add({ kind: 'status', status: 200, path: '/v1/invoices/G000024130', body: '{"invoiceDate":1}' });
    await expect(simClient(sim).getInvoice('G000024130')).rejects.toThrow(/unexpected invoice shape: id/);
  });

  it('judges every list item and amendment alone; raw is each item verbatim', async () => {
    const first =
      '{"id":"G100000001","invoiceDate":"2025-01-05T00:00:00Z","totalCharges": 12345678901234567.89,' +
      '"taxReceipts":[{"id":null},{"id":"R1"}],"invoiceDetails":[null,{"billingProvider":"one_time",' +
      '"invoiceLineItemType":"billing_line_items"},"junk"],"currencyCode":"USD",' +
      '"amendments":[null,{"invoiceDate":"2025-01-06"},{"id":"G100000002","totalCharges":-1.50,"documentType":"void_note"}]}';
    const items = [
      first,
      '{"id":4200000001,"invoiceDate":"2025-02-01T00:00:00Z"}',
      '"G100000009"',
      '{"noId":true}',
      `{"id":"../evil?sig=SECRETSIG&x=${'y'.repeat(120)}"}`,
      '{"id":9007199254740993}',
      '{"id":"G100000003","invoiceDate":5}',
    ];
    sim.faults.add({
      kind: 'status',
      status: 200,
      path: /^\/v1\/invoices$/,
      headers: { 'content-type': 'application/json' },
      // The next link repeats the page just read: the walk must stop, not loop.
      body: `{"totalCount":${items.length},"items":[\n${items.join(',\n')}\n],"links":{"next":{"uri":"/invoices","method":"GET","headers":[]}}}`,
    });
    const before = sim.requests.length;
    const listed = await collect(simClient(sim).listInvoices());
    expect(sim.requests.length - before).toBe(1);
    expect(listed.map((l) => (l.kind === 'invoice' ? `invoice ${l.invoice.id}` : `rejected ${l.idAsSent}`))).toEqual([
      'invoice G100000001',
      'rejected null',
      'rejected ',
      'invoice G100000002',
      'invoice 4200000001',
      'rejected "G100000009"',
      'rejected ',
      expect.stringMatching(/^rejected \.\.\/evil\?sig=REDACTED/),
      'rejected 9007199254740993',
      'rejected G100000003',
    ]);
    const [parent, nullAmendment, noIdAmendment, amendment, numeric, scalar, noId, unsafe, unsafeNumber, badShape] =
      listed;
    if (parent?.kind !== 'invoice' || amendment?.kind !== 'invoice' || numeric?.kind !== 'invoice') throw new Error();
    expect(parent.raw).toBe(first);
    expect(rawTopLevelValue(parent.raw, 'totalCharges')).toBe('12345678901234567.89');
    expect(amendment.raw).toBe('{"id":"G100000002","totalCharges":-1.50,"documentType":"void_note"}');
    expect(amendment.invoice.amendsOf).toBe('G100000001');
    expect(numeric.raw).toBe('{"id":4200000001,"invoiceDate":"2025-02-01T00:00:00Z"}');
    expect(nullAmendment).toMatchObject({
      kind: 'rejected',
      parentId: 'G100000001',
      reason: 'amendment is null, not an invoice object',
    });
    expect(noIdAmendment).toMatchObject({ kind: 'rejected', parentId: 'G100000001', reason: 'amendment has no id' });
    expect(scalar).toMatchObject({ reason: 'list item is a string, not an invoice object' });
    expect(scalar).not.toHaveProperty('parentId');
    expect(noId).toMatchObject({ reason: 'list item has no id' });
    expect(unsafe).toMatchObject({ reason: expect.stringMatching(/fails the id rule/) });
    if (unsafe?.kind !== 'rejected') throw new Error();
    expect(Array.from(unsafe.idAsSent).length).toBeLessThanOrEqual(80);
    expect(unsafe.idAsSent).not.toContain('SECRETSIG');
    expect(unsafeNumber).toMatchObject({ reason: 'list item id is a number that is not a safe integer, not a string' });
    expect(badShape).toMatchObject({ reason: expect.stringMatching(/unexpected invoice shape: invoiceDate/) });

    // Unusable receipts and details no longer make the invoice unusable: they are skipped and reported.
    expect(invoiceParts(parent.invoice)).toEqual({
      parts: [expect.objectContaining({ partId: 'onetime-billing', supported: true })],
      skipped: [
        { index: 0, reason: 'invoiceDetails[0] is null' },
        { index: 2, reason: 'invoiceDetails[2] is string' },
      ],
    });
    expect(taxReceipts(parent.invoice)).toEqual({
      receipts: [{ id: 'R1' }],
      skipped: [{ index: 0, reason: 'taxReceipts[0] has no usable id (null)' }],
    });
  });

  it('a page whose HTTP call fails ends the walk with the error (the caller retries later)', async () => {
    sim.faults.add({ ...apiFault(500, 'InternalError', { times: 20 }), path: /^\/v1\/invoices$/ });
    const seen: ListedItem[] = [];
    const error = await (async () => {
      for await (const item of simClient(sim, { maxRetries: 1 }).listInvoices()) seen.push(item);
    })().catch((e: unknown) => e);
    sim.faults.clear();
    expect(seen).toEqual([]);
    expect(error).toMatchObject({ name: 'ApiError', status: 500, code: 'InternalError', retriable: true });
  });
});
