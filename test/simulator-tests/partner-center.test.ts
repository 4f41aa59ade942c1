// Partner Center v1 as the simulator serves it, hit with plain fetch: list paging, by-id and the PDF link on the
// clock, documents, both line-item paging styles (seek header validated), quirks, auth and request ids.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Simulator, startSimulator } from '../simulator/index.js';

let sim: Simulator;
let appUser: string;
let appOnly: string;
beforeAll(async () => {
  sim = await startSimulator({ seed: 3 });
  appUser = sim.issueToken({ audience: 'partnercenter', appUser: true });
  appOnly = sim.issueToken({ audience: 'partnercenter' });
});
afterAll(async () => {
  await sim?.stop();
});

const get = (path: string, token: string | undefined = appUser, headers: Record<string, string> = {}) =>
  fetch(`${sim.partnerCenterUrl}${path}`, {
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });

interface Page {
  totalCount: number;
  items: Record<string, unknown>[];
  continuationToken?: string;
  links: { self: { uri: string }; next?: { uri: string; headers: { key: string; value: string }[] } };
}

/** Walks a collection the way the SDK does: follow links.next (prefixing /v1), sending every next header. */
async function walk(first: string, token = appUser): Promise<{ pages: Page[]; texts: string[] }> {
  const pages: Page[] = [];
  const texts: string[] = [];
  let path: string | undefined = first;
  let headers: Record<string, string> = {};
  while (path) {
    const response = await get(path, token, headers);
    expect(response.status).toBe(200);
    const text = await response.text();
    texts.push(text);
    const page = JSON.parse(text) as Page;
    pages.push(page);
    expect(page.totalCount).toBe(page.items.length);
    path = page.links.next ? `/v1${page.links.next.uri}` : undefined;
    headers = Object.fromEntries((page.links.next?.headers ?? []).map((h) => [h.key, h.value]));
  }
  return { pages, texts };
}

describe('invoice list', () => {
  test('pages with a default size, relative next links without /v1, amendments nested, no pdf link', async () => {
    const { pages } = await walk('/v1/invoices');
    expect(pages.length).toBeGreaterThan(1);
    expect(pages[0]?.links.next?.uri).toMatch(/^\/invoices\?size=\d+&offset=\d+$/);
    expect(pages.at(-1)?.links.next).toBeUndefined();
    const items = pages.flatMap((p) => p.items);
    const listed = sim.dataset.invoices().filter((s) => !s.amendsOf);
    expect(items.map((i) => i.id)).toEqual(listed.map((s) => s.id));
    expect(items.some((i) => 'pdfDownloadLink' in i)).toBe(false);
    const withAmendments = items.filter((i) => Array.isArray(i.amendments));
    const amendments = withAmendments.flatMap((i) => i.amendments as { amendsOf: string; documentType: string }[]);
    expect(amendments.map((a) => a.documentType).sort()).toEqual(['adjustment_note', 'void_note']);
    expect(amendments.every((a) => withAmendments.some((p) => p.id === a.amendsOf))).toBe(true);
  });

  test('an explicit size pages exactly, and works with an app-only token', async () => {
    const { pages } = await walk('/v1/invoices?size=3', appOnly);
    expect(pages.map((p) => p.items.length)).toEqual([3, 3, 2]);
  });

  test('the default dataset has the documented variety', () => {
    const specs = sim.dataset.invoices();
    expect(specs.filter((s) => s.id.startsWith('D')).length).toBe(2);
    expect(new Set(specs.map((s) => s.currency))).toEqual(new Set(['USD', 'EUR', 'GBP', 'CHF']));
    expect(specs.some((s) => s.documentType === 'credit_note')).toBe(true);
    expect(specs.some((s) => s.parts?.some((p) => p.provider === 'marketplace'))).toBe(true);
    const unreconciled = specs.filter((s) => sim.dataset.totalCharges(s.id) !== sim.dataset.rowsTotal(s.id));
    expect(unreconciled.map((s) => s.id)).toEqual(['G012040490']);
  });
});

describe('invoice by id and documents', () => {
  test('by id needs an App+User token: app-only gets 403 code 2032', async () => {
    const response = await get('/v1/invoices/G000024130', appOnly);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: 2032 });
  });

  test('unknown id is a 404 ApiFault with code 1000; type-prefixed ids resolve', async () => {
    const missing = await get('/v1/invoices/G999999999');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 1000, source: 'PartnerFD' });
    const prefixed = await get('/v1/invoices/OneTime-G000024130');
    expect(((await prefixed.json()) as { id: string }).id).toBe('G000024130');
  });

  test('the signed pdf link works without auth until it expires on the simulator clock', async () => {
    const invoice = (await (await get('/v1/invoices/G016907411')).json()) as { pdfDownloadLink: string };
    const link = new URL(invoice.pdfDownloadLink);
    expect(link.origin).toBe(sim.blobUrl);
    expect(link.searchParams.get('sig')).toBeTruthy();
    const pdf = await fetch(link, { headers: { authorization: 'Bearer ignored' } });
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    const bytes = Buffer.from(await pdf.arrayBuffer());
    expect(bytes.subarray(0, 7).toString()).toBe('%PDF-1.');

    const statement = await get('/v1/invoices/G016907411/documents/statement', appUser, { accept: 'application/pdf' });
    expect(statement.headers.get('content-disposition')).toBe('attachment; filename=Invoice_G016907411.pdf');
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(Buffer.from(await statement.arrayBuffer()))).toBe(sha(bytes));

    sim.clock.advance(31 * 60_000);
    const expired = await fetch(link);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain('<Code>AuthenticationFailed</Code>');
    const tampered = new URL(link);
    tampered.searchParams.set('se', new Date(sim.clock.now() + 3_600_000).toISOString());
    expect((await fetch(tampered)).status).toBe(403);
  });

  test('statements differ per invoice; receipts are served for listed receipt ids only', async () => {
    const a = Buffer.from(await (await get('/v1/invoices/G000024130/documents/statement')).arrayBuffer());
    const b = Buffer.from(await (await get('/v1/invoices/D02005YFHI/documents/statement')).arrayBuffer());
    expect(a.length).toBeGreaterThan(2000);
    expect(a.equals(b)).toBe(false);
    const invoice = (await (await get('/v1/invoices/G000024130')).json()) as {
      taxReceipts: { id: string; taxReceiptPdfDownloadLink: string }[];
    };
    expect(invoice.taxReceipts.length).toBe(2);
    const receipt = await get(`/v1${invoice.taxReceipts[0]?.taxReceiptPdfDownloadLink}`);
    expect(receipt.status).toBe(200);
    expect(
      Buffer.from(await receipt.arrayBuffer())
        .subarray(0, 5)
        .toString(),
    ).toBe('%PDF-');
    expect((await get('/v1/invoices/G000024130/receipts/1/documents/statement')).status).toBe(404);
    expect((await get('/v1/invoices/G000024130/documents/statement', appOnly)).status).toBe(403);
  });
});

describe('line items', () => {
  test('offset paging (path form) serves every row verbatim and ends without next', async () => {
    const { pages, texts } = await walk('/v1/invoices/D02005YFHI/lineitems/Office/BillingLineItems?size=7', appOnly);
    const expected = sim.dataset.rows('D02005YFHI', 'office', 'billing_line_items');
    expect(pages.flatMap((p) => p.items).length).toBe(expected);
    expect(pages[0]?.links.next?.uri).toBe('/invoices/D02005YFHI/lineitems/Office/BillingLineItems?size=7&offset=7');
    for (let i = 0; i < expected; i++) {
      const row = sim.dataset.row('D02005YFHI', 'office', 'billing_line_items', i);
      expect(texts[Math.floor(i / 7)]).toContain(row);
    }
    expect(pages[0]?.items[0]).toMatchObject({ attributes: { objectType: 'LicenseBasedLineItem' } });
    // drift: mpnId is a number on some rows and a string on others
    const kinds = new Set(pages.flatMap((p) => p.items).map((i) => typeof i.mpnId));
    expect(kinds).toEqual(new Set(['number', 'string']));
  });

  test('query form with case-insensitive names pages by offset for azure', async () => {
    const { pages } = await walk(
      '/v1/invoices/D02005YFHI/lineitems?Provider=Azure&InvoiceLineItemType=UsageLineItems&Size=10',
      appOnly,
    );
    expect(pages.flatMap((p) => p.items).length).toBe(sim.dataset.rows('D02005YFHI', 'azure', 'usage_line_items'));
    expect(pages[0]?.items[0]).toMatchObject({ attributes: { objectType: 'DailyUsageLineItem' } });
  });

  test('seek paging: continuation token in body and next headers, validated on the next call', async () => {
    const first = '/v1/invoices/G000024130/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=10';
    const { pages } = await walk(first, appOnly);
    const rows = sim.dataset.rows('G000024130', 'one_time', 'billing_line_items');
    expect(pages.length).toBe(Math.ceil(rows / 10));
    expect(pages.flatMap((p) => p.items).length).toBe(rows);
    const page1 = pages[0] as Page;
    expect(page1.continuationToken).toMatch(/,.*\/.*=/);
    expect(page1.links.next?.uri).toBe(
      '/invoices/G000024130/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=10&seekOperation=Next',
    );
    expect(page1.links.next?.headers).toEqual([{ key: 'MS-ContinuationToken', value: page1.continuationToken }]);
    expect(pages.at(-1)?.links.next).toBeUndefined();
    expect(pages.at(-1)?.continuationToken).toBeUndefined();
    expect(page1.items[0]).toMatchObject({ billingProvider: 'one_time', invoiceLineItemType: 'billing_line_items' });

    const next = `/v1${page1.links.next?.uri}`;
    expect((await get(next, appOnly)).status).toBe(400);
    expect((await get(next, appOnly, { 'MS-ContinuationToken': 'AQAAAA==' })).status).toBe(400);
    // A token from another invoice's part is not valid here either.
    const other = (await (
      await get(
        '/v1/invoices/G000024135/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=2',
        appOnly,
      )
    ).json()) as Page;
    expect((await get(next, appOnly, { 'MS-ContinuationToken': other.continuationToken ?? '' })).status).toBe(400);
  });

  test('billed consumption: onetime usage needs currencycode and period; items carry marketplace', async () => {
    const base = '/v1/invoices/G016907411/lineitems?provider=onetime&invoicelineitemtype=usagelineitems';
    const bad = await get(`${base}&size=5`, appOnly);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ message: 'The request is invalid.' });
    const { pages, texts } = await walk(`${base}&currencycode=eur&period=previous&size=5`, appOnly);
    const rows = sim.dataset.rows('G016907411', 'one_time', 'usage_line_items');
    expect(pages.flatMap((p) => p.items).length).toBe(rows);
    expect(pages[0]?.items[0]).toMatchObject({
      billingProvider: 'marketplace',
      attributes: { objectType: 'DailyRatedUsageLineItem' },
    });
    // A decimal JSON.parse cannot round-trip is served literally.
    expect(texts.join('')).toContain('"effectiveUnitPrice":0.1999968000511991808131');
  });

  test('provider=one_time and unknown types are "The request is invalid."', async () => {
    for (const query of [
      'provider=one_time&invoicelineitemtype=billinglineitems',
      'provider=onetime&invoicelineitemtype=billing_line_items',
      'invoicelineitemtype=billinglineitems',
    ]) {
      const response = await get(`/v1/invoices/G000024130/lineitems?${query}`, appOnly);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ message: 'The request is invalid.' });
    }
  });

  test('the path form of OneTime usage answers an empty collection (Java #119)', async () => {
    const response = await get('/v1/invoices/OneTime-G000024130/lineitems/OneTime/UsageLineItems', appOnly);
    expect(response.status).toBe(200);
    const page = (await response.json()) as Page;
    expect(page.items).toEqual([]);
    expect(page.totalCount).toBe(0);
  });

  test('size is capped at pageSizeCap', async () => {
    const capped = await startSimulator({ pageSizeCap: 4 });
    try {
      const token = capped.issueToken({ audience: 'partnercenter' });
      const response = await fetch(
        `${capped.partnerCenterUrl}/v1/invoices/D02005YFHI/lineitems/Azure/BillingLineItems?size=2000`,
        { headers: { authorization: `Bearer ${token}` } },
      );
      const page = (await response.json()) as Page;
      expect(page.items.length).toBe(4);
      expect(page.links.next?.uri).toContain('offset=4');
    } finally {
      await capped.stop();
    }
  });
});

describe('quirks and protocol', () => {
  test('malformed next links and a BOM when asked', async () => {
    const quirky = await startSimulator({ malformedNextLinks: true, bom: true });
    try {
      const token = quirky.issueToken({ audience: 'partnercenter' });
      const auth = { authorization: `Bearer ${token}` };
      const offset = await fetch(
        `${quirky.partnerCenterUrl}/v1/invoices/D02005YFHI/lineitems/Office/BillingLineItems?size=2`,
        { headers: auth },
      );
      const bytes = Buffer.from(await offset.arrayBuffer());
      expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const page = JSON.parse(bytes.subarray(3).toString('utf8')) as Page;
      expect(page.links.next?.uri).toMatch(/&offset=$/);
      const seek = await fetch(
        `${quirky.partnerCenterUrl}/v1/invoices/G000024130/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=2`,
        { headers: auth },
      );
      const seekPage = JSON.parse((await seek.text()).replace(/^\uFEFF/, '')) as Page;
      expect(seekPage.links.next?.uri).toMatch(/size=2\?seekOperation=Next$/);
    } finally {
      await quirky.stop();
    }
  });

  test('missing, expired and wrong-audience tokens get 401 with WWW-Authenticate', async () => {
    const missing = await get('/v1/invoices', '');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^OAuth realm=/);
    const graphToken = sim.issueToken({ audience: 'graph' });
    expect((await get('/v1/invoices', graphToken)).status).toBe(401);
    const shortLived = sim.issueToken({ audience: 'partnercenter', ttlSeconds: 60 });
    expect((await get('/v1/invoices', shortLived)).status).toBe(200);
    sim.clock.advance(61_000);
    expect((await get('/v1/invoices', shortLived)).status).toBe(401);
  });

  test('MS-RequestId and MS-CorrelationId are echoed or generated, MS-CV added, and requests recorded', async () => {
    const before = sim.requests.length;
    const echoed = await get('/v1/invoices?size=1', appOnly, { 'MS-RequestId': 'req-1', 'MS-CorrelationId': 'corr-1' });
    expect(echoed.headers.get('ms-requestid')).toBe('req-1');
    expect(echoed.headers.get('ms-correlationid')).toBe('corr-1');
    expect(echoed.headers.get('ms-cv')).toBeTruthy();
    const generated = await get('/v1/invoices?size=1', appOnly);
    expect(generated.headers.get('ms-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    const recorded = sim.requests.slice(before);
    expect(recorded.map((r) => [r.host, r.method, r.path, r.query.size, r.status])).toEqual([
      ['partnercenter', 'GET', '/v1/invoices', '1', 200],
      ['partnercenter', 'GET', '/v1/invoices', '1', 200],
    ]);
    expect(recorded[0]?.headers['ms-requestid']).toBe('req-1');
  });

  test('the same seed gives the same rows; another seed different ones', async () => {
    const again = await startSimulator({ seed: 3 });
    const other = await startSimulator({ seed: 4 });
    try {
      const row = (s: Simulator) => s.dataset.row('G000024135', 'one_time', 'billing_line_items', 3);
      expect(row(again)).toBe(row(sim));
      expect(row(other)).not.toBe(row(sim));
    } finally {
      await again.stop();
      await other.stop();
    }
  });
});

test('without requireAuth, anonymous requests pass and an app-only token is still refused by id', async () => {
  const open = await startSimulator({ requireAuth: false });
  try {
    expect((await fetch(`${open.partnerCenterUrl}/v1/invoices/G000024130`)).status).toBe(200);
    const appOnlyToken = open.issueToken({ audience: 'partnercenter' });
    const refused = await fetch(`${open.partnerCenterUrl}/v1/invoices/G000024130`, {
      headers: { authorization: `Bearer ${appOnlyToken}` },
    });
    expect(refused.status).toBe(403);
  } finally {
    await open.stop();
  }
});
