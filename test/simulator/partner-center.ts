// Partner Center v1 invoice endpoints (ref §2-§5, §10, §12 items 1-6): invoice list and by-id, statement and receipt
// PDFs, line items with offset paging (office/azure) and seek paging (onetime/marketplace), quirks included.
import { randomBytes } from 'node:crypto';
import { linesPublished, rowChunks, typeKey } from './dataset.js';
import { type Exchange, type NextLinkStyle, type SimState, send, sendStream } from './http.js';
import { pdfBytes } from './pdf.js';
import { checkBearer } from './tokens.js';

const JSON_TYPE = 'application/json; charset=utf-8';
const INVALID_REQUEST = JSON.stringify({ message: 'The request is invalid.' });
const fault = (code: number | string, description: string) =>
  JSON.stringify({ code, description, data: [], source: 'PartnerFD' });
const link = (uri: string, headers: { key: string; value: string }[] = []) => ({ uri, method: 'GET', headers });

export async function handlePartnerCenter(ex: Exchange, state: SimState): Promise<void> {
  const headers = responseHeaders(ex);
  const json = (status: number, body: string) =>
    send(ex, status, (state.options.bom ? '\uFEFF' : '') + body, { ...headers, 'content-type': JSON_TYPE });

  if (ex.req.method !== 'GET') return json(405, fault(405, 'The requested resource does not support this method.'));
  const segments = ex.url.pathname.split('/').filter(Boolean);
  if (segments[0]?.toLowerCase() !== 'v1' || segments[1]?.toLowerCase() !== 'invoices') {
    return send(ex, 404, undefined, headers);
  }

  const check = checkBearer(ex.req.headers.authorization, 'partnercenter', state.now());
  if (state.options.requireAuth && !check.ok) {
    ex.res.setHeader('www-authenticate', 'OAuth realm=urn:cpsvc:cpid:6480d686-cfb4-424d-a945-6b9b9f000000');
    return json(401, fault(401, `Unauthorized: the bearer token is ${check.reason}.`));
  }
  // Without requireAuth a request may come without a token; one that does carry a token is still judged by it.
  const appUserOnly =
    segments.length === 3 || segments[3]?.toLowerCase() === 'documents' || segments[3]?.toLowerCase() === 'receipts';
  if (appUserOnly && state.options.enforceAppUser && check.ok && !check.claims.scp) {
    return json(403, fault(2032, 'Access denied'));
  }

  if (segments.length === 2) return listInvoices(ex, state, json);
  const id = decodeURIComponent(segments[2] ?? '').replace(/^(recurring|onetime)-/i, '');
  if (!state.dataset.invoices().some((s) => s.id === id)) return json(404, fault(1000, 'Not found'));
  const rest = segments.slice(3).map((s) => s.toLowerCase());

  if (rest.length === 0) return json(200, state.dataset.invoiceText(id, 'byId', pdfLink(id, state)));
  if (rest.length === 2 && rest[0] === 'documents' && rest[1] === 'statement') {
    return sendPdf(ex, headers, `statement:${state.options.seed}:${id}`, `Invoice ${id}`, `Invoice_${id}.pdf`);
  }
  if (rest.length === 4 && rest[0] === 'receipts' && rest[2] === 'documents' && rest[3] === 'statement') {
    const receiptId = segments[4] ?? '';
    const invoice = state.dataset.invoiceJson(id) as { taxReceipts?: unknown[] };
    // Injected receipts may be anything (null, no id, id null): only a string or number id names a document.
    const known = (invoice.taxReceipts ?? []).some((r) => {
      const rid = typeof r === 'object' && r !== null ? (r as { id?: unknown }).id : undefined;
      return (typeof rid === 'string' || typeof rid === 'number') && String(rid) === receiptId;
    });
    if (!known) return json(404, fault(1000, 'Not found'));
    return sendPdf(
      ex,
      headers,
      `receipt:${state.options.seed}:${id}:${receiptId}`,
      `Tax receipt ${receiptId}`,
      `E-Tax-${receiptId}.pdf`,
    );
  }
  if (rest[0] === 'lineitems' && (rest.length === 1 || rest.length === 3)) {
    return lineItems(ex, state, id, rest.length === 3 ? [segments[4] ?? '', segments[5] ?? ''] : undefined, json);
  }
  return send(ex, 404, undefined, headers);
}

function responseHeaders(ex: Exchange): Record<string, string> {
  const requestId = ex.req.headers['ms-requestid'];
  const correlationId = ex.req.headers['ms-correlationid'];
  return {
    'ms-requestid': typeof requestId === 'string' && requestId ? requestId : crypto.randomUUID(),
    'ms-correlationid': typeof correlationId === 'string' && correlationId ? correlationId : crypto.randomUUID(),
    'ms-cv': `${randomBytes(12).toString('base64url')}.0`,
    'ms-serverid': '101112616',
  };
}

function sendPdf(ex: Exchange, headers: Record<string, string>, key: string, title: string, filename: string): void {
  send(ex, 200, pdfBytes(key, title), {
    ...headers,
    'content-type': 'application/pdf',
    'content-disposition': `attachment; filename=${filename}`,
  });
}

function pdfLink(id: string, state: SimState): string {
  if (state.options.pdfLinkMode !== 'signed') return `/invoices/${id}/documents/statement`;
  const path = `/statements/${encodeURIComponent(id)}.pdf`;
  const se = new Date(state.now() + state.options.pdfLinkTtlMs).toISOString();
  const sig = state.sign(`${path}|${se}`);
  return `${state.urls.blob}${path}?se=${encodeURIComponent(se)}&sig=${encodeURIComponent(sig)}`;
}

/** A collection link (`/invoices...`, relative without /v1 as documented) in the configured style. */
function styled(uri: string, style: NextLinkStyle, state: SimState): string {
  if (style === 'relativeV1') return `/v1${uri}`;
  if (style === 'absolute') return `${state.urls.partnerCenter}/v1${uri}`;
  return uri;
}

const parseCount = (value: string | undefined, fallback: number): number | undefined => {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) return undefined;
  return Number(value);
};

function listInvoices(ex: Exchange, state: SimState, json: (status: number, body: string) => void) {
  const size = parseCount(ex.query.get('size'), state.options.invoicePageSize);
  const offset = parseCount(ex.query.get('offset'), 0);
  if (size === undefined || offset === undefined || size < 1) return json(400, INVALID_REQUEST);
  const pageSize = Math.min(size, 1000);
  // Every top-level item in list order (invoices, amendments when also listed, injected raw items), as text.
  const listed = state.dataset.listItems();
  const items = listed.slice(offset, offset + pageSize);
  const style = state.options.nextLinkStyle.invoices;
  const links: Record<string, unknown> = {
    self: link(styled(`/invoices?size=${pageSize}&offset=${offset}`, style, state)),
  };
  if (offset + pageSize < listed.length) {
    links.next = link(styled(`/invoices?size=${pageSize}&offset=${offset + pageSize}`, style, state));
  }
  json(
    200,
    `{"totalCount":${items.length},"items":[${items.join(',')}],"links":${JSON.stringify(links)},"attributes":{"objectType":"Collection"}}`,
  );
}

type PagingStyle = 'offset' | 'seek';

async function lineItems(
  ex: Exchange,
  state: SimState,
  id: string,
  pathForm: [string, string] | undefined,
  json: (status: number, body: string) => void,
): Promise<void> {
  const q = ex.query;
  const providerValue = pathForm ? pathForm[0] : q.get('provider');
  const typeValue = pathForm ? pathForm[1] : q.get('invoicelineitemtype');
  if (!providerValue || !typeValue) return json(400, INVALID_REQUEST);
  const provider = providerValue.toLowerCase();
  const type = typeValue.toLowerCase();
  // Only these spellings bind (ref §11: `one_time` is "The request is invalid.").
  if (!['office', 'azure', 'onetime', 'marketplace'].includes(provider)) return json(400, INVALID_REQUEST);
  if (!['billinglineitems', 'usagelineitems'].includes(type)) return json(400, INVALID_REQUEST);
  if (provider === 'office' && type === 'usagelineitems') {
    return json(400, fault('InvalidInput', 'Invoice Line Item type is not valid'));
  }
  const style: PagingStyle = provider === 'office' || provider === 'azure' ? 'offset' : 'seek';
  const usage = type === 'usagelineitems';
  if (!pathForm && style === 'seek' && usage && (!q.get('currencycode') || !q.get('period'))) {
    return json(400, INVALID_REQUEST);
  }
  const size = parseCount(q.get('size'), state.options.pageSizeCap);
  if (size === undefined || size < 1) return json(400, INVALID_REQUEST);
  const pageSize = Math.min(size, state.options.pageSizeCap);

  const invoice = state.dataset.invoices().find((s) => s.id === id);
  let part = state.dataset.findPart(id, provider, usage ? 'usage' : 'billing');
  // Quirks: the path form of OneTime usage answers an empty array (ref §11, Java #119); a currency filter that
  // does not match the invoice finds nothing.
  if (pathForm && style === 'seek' && usage) part = undefined;
  const currency = q.get('currencycode');
  if (currency && invoice && currency.toLowerCase() !== (invoice.currency ?? 'USD').toLowerCase()) part = undefined;
  if (!linesPublished(invoice, state.now())) part = undefined;
  const total = part?.rows ?? 0;
  const seekPart = `onetime|${typeKey(type)}`;

  let from = 0;
  if (style === 'offset') {
    const offset = parseCount(q.get('offset'), 0);
    if (offset === undefined) return json(400, INVALID_REQUEST);
    from = offset;
  } else if (q.has('seekoperation')) {
    if (q.get('seekoperation')?.toLowerCase() !== 'next') return json(400, INVALID_REQUEST);
    const token = ex.req.headers['ms-continuationtoken'];
    const check = state.seek.redeem(typeof token === 'string' ? token : undefined, id, seekPart, state.now());
    if (!check.ok) {
      const message = 'The continuation token is missing or not valid for this request.';
      return json(
        400,
        state.options.seekTokens.errorShape === 'message' ? JSON.stringify({ message }) : fault(400, message),
      );
    }
    from = check.from;
  }
  const to = Math.min(from + pageSize, total);
  const count = Math.max(0, to - from);

  const basePath = `/invoices/${ex.url.pathname.split('/').slice(3).join('/')}`;
  const selfQuery = [...ex.url.searchParams].filter(([name]) => name.toLowerCase() !== 'seekoperation');
  const selfUri = `${basePath}${selfQuery.length ? `?${new URLSearchParams(selfQuery)}` : ''}`;
  const linkStyle = state.options.nextLinkStyle.lineItems;
  const links: Record<string, unknown> = { self: link(styled(selfUri, linkStyle, state)) };
  let continuation = '';
  if (to < total) {
    if (style === 'offset') {
      const nextQuery = new URLSearchParams(selfQuery.filter(([name]) => name.toLowerCase() !== 'offset'));
      if (!nextQuery.has('size')) nextQuery.set('size', String(pageSize));
      const next = `${basePath}?${nextQuery}&offset=${to}`;
      // Malformed links as in the docs' examples (ref §5.3): a truncated offset.
      const uri = styled(next, linkStyle, state);
      links.next = link(state.options.malformedNextLinks ? uri.replace(/offset=\d+$/, 'offset=') : uri);
    } else {
      const token = state.seek.issue(id, seekPart, to, state.now());
      continuation = `"continuationToken":${JSON.stringify(token)},`;
      const sep = selfQuery.length ? '&' : '?';
      const next = `${selfUri}${state.options.malformedNextLinks ? '?' : sep}seekOperation=Next`;
      links.next = link(styled(next, linkStyle, state), [{ key: 'MS-ContinuationToken', value: token }]);
    }
  }

  const head = `${state.options.bom ? '\uFEFF' : ''}{${continuation}"totalCount":${count},"items":[\n`;
  const tail = `\n],"links":${JSON.stringify(links)},"attributes":{"objectType":"Collection"}}`;
  const headers = { ...responseHeaders(ex), 'content-type': JSON_TYPE };
  // A generator, never an array: a page of a million rows must not be materialised.
  function* page(): Generator<string> {
    yield head;
    if (count > 0 && part) yield* rowChunks(total, from, to, state.dataset.renderer(id, part), ',\n');
    yield tail;
  }
  await sendStream(ex, 200, headers, page());
}
