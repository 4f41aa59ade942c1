// The plumbing shared by the simulated hosts: one request/response exchange, the simulator's shared state, and
// helpers to answer with JSON, streams and signed-URL checks.
import { createHmac } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dataset } from './dataset.js';
import type { FaultList, SimHost } from './faults.js';
import type { SeekTokens } from './seek.js';
import type { RefreshTokenOptions, RefreshTokenStore } from './tokens.js';

export interface RecordedRequest {
  host: SimHost;
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  /** Lower-case names, raw values. */
  headers: Record<string, string>;
  /** 0 when the connection was reset before a response. */
  status: number;
  /** Simulator clock (ms epoch) when the request arrived. */
  at: number;
}

/**
 * How collection links (`links.self`, `links.next`) are written: relative without `/v1` (`/invoices?...`, the
 * documented form), relative with `/v1` (`/v1/invoices?...`), or absolute on the simulator's own origin.
 */
export type NextLinkStyle = 'relative' | 'relativeV1' | 'absolute';

export interface ResolvedOptions {
  seed: number;
  pageSizeCap: number;
  invoicePageSize: number;
  latencyMs: number;
  pdfLinkMode: 'relative' | 'signed';
  pdfLinkTtlMs: number;
  enforceAppUser: boolean;
  requireAuth: boolean;
  bom: boolean;
  malformedNextLinks: boolean;
  nextLinkStyle: { invoices: NextLinkStyle; lineItems: NextLinkStyle };
  seekTokens: { singleUse: boolean; errorShape: 'apiFault' | 'message' };
  v2: {
    pollsBeforeDone: number;
    manifestMode: 'inline' | 'link' | 'both';
    sasTtlMs: number;
    retryAfterSeconds: number;
    rowsPerBlob: number;
    dataFormat: string;
    itemCount: 'omit' | 'exact' | 'lie';
    itemCountKey: string;
    itemCountLieBy: number;
  };
  auth: RefreshTokenOptions & { publicAuthorityUrl?: string };
}

export interface SimState {
  options: ResolvedOptions;
  dataset: Dataset;
  now(): number;
  urls: { partnerCenter: string; graph: string; blob: string; authority: string };
  faults: FaultList;
  refreshTokens: RefreshTokenStore;
  seek: SeekTokens;
  /** Signs simulator-issued URLs (PDF links, SAS); a fresh key per simulator so old links never validate. */
  sign(text: string): string;
}

export interface Exchange {
  host: SimHost;
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Query with lower-case names (the services match names case-insensitively). */
  query: Map<string, string>;
  body: Buffer;
  /** Set by a `v2NoData` fault on this export request. */
  noDataPolls?: number;
}

export function signer(key: Buffer): (text: string) => string {
  return (text) => createHmac('sha256', key).update(text).digest('base64');
}

export function lowerQuery(url: URL): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of url.searchParams) if (!map.has(name.toLowerCase())) map.set(name.toLowerCase(), value);
  return map;
}

export function send(
  ex: Exchange,
  status: number,
  body: string | Buffer | undefined,
  headers: Record<string, string> = {},
): void {
  const buffer = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  ex.res.writeHead(status, { ...headers, 'content-length': String(buffer.length) });
  ex.res.end(buffer);
}

/** Writes chunks with backpressure, so a million-row response never sits in memory. */
export async function sendStream(
  ex: Exchange,
  status: number,
  headers: Record<string, string>,
  chunks: Iterable<string | Buffer>,
): Promise<void> {
  const { res } = ex;
  res.writeHead(status, headers);
  for (const chunk of chunks) {
    if (res.destroyed) return;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  if (!res.destroyed) res.end();
}

export const xmlAuthFailed = (detail: string) =>
  `\uFEFF<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.\nRequestId:${crypto.randomUUID()}\nTime:${new Date().toISOString()}</Message><AuthenticationErrorDetail>${detail}</AuthenticationErrorDetail></Error>`;

/** Unref'd, so a long `delay` fault never keeps a stopped simulator's process alive. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
