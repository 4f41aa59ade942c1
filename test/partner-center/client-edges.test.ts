// The Partner Center client against a plain loopback server whose answers each test sets (path → status, type,
// body): the token scope it asks for, plain http only to loopback (127.0.0.1, localhost, [::1]) unless told so, the
// base URL and link forms it accepts, the PDF fallbacks' notes, and what it says about answers it cannot use.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { createHttpHeaders, type HttpClient } from '@azure/core-rest-pipeline';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RequestTelemetry } from '../../src/http/pipeline.js';
import {
  PARTNER_CENTER_SCOPE,
  PartnerCenterClient,
  type PartnerCenterClientOptions,
} from '../../src/partner-center/index.js';
import { collect } from './support.js';

const EMPTY_LIST = JSON.stringify({ totalCount: 0, items: [], links: {}, attributes: { objectType: 'Collection' } });
const PDF = '%PDF-1.7 test document';

interface Answer {
  status?: number;
  type?: string;
  body: string;
  /** Sent without Content-Length (chunked). */
  chunked?: boolean;
}
/** Answers by path and query; anything else is the empty invoice list. Reset after each test. */
const answers = new Map<string, Answer>();
const seen: { url: string; authorization: string | undefined; correlationId: string | undefined }[] = [];

let server: http.Server;
let port: number;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = req.url ?? '';
    seen.push({
      url,
      authorization: req.headers.authorization,
      correlationId: req.headers['ms-correlationid'] as string | undefined,
    });
    const answer = answers.get(url) ?? { body: EMPTY_LIST };
    const length = answer.chunked ? {} : { 'content-length': String(Buffer.byteLength(answer.body)) };
    res.writeHead(answer.status ?? 200, { 'content-type': answer.type ?? 'application/json', ...length });
    res.end(answer.body);
  });
  // '::' takes IPv4 (as ::ffff:127.x.x.x) and IPv6 loopback alike, so one server answers every loopback name.
  await new Promise<void>((resolve) => server.listen(0, '::', resolve));
  port = (server.address() as AddressInfo).port;
});
afterEach(() => {
  answers.clear();
  seen.length = 0;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Records the scopes every token is asked for. */
function recordingCredential(): TokenCredential & { scopes: string[][] } {
  const credential = {
    scopes: [] as string[][],
    async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
      credential.scopes.push(Array.isArray(scopes) ? scopes : [scopes]);
      return { token: 'token-for-test', expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
  return credential;
}

const clientFor = (baseUrl: string, options: Partial<PartnerCenterClientOptions> = {}) =>
  new PartnerCenterClient({ baseUrl, credential: recordingCredential(), maxRetries: 0, timeoutMs: 5_000, ...options });
const local = (options: Partial<PartnerCenterClientOptions> = {}) => clientFor(`http://127.0.0.1:${port}`, options);

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('latin1');
}

describe('PartnerCenterClient over plain http', () => {
  it('asks for a Partner Center token (the .default scope of api.partnercenter.microsoft.com)', async () => {
    const credential = recordingCredential();
    expect(await collect(local({ credential }).listInvoices())).toEqual([]);
    expect(PARTNER_CENTER_SCOPE).toBe('https://api.partnercenter.microsoft.com/.default');
    expect(credential.scopes).toEqual([['https://api.partnercenter.microsoft.com/.default']]);
  });

  it.each(['127.0.0.1', 'localhost'])('sends the token over http to loopback %s by default', async (host) => {
    expect(await collect(clientFor(`http://${host}:${port}`).listInvoices())).toEqual([]);
    expect(seen.map(({ url, authorization }) => ({ url, authorization }))).toEqual([
      { url: '/v1/invoices', authorization: 'Bearer token-for-test' },
    ]);
  });

  it('treats [::1] as loopback too: the request leaves the pipeline with its token', async () => {
    // The SDK's Node client passes the bracketed host to the resolver (getaddrinfo ENOTFOUND [::1]), so no server
    // can be reached at http://[::1]; a transport that records what the pipeline hands it shows the decision.
    const handed: { url: string; authorization: string | undefined }[] = [];
    const transport: HttpClient = {
      async sendRequest(request) {
        handed.push({ url: request.url, authorization: request.headers.get('authorization') });
        return {
          request,
          status: 200,
          headers: createHttpHeaders({ 'content-type': 'application/json' }),
          bodyAsText: EMPTY_LIST,
        };
      },
    };
    const client = clientFor(`http://[::1]:${port}`, { httpClient: transport });
    expect(await collect(client.listInvoices())).toEqual([]);
    expect(handed).toEqual([{ url: `http://[::1]:${port}/v1/invoices`, authorization: 'Bearer token-for-test' }]);
  });

  it('refuses to send a token over http to any other host, before a byte is sent', async () => {
    // 127.0.0.2 reaches the same server, but it is not one of the loopback names the client trusts with http.
    await expect(collect(clientFor(`http://127.0.0.2:${port}`).listInvoices())).rejects.toThrow(/https|TLS/i);
    expect(seen).toEqual([]);
  });

  it('allowInsecureLoopback: false turns plain http off even for loopback', async () => {
    await expect(collect(local({ allowInsecureLoopback: false }).listInvoices())).rejects.toThrow(/https|TLS/i);
    expect(seen).toEqual([]);
  });
});

describe('PartnerCenterClient base URL and links', () => {
  it.each(['', '/', '//', '/v1', '/v1/', '/v1//', '/V1'])(
    'base URL ending in "%s" asks for /v1/invoices',
    async (tail) => {
      await collect(clientFor(`http://127.0.0.1:${port}${tail}`).listInvoices());
      expect(seen.map((s) => s.url)).toEqual(['/v1/invoices']);
    },
  );

  it.each([
    ['/partner-center/', '/partner-center/v1/invoices?size=2'],
    ['/gateway/v1/pc', '/gateway/v1/pc/v1/invoices?size=2'],
  ])('a base URL with the path %s keeps it in front of /v1', async (path, requested) => {
    await collect(clientFor(`http://127.0.0.1:${port}${path}`).listInvoices({ pageSize: 2 }));
    expect(seen.map((s) => s.url)).toEqual([requested]);
  });

  // Next links as the service writes them (usually without /v1), and ones whose query holds a colon or /v1/.
  it.each([
    ['invoices?page=2', '/v1/invoices?page=2'],
    ['/invoices?page=2', '/v1/invoices?page=2'],
    ['/v1/invoices?page=2', '/v1/invoices?page=2'],
    ['/V1?page=2', '/V1?page=2'],
    ['/v1', '/v1'],
    ['/invoices?after=2024-01-01T00:00:00', '/v1/invoices?after=2024-01-01T00:00:00'],
    ['/invoices?from=/v1/x', '/v1/invoices?from=/v1/x'],
  ])('a next link %s is followed as %s', async (next, requested) => {
    answers.set('/v1/invoices', {
      body: JSON.stringify({ items: [{ id: 'D01' }], links: { next: { uri: next } }, attributes: {} }),
    });
    const listed = await collect(local().listInvoices());
    expect(listed.map((l) => l.kind)).toEqual(['invoice']);
    expect(seen.map((s) => s.url)).toEqual(['/v1/invoices', requested]);
  });

  it('an absolute next link to another origin fails as LinkNotAllowed, not retried, naming the host', async () => {
    answers.set('/v1/invoices', {
      body: JSON.stringify({ items: [], links: { next: { uri: `http://localhost:${port}/v1/invoices?p=2` } } }),
    });
    const error = await collect(local().listInvoices()).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'LinkNotAllowed',
      retriable: false,
      description: `refusing to send a Partner Center token to http://localhost:${port}/v1/invoices?p=2`,
    });
    expect(seen.map((s) => s.url)).toEqual(['/v1/invoices']);
  });
});

describe('PartnerCenterClient telemetry, limits and unusable answers', () => {
  it('names each call by host in its telemetry: partnercenter for the API, blob for a signed link', async () => {
    const hosts: string[] = [];
    const onRequestCompleted = (info: RequestTelemetry) => hosts.push(info.host);
    const link = `http://localhost:${port}/signed/D01.pdf?sig=x`;
    answers.set('/v1/invoices/D01', { body: JSON.stringify({ id: 'D01', pdfDownloadLink: link }) });
    answers.set('/signed/D01.pdf?sig=x', { type: 'application/pdf', body: PDF });
    const client = local({ onRequestCompleted, isAllowedLink: (url) => url.host === `localhost:${port}` });
    const pdf = await client.openInvoicePdf('D01');
    expect(pdf.source).toBe('link');
    expect(await text(pdf.stream)).toBe(PDF);
    expect(hosts).toEqual(['partnercenter', 'blob']);
    // The signed link carries no token; the invoice call does.
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer token-for-test', undefined]);
  });

  it('one correlation id for every call of one PDF download, when none is given', async () => {
    answers.set('/v1/invoices/D01', { body: JSON.stringify({ id: 'D01' }) });
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body: PDF });
    await text((await local().openInvoicePdf('D01')).stream);
    expect(seen).toHaveLength(2);
    expect(seen[0]?.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[1]?.correlationId).toBe(seen[0]?.correlationId);
  });

  it('a page past maxPageBytes fails naming the setting', async () => {
    await expect(collect(local({ maxPageBytes: 10 }).listInvoices())).rejects.toThrow(
      /maxPageBytes \(setting MAX_PAGE_BYTES\)/,
    );
  });

  it.each([
    [false, (n: number) => `declares ${n} bytes, more than maxPdfBytes (setting MAX_PDF_BYTES) = 50 bytes; not read`],
    [true, () => 'is larger than maxPdfBytes (setting MAX_PDF_BYTES) = 50 bytes; stopped reading'],
  ])('a PDF past maxPdfBytes (chunked: %s) fails naming what was read and the setting', async (chunked, says) => {
    const body = `${PDF}${'x'.repeat(100)}`;
    answers.set('/v1/invoices/D01', { body: JSON.stringify({ id: 'D01' }) });
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body, chunked });
    const error = await local({ maxPdfBytes: 50 })
      .openInvoicePdf('D01')
      .then((pdf) => text(pdf.stream))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'ResponseTooLarge',
      description: `statement of invoice D01 ${says(body.length)}`,
    });
  });

  it('an invoice that is not JSON fails naming the invoice and the parse error', async () => {
    answers.set('/v1/invoices/D01', { body: '{"id": "D01", <html>' });
    const error = await local()
      .getInvoice('D01')
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'InvalidResponseError' });
    expect((error as Error).message).toMatch(/^invoice D01 is not JSON \(.+\)$/);
  });

  it('a rejected id is reported as sent up to 80 characters, longer ones cut to 79 and an ellipsis', async () => {
    const ids = ['A'.repeat(79), 'B'.repeat(80), 'C'.repeat(81)];
    answers.set('/v1/invoices', { body: JSON.stringify({ items: ids.map((id) => ({ id })), links: {} }) });
    const listed = await collect(local().listInvoices());
    expect(listed.map((l) => (l.kind === 'rejected' ? l.idAsSent : l.kind))).toEqual([
      'A'.repeat(79),
      'B'.repeat(80),
      `${'C'.repeat(79)}…`,
    ]);
  });
});

describe('PartnerCenterClient PDF fallbacks say why', () => {
  it('by default a link on Azure Blob Storage is fetched without a token, and any other host is not fetched', async () => {
    // The real hosts are not reachable from here: a transport records what the pipelines hand it and answers.
    const handed: { url: string; authorization: string | undefined }[] = [];
    const transport: HttpClient = {
      async sendRequest(request) {
        handed.push({ url: request.url, authorization: request.headers.get('authorization') });
        const pdf = request.url.includes('.blob.core.windows.net/') || request.url.endsWith('/documents/statement');
        return {
          request,
          status: 200,
          headers: createHttpHeaders({ 'content-type': pdf ? 'application/pdf' : 'application/json' }),
          readableStreamBody: Readable.from([Buffer.from(pdf ? PDF : '{}')]),
        };
      },
    };
    const client = new PartnerCenterClient({
      baseUrl: 'https://api.partnercenter.microsoft.com',
      credential: recordingCredential(),
      maxRetries: 0,
      httpClient: transport,
    });
    const blob = 'https://invoices.blob.core.windows.net/pdf/D01.pdf?sig=s';
    const fromBlob = await client.openInvoicePdf('D01', { invoice: { id: 'D01', pdfDownloadLink: blob } });
    expect({ source: fromBlob.source, pdf: await text(fromBlob.stream) }).toEqual({ source: 'link', pdf: PDF });
    const other = await client.openInvoicePdf('D01', {
      invoice: { id: 'D01', pdfDownloadLink: 'https://files.example.com/D01.pdf' },
    });
    expect({ source: other.source, note: other.note }).toEqual({
      source: 'statement',
      note: 'pdfDownloadLink host files.example.com is not on the link allow-list, so it was not fetched',
    });
    expect(handed).toEqual([
      { url: blob, authorization: undefined },
      {
        url: 'https://api.partnercenter.microsoft.com/v1/invoices/D01/documents/statement',
        authorization: 'Bearer token-for-test',
      },
    ]);
  });

  it('an invoice without pdfDownloadLink: the statement, with that note', async () => {
    answers.set('/v1/invoices/D01', { body: JSON.stringify({ id: 'D01' }) });
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body: PDF });
    const pdf = await local().openInvoicePdf('D01');
    expect({ source: pdf.source, note: pdf.note }).toEqual({
      source: 'statement',
      note: 'the invoice has no pdfDownloadLink',
    });
    expect(await text(pdf.stream)).toBe(PDF);
  });

  it('an expired link whose fresh invoice has no link: the statement, saying both', async () => {
    answers.set('/v1/invoices/D01', { body: JSON.stringify({ id: 'D01' }) });
    answers.set('/v1/gone.pdf', { status: 403, type: 'application/xml', body: '<Error/>' });
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body: PDF });
    const pdf = await local().openInvoicePdf('D01', { invoice: { id: 'D01', pdfDownloadLink: '/gone.pdf' } });
    expect(pdf.note).toBe('pdfDownloadLink answered HTTP 403; the invoice fetched again has no pdfDownloadLink');
    expect(seen.map((s) => s.url)).toEqual([
      '/v1/gone.pdf',
      '/v1/invoices/D01',
      '/v1/invoices/D01/documents/statement',
    ]);
  });

  it('a link answering 404 counts as expired: the invoice is fetched again and its fresh link used', async () => {
    answers.set('/v1/old.pdf', { status: 404, body: '{}' });
    answers.set('/v1/invoices/D01', { body: JSON.stringify({ id: 'D01', pdfDownloadLink: '/v1/fresh.pdf' }) });
    answers.set('/v1/fresh.pdf', { type: 'application/pdf', body: PDF });
    const pdf = await local().openInvoicePdf('D01', { invoice: { id: 'D01', pdfDownloadLink: '/v1/old.pdf' } });
    expect({ source: pdf.source, body: await text(pdf.stream) }).toEqual({ source: 'link', body: PDF });
    expect(seen.map((s) => s.url)).toEqual(['/v1/old.pdf', '/v1/invoices/D01', '/v1/fresh.pdf']);
  });

  it('a link failing otherwise (500) fails the download with that error: no statement stands in for it', async () => {
    answers.set('/v1/broken.pdf', { status: 500, body: '{}' });
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body: PDF });
    const error = await local()
      .openInvoicePdf('D01', { invoice: { id: 'D01', pdfDownloadLink: '/v1/broken.pdf' } })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 500 });
    expect(seen.map((s) => s.url)).toEqual(['/v1/broken.pdf']);
  });

  it('a link that does not give a PDF: the statement, the note quoting what the link gave', async () => {
    answers.set('/v1/page.pdf', { type: 'text/html', body: '<html>sign in</html>' });
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body: PDF });
    const pdf = await local().openInvoicePdf('D01', { invoice: { id: 'D01', pdfDownloadLink: '/v1/page.pdf' } });
    expect(pdf.note).toBe(
      'pdfDownloadLink did not return a PDF (pdfDownloadLink did not return a PDF (starts with "<html>sign in</h"))',
    );
  });
});

describe('PartnerCenterClient list: each invoice once, amendments as sent', () => {
  const page = (items: unknown[]) => ({ body: JSON.stringify({ items, links: {} }) });

  it('an invoice listed twice, or listed and also nested as an amendment, is yielded once', async () => {
    answers.set(
      '/v1/invoices',
      page([{ id: 'D01' }, { id: 'D01' }, { id: 'D02', amendments: [{ id: 'D01' }, { id: 'D03' }, { id: 'D03' }] }]),
    );
    const listed = await collect(local().listInvoices());
    expect(listed.map((l) => (l.kind === 'invoice' ? l.invoice.id : l.kind))).toEqual(['D01', 'D02', 'D03']);
  });

  it("an amendment's own amendsOf is kept; one without it gets its parent's id", async () => {
    answers.set('/v1/invoices', page([{ id: 'D02', amendments: [{ id: 'D03', amendsOf: 'D00' }, { id: 'D04' }] }]));
    const listed = await collect(local().listInvoices());
    expect(listed.map((l) => (l.kind === 'invoice' ? [l.invoice.id, l.invoice.amendsOf] : l.kind))).toEqual([
      ['D02', undefined],
      ['D03', 'D00'],
      ['D04', 'D02'],
    ]);
  });
});

describe('PartnerCenterClient PDF bodies', () => {
  // The invoice without a link: fetched again by id (it has none either), then the statement.
  beforeEach(() => {
    answers.set('/v1/invoices/D01', { body: JSON.stringify({ id: 'D01' }) });
  });

  it('a PDF of many chunks arrives whole, byte for byte', async () => {
    // 3 MiB: the socket delivers it in many chunks after the first one checked for %PDF.
    const body = `${PDF}${'0123456789abcdef'.repeat(3 * 65_536)}`;
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body, chunked: true });
    const pdf = await local().openInvoicePdf('D01', { invoice: { id: 'D01' } });
    expect(await text(pdf.stream)).toBe(body);
  });

  it('a PDF of exactly maxPdfBytes is read', async () => {
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body: PDF });
    const pdf = await local({ maxPdfBytes: PDF.length }).openInvoicePdf('D01', { invoice: { id: 'D01' } });
    expect(await text(pdf.stream)).toBe(PDF);
  });

  it('too large and not a PDF are not retriable: the same answer would come again', async () => {
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body: `${PDF}xx` });
    await expect(local({ maxPdfBytes: 3 }).openInvoicePdf('D01', { invoice: { id: 'D01' } })).rejects.toMatchObject({
      code: 'ResponseTooLarge',
      retriable: false,
    });
    answers.set('/v1/invoices/D01/documents/statement', { type: 'application/pdf', body: '' });
    await expect(local().openInvoicePdf('D01', { invoice: { id: 'D01' } })).rejects.toMatchObject({
      code: 'NotAPdf',
      retriable: false,
      description: 'statement of invoice D01 did not return a PDF (empty body)',
    });
  });

  it('an absolute link on the Partner Center origin is fetched with the token; a relative one with a colon too', async () => {
    answers.set('/v1/own.pdf', { type: 'application/pdf', body: PDF });
    answers.set('/v1/doc.pdf?at=2024-01-01T00:00:00', { type: 'application/pdf', body: PDF });
    const absolute = await local().openInvoicePdf('D01', {
      invoice: { id: 'D01', pdfDownloadLink: `http://127.0.0.1:${port}/v1/own.pdf` },
    });
    const relative = await local().openInvoicePdf('D01', {
      invoice: { id: 'D01', pdfDownloadLink: '/v1/doc.pdf?at=2024-01-01T00:00:00' },
    });
    expect([absolute.source, relative.source]).toEqual(['link', 'link']);
    expect(
      seen.filter((s) => s.url.endsWith('.pdf') || s.url.includes('.pdf?')).map((s) => [s.url, s.authorization]),
    ).toEqual([
      ['/v1/own.pdf', 'Bearer token-for-test'],
      ['/v1/doc.pdf?at=2024-01-01T00:00:00', 'Bearer token-for-test'],
    ]);
  });

  it('a receipt that is not a PDF fails naming the receipt and the invoice; an unsafe receipt id is refused', async () => {
    answers.set('/v1/invoices/D01/receipts/R1/documents/statement', { body: '{}' });
    await expect(local().openReceiptPdf('D01', 'R1')).rejects.toMatchObject({
      code: 'NotAPdf',
      description: 'receipt R1 of invoice D01 did not return a PDF (starts with "{}")',
    });
    await expect(local().openReceiptPdf('D01', '../x')).rejects.toThrow(/receipt id/);
  });
});
