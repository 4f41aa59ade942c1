// The Partner Center v1 client: invoice list (all pages, amendments flattened), invoice by id, statement and
// receipt PDFs (signed links fetched without Authorization), and resumable line-item page readers.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient, Pipeline } from '@azure/core-rest-pipeline';
import { ApiError, isApiError } from '../http/errors.js';
import { splitJsonItems } from '../http/json-items.js';
import {
  type ApiRequestOptions,
  createPipeline,
  defaultHttpClient,
  type RequestTelemetry,
  sendForStream,
  sendForText,
} from '../http/pipeline.js';
import { redactUrl } from '../http/redact.js';
import { assertSafeId } from '../ids.js';
import { type InvoicePart, partRequest } from './parts.js';
import { asCollection, asInvoice, type Invoice, type Link } from './schemas.js';

export const PARTNER_CENTER_SCOPE = 'https://api.partnercenter.microsoft.com/.default';
const DEFAULT_PAGE_SIZE = 2000;

export interface PartnerCenterClientOptions {
  /** `https://api.partnercenter.microsoft.com` (a trailing `/v1` is accepted). */
  baseUrl: string;
  /** App-only: invoice list and line items. */
  credential: TokenCredential;
  /** App+User: invoice by id, statement, receipts. Defaults to `credential`. */
  appUserCredential?: TokenCredential;
  timeoutMs?: number;
  maxRetries?: number;
  retryDelayInMs?: number;
  maxRetryDelayInMs?: number;
  maxRetryAfterMs?: number;
  /** Absolute links outside Partner Center are followed only when this allows them (default: https blob hosts). */
  isAllowedLink?: (url: URL) => boolean;
  /** Plain http to loopback (the simulator). Default: true only when `baseUrl` itself is http loopback. */
  allowInsecureLoopback?: boolean;
  httpClient?: HttpClient;
  /** Telemetry of every HTTP attempt (retries included): host `partnercenter`, signed PDF links `blob`. */
  onRequestCompleted?: (info: RequestTelemetry) => void;
}

export interface OperationOptions {
  /** MS-CorrelationId of the logical operation (one sync of one invoice, one detection run). */
  correlationId?: string;
  abortSignal?: AbortSignal;
}

export type LineItemCheckpoint =
  | { kind: 'offset'; pageIndex: number; offset: number }
  | { kind: 'seek'; pageIndex: number; uri: string; headers: Record<string, string> };

export interface LineItemPage {
  pageIndex: number;
  /** Verbatim JSON of each item (line breaks between tokens removed): never re-serialized. */
  rows: string[];
  /** Where to resume AFTER this page; null when this was the last page. */
  next: LineItemCheckpoint | null;
  /** MS-RequestId of the request that returned this page. */
  requestId: string | undefined;
}

export interface LineItemReader {
  byPage(options?: {
    checkpoint?: LineItemCheckpoint | null;
    pageSize?: number;
    abortSignal?: AbortSignal;
  }): AsyncIterableIterator<LineItemPage>;
}

export interface PdfDocument {
  stream: Readable;
  source: 'link' | 'statement';
  /** When the invoice carrying the link was fetched (links expire about 30 minutes after). */
  linkIssuedAt?: Date;
}

function isLoopbackHttp(url: URL): boolean {
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

export class PartnerCenterClient {
  readonly #origin: URL;
  readonly #app: Pipeline;
  readonly #appUser: Pipeline;
  /** No auth policy at all: signed links must never see an Authorization header. */
  readonly #signed: Pipeline;
  readonly #httpClient: HttpClient;
  readonly #isAllowedLink: (url: URL) => boolean;

  constructor(options: PartnerCenterClientOptions) {
    this.#origin = new URL(options.baseUrl.replace(/\/+$/, '').replace(/\/v1$/i, ''));
    const allowInsecureLoopback = options.allowInsecureLoopback ?? isLoopbackHttp(this.#origin);
    const common = {
      timeoutMs: options.timeoutMs,
      maxRetries: options.maxRetries,
      retryDelayInMs: options.retryDelayInMs,
      maxRetryDelayInMs: options.maxRetryDelayInMs,
      maxRetryAfterMs: options.maxRetryAfterMs,
      allowInsecureLoopback,
      onRequestCompleted: options.onRequestCompleted,
      telemetryHost: 'partnercenter',
    };
    this.#app = createPipeline({ ...common, credential: options.credential, scopes: PARTNER_CENTER_SCOPE });
    this.#appUser = createPipeline({
      ...common,
      credential: options.appUserCredential ?? options.credential,
      scopes: PARTNER_CENTER_SCOPE,
    });
    this.#signed = createPipeline({ ...common, telemetryHost: 'blob' });
    this.#httpClient = options.httpClient ?? defaultHttpClient();
    const pcHost = this.#origin.host;
    this.#isAllowedLink =
      options.isAllowedLink ??
      ((url) => url.protocol === 'https:' && (url.hostname.endsWith('.blob.core.windows.net') || url.host === pcHost));
  }

  /** A Partner Center link (relative, usually without `/v1`) as an absolute URL on our host. */
  #pcUrl(uri: string): string {
    if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) {
      const absolute = new URL(uri);
      if (absolute.origin !== this.#origin.origin) {
        throw new ApiError({
          code: 'LinkNotAllowed',
          description: `refusing to send a Partner Center token to ${redactUrl(absolute)}`,
          retriable: false,
        });
      }
      return absolute.href;
    }
    const path = uri.startsWith('/') ? uri : `/${uri}`;
    const withVersion = /^\/v1(\/|\?|$)/i.test(path) ? path : `/v1${path}`;
    return `${this.#origin.origin}${this.#origin.pathname.replace(/\/$/, '')}${withVersion}`;
  }

  async #getJson(pipeline: Pipeline, url: string, options: ApiRequestOptions = {}) {
    return sendForText(pipeline, url, options, this.#httpClient);
  }

  /** Every invoice on every page (following `links.next`), amendments flattened after their parent, deduped by id. */
  async *listInvoices(options: OperationOptions & { pageSize?: number } = {}): AsyncIterableIterator<Invoice> {
    // One correlation id for the whole walk, so every page of one listing can be traced together.
    options = { ...options, correlationId: options.correlationId ?? randomUUID() };
    const seen = new Set<string>();
    const seenPages = new Set<string>();
    let url: string | undefined = this.#pcUrl(options.pageSize ? `/invoices?size=${options.pageSize}` : '/invoices');
    while (url) {
      // A server repeating a next link would otherwise loop forever.
      if (seenPages.has(url)) break;
      seenPages.add(url);
      const { text } = await this.#getJson(this.#app, url, options);
      const page = asCollection(JSON.parse(text));
      for (const item of page.items) {
        const invoice = asInvoice(item);
        if (!seen.has(invoice.id)) {
          seen.add(invoice.id);
          yield invoice;
        }
        for (const rawAmendment of invoice.amendments ?? []) {
          const amendment = asInvoice(rawAmendment);
          if (seen.has(amendment.id)) continue;
          seen.add(amendment.id);
          if (!amendment.amendsOf) amendment.amendsOf = invoice.id;
          yield amendment;
        }
      }
      url = page.links?.next?.uri ? this.#pcUrl(page.links.next.uri) : undefined;
    }
  }

  /** One invoice by id (App+User). `raw` is the response text with any BOM removed, for storing as received. */
  async getInvoice(id: string, options: OperationOptions = {}): Promise<{ invoice: Invoice; raw: string }> {
    assertSafeId(id);
    const { text } = await this.#getJson(this.#appUser, this.#pcUrl(`/invoices/${encodeURIComponent(id)}`), options);
    return { invoice: asInvoice(JSON.parse(text)), raw: text };
  }

  /**
   * The invoice PDF as a stream: the invoice's `pdfDownloadLink` (re-fetching the invoice once if a signed link has
   * expired), else `/documents/statement`. The first bytes are checked to be `%PDF`; the body is never buffered.
   */
  async openInvoicePdf(id: string, options: OperationOptions & { invoice?: Invoice } = {}): Promise<PdfDocument> {
    assertSafeId(id);
    options = { ...options, correlationId: options.correlationId ?? randomUUID() };
    let invoice = options.invoice;
    let linkIssuedAt: Date | undefined;
    if (!invoice?.pdfDownloadLink) {
      invoice = (await this.getInvoice(id, options)).invoice;
      linkIssuedAt = new Date();
    }
    for (let attempt = 0; attempt < 2 && invoice.pdfDownloadLink; attempt++) {
      try {
        const stream = await this.#openPdfLink(invoice.pdfDownloadLink, options);
        return { stream, source: 'link', ...(linkIssuedAt ? { linkIssuedAt } : {}) };
      } catch (e) {
        const expired = isApiError(e) && (e.status === 403 || e.status === 404);
        const notPdf = isApiError(e) && e.code === 'NotAPdf';
        if (!expired && !notPdf) throw e;
        if (attempt > 0 || notPdf) break;
        // A signed link lives ~30 minutes: one fresh invoice gives a fresh link.
        invoice = (await this.getInvoice(id, options)).invoice;
        linkIssuedAt = new Date();
      }
    }
    const { stream } = await sendForStream(
      this.#appUser,
      this.#pcUrl(`/invoices/${encodeURIComponent(id)}/documents/statement`),
      { ...options, headers: { Accept: 'application/pdf' } },
      this.#httpClient,
    );
    return { stream: await verifyPdf(stream, `statement of invoice ${id}`), source: 'statement' };
  }

  async #openPdfLink(link: string, options: OperationOptions): Promise<Readable> {
    const absolute = /^[a-z][a-z0-9+.-]*:/i.test(link) ? new URL(link) : undefined;
    if (absolute && absolute.origin !== this.#origin.origin) {
      if (!this.#isAllowedLink(absolute)) {
        throw new ApiError({
          code: 'LinkNotAllowed',
          description: `pdfDownloadLink host ${absolute.host} is not allowed; not fetched`,
          retriable: false,
          url: absolute.href,
        });
      }
      const { stream } = await sendForStream(
        this.#signed,
        absolute.href,
        { ...options, headers: { Accept: 'application/pdf' } },
        this.#httpClient,
      );
      return verifyPdf(stream, 'pdfDownloadLink');
    }
    const { stream } = await sendForStream(
      this.#appUser,
      this.#pcUrl(link),
      { ...options, headers: { Accept: 'application/pdf' } },
      this.#httpClient,
    );
    return verifyPdf(stream, 'pdfDownloadLink');
  }

  /** A tax receipt PDF (App+User), checked to be `%PDF`, streamed. */
  async openReceiptPdf(id: string, receiptId: string, options: OperationOptions = {}): Promise<{ stream: Readable }> {
    assertSafeId(id);
    assertSafeId(receiptId, 'receipt id');
    const url = this.#pcUrl(
      `/invoices/${encodeURIComponent(id)}/receipts/${encodeURIComponent(receiptId)}/documents/statement`,
    );
    const { stream } = await sendForStream(
      this.#appUser,
      url,
      { ...options, headers: { Accept: 'application/pdf' } },
      this.#httpClient,
    );
    return { stream: await verifyPdf(stream, `receipt ${receiptId} of invoice ${id}`) };
  }

  /** The page reader of one part; offset paging for office/azure, seek paging for onetime/marketplace. */
  lineItems(invoice: Invoice, part: InvoicePart, options: OperationOptions = {}): LineItemReader {
    assertSafeId(invoice.id);
    return {
      byPage: (pageOptions = {}) =>
        this.#pages(invoice, part, {
          ...options,
          abortSignal: pageOptions.abortSignal ?? options.abortSignal,
          checkpoint: pageOptions.checkpoint ?? null,
          pageSize: pageOptions.pageSize ?? DEFAULT_PAGE_SIZE,
        }),
    };
  }

  async *#pages(
    invoice: Invoice,
    part: InvoicePart,
    options: OperationOptions & { checkpoint: LineItemCheckpoint | null; pageSize: number },
  ): AsyncIterableIterator<LineItemPage> {
    const first = partRequest(invoice, part, Math.min(Math.max(1, Math.floor(options.pageSize)), 2000));
    const firstUrl = `${this.#pcUrl(first.path)}?${first.query}`;
    const request = { correlationId: options.correlationId ?? randomUUID(), abortSignal: options.abortSignal };
    if (part.paging === 'offset') {
      if (options.checkpoint && options.checkpoint.kind !== 'offset') {
        throw new TypeError(`part ${part.partId} pages by offset; got a ${options.checkpoint.kind} checkpoint`);
      }
      let pageIndex = options.checkpoint?.pageIndex ?? 0;
      let offset = options.checkpoint?.offset ?? 0;
      for (;;) {
        const { text, response } = await this.#getJson(this.#app, `${firstUrl}&offset=${offset}`, request);
        const { envelope, items } = splitJsonItems(text);
        const page = asCollection(envelope);
        const nextOffset = nextOffsetOf(page.links?.next, offset, items.length);
        const next: LineItemCheckpoint | null =
          items.length > 0 && nextOffset !== undefined
            ? { kind: 'offset', pageIndex: pageIndex + 1, offset: nextOffset }
            : null;
        yield { pageIndex, rows: items, next, requestId: response.headers.get('MS-RequestId') };
        if (!next) return;
        pageIndex = next.pageIndex;
        offset = next.offset;
      }
    }
    if (options.checkpoint && options.checkpoint.kind !== 'seek') {
      throw new TypeError(
        `part ${part.partId} pages by continuation token; got a ${options.checkpoint.kind} checkpoint`,
      );
    }
    let pageIndex = options.checkpoint?.pageIndex ?? 0;
    let url = options.checkpoint ? this.#pcUrl(options.checkpoint.uri) : firstUrl;
    let headers = options.checkpoint?.headers ?? {};
    for (;;) {
      const { text, response } = await this.#getJson(this.#app, url, { ...request, headers });
      const { envelope, items } = splitJsonItems(text);
      const page = asCollection(envelope);
      let next: LineItemCheckpoint | null = null;
      const link = page.links?.next;
      if (link?.uri) {
        const nextHeaders: Record<string, string> = {};
        for (const h of link.headers ?? []) nextHeaders[h.key] = h.value;
        if (Object.keys(nextHeaders).length === 0 && page.continuationToken) {
          nextHeaders['MS-ContinuationToken'] = page.continuationToken;
        }
        next = {
          kind: 'seek',
          pageIndex: pageIndex + 1,
          uri: this.#seekNextUri(link.uri, firstUrl),
          headers: nextHeaders,
        };
      }
      yield { pageIndex, rows: items, next, requestId: response.headers.get('MS-RequestId') };
      if (!next) return;
      pageIndex = next.pageIndex;
      url = this.#pcUrl(next.uri);
      headers = next.headers;
    }
  }

  /** The next seek URI as a /v1 path; a link that does not parse cleanly becomes "original query + seekOperation=Next". */
  #seekNextUri(linkUri: string, firstUrl: string): string {
    const fallback = () => {
      const u = new URL(firstUrl);
      u.searchParams.set('seekOperation', 'Next');
      return `${u.pathname}${u.search}`;
    };
    if ((linkUri.match(/\?/g) ?? []).length !== 1) return fallback();
    let parsed: URL;
    try {
      parsed = new URL(this.#pcUrl(linkUri));
    } catch {
      return fallback();
    }
    const seek = [...parsed.searchParams].find(([k]) => k.toLowerCase() === 'seekoperation')?.[1];
    const size = [...parsed.searchParams].find(([k]) => k.toLowerCase() === 'size')?.[1];
    if (seek?.toLowerCase() !== 'next' || (size !== undefined && !/^\d+$/.test(size))) return fallback();
    if (parsed.pathname !== new URL(firstUrl).pathname) return fallback();
    return `${parsed.pathname}${parsed.search}`;
  }
}

/** The offset after this page: the link's, when it is well-formed and moves forward; else offset + rows read. */
function nextOffsetOf(next: Link | null | undefined, offset: number, rowCount: number): number | undefined {
  if (!next?.uri) return undefined;
  const computed = offset + rowCount;
  const match = /[?&]offset=(\d+)(?:&|$)/i.exec(next.uri);
  if (!match) return computed;
  const fromLink = Number(match[1]);
  return Number.isSafeInteger(fromLink) && fromLink > offset ? fromLink : computed;
}

/** Reads just enough to check the `%PDF` magic, then returns a stream of the whole body (head included). */
async function verifyPdf(source: Readable, what: string): Promise<Readable> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const head: Buffer[] = [];
  let length = 0;
  while (length < 4) {
    const step = await iterator.next();
    if (step.done) break;
    const chunk = Buffer.isBuffer(step.value) ? step.value : Buffer.from(step.value);
    head.push(chunk);
    length += chunk.length;
  }
  const start = Buffer.concat(head);
  if (start.subarray(0, 4).toString('latin1') !== '%PDF') {
    source.destroy();
    throw new ApiError({
      code: 'NotAPdf',
      description: `${what} did not return a PDF (${length === 0 ? 'empty body' : `starts with ${JSON.stringify(start.subarray(0, 16).toString('latin1'))}`})`,
      retriable: false,
    });
  }
  async function* whole(): AsyncGenerator<Buffer> {
    try {
      yield start;
      for (;;) {
        const step = await iterator.next();
        if (step.done) return;
        yield Buffer.isBuffer(step.value) ? step.value : Buffer.from(step.value);
      }
    } finally {
      source.destroy();
    }
  }
  return Readable.from(whole(), { objectMode: false });
}
