// The v1 line-item page reader (ref §5.3): offset paging for office/azure, seek paging (links.next + its headers)
// for onetime/marketplace, resumable from the checkpoint each page carries. One HTTP call per page, made only when
// the caller asks for the page.
import { z } from 'zod';
import { ndjsonItems } from '../http/json-items.js';
import type { Page } from '../http/paging.js';
import { type LineItemRequest, lineItemRequestSchema } from './parts.js';
import { asCollection, type Link } from './schemas.js';

export type LineItemCheckpoint =
  /** `offset` is the source's position: rows served through the previous page. */
  | { kind: 'offset'; pageIndex: number; offset: number }
  /** `uri` (a /v1 path) and `headers` (MS-ContinuationToken, byte for byte) fetch the next page. */
  | { kind: 'seek'; pageIndex: number; uri: string; headers: Record<string, string>; rowsThrough: number };

const count = z.number().int().min(0);
/** Strict: a checkpoint read back from the ledger is checked before it steers a request. */
export const lineItemCheckpointSchema: z.ZodType<LineItemCheckpoint> = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('offset'), pageIndex: count, offset: count }),
  z.strictObject({
    kind: z.literal('seek'),
    pageIndex: count,
    uri: z.string().startsWith('/v1/'),
    headers: z.record(z.string(), z.string()),
    rowsThrough: count,
  }),
]);

/** A stored request or checkpoint that cannot be used: the same input fails the same way every time. */
export class InvalidCheckpointError extends TypeError {
  override name = 'InvalidCheckpointError';
  readonly retriable = false;
}

/** What the reader needs from the client: URLs on its own origin and one GET per page. */
export interface LineItemTransport {
  /** A Partner Center path or link as an absolute URL on the client's origin; throws for any other origin. */
  url(uri: string): string;
  /** GET, returning the body bytes as read from the socket (a BOM may lead); non-2xx throws. */
  getBytes(url: string, headers: Record<string, string>): Promise<Buffer>;
}

function parsed<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new InvalidCheckpointError(`unusable ${what}: ${problems}`);
}

export async function* lineItemPages(
  transport: LineItemTransport,
  requestInput: LineItemRequest,
  checkpointInput: LineItemCheckpoint | null | undefined,
): AsyncGenerator<Page<LineItemCheckpoint>> {
  const request = parsed(lineItemRequestSchema, requestInput, 'line-item request');
  const checkpoint =
    checkpointInput == null ? null : parsed(lineItemCheckpointSchema, checkpointInput, 'line-item checkpoint');
  if (checkpoint && checkpoint.kind !== request.paging) {
    const paging = request.paging === 'offset' ? 'offset' : 'continuation token';
    throw new InvalidCheckpointError(`${request.path} pages by ${paging}; got a ${checkpoint.kind} checkpoint`);
  }
  const firstUrl = `${transport.url(request.path)}?${request.query}`;
  if (checkpoint?.kind === 'offset' || (!checkpoint && request.paging === 'offset')) {
    yield* offsetPages(transport, firstUrl, checkpoint?.kind === 'offset' ? checkpoint : undefined);
    return;
  }
  const seek = checkpoint?.kind === 'seek' ? checkpoint : undefined;
  if (seek && new URL(transport.url(seek.uri)).pathname !== request.path) {
    throw new InvalidCheckpointError(`checkpoint ${seek.uri.split('?')[0]} is not a page of ${request.path}`);
  }
  yield* seekPages(transport, firstUrl, seek);
}

async function* offsetPages(
  transport: LineItemTransport,
  firstUrl: string,
  from: Extract<LineItemCheckpoint, { kind: 'offset' }> | undefined,
): AsyncGenerator<Page<LineItemCheckpoint>> {
  let pageIndex = from?.pageIndex ?? 0;
  let offset = from?.offset ?? 0;
  const separator = firstUrl.endsWith('?') ? '' : '&';
  for (;;) {
    const { ndjson, rows, links } = pageOf(await transport.getBytes(`${firstUrl}${separator}offset=${offset}`, {}));
    const nextOffset = nextOffsetOf(links?.next, offset, rows);
    // Stop at an empty page even if it links on: a service repeating itself cannot make this loop.
    const next: LineItemCheckpoint | null =
      rows > 0 && nextOffset !== undefined ? { kind: 'offset', pageIndex: pageIndex + 1, offset: nextOffset } : null;
    const rowsThrough = next ? next.offset : offset + rows;
    yield { ndjson, rows, rowsThrough, next };
    if (!next) return;
    pageIndex = next.pageIndex;
    offset = next.offset;
  }
}

async function* seekPages(
  transport: LineItemTransport,
  firstUrl: string,
  from: Extract<LineItemCheckpoint, { kind: 'seek' }> | undefined,
): AsyncGenerator<Page<LineItemCheckpoint>> {
  let pageIndex = from?.pageIndex ?? 0;
  let rowsThrough = from?.rowsThrough ?? 0;
  let url = from ? transport.url(from.uri) : firstUrl;
  let headers = from?.headers ?? {};
  for (;;) {
    const { ndjson, rows, links, continuationToken } = pageOf(await transport.getBytes(url, headers));
    rowsThrough += rows;
    let next: LineItemCheckpoint | null = null;
    const link = links?.next;
    if (link?.uri) {
      const nextHeaders: Record<string, string> = {};
      for (const h of link.headers ?? []) nextHeaders[h.key] = h.value;
      if (Object.keys(nextHeaders).length === 0 && continuationToken) {
        nextHeaders['MS-ContinuationToken'] = continuationToken;
      }
      next = {
        kind: 'seek',
        pageIndex: pageIndex + 1,
        uri: seekNextUri(transport, link.uri, firstUrl),
        headers: nextHeaders,
        rowsThrough,
      };
    }
    yield { ndjson, rows, rowsThrough, next };
    if (!next) return;
    pageIndex = next.pageIndex;
    url = transport.url(next.uri);
    headers = next.headers;
  }
}

/** The page's rows as NDJSON bytes (never decoded) and its envelope, checked to be a collection. */
function pageOf(bytes: Buffer) {
  const { envelope, ndjson, rows } = ndjsonItems(bytes);
  const page = asCollection(envelope);
  return { ndjson, rows, links: page.links, continuationToken: page.continuationToken };
}

/** The next seek URI as a /v1 path; a link that does not parse cleanly becomes "original query + seekOperation=Next". */
function seekNextUri(transport: LineItemTransport, linkUri: string, firstUrl: string): string {
  const fallback = () => {
    const u = new URL(firstUrl);
    u.searchParams.set('seekOperation', 'Next');
    return `${u.pathname}${u.search}`;
  };
  if ((linkUri.match(/\?/g) ?? []).length !== 1) return fallback();
  let parsedLink: URL;
  try {
    parsedLink = new URL(transport.url(linkUri));
  } catch {
    return fallback();
  }
  const param = (name: string) => [...parsedLink.searchParams].find(([k]) => k.toLowerCase() === name)?.[1];
  const seek = param('seekoperation');
  const size = param('size');
  if (seek?.toLowerCase() !== 'next' || (size !== undefined && !/^\d+$/.test(size))) return fallback();
  if (parsedLink.pathname !== new URL(firstUrl).pathname) return fallback();
  return `${parsedLink.pathname}${parsedLink.search}`;
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
