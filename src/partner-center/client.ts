// The Partner Center v1 client: invoice list (all pages, every item and amendment judged alone), invoice by id,
// statement and receipt PDFs (signed links fetched without Authorization), and resumable line-item pages.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient, Pipeline } from '@azure/core-rest-pipeline';
import { type BodyLimit, limitStream } from '../http/bodies.js';
import { ApiError, isApiError, requestIdsOf } from '../http/errors.js';
import { rawTopLevelValue, splitJsonArray, splitJsonItems } from '../http/json-items.js';
import { BLOB_HOST_PATTERN, createLinkPolicy } from '../http/link-policy.js';
import { isLoopbackHttp } from '../http/loopback.js';
import type { Page } from '../http/paging.js';
import {
  type ApiRequestOptions,
  createPipeline,
  DEFAULT_MAX_PAGE_BYTES,
  defaultHttpClient,
  type RequestTelemetry,
  sendForBytes,
  sendForStream,
  sendForText,
} from '../http/pipeline.js';
import { redactText, redactUrl } from '../http/redact.js';
import { assertSafeId, isSafeId } from '../ids.js';
import { type LineItemCheckpoint, lineItemPages } from './line-items.js';
import type { LineItemRequest } from './parts.js';
import { asCollection, asInvoice, InvalidResponseError, type Invoice, idText } from './schemas.js';

export const PARTNER_CENTER_SCOPE = 'https://api.partnercenter.microsoft.com/.default';

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
  /** The largest JSON body (a list or line-item page, an invoice) read (default 256 MiB, setting MAX_PAGE_BYTES). */
  maxPageBytes?: number;
  /** The largest PDF streamed; past it the stream errors (default 512 MiB, setting MAX_PDF_BYTES). */
  maxPdfBytes?: number;
}

export const DEFAULT_MAX_PDF_BYTES = 512 * 1024 ** 2;

export interface OperationOptions {
  /** MS-CorrelationId of the logical operation (one sync of one invoice, one detection run). */
  correlationId?: string;
  abortSignal?: AbortSignal;
}

export interface LineItemPagesOptions extends OperationOptions {
  /** Where to resume: the `next` of the last page whose rows are durable; null or absent for the first page. */
  checkpoint?: LineItemCheckpoint | null;
}

/** One entry of the invoice list: an invoice (top-level or amendment) or an item that could not be used. */
export type ListedItem =
  | { kind: 'invoice'; invoice: Invoice; raw: string /* this item's JSON text verbatim (an amendment: its own) */ }
  | { kind: 'rejected'; idAsSent: string /* redacted, <= 80 chars */; reason: string; parentId?: string };

export interface PdfDocument {
  stream: Readable;
  source: 'link' | 'statement';
  /** When the invoice carrying the link was fetched (links expire about 30 minutes after). */
  linkIssuedAt?: Date;
  /** Why the statement was used instead of the invoice's pdfDownloadLink (only when `source` is `statement`). */
  note?: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Untrusted text for a report: secrets removed, at most 80 characters. */
function shortRedacted(text: string): string {
  const chars = Array.from(redactText(text));
  return chars.length > 80 ? `${chars.slice(0, 79).join('')}…` : chars.join('');
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidResponseError(`${what} is not JSON (${(e as Error).message})`);
  }
}

export class PartnerCenterClient {
  readonly #origin: URL;
  readonly #app: Pipeline;
  readonly #appUser: Pipeline;
  /** No auth policy at all: signed links must never see an Authorization header. */
  readonly #signed: Pipeline;
  readonly #httpClient: HttpClient;
  readonly #isAllowedLink: (url: URL) => boolean;
  readonly #pdfLimit: BodyLimit;

  constructor(options: PartnerCenterClientOptions) {
    this.#origin = new URL(options.baseUrl.replace(/\/+$/, '').replace(/\/v1$/i, ''));
    const allowInsecureLoopback = options.allowInsecureLoopback ?? isLoopbackHttp(this.#origin.href);
    const common = {
      timeoutMs: options.timeoutMs,
      maxRetries: options.maxRetries,
      retryDelayInMs: options.retryDelayInMs,
      maxRetryDelayInMs: options.maxRetryDelayInMs,
      maxRetryAfterMs: options.maxRetryAfterMs,
      allowInsecureLoopback,
      onRequestCompleted: options.onRequestCompleted,
      telemetryHost: 'partnercenter',
      textBodyLimit: {
        bytes: options.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES,
        name: 'maxPageBytes (setting MAX_PAGE_BYTES)',
      },
    };
    this.#pdfLimit = {
      bytes: options.maxPdfBytes ?? DEFAULT_MAX_PDF_BYTES,
      name: 'maxPdfBytes (setting MAX_PDF_BYTES)',
    };
    this.#app = createPipeline({ ...common, credential: options.credential, scopes: PARTNER_CENTER_SCOPE });
    this.#appUser = createPipeline({
      ...common,
      credential: options.appUserCredential ?? options.credential,
      scopes: PARTNER_CENTER_SCOPE,
    });
    this.#signed = createPipeline({ ...common, telemetryHost: 'blob' });
    this.#httpClient = options.httpClient ?? defaultHttpClient();
    // Links on our own origin never reach the policy (#pdfLink sends them with the token): only other hosts do.
    this.#isAllowedLink = options.isAllowedLink ?? createLinkPolicy({ hostPatterns: [BLOB_HOST_PATTERN] });
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

  /**
   * Every invoice on every page (following `links.next`), each amendment after its parent, deduped by id. Every
   * list item and every amendment is judged alone: one without a usable id or shape is yielded as `rejected` and
   * the walk goes on. Only a page that cannot be fetched (or read as a collection) ends the walk, with an error.
   */
  async *listInvoices(options: OperationOptions & { pageSize?: number } = {}): AsyncIterableIterator<ListedItem> {
    // One correlation id for the whole walk, so every page of one listing can be traced together.
    const request = { correlationId: options.correlationId ?? randomUUID(), abortSignal: options.abortSignal };
    const seen = new Set<string>();
    const seenPages = new Set<string>();
    let url: string | undefined = this.#pcUrl(options.pageSize ? `/invoices?size=${options.pageSize}` : '/invoices');
    while (url) {
      // A server repeating a next link would otherwise loop forever.
      if (seenPages.has(url)) break;
      seenPages.add(url);
      const { text } = await this.#getJson(this.#app, url, request);
      const { envelope, items: rawItems } = splitJsonItems(text);
      const page = asCollection(envelope);
      for (const [index, item] of page.items.entries()) {
        yield* listedItems(item, rawItems[index] ?? '', seen);
      }
      url = page.links?.next?.uri ? this.#pcUrl(page.links.next.uri) : undefined;
    }
  }

  /** One invoice by id (App+User). `raw` is the response text with any BOM removed, for storing as received. */
  async getInvoice(id: string, options: OperationOptions = {}): Promise<{ invoice: Invoice; raw: string }> {
    assertSafeId(id);
    const { text } = await this.#getJson(this.#appUser, this.#pcUrl(`/invoices/${encodeURIComponent(id)}`), options);
    return { invoice: asInvoice(parseJson(text, `invoice ${id}`)), raw: text };
  }

  /**
   * The invoice PDF as a stream: the invoice's `pdfDownloadLink` (re-fetching the invoice once if a signed link has
   * expired), else `/documents/statement`, with `note` saying why. The first bytes are checked to be `%PDF`; the
   * body is never buffered.
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
    let note = 'the invoice has no pdfDownloadLink';
    for (let attempt = 0; attempt < 2 && invoice.pdfDownloadLink; attempt++) {
      const link = this.#pdfLink(invoice.pdfDownloadLink);
      if (!link.allowed) {
        note = link.reason;
        break;
      }
      try {
        const stream = await this.#openPdf(link.pipeline, link.url, 'pdfDownloadLink', options);
        return { stream, source: 'link', ...(linkIssuedAt ? { linkIssuedAt } : {}) };
      } catch (e) {
        const expired = isApiError(e) && (e.status === 403 || e.status === 404);
        const notPdf = isApiError(e) && e.code === 'NotAPdf';
        if (!expired && !notPdf) throw e;
        if (notPdf) {
          note = `pdfDownloadLink did not return a PDF (${(e as ApiError).description})`;
          break;
        }
        note = `pdfDownloadLink answered HTTP ${(e as ApiError).status}${attempt > 0 ? ' again with a fresh link' : ''}`;
        if (attempt > 0) break;
        // A signed link lives ~30 minutes: one fresh invoice gives a fresh link.
        invoice = (await this.getInvoice(id, options)).invoice;
        linkIssuedAt = new Date();
        if (!invoice.pdfDownloadLink) note = `${note}; the invoice fetched again has no pdfDownloadLink`;
      }
    }
    const statement = this.#pcUrl(`/invoices/${encodeURIComponent(id)}/documents/statement`);
    const stream = await this.#openPdf(this.#appUser, statement, `statement of invoice ${id}`, options);
    return { stream, source: 'statement', note };
  }

  /** Where a pdfDownloadLink may be fetched from, and with which pipeline (a token only on our own origin). */
  #pdfLink(link: string): { allowed: true; url: string; pipeline: Pipeline } | { allowed: false; reason: string } {
    const absolute = /^[a-z][a-z0-9+.-]*:/i.test(link) ? new URL(link) : undefined;
    if (!absolute || absolute.origin === this.#origin.origin) {
      return { allowed: true, url: this.#pcUrl(link), pipeline: this.#appUser };
    }
    if (!this.#isAllowedLink(absolute)) {
      return {
        allowed: false,
        reason: `pdfDownloadLink host ${absolute.host} is not on the link allow-list, so it was not fetched`,
      };
    }
    return { allowed: true, url: absolute.href, pipeline: this.#signed };
  }

  /** A PDF body, checked to start with `%PDF`, capped at maxPdfBytes (declared length checked before reading). */
  async #openPdf(pipeline: Pipeline, url: string, what: string, options: OperationOptions): Promise<Readable> {
    const { stream, response } = await sendForStream(
      pipeline,
      url,
      { ...options, headers: { Accept: 'application/pdf' } },
      this.#httpClient,
    );
    const declared = Number(response.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > this.#pdfLimit.bytes) {
      stream.destroy();
      throw new ApiError({
        status: response.status,
        code: 'ResponseTooLarge',
        description: `${what} declares ${declared} bytes, more than ${this.#pdfLimit.name} = ${this.#pdfLimit.bytes} bytes; not read`,
        ...requestIdsOf(response.request, response),
        retriable: false,
        url,
      });
    }
    return verifyPdf(limitStream(stream, this.#pdfLimit, what), what);
  }

  /** A tax receipt PDF (App+User), checked to be `%PDF`, streamed. */
  async openReceiptPdf(id: string, receiptId: string, options: OperationOptions = {}): Promise<{ stream: Readable }> {
    assertSafeId(id);
    assertSafeId(receiptId, 'receipt id');
    const url = this.#pcUrl(
      `/invoices/${encodeURIComponent(id)}/receipts/${encodeURIComponent(receiptId)}/documents/statement`,
    );
    return { stream: await this.#openPdf(this.#appUser, url, `receipt ${receiptId} of invoice ${id}`, options) };
  }

  /**
   * The pages of one part, read from a stored `LineItemRequest` (see `partRequest`): offset paging for
   * office/azure, seek paging for onetime/marketplace. Lazy: one HTTP call (plus the pipeline's retries) per
   * `next()`, never ahead. The request and checkpoint are validated before any call.
   */
  lineItemPages(
    request: LineItemRequest,
    options: LineItemPagesOptions = {},
  ): AsyncIterableIterator<Page<LineItemCheckpoint>> {
    const call = { correlationId: options.correlationId ?? randomUUID(), abortSignal: options.abortSignal };
    return lineItemPages(
      {
        url: (uri) => this.#pcUrl(uri),
        getBytes: async (url, headers) =>
          (await sendForBytes(this.#app, url, { ...call, headers }, this.#httpClient)).bytes,
      },
      request,
      options.checkpoint,
    );
  }
}

/** The judged entries of one list item: the item itself, then each of its amendments. */
function* listedItems(item: unknown, raw: string, seen: Set<string>): Generator<ListedItem> {
  const judged = judgeInvoice(item, raw);
  // The parent's id as sent when usable, even if the parent itself was rejected for another reason.
  const itemId = isObject(item) ? idText(item.id) : undefined;
  const parentId = isSafeId(itemId) ? itemId : undefined;
  if (judged.kind === 'rejected' || !seen.has(judged.invoice.id)) {
    if (judged.kind === 'invoice') seen.add(judged.invoice.id);
    yield judged;
  }
  if (!isObject(item) || !Array.isArray(item.amendments) || item.amendments.length === 0) return;
  const rawAmendments = splitJsonArray(rawTopLevelValue(raw, 'amendments') ?? '[]');
  if (rawAmendments.length !== item.amendments.length) {
    throw new SyntaxError(
      `amendments split found ${rawAmendments.length} elements, JSON.parse found ${item.amendments.length}`,
    );
  }
  for (const [index, amendment] of item.amendments.entries()) {
    const judgedAmendment = judgeInvoice(amendment, rawAmendments[index] ?? '', parentId);
    if (judgedAmendment.kind === 'rejected') {
      yield judgedAmendment;
      continue;
    }
    if (seen.has(judgedAmendment.invoice.id)) continue;
    seen.add(judgedAmendment.invoice.id);
    if (!judgedAmendment.invoice.amendsOf && parentId) judgedAmendment.invoice.amendsOf = parentId;
    yield judgedAmendment;
  }
}

/** One list item (or amendment) on its own: an invoice, or rejected with its id as sent and why. */
function judgeInvoice(value: unknown, raw: string, parentId?: string): ListedItem {
  const what = parentId === undefined ? 'list item' : 'amendment';
  const rejected = (idAsSent: string, reason: string): ListedItem => ({
    kind: 'rejected',
    idAsSent: shortRedacted(idAsSent),
    reason,
    ...(parentId === undefined ? {} : { parentId }),
  });
  if (!isObject(value)) {
    return rejected(
      raw,
      `${what} is ${value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`}, not an invoice object`,
    );
  }
  const id = idText(value.id);
  if (!isSafeId(id)) {
    // As sent: a number too large for a double keeps its digits (JSON.parse would have rounded it).
    const sent = typeof value.id === 'string' ? value.id : (rawTopLevelValue(raw, 'id') ?? '');
    const reason =
      value.id === undefined || value.id === null || value.id === ''
        ? `${what} has no id`
        : typeof id !== 'string'
          ? `${what} id is a ${typeof value.id}${typeof value.id === 'number' ? ' that is not a safe integer' : ''}, not a string`
          : `${what} id fails the id rule (1-64 letters, digits or dashes, starting with a letter or digit)`;
    return rejected(sent, reason);
  }
  try {
    return { kind: 'invoice', invoice: asInvoice(value), raw };
  } catch (e) {
    return rejected(id, (e as Error).message);
  }
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
