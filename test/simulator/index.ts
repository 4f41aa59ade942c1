// The Partner Center + Microsoft Graph simulator: four loopback HTTP hosts (Partner Center v1, Graph v2, a blob
// host for signed links and export blobs, an Entra-like token endpoint) over one seeded dataset and one clock.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createDataset, type Dataset, type DatasetOptions } from './dataset.js';
import { FaultList, type Faults, graphThrottle, type SimHost, throttle } from './faults.js';
import { GraphState, handleBlob, handleGraph } from './graph.js';
import {
  type Exchange,
  lowerQuery,
  type NextLinkStyle,
  type RecordedRequest,
  type ResolvedOptions,
  type SimState,
  send,
  signer,
  sleep,
} from './http.js';
import { handlePartnerCenter } from './partner-center.js';
import { ReplayCache } from './replay.js';
import { type SeekTokenLog, SeekTokens } from './seek.js';
import {
  deviceAuthorizationEndpoint,
  instanceDiscovery,
  issueAccessToken,
  openIdConfiguration,
  type RefreshTokenOptions,
  RefreshTokenStore,
  tokenEndpoint,
} from './tokens.js';

export type {
  BillingPeriodFields,
  Customer,
  Dataset,
  DatasetOptions,
  DateShape,
  InvoiceSpec,
  PartSpec,
  UnbilledPeriod,
  UnbilledView,
  V2Kind,
} from './dataset.js';
export { PARTNER_TENANT_ID, renderDate } from './dataset.js';
export type { FaultRule, Faults, SimHost } from './faults.js';
export { apiFault, graphThrottle, throttle } from './faults.js';
export type { NextLinkStyle, RecordedRequest } from './http.js';
export type { IssuedSeekToken, SeekTokenLog, SeekTokenReuse } from './seek.js';
export { AUDIENCES, CLIENT_ID } from './tokens.js';

export interface SimulatorOptions {
  /** First port: Partner Center, Graph, blob and token hosts listen on port..port+3 (default: free ports). */
  port?: number;
  /** Dataset seed (default 1). */
  seed?: number;
  dataset?: DatasetOptions;
  /** Line-item page size cap and default (default 2000); a larger `size` is clamped. */
  pageSizeCap?: number;
  /** Invoice list page size when the request has no `size` (default 4, so the default dataset needs paging). */
  invoicePageSize?: number;
  /** Added to every Partner Center and Graph response (default 0); see also `setLatency`. */
  latencyMs?: number;
  /** pdfDownloadLink on get-by-id: the relative statement path, or an absolute signed URL on the blob host (default 'signed'). */
  pdfLinkMode?: 'relative' | 'signed';
  /** Lifetime of a signed pdfDownloadLink on the simulator clock (default 30 min). */
  pdfLinkTtlMs?: number;
  /** Simulator clock start (default 2026-11-21T00:00:00Z); it advances with real time and by `clock.advance`. */
  startTime?: number;
  /** By-id, statement and receipts need a delegated token (`scp` claim), else 403 code 2032 (default true). */
  enforceAppUser?: boolean;
  /** Reject a missing, expired or wrong-audience bearer with 401 (default true). */
  requireAuth?: boolean;
  /** Prefix every Partner Center JSON response with a UTF-8 BOM (default false). */
  bom?: boolean;
  /** Emit line-item next links malformed as in the docs' examples (`...&offset=`, `size=2?seekOperation=Next`). */
  malformedNextLinks?: boolean;
  /**
   * How `links.self` / `links.next` of the invoice list and of line-item pages are written (default 'relative':
   * `/invoices?...` without `/v1`, as documented; 'relativeV1': `/v1/invoices?...`; 'absolute':
   * `${partnerCenterUrl}/v1/invoices?...`). One style for both, or per collection.
   */
  nextLinkStyle?: NextLinkStyle | { invoices?: NextLinkStyle; lineItems?: NextLinkStyle };
  /** Seek continuation tokens (ref §5.3). */
  seekTokens?: {
    /** Every issued token is accepted once; a second use answers 400 (default false: reusable, but reuse is recorded). */
    singleUse?: boolean;
    /** Body of the 400 for a missing, foreign or reused token: ApiFault (default) or `{"message":...}`. */
    errorShape?: 'apiFault' | 'message';
  };
  v2?: {
    /** Polls answered `running` before the export succeeds (default 1). */
    pollsBeforeDone?: number;
    /** Where the success operation puts the manifest (default 'link'). */
    manifestMode?: 'inline' | 'link' | 'both';
    /** SAS lifetime on the simulator clock (default 60 min). */
    sasTtlMs?: number;
    /** Retry-After on running polls (default 1). */
    retryAfterSeconds?: number;
    /** Rows per export blob; more rows make several blobs (default 50_000). */
    rowsPerBlob?: number;
    /**
     * The manifest's `dataFormat` (default 'compressedJSON', as every example; the resource doc says
     * 'compressedJSONLines'; anything else, e.g. 'csv', is served as given). The blobs are gzip JSON Lines whatever it says.
     */
    dataFormat?: string;
    /** Per-blob row count in the manifest (the Dec-2023 sample model): omitted (default), exact, or lying. */
    itemCount?: 'omit' | 'exact' | 'lie';
    /** Key of that count (default 'ItemCount', the sample model's name; e.g. 'itemCount'). */
    itemCountKey?: string;
    /** With itemCount 'lie': added to the first blob's true count (default 1). */
    itemCountLieBy?: number;
  };
  /**
   * A per-host request budget on the simulator clock (ref §9 publishes no numbers): over `limit` requests in
   * `windowMs`, Partner Center answers its documented 429 and Graph its TooManyRequests, with Retry-After.
   */
  rateLimit?: { limit: number; windowMs: number; hosts?: ('partnercenter' | 'graph')[] };
  /**
   * Benchmarks: each line-item page and export blob is rendered on its first GET and replayed from memory (same
   * status, headers, bytes) on every later GET of it (default false). See replay.ts.
   */
  replay?: boolean;
  /** Token endpoint behaviour. */
  auth?: RefreshTokenOptions & {
    /** Base URL clients see for the authority (e.g. a fake https origin rewritten to `authorityUrl`); used in metadata. */
    publicAuthorityUrl?: string;
  };
}

export interface Simulator {
  /** http://127.0.0.1:<port> (the client appends /v1/...). */
  partnerCenterUrl: string;
  /** http://127.0.0.1:<port> (the client appends /v1.0/...). */
  graphUrl: string;
  /** Another host: signed PDF links and manifest blobs. */
  blobUrl: string;
  /** Token endpoint: POST {authorityUrl}/{tenant}/oauth2/v2.0/token. */
  authorityUrl: string;
  dataset: Dataset;
  /** Every request to every host, in arrival order (status filled in when answered; 0 = connection reset). */
  requests: RecordedRequest[];
  /** Every seek continuation token issued, how often each was sent, and every repeated send. */
  seekTokens: SeekTokenLog;
  clock: { now(): number; advance(ms: number): void };
  faults: Faults;
  setLatency(ms: number): void;
  issueToken(o: { audience: 'partnercenter' | 'graph'; appUser?: boolean; ttlSeconds?: number }): string;
  /** A refresh token the token endpoint will redeem (and rotate). */
  seedRefreshToken(): string;
  /** Every refresh token issued so far stops working (invalid_grant). */
  revokeRefreshTokens(): void;
  /** New v2 data version for an invoice: manifests issued afterwards carry a new eTag and InvoiceVersion. */
  bumpV2Version(invoiceId: string): void;
  stop(): Promise<void>;
}

const DEFAULT_START = Date.parse('2026-11-21T00:00:00Z');

function resolveOptions(o: SimulatorOptions): ResolvedOptions {
  return {
    seed: o.seed ?? 1,
    pageSizeCap: o.pageSizeCap ?? 2000,
    invoicePageSize: o.invoicePageSize ?? 4,
    latencyMs: o.latencyMs ?? 0,
    pdfLinkMode: o.pdfLinkMode ?? 'signed',
    pdfLinkTtlMs: o.pdfLinkTtlMs ?? 30 * 60_000,
    enforceAppUser: o.enforceAppUser ?? true,
    requireAuth: o.requireAuth ?? true,
    bom: o.bom ?? false,
    malformedNextLinks: o.malformedNextLinks ?? false,
    nextLinkStyle:
      typeof o.nextLinkStyle === 'string'
        ? { invoices: o.nextLinkStyle, lineItems: o.nextLinkStyle }
        : { invoices: o.nextLinkStyle?.invoices ?? 'relative', lineItems: o.nextLinkStyle?.lineItems ?? 'relative' },
    seekTokens: { singleUse: o.seekTokens?.singleUse ?? false, errorShape: o.seekTokens?.errorShape ?? 'apiFault' },
    v2: {
      pollsBeforeDone: o.v2?.pollsBeforeDone ?? 1,
      manifestMode: o.v2?.manifestMode ?? 'link',
      sasTtlMs: o.v2?.sasTtlMs ?? 60 * 60_000,
      retryAfterSeconds: o.v2?.retryAfterSeconds ?? 1,
      rowsPerBlob: o.v2?.rowsPerBlob ?? 50_000,
      dataFormat: o.v2?.dataFormat ?? 'compressedJSON',
      itemCount: o.v2?.itemCount ?? 'omit',
      itemCountKey: o.v2?.itemCountKey ?? 'ItemCount',
      itemCountLieBy: o.v2?.itemCountLieBy ?? 1,
    },
    auth: o.auth ?? {},
  };
}

async function listen(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const resolved = resolveOptions(options);
  const dataset = createDataset(resolved.seed, options.dataset);
  const startReal = Date.now();
  let skew = (options.startTime ?? DEFAULT_START) - startReal;
  const clock = {
    now: () => Date.now() + skew,
    advance: (ms: number) => {
      skew += ms;
    },
  };
  const faults = new FaultList();
  const requests: RecordedRequest[] = [];
  const graph = new GraphState();
  const sign = signer(randomBytes(32));
  const seek = new SeekTokens(sign, () => resolved.seekTokens.singleUse);
  const state: SimState = {
    options: resolved,
    dataset,
    now: clock.now,
    urls: { partnerCenter: '', graph: '', blob: '', authority: '' },
    faults,
    refreshTokens: new RefreshTokenStore(resolved.auth),
    seek,
    sign,
  };

  const rateLimiter = options.rateLimit ? createRateLimiter(options.rateLimit, clock.now) : undefined;
  const replay = options.replay ? new ReplayCache() : undefined;
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const host = (name: SimHost, handler: (ex: Exchange) => Promise<void> | void) => {
    const server = createServer((req, res) => {
      // serve() handles its own errors; a rejection here would only mean a socket died mid-answer.
      serve(name, req, res, handler).catch(() => res.destroy());
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    servers.push(server);
    return server;
  };

  async function serve(
    name: SimHost,
    req: IncomingMessage,
    res: ServerResponse,
    handler: (ex: Exchange) => Promise<void> | void,
  ): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(', ') : value;
    }
    const record: RecordedRequest = {
      host: name,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      status: 0,
      at: clock.now(),
    };
    requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      return; // the client went away while sending its body
    }
    const ex: Exchange = { host: name, req, res, url, query: lowerQuery(url), body: Buffer.concat(chunks) };
    try {
      if ((name === 'partnercenter' || name === 'graph') && resolved.latencyMs > 0) await sleep(resolved.latencyMs);
      const limited = rateLimiter?.(name);
      if (limited !== undefined) return send(ex, 429, limited.body, limited.headers);
      const rule = faults.take(name, record.method, url.pathname);
      if (rule) {
        switch (rule.kind) {
          case 'status':
            return send(ex, rule.status, rule.body, rule.headers ?? {});
          case 'reset':
            req.socket.destroy();
            return;
          case 'resetMidBody':
            cutMidBody(res);
            break;
          case 'delay':
            await sleep(rule.ms);
            break;
          case 'v2NoData':
            ex.noDataPolls = rule.polls;
            break;
        }
      }
      const replayKey = replay?.keyOf(name, record.method, url, req.headers);
      if (replayKey !== undefined && replay) {
        if (replay.replay(replayKey, res)) return;
        replay.record(replayKey, res);
      }
      await handler(ex);
    } catch (error) {
      if (!res.headersSent) {
        send(
          ex,
          500,
          JSON.stringify({
            code: 500,
            description: `simulator error: ${String(error)}`,
            data: [],
            source: 'Simulator',
          }),
          {
            'content-type': 'application/json',
          },
        );
      } else {
        res.destroy();
      }
    }
  }

  const pcServer = host('partnercenter', (ex) => handlePartnerCenter(ex, state));
  const graphServer = host('graph', (ex) => handleGraph(ex, state, graph));
  const blobServer = host('blob', (ex) => handleBlob(ex, state));
  const tokenServer = host('token', (ex) => handleToken(ex, state));
  const port = (offset: number) => (options.port ? options.port + offset : 0);
  state.urls.partnerCenter = await listen(pcServer, port(0));
  state.urls.graph = await listen(graphServer, port(1));
  state.urls.blob = await listen(blobServer, port(2));
  state.urls.authority = await listen(tokenServer, port(3));

  return {
    partnerCenterUrl: state.urls.partnerCenter,
    graphUrl: state.urls.graph,
    blobUrl: state.urls.blob,
    authorityUrl: state.urls.authority,
    dataset,
    requests,
    seekTokens: seek,
    clock,
    faults,
    setLatency: (ms) => {
      resolved.latencyMs = ms;
    },
    issueToken: (o) => issueAccessToken(clock.now(), o),
    seedRefreshToken: () => state.refreshTokens.seed(),
    revokeRefreshTokens: () => state.refreshTokens.revokeAll(),
    bumpV2Version: (invoiceId) => dataset.bumpV2Version(invoiceId),
    async stop() {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}

/** Sliding-window budget per host; returns the 429 to send when the request is over budget. */
function createRateLimiter(
  limit: NonNullable<SimulatorOptions['rateLimit']>,
  now: () => number,
): (host: SimHost) => { body: string; headers: Record<string, string> } | undefined {
  const hosts = new Set<SimHost>(limit.hosts ?? ['partnercenter', 'graph']);
  const seen = new Map<SimHost, number[]>();
  return (host) => {
    if (!hosts.has(host)) return undefined;
    const t = now();
    const window = (seen.get(host) ?? []).filter((at) => at > t - limit.windowMs);
    seen.set(host, window);
    if (window.length < limit.limit) {
      window.push(t);
      return undefined;
    }
    const seconds = Math.max(1, Math.ceil(((window[0] ?? t) + limit.windowMs - t) / 1000));
    const rule = host === 'graph' ? graphThrottle(seconds) : throttle(seconds);
    return rule.kind === 'status' ? { body: rule.body ?? '', headers: rule.headers ?? {} } : undefined;
  };
}

/** Sends the headers and about half of the first body chunk, then drops the connection. */
function cutMidBody(res: ServerResponse): void {
  const cut = (chunk: unknown) => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.alloc(0);
    const part = data.subarray(0, Math.max(1, Math.floor(data.length / 2)));
    const write = originalWrite as (this: ServerResponse, data: Buffer, done: () => void) => boolean;
    write.call(res, part, () => res.socket?.destroy());
    res.write = (() => true) as typeof res.write;
    res.end = (() => res) as typeof res.end;
  };
  const originalWrite = res.write;
  res.write = ((chunk: unknown) => {
    cut(chunk);
    return true;
  }) as typeof res.write;
  res.end = ((chunk?: unknown) => {
    cut(typeof chunk === 'function' ? undefined : chunk);
    return res;
  }) as typeof res.end;
}

function handleToken(ex: Exchange, state: SimState) {
  const path = ex.url.pathname;
  const base = state.options.auth.publicAuthorityUrl ?? state.urls.authority;
  const json = (status: number, body: unknown) =>
    send(ex, status, JSON.stringify(body), {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store, no-cache',
      'x-ms-request-id': crypto.randomUUID(),
    });
  // Paths are matched by suffix so an origin rewrite may add a prefix (e.g. `/auth`).
  const token = /\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
  if (token && ex.req.method === 'POST') {
    const result = tokenEndpoint(
      token[1] ?? 'common',
      new URLSearchParams(ex.body.toString('utf8')),
      state.now(),
      state.refreshTokens,
      state.options.auth,
    );
    return json(result.status, result.body);
  }
  if (/\/[^/]+\/oauth2\/v2\.0\/devicecode$/.test(path) && ex.req.method === 'POST') {
    const result = deviceAuthorizationEndpoint(new URLSearchParams(ex.body.toString('utf8')), state.refreshTokens);
    return json(result.status, result.body);
  }
  const config = /\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
  if (config && ex.req.method === 'GET') return json(200, openIdConfiguration(base, config[1] ?? 'common'));
  if (/\/common\/discovery\/instance$/.test(path) && ex.req.method === 'GET') return json(200, instanceDiscovery(base));
  return json(404, { error: 'not_found', error_description: `AADSTS90002: No such endpoint ${path}.` });
}
