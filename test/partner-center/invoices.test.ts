import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/http/index.js';
import { type Invoice, invoiceParts } from '../../src/partner-center/index.js';
import { type Simulator, startSimulator, throttle } from '../simulator/index.js';
import { collect, simClient } from './support.js';

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
    const invoices = await collect(pc.listInvoices({ correlationId: 'list-1' }));
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
    const invoices = await collect(simClient(sim).listInvoices());
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
      const ids = (await collect(simClient(dup).listInvoices())).map((i) => i.id);
      expect(ids.sort()).toEqual(['G100000001', 'G100000002', 'G100000003']);
    } finally {
      await dup.stop();
    }
  });

  it('passes unknown fields and enum values through untouched (Marketplace, new documentType)', async () => {
    const invoices = await collect(simClient(sim).listInvoices());
    const modern = invoices.find((i) => i.id === 'G058476717') as Invoice;
    expect(modern.documentType).toBe('consolidated_statement');
    expect(modern.attributes).toEqual({ objectType: 'Invoice' });
    const parts = invoiceParts(modern);
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
      const invoices = await collect(pc.listInvoices());
      expect(invoices.length).toBe(bom.dataset.invoices().length);
      const { raw } = await pc.getInvoice('G000024130');
      expect(raw.charCodeAt(0)).toBe('{'.charCodeAt(0));
    } finally {
      await bom.stop();
    }
  });

  it('keeps listing through a 429 with Retry-After (regression: 429 treated as fatal)', async () => {
    sim.faults.add(throttle(0, { path: '/v1/invoices', times: 2 }));
    const invoices = await collect(simClient(sim).listInvoices());
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
});
