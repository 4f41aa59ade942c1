// The v1 reader's choice of next request, against scripted Partner Center servers over loopback HTTP that keep
// their position the way the service does: a seek server by the MS-ContinuationToken it issued (a request without
// seekOperation=Next starts again at the first row), an offset server by the offset in the URL. Every link shape the
// reference allows (ref §1.1, §5.3) is served; each test checks that every row arrives exactly once, in order, and
// which URL and headers were sent, so a reader that takes a link it should not (or ignores one it should) shows as a
// skipped, repeated or foreign row, or as a request the server refuses.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { Page } from '../../src/http/paging.js';
import {
  PartnerCenterClient as Client,
  InvalidCheckpointError,
  type LineItemCheckpoint,
  type LineItemRequest,
  lineItemCheckpointSchema,
} from '../../src/partner-center/index.js';
import { anyToken, startLoopbackServer } from '../http/loopback-server.js';

/** The pages of a read, but at most `limit`: a reader that re-reads a page forever fails here instead of hanging. */
async function pagesOf(reader: AsyncIterable<LinePage>, limit = 12): Promise<LinePage[]> {
  const out: LinePage[] = [];
  for await (const page of reader) {
    out.push(page);
    if (out.length >= limit) break;
  }
  return out;
}

type LinePage = Page<LineItemCheckpoint>;

const row = (invoiceId: string, i: number) => `{"invoiceId":"${invoiceId}","n":${i},"amount":1.5}`;
const rowsOf = (pages: LinePage[]) =>
  pages.flatMap((p) => (p.rows === 0 ? [] : p.ndjson.toString('utf8').slice(0, -1).split('\n')));

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Case-insensitive query parameter, as the service reads names like seekOperation / seekoperation. */
function param(query: URLSearchParams, name: string): string | undefined {
  return [...query].find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}

interface Sent {
  /** Path and query as they reached the server. */
  url: string;
  token: string | undefined;
}

interface SeekLink {
  uri: string;
  /** The link's headers; the body's continuationToken is sent in any case. */
  headers?: { key: string; value: string }[];
  /** The body's top-level continuationToken, if other than the token. */
  bodyToken?: string | null;
}

/**
 * A seek-paged line-item server for any invoice id: `rows` rows per invoice, `size` per page from the URL's `size`.
 * `next(token, invoiceId)` shapes the link to the page after; tokens are opaque and only the issued ones are accepted.
 */
async function seekServer(rows: number, next: (token: string, invoiceId: string) => SeekLink) {
  const issued = new Map<string, number>();
  const sent: Sent[] = [];
  const server = await startLoopbackServer((req: IncomingMessage, res, seen) => {
    const token = seen.headers['ms-continuationtoken'];
    sent.push({ url: req.url ?? '', token });
    const invoiceId = /^\/v1\/invoices\/([A-Za-z0-9-]+)\/lineitems$/.exec(seen.path)?.[1];
    if (!invoiceId) return json(res, 404, { code: 404, description: `no resource ${seen.path}` });
    if (param(seen.query, 'invoicelineitemtype')?.toLowerCase() !== 'billinglineitems') {
      return json(res, 400, { code: 400, description: 'unknown invoicelineitemtype' });
    }
    const size = param(seen.query, 'size') ?? '2000';
    if (!/^[1-9]\d*$/.test(size)) return json(res, 400, { code: 400, description: `bad size ${size}` });
    let from = 0;
    if (param(seen.query, 'seekOperation')?.toLowerCase() === 'next') {
      const at = token === undefined ? undefined : issued.get(`${invoiceId}|${token}`);
      if (at === undefined) return json(res, 400, { code: 400, description: 'invalid continuation token' });
      from = at;
    }
    const to = Math.min(rows, from + Number(size));
    const items = Array.from({ length: to - from }, (_, i) => JSON.parse(row(invoiceId, from + i)));
    if (to >= rows) return json(res, 200, { totalCount: items.length, items, links: {} });
    const nextToken = `${invoiceId}~${to}/x+y=`;
    issued.set(`${invoiceId}|${nextToken}`, to);
    const link = next(nextToken, invoiceId);
    json(res, 200, {
      totalCount: items.length,
      items,
      continuationToken: link.bodyToken === undefined ? nextToken : link.bodyToken,
      links: {
        next: {
          uri: link.uri,
          method: 'GET',
          headers: link.headers ?? [{ key: 'MS-ContinuationToken', value: nextToken }],
        },
      },
    });
  });
  return { server, sent, client: new Client({ baseUrl: server.url, credential: anyToken, retryDelayInMs: 1 }) };
}

const SEEK_QUERY = 'provider=onetime&invoicelineitemtype=billinglineitems&size=2';
const seekRequest = (invoiceId = 'G1'): LineItemRequest => ({
  path: `/v1/invoices/${invoiceId}/lineitems`,
  query: SEEK_QUERY,
  paging: 'seek',
});
/** What the reader sends when it does not take the link: the first query plus seekOperation=Next. */
const FALLBACK = `/v1/invoices/G1/lineitems?${SEEK_QUERY}&seekOperation=Next`;
const allRows = (invoiceId: string, n: number) => Array.from({ length: n }, (_, i) => row(invoiceId, i));

describe('seek paging: a well-formed link is followed as given', () => {
  // Each link differs from "first query + seekOperation=Next" (order, case, page size, /v1 prefix, absolute form),
  // so the URLs sent show that the link itself was followed.
  const QUERY = 'seekoperation=next&size=12&provider=onetime&invoicelineitemtype=billinglineitems';
  const shapes: [string, (origin: string) => string][] = [
    ['relative, without /v1 (the documented form)', () => `/invoices/G1/lineitems?${QUERY}`],
    ['relative, with /v1', () => `/v1/invoices/G1/lineitems?${QUERY}`],
    ['absolute, on the service origin', (origin) => `${origin}/v1/invoices/G1/lineitems?${QUERY}`],
    ['SeekOperation=NEXT in other cases', () => `/invoices/G1/lineitems?size=12&SeekOperation=NEXT&${SEEK_QUERY}`],
  ];
  for (const [shape, uriOf] of shapes) {
    it(`${shape}: every row once, the link's URL and token sent, the checkpoint a /v1 path that resumes`, async () => {
      let origin = '';
      const { server, sent, client } = await seekServer(30, () => ({ uri: uriOf(origin) }));
      origin = server.url;
      try {
        const pages = await pagesOf(client.lineItemPages(seekRequest()));
        expect(rowsOf(pages)).toEqual(allRows('G1', 30));
        // 2 rows, then the link's size=12: 12, 12, 4.
        expect(pages.map((p) => p.rows)).toEqual([2, 12, 12, 4]);
        expect(pages.map((p) => p.rowsThrough)).toEqual([2, 14, 26, 30]);
        const linked = new URL(uriOf(origin), 'http://h').search;
        expect(sent.map((s) => s.url)).toEqual([
          `/v1/invoices/G1/lineitems?${SEEK_QUERY}`,
          ...Array(3).fill(`/v1/invoices/G1/lineitems${linked}`),
        ]);
        expect(sent.map((s) => s.token)).toEqual([undefined, 'G1~2/x+y=', 'G1~14/x+y=', 'G1~26/x+y=']);
        const first = pages[0]?.next as Extract<LineItemCheckpoint, { kind: 'seek' }>;
        expect(first.uri).toBe(`/v1/invoices/G1/lineitems${linked}`);
        // Through JSON and the strict schema, as the ledger stores it.
        const checkpoint = lineItemCheckpointSchema.parse(JSON.parse(JSON.stringify(first)));
        const resumed = await pagesOf(client.lineItemPages(seekRequest(), { checkpoint }));
        expect(resumed).toEqual(pages.slice(1));
      } finally {
        await server.stop();
      }
    });
  }
});

describe('seek paging: a link that cannot be followed as given becomes the first query + seekOperation=Next', () => {
  const shapes: [string, (token: string, invoiceId: string) => string][] = [
    // Followed as given, each of these re-reads the first page, is refused, or reads another invoice's rows.
    ['without seekOperation', () => `/invoices/G1/lineitems?${SEEK_QUERY}`],
    ['with seekOperation=Previous', () => `/invoices/G1/lineitems?${SEEK_QUERY}&seekOperation=Previous`],
    ['the docs\' "size=2?seekOperation=Next"', () => `/invoices/G1/lineitems?${SEEK_QUERY}?seekOperation=Next`],
    [
      'a second ? inside the query',
      () => '/invoices/G1/lineitems?provider=onetime&invoicelineitemtype=billinglineitems?&size=2&seekOperation=Next',
    ],
    ['size not a count (2x)', () => `/invoices/G1/lineitems?${SEEK_QUERY}x&seekOperation=Next`],
    [
      'size not a count (x2)',
      () => '/invoices/G1/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=x2&seekOperation=Next',
    ],
    [
      'size not a count (-2)',
      () => '/invoices/G1/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=-2&seekOperation=Next',
    ],
    ["another invoice's line items", () => `/invoices/G2/lineitems?${SEEK_QUERY}&seekOperation=Next`],
  ];
  for (const [shape, uriOf] of shapes) {
    it(`${shape}: every row once, each later page from ${FALLBACK} with the link's token`, async () => {
      const { server, sent, client } = await seekServer(7, (token, id) => ({ uri: uriOf(token, id) }));
      try {
        const pages = await pagesOf(client.lineItemPages(seekRequest()));
        expect(rowsOf(pages)).toEqual(allRows('G1', 7));
        expect(pages.map((p) => p.rowsThrough)).toEqual([2, 4, 6, 7]);
        expect(sent.map((s) => s.url)).toEqual([`/v1/invoices/G1/lineitems?${SEEK_QUERY}`, ...Array(3).fill(FALLBACK)]);
        expect(sent.map((s) => s.token)).toEqual([undefined, 'G1~2/x+y=', 'G1~4/x+y=', 'G1~6/x+y=']);
        expect(pages.slice(0, -1).map((p) => (p.next as { uri: string }).uri)).toEqual(Array(3).fill(FALLBACK));
      } finally {
        await server.stop();
      }
    });
  }
});

describe('seek paging: which token is sent', () => {
  const uri = `/invoices/G1/lineitems?${SEEK_QUERY}&seekOperation=Next`;

  it("the link's headers win over a different body continuationToken (the body's is not sent)", async () => {
    const { server, sent, client } = await seekServer(5, () => ({ uri, bodyToken: 'stale-token' }));
    try {
      const pages = await pagesOf(client.lineItemPages(seekRequest()));
      expect(rowsOf(pages)).toEqual(allRows('G1', 5));
      expect(sent.map((s) => s.token)).toEqual([undefined, 'G1~2/x+y=', 'G1~4/x+y=']);
      expect(pages[0]?.next).toEqual({
        kind: 'seek',
        pageIndex: 1,
        uri: FALLBACK,
        headers: { 'MS-ContinuationToken': 'G1~2/x+y=' },
        rowsThrough: 2,
      });
    } finally {
      await server.stop();
    }
  });

  it("a link without headers: the body's continuationToken is sent", async () => {
    const { server, sent, client } = await seekServer(5, () => ({ uri, headers: [] }));
    try {
      const pages = await pagesOf(client.lineItemPages(seekRequest()));
      expect(rowsOf(pages)).toEqual(allRows('G1', 5));
      expect(sent.map((s) => s.token)).toEqual([undefined, 'G1~2/x+y=', 'G1~4/x+y=']);
    } finally {
      await server.stop();
    }
  });
});

/**
 * An offset-paged server over source positions 0..positions-1; the positions in `gaps` hold no row (the service
 * counts them but renders nothing), so a page can carry fewer rows than the positions it covers. `link(nextOffset)`
 * shapes links.next; an empty page may link on (`linkOnEmpty`).
 */
async function offsetServer(
  positions: number,
  gaps: Set<number>,
  link: (nextOffset: number, origin: string) => string,
  linkOnEmpty = false,
) {
  const sent: string[] = [];
  const server = await startLoopbackServer((req, res, seen) => {
    sent.push(req.url ?? '');
    if (seen.path !== '/v1/invoices/D1/lineitems/Azure/BillingLineItems') return json(res, 404, { code: 404 });
    const offset = Number(seen.query.get('offset') ?? '0');
    const size = Number(seen.query.get('size') ?? '2000');
    const items: unknown[] = [];
    for (let p = offset; p < Math.min(positions, offset + size); p++) {
      if (!gaps.has(p)) items.push(JSON.parse(row('D1', p)));
    }
    const more = offset + size < positions && (items.length > 0 || linkOnEmpty);
    const next = more ? { uri: link(offset + size, server.url), method: 'GET', headers: [] } : null;
    json(res, 200, { totalCount: items.length, items, links: { next } });
  });
  return { server, sent, client: new Client({ baseUrl: server.url, credential: anyToken, retryDelayInMs: 1 }) };
}

const OFFSET_PATH = '/v1/invoices/D1/lineitems/Azure/BillingLineItems';
const offsetRequest = (query = 'size=4'): LineItemRequest => ({ path: OFFSET_PATH, query, paging: 'offset' });
const sourceRows = (positions: number, gaps: Set<number>) =>
  Array.from({ length: positions }, (_, p) => p)
    .filter((p) => !gaps.has(p))
    .map((p) => row('D1', p));

describe("offset paging: the link's offset is the source's position", () => {
  // Positions 1 and 9 render no row: pages at 0 and 8 carry 3 rows for 4 positions. offset + rows (3, then 11)
  // would read positions 3 and 11 twice.
  const gaps = new Set([1, 9]);
  const shapes: [string, (offset: number, origin: string) => string][] = [
    ['relative, offset last', (o) => `/invoices/D1/lineitems/Azure/BillingLineItems?size=4&offset=${o}`],
    ['relative, offset first', (o) => `/invoices/D1/lineitems/Azure/BillingLineItems?offset=${o}&size=4`],
    ['relative, OFFSET in capitals', (o) => `/invoices/D1/lineitems/Azure/BillingLineItems?size=4&OFFSET=${o}`],
    ['absolute, on the service origin', (o, origin) => `${origin}${OFFSET_PATH}?size=4&offset=${o}`],
  ];
  for (const [shape, link] of shapes) {
    it(`${shape}: every row once, offsets 0, 4, 8, 12, 16 requested`, async () => {
      const { server, sent, client } = await offsetServer(18, gaps, link);
      try {
        const pages = await pagesOf(client.lineItemPages(offsetRequest()));
        expect(rowsOf(pages)).toEqual(sourceRows(18, gaps));
        expect(sent).toEqual([0, 4, 8, 12, 16].map((o) => `${OFFSET_PATH}?size=4&offset=${o}`));
        expect(pages.map((p) => p.rowsThrough)).toEqual([4, 8, 12, 16, 18]);
        expect(pages.map((p) => p.next)).toEqual([
          ...[4, 8, 12, 16].map((offset, i) => ({ kind: 'offset', pageIndex: i + 1, offset })),
          null,
        ]);
      } finally {
        await server.stop();
      }
    });
  }

  it('a link whose offset does not parse as a whole number (12x, 1e1, empty) gives way to offset + rows', async () => {
    for (const bad of ['12x', '1e1', '', '-4']) {
      const { server, sent, client } = await offsetServer(10, new Set(), () => `${OFFSET_PATH}?size=4&offset=${bad}`);
      try {
        const pages = await pagesOf(client.lineItemPages(offsetRequest()));
        expect(rowsOf(pages), bad).toEqual(sourceRows(10, new Set()));
        expect(sent, bad).toEqual([0, 4, 8].map((o) => `${OFFSET_PATH}?size=4&offset=${o}`));
      } finally {
        await server.stop();
      }
    }
  });

  it('an empty page ends the part even when it links on (ref §5.3: stop when a page returns 0 items)', async () => {
    // Positions 4..7 are all gaps: the second page is empty but links to offset 8.
    const { server, sent, client } = await offsetServer(
      12,
      new Set([4, 5, 6, 7]),
      (o) => `/invoices/D1/lineitems/Azure/BillingLineItems?size=4&offset=${o}`,
      true,
    );
    try {
      const pages = await pagesOf(client.lineItemPages(offsetRequest()));
      expect(pages.map((p) => p.rows)).toEqual([4, 0]);
      expect(pages[1]).toMatchObject({ rows: 0, rowsThrough: 4, next: null });
      expect(sent).toEqual([`${OFFSET_PATH}?size=4&offset=0`, `${OFFSET_PATH}?size=4&offset=4`]);
    } finally {
      await server.stop();
    }
  });

  it('a request with an empty query asks for ?offset=N, nothing between ? and offset', async () => {
    const { server, sent, client } = await offsetServer(3, new Set(), () => 'unused');
    try {
      const pages = await pagesOf(client.lineItemPages(offsetRequest('')));
      expect(rowsOf(pages)).toEqual(sourceRows(3, new Set()));
      expect(sent).toEqual([`${OFFSET_PATH}?offset=0`]);
    } finally {
      await server.stop();
    }
  });
});

describe('a stored request or checkpoint that cannot be used is refused, naming what is wrong', () => {
  async function refusal(request: unknown, checkpoint: unknown): Promise<InvalidCheckpointError> {
    const server = await startLoopbackServer((_req, res) => json(res, 500, {}));
    try {
      const client = new Client({ baseUrl: server.url, credential: anyToken, retryDelayInMs: 1 });
      const error = await pagesOf(
        client.lineItemPages(request as LineItemRequest, { checkpoint: checkpoint as LineItemCheckpoint }),
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvalidCheckpointError);
      // Nothing was asked of the service.
      expect(server.requests).toEqual([]);
      return error as InvalidCheckpointError;
    } finally {
      await server.stop();
    }
  }

  it('is an InvalidCheckpointError by name and not retriable (the same input fails the same way every time)', async () => {
    const error = await refusal(seekRequest(), { kind: 'offset', pageIndex: 1, offset: 2 });
    expect(error.name).toBe('InvalidCheckpointError');
    expect(error.retriable).toBe(false);
    expect(error).toBeInstanceOf(TypeError);
  });

  it('a checkpoint of the other paging kind names the part, its paging and the kind received', async () => {
    const seek = await refusal(seekRequest(), { kind: 'offset', pageIndex: 1, offset: 2 });
    expect(seek.message).toBe('/v1/invoices/G1/lineitems pages by continuation token; got a offset checkpoint');
    const offset = await refusal(offsetRequest(), {
      kind: 'seek',
      pageIndex: 1,
      uri: `${OFFSET_PATH}?seekOperation=Next`,
      headers: {},
      rowsThrough: 4,
    });
    expect(offset.message).toBe(`${OFFSET_PATH} pages by offset; got a seek checkpoint`);
  });

  it("a seek checkpoint of another part names the checkpoint's path (without its query) and the part's", async () => {
    const error = await refusal(seekRequest('G1'), {
      kind: 'seek',
      pageIndex: 1,
      uri: `/v1/invoices/G2/lineitems?${SEEK_QUERY}&seekOperation=Next`,
      headers: { 'MS-ContinuationToken': 't' },
      rowsThrough: 2,
    });
    expect(error.message).toBe('checkpoint /v1/invoices/G2/lineitems is not a page of /v1/invoices/G1/lineitems');
  });

  it('every field problem is listed as "field: problem", separated by "; "', async () => {
    const error = await refusal(offsetRequest(), { kind: 'offset', pageIndex: -1, offset: 1.5 });
    const [head, ...problems] = error.message.split(/: |; /);
    expect(head).toBe('unusable line-item checkpoint');
    expect(error.message).toMatch(/^unusable line-item checkpoint: pageIndex: [^;]*>=0[^;]*; offset: [^;]*int[^;]*$/);
    expect(problems.length).toBeGreaterThanOrEqual(4);
  });

  it('a nested field is named by its dotted path; a wrong kind by "kind"; a non-object by "(root)"', async () => {
    const nested = await refusal(seekRequest(), {
      kind: 'seek',
      pageIndex: 0,
      uri: '/v1/invoices/G1/lineitems',
      headers: { 'MS-ContinuationToken': 7 },
      rowsThrough: 0,
    });
    expect(nested.message).toMatch(/^unusable line-item checkpoint: headers\.MS-ContinuationToken: [^;]*string/);
    const kind = await refusal(seekRequest(), { kind: 'cursor', pageIndex: 0 });
    expect(kind.message).toMatch(/^unusable line-item checkpoint: kind: [^;]*'offset' \| 'seek'/);
    const root = await refusal(seekRequest(), 'seek');
    expect(root.message).toMatch(/^unusable line-item checkpoint: \(root\): [^;]*object/);
    const request = await refusal('v1', null);
    expect(request.message).toMatch(/^unusable line-item request: \(root\): [^;]*object/);
  });
});
