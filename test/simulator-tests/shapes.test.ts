// Every shape the documentation allows for Partner Center v1, as the simulator serves it on request: billing-period
// fields in the list or by id, date shapes, link styles, amendments nested or also listed, odd providers and types,
// raw injected items, exact totalCharges literals, and single-use seek tokens.
import { afterAll, describe, expect, test } from 'vitest';
import { type InvoiceSpec, type Simulator, type SimulatorOptions, startSimulator } from '../simulator/index.js';

const sims: Simulator[] = [];
afterAll(async () => {
  await Promise.all(sims.map((s) => s.stop()));
});
async function start(options: SimulatorOptions = {}): Promise<Simulator> {
  const started = await startSimulator(options);
  sims.push(started);
  return started;
}

interface Page {
  totalCount: number;
  items: unknown[];
  continuationToken?: string;
  links: { self: { uri: string }; next?: { uri: string; headers: { key: string; value: string }[] } };
}
const token = (s: Simulator) => s.issueToken({ audience: 'partnercenter', appUser: true });
const get = (s: Simulator, path: string, headers: Record<string, string> = {}) =>
  fetch(path.startsWith('http') ? path : `${s.partnerCenterUrl}${path}`, {
    headers: { authorization: `Bearer ${token(s)}`, ...headers },
  });
async function text(s: Simulator, path: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await get(s, path, headers);
  expect(response.status, path).toBe(200);
  return response.text();
}
/** Every list page's text, following next links exactly as given (relative ones get the origin, and /v1 if absent). */
async function listPages(s: Simulator, first = '/v1/invoices'): Promise<{ pages: Page[]; texts: string[] }> {
  const pages: Page[] = [];
  const texts: string[] = [];
  let path: string | undefined = first;
  while (path) {
    const body = await text(s, path);
    texts.push(body);
    const page = JSON.parse(body) as Page;
    pages.push(page);
    const next = page.links.next?.uri;
    path = next === undefined ? undefined : next.startsWith('http') || next.startsWith('/v1/') ? next : `/v1${next}`;
  }
  return { pages, texts };
}
const modern = (id: string, billingPeriod: string, extra: Partial<InvoiceSpec> = {}): InvoiceSpec => ({
  id,
  kind: 'modern',
  billingPeriod,
  parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 3 }],
  ...extra,
});

describe('billing-period fields', () => {
  test('default: the list has none (as the list example), by id has both; an invoice for September is dated 8 October', async () => {
    const s = await start();
    const { pages } = await listPages(s);
    const items = pages.flatMap((p) => p.items) as Record<string, unknown>[];
    expect(items.length).toBeGreaterThan(0);
    for (const item of items) {
      expect(item).not.toHaveProperty('billingPeriodStartDate');
      expect(item).not.toHaveProperty('billingPeriodEndDate');
      for (const amendment of (item.amendments ?? []) as Record<string, unknown>[]) {
        expect(amendment).not.toHaveProperty('billingPeriodStartDate');
      }
    }
    const september = s.dataset.invoices().find((x) => x.billingPeriod === '2026-09');
    expect(september?.id).toBe('G031809528');
    const listed = items.find((i) => i.id === september?.id);
    expect(listed?.invoiceDate).toBe('2026-10-08T22:40:37.5897767Z');
    const byId = JSON.parse(await text(s, `/v1/invoices/${september?.id}`)) as Record<string, unknown>;
    expect(byId).toMatchObject({
      invoiceDate: '2026-10-08T22:40:37.5897767Z',
      billingPeriodStartDate: '2026-09-01T00:00:00Z',
      billingPeriodEndDate: '2026-09-30T23:59:59.9999999Z',
    });
    expect(Object.keys(byId).slice(0, 4)).toEqual([
      'id',
      'invoiceDate',
      'billingPeriodStartDate',
      'billingPeriodEndDate',
    ]);
  });

  test('billingPeriodFields: both, listOnly, neither (dataset-wide and per invoice)', async () => {
    const s = await start({
      dataset: {
        billingPeriodFields: 'both',
        invoices: [
          modern('G000000001', '2025-01'),
          modern('G000000002', '2025-02', { billingPeriodFields: 'listOnly' }),
          modern('G000000003', '2025-03', { billingPeriodFields: 'neither' }),
          modern('G000000004', '2025-04', { billingPeriodFields: 'byIdOnly' }),
        ],
      },
    });
    const items = (await listPages(s)).pages.flatMap((p) => p.items) as Record<string, unknown>[];
    const has = (o: Record<string, unknown> | undefined) =>
      'billingPeriodStartDate' in (o ?? {}) && 'billingPeriodEndDate' in (o ?? {});
    expect(items.map(has)).toEqual([true, true, false, false]);
    const byId: boolean[] = [];
    for (const id of ['G000000001', 'G000000002', 'G000000003', 'G000000004']) {
      byId.push(has(JSON.parse(await text(s, `/v1/invoices/${id}`)) as Record<string, unknown>));
    }
    expect(byId).toEqual([true, false, false, true]);
  });
});

describe('date shapes', () => {
  test('per invoice and per field: Z, no zone, +00:00 and other offsets, 3/6/7-digit fractions, date only', async () => {
    const s = await start({
      dataset: {
        billingPeriodFields: 'both',
        invoices: [
          modern('G000000011', '2025-01', { dates: 'utc' }),
          modern('G000000012', '2025-01', { dates: 'local' }),
          modern('G000000013', '2025-01', { dates: '+00:00' }),
          modern('G000000014', '2025-01', { dates: 'date' }),
          modern('G000000015', '2025-01', { dates: '-05:00' }),
          modern('G000000016', '2025-01', {
            invoiceDate: '2025-01-31T23:30:00.1234567Z',
            dates: { invoiceDate: '+02:00', billingPeriodStartDate: 'local7', billingPeriodEndDate: 'utc3' },
          }),
          modern('G000000017', '2025-01', { dates: 'utc6' }),
        ],
      },
    });
    const dates = async (id: string) => {
      const invoice = JSON.parse(await text(s, `/v1/invoices/${id}`)) as Record<string, string>;
      return [invoice.invoiceDate, invoice.billingPeriodStartDate, invoice.billingPeriodEndDate];
    };
    expect(await dates('G000000011')).toEqual(['2025-02-08T22:40:37Z', '2025-01-01T00:00:00Z', '2025-01-31T23:59:59Z']);
    expect(await dates('G000000012')).toEqual(['2025-02-08T22:40:37', '2025-01-01T00:00:00', '2025-01-31T23:59:59']);
    expect(await dates('G000000013')).toEqual([
      '2025-02-08T22:40:37.5897767+00:00',
      '2025-01-01T00:00:00.0000000+00:00',
      '2025-01-31T23:59:59.9999999+00:00',
    ]);
    expect(await dates('G000000014')).toEqual(['2025-02-08', '2025-01-01', '2025-01-31']);
    // An offset writes the wall clock there: the same instant, a day earlier on the calendar for the period start.
    expect(await dates('G000000015')).toEqual([
      '2025-02-08T17:40:37.5897767-05:00',
      '2024-12-31T19:00:00.0000000-05:00',
      '2025-01-31T18:59:59.9999999-05:00',
    ]);
    expect(await dates('G000000016')).toEqual([
      '2025-02-01T01:30:00.1234567+02:00',
      '2025-01-01T00:00:00.0000000',
      '2025-01-31T23:59:59.999Z',
    ]);
    expect((await dates('G000000017'))[0]).toBe('2025-02-08T22:40:37.589776Z');
    // The list uses the same shapes.
    const listed = JSON.parse(await text(s, '/v1/invoices?size=1&offset=4')) as Page;
    expect((listed.items[0] as Record<string, string>).invoiceDate).toBe('2025-02-08T17:40:37.5897767-05:00');
  });

  test('an unknown shape is refused when the dataset is made', async () => {
    await expect(
      startSimulator({ dataset: { invoices: [modern('G000000019', '2025-01', { dates: 'zulu' as 'utc' })] } }),
    ).rejects.toThrow(/unknown date shape/);
  });
});

describe('link styles', () => {
  const seekPath = '/v1/invoices/G000024130/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=5';
  const offsetPath = '/v1/invoices/D02005YFHI/lineitems/Office/BillingLineItems?size=5';

  test('relative without /v1 by default, relative with /v1, absolute on the simulator origin; each walk completes', async () => {
    for (const style of ['relative', 'relativeV1', 'absolute'] as const) {
      const s = await start(style === 'relative' ? {} : { nextLinkStyle: style });
      const prefix = {
        relative: '/invoices',
        relativeV1: '/v1/invoices',
        absolute: `${s.partnerCenterUrl}/v1/invoices`,
      }[style];
      const { pages } = await listPages(s);
      expect(pages.length).toBeGreaterThan(1);
      for (const page of pages) expect(page.links.self.uri.startsWith(`${prefix}?size=`)).toBe(true);
      expect(pages[0]?.links.next?.uri).toBe(`${prefix}?size=4&offset=4`);
      expect(pages.flatMap((p) => p.items).length).toBe(s.dataset.listItems().length);

      const offset = JSON.parse(await text(s, offsetPath)) as Page;
      expect(offset.links.next?.uri).toBe(`${prefix}/D02005YFHI/lineitems/Office/BillingLineItems?size=5&offset=5`);
      const seek = JSON.parse(await text(s, seekPath)) as Page;
      expect(seek.links.next?.uri).toBe(
        `${prefix}/G000024130/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=5&seekOperation=Next`,
      );
      const next = seek.links.next?.uri ?? '';
      const url = next.startsWith('http') ? next : next.startsWith('/v1/') ? next : `/v1${next}`;
      const headers = Object.fromEntries((seek.links.next?.headers ?? []).map((h) => [h.key, h.value]));
      expect((await get(s, url, headers)).status).toBe(200);
    }
  });

  test('per collection: absolute invoice list, default line items', async () => {
    const s = await start({ nextLinkStyle: { invoices: 'absolute' } });
    const list = JSON.parse(await text(s, '/v1/invoices')) as Page;
    expect(list.links.next?.uri.startsWith(`${s.partnerCenterUrl}/v1/invoices?`)).toBe(true);
    const lines = JSON.parse(await text(s, offsetPath)) as Page;
    expect(lines.links.next?.uri.startsWith('/invoices/D02005YFHI/')).toBe(true);
  });
});

describe('amendments, providers and line-item types', () => {
  test('amendments nested only by default; with amendments "both" also at the top level, after their parent', async () => {
    const nested = await start();
    const ids = (pages: Page[]) => pages.flatMap((p) => p.items).map((i) => (i as { id: string }).id);
    expect(ids((await listPages(nested)).pages)).not.toContain('G000024136');
    const both = await start({ dataset: { amendments: 'both' } });
    const { pages } = await listPages(both);
    const top = ids(pages);
    expect(top.indexOf('G000024136')).toBe(top.indexOf('G000024135') + 1);
    expect(top).toContain('G016907412');
    const parent = pages.flatMap((p) => p.items).find((i) => (i as { id: string }).id === 'G000024135') as {
      amendments: { id: string }[];
    };
    expect(parent.amendments.map((a) => a.id)).toEqual(['G000024136']);
    // One invoice can still be top level only (`listed: true`) or nowhere at the top (`listed: false`).
    const mixed = await start({
      dataset: {
        amendments: 'both',
        invoices: [
          modern('G000000021', '2025-01'),
          modern('G000000022', '2025-01', { amendsOf: 'G000000021', documentType: 'adjustment_note', listed: true }),
          modern('G000000023', '2025-01', { amendsOf: 'G000000021', documentType: 'void_note', listed: false }),
        ],
      },
    });
    const list = (await listPages(mixed)).pages.flatMap((p) => p.items) as {
      id: string;
      amendments?: { id: string }[];
    }[];
    expect(list.map((i) => i.id)).toEqual(['G000000021', 'G000000022']);
    expect(list[0]?.amendments?.map((a) => a.id)).toEqual(['G000000023']);
    // With amendments nested (the default), `listed: 'both'` lists one amendment at the top level as well.
    const one = await start({
      dataset: {
        invoices: [
          modern('G000000024', '2025-01'),
          modern('G000000025', '2025-01', { amendsOf: 'G000000024', documentType: 'adjustment_note', listed: 'both' }),
          modern('G000000026', '2025-01', { amendsOf: 'G000000024', documentType: 'void_note' }),
        ],
      },
    });
    const oneList = (await listPages(one)).pages.flatMap((p) => p.items) as {
      id: string;
      amendments?: { id: string }[];
    }[];
    expect(oneList.map((i) => i.id)).toEqual(['G000000024', 'G000000025']);
    expect(oneList[0]?.amendments?.map((a) => a.id)).toEqual(['G000000025', 'G000000026']);
  });

  test('invoiceDetails carry one_time, marketplace, unknown providers (with "/", over 255 chars) and unknown types', async () => {
    const long = `x${'y'.repeat(299)}`;
    const s = await start({
      dataset: {
        invoices: [
          {
            id: 'G000000031',
            kind: 'modern',
            billingPeriod: '2025-05',
            parts: [
              { provider: 'one_time', lineItemType: 'billing_line_items', rows: 2 },
              { provider: 'marketplace', lineItemType: 'usage_line_items', rows: 2 },
              { provider: 'azure/reserved', lineItemType: 'billing_line_items', rows: 2 },
              { provider: long, lineItemType: 'billing_line_items', rows: 2 },
              { provider: 'one_time', lineItemType: 'consumption_line_items', rows: 2 },
            ],
          },
        ],
      },
    });
    const invoice = JSON.parse(await text(s, '/v1/invoices/G000000031')) as {
      invoiceDetails: { billingProvider: string; invoiceLineItemType: string; links: { self: { uri: string } } }[];
    };
    expect(invoice.invoiceDetails.map((d) => [d.billingProvider, d.invoiceLineItemType])).toEqual([
      ['one_time', 'billing_line_items'],
      ['marketplace', 'usage_line_items'],
      ['azure/reserved', 'billing_line_items'],
      [long, 'billing_line_items'],
      ['one_time', 'consumption_line_items'],
    ]);
    expect(long.length).toBeGreaterThan(255);
    // A "/" in a provider stays inside its path segment.
    expect(invoice.invoiceDetails[2]?.links.self.uri).toBe(
      '/invoices/OneTime-G000000031/lineitems/Azure%2Freserved/BillingLineItems',
    );
    // The line-item endpoints accept only the bindable providers and types: the others answer 400.
    const q = (provider: string, type: string) =>
      get(s, `/v1/invoices/G000000031/lineitems?provider=${encodeURIComponent(provider)}&invoicelineitemtype=${type}`);
    expect((await q('azure/reserved', 'billinglineitems')).status).toBe(400);
    expect((await q(long, 'billinglineitems')).status).toBe(400);
    expect((await q('onetime', 'consumptionlineitems')).status).toBe(400);
    expect((await q('onetime', 'billinglineitems')).status).toBe(200);
    // Parts nobody can read add nothing to the rows total, so totalCharges still reconciles with what is readable.
    expect(s.dataset.totalCharges('G000000031')).toBe(s.dataset.rowsTotal('G000000031'));
  });
});

describe('raw injection and exact literals', () => {
  test('raw list items sit among normal items and count in totalCount; raw values inside an invoice are verbatim', async () => {
    const s = await start({
      invoicePageSize: 3,
      dataset: {
        invoices: [
          modern('G000000041', '2025-06', {
            totalCharges: '12345678901234567.89',
            raw: {
              taxReceipts: ['{"id":null,"taxReceiptPdfDownloadLink":null}'],
              invoiceDetails: ['null'],
              amendments: [
                '{"invoiceDate":"2025-07-09T00:00:00Z","documentType":"adjustment_note","amendsOf":"G000000041"}',
              ],
            },
            receipts: 1,
          }),
          modern('1234567890', '2025-06', { raw: { fields: { id: '1234567890', extraField: '{"nested":[1,2]}' } } }),
          modern('G000000043', '2025-06'),
        ],
        listItems: [
          { raw: '{"id":98765,"invoiceDate":"2025-07-08T00:00:00Z"}', at: 1 },
          { raw: '"not an object"', at: 1 },
          { raw: 'null', at: 0 },
          { raw: '[1,2,3]' },
        ],
      },
    });
    const { pages, texts } = await listPages(s);
    expect(pages.map((p) => p.totalCount)).toEqual(pages.map((p) => p.items.length));
    expect(pages.map((p) => p.items.length)).toEqual([3, 3, 1]);
    const joined = texts.join('');
    for (const raw of ['{"id":98765,', '"not an object"', '[1,2,3]', '"totalCharges":12345678901234567.89,']) {
      expect(joined).toContain(raw);
    }
    const items = pages.flatMap((p) => p.items);
    expect(items[0]).toBeNull();
    expect((items[1] as { id: string }).id).toBe('G000000041');
    expect(items[2]).toEqual({ id: 98765, invoiceDate: '2025-07-08T00:00:00Z' });
    expect(items[3]).toBe('not an object');
    expect((items[4] as { id: unknown }).id).toBe(1234567890);
    expect(items.at(-1)).toEqual([1, 2, 3]);
    // The pages are exactly the dataset's list items, in order.
    const listed = s.dataset.listItems();
    expect(listed.length).toBe(7);
    expect(texts[0]).toContain(`"items":[${listed.slice(0, 3).join(',')}]`);

    const first = items[1] as {
      taxReceipts: unknown[];
      invoiceDetails: unknown[];
      amendments: Record<string, unknown>[];
    };
    expect(first.taxReceipts.at(-1)).toEqual({ id: null, taxReceiptPdfDownloadLink: null });
    expect(first.taxReceipts.length).toBe(2);
    expect(first.invoiceDetails.at(-1)).toBeNull();
    expect(first.amendments).toEqual([
      { invoiceDate: '2025-07-09T00:00:00Z', documentType: 'adjustment_note', amendsOf: 'G000000041' },
    ]);
    expect((items[4] as { extraField: unknown }).extraField).toEqual({ nested: [1, 2] });

    // By id carries the same literal, and the numeric-id invoice is still found by its decimal text.
    const byId = await text(s, '/v1/invoices/G000000041');
    expect(byId).toContain('"totalCharges":12345678901234567.89,');
    expect(s.dataset.totalChargesText('G000000041')).toBe('12345678901234567.89');
    expect(s.dataset.invoiceText('G000000041', 'byId')).toBe(byId.replace(/,"pdfDownloadLink":"[^"]*"/, ''));
    expect(await text(s, '/v1/invoices/1234567890')).toContain('"id":1234567890,');
    // Receipts with a null id are not servable; the generated one is.
    const receipt = (JSON.parse(byId) as { taxReceipts: { id: string | null }[] }).taxReceipts[0]?.id;
    expect((await get(s, `/v1/invoices/G000000041/receipts/${receipt}/documents/statement`)).status).toBe(200);
    expect((await get(s, '/v1/invoices/G000000041/receipts/null/documents/statement')).status).toBe(404);
  });
});

describe('seek tokens', () => {
  const first = '/v1/invoices/G000024130/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=5';
  async function walkSeek(s: Simulator): Promise<{ next: string; headers: Record<string, string> }[]> {
    const steps: { next: string; headers: Record<string, string> }[] = [];
    let page = JSON.parse(await text(s, first)) as Page;
    while (page.links.next) {
      const step = {
        next: `/v1${page.links.next.uri}`,
        headers: Object.fromEntries(page.links.next.headers.map((h) => [h.key, h.value])),
      };
      steps.push(step);
      page = JSON.parse(await text(s, step.next, step.headers)) as Page;
    }
    return steps;
  }

  test('default: a token names its position and may be resent; every issue, send and resend is recorded', async () => {
    const s = await start();
    const steps = await walkSeek(s);
    expect(steps.length).toBeGreaterThan(1);
    expect(s.seekTokens.issued.length).toBe(steps.length);
    expect(s.seekTokens.issued.every((t) => t.issues === 1 && t.sends === 1)).toBe(true);
    expect(s.seekTokens.reuses).toEqual([]);
    // A second walk is handed the same tokens again: sent as often as issued, so nothing is a resend.
    const again = await walkSeek(s);
    expect(again).toEqual(steps);
    expect(s.seekTokens.issued.every((t) => t.issues === 2 && t.sends === 2)).toBe(true);
    expect(s.seekTokens.reuses).toEqual([]);
    // Sending one a third time is served, and recorded as a resend.
    const resent = await get(s, steps[0]?.next ?? '', steps[0]?.headers);
    expect(resent.status).toBe(200);
    expect(s.seekTokens.reuses).toEqual([
      expect.objectContaining({
        from: 5,
        accepted: true,
        invoiceId: 'G000024130',
        token: steps[0]?.headers['MS-ContinuationToken'],
      }),
    ]);
    expect(s.seekTokens.issued[0]?.sends).toBe(3);
  });

  test('singleUse: a second send answers 400 in the ApiFault shape, or the message shape when asked', async () => {
    for (const errorShape of ['apiFault', 'message'] as const) {
      const s = await start({ seekTokens: { singleUse: true, errorShape } });
      const steps = await walkSeek(s);
      expect(s.seekTokens.reuses).toEqual([]);
      const again = await get(s, steps[0]?.next ?? '', steps[0]?.headers);
      expect(again.status).toBe(400);
      const message = 'The continuation token is missing or not valid for this request.';
      expect(await again.json()).toEqual(
        errorShape === 'message' ? { message } : { code: 400, description: message, data: [], source: 'PartnerFD' },
      );
      expect(s.seekTokens.reuses).toEqual([expect.objectContaining({ accepted: false, from: 5 })]);
      // A fresh walk is handed fresh tokens, which work once each.
      const fresh = await walkSeek(s);
      expect(fresh.map((f) => f.headers['MS-ContinuationToken'])).not.toContain(
        steps[0]?.headers['MS-ContinuationToken'],
      );
      expect(new Set(s.seekTokens.issued.map((t) => t.token)).size).toBe(s.seekTokens.issued.length);
      expect(s.seekTokens.issued.every((t) => t.issues === 1)).toBe(true);
      expect(s.seekTokens.issued.filter((t) => t.sends === 1).length).toBe(s.seekTokens.issued.length - 1);
    }
  });
});

test('raw text that is not a JSON value is refused when the dataset is made', async () => {
  await expect(startSimulator({ dataset: { listItems: [{ raw: '{"id":' }] } })).rejects.toThrow(/not a JSON value/);
  await expect(
    startSimulator({ dataset: { invoices: [modern('G000000051', '2025-01', { totalCharges: '1,5' })] } }),
  ).rejects.toThrow(/invoice G000000051: raw text "1,5" is not a JSON value/);
});
