// The wait before a retry, measured at the server: the gap between two attempts of one call must be at least what
// the server asked for (Retry-After in seconds or as an HTTP date), on the Partner Center client and on the Graph
// client. Every client here backs off by only a few milliseconds, so a strategy that ignored Retry-After would
// retry at once and fail these tests.
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { GraphBillingClient } from '../../src/graph/index.js';
import { ApiError, createPipeline, sendForText } from '../../src/http/index.js';
import { PartnerCenterClient } from '../../src/partner-center/index.js';
import { anyToken, type LoopbackServer, type SeenRequest, startLoopbackServer } from './loopback-server.js';

/** Timers may fire a hair early relative to Date.now(); anything more is a real miss. */
const MARGIN_MS = 25;

const INVOICE = JSON.stringify({ id: 'G000000001', invoiceDate: '2025-01-05T00:00:00Z', currencyCode: 'USD' });

/** A date on a whole second at least `ms` ahead (HTTP dates have no fractions), and its header form. */
function httpDateAhead(ms: number): { at: number; header: string } {
  const at = Math.ceil((Date.now() + ms) / 1000) * 1000;
  return { at, header: new Date(at).toUTCString() };
}

type Answer = (res: ServerResponse, seen: SeenRequest) => void;
const throttled =
  (headers: Record<string, string>, status = 429): Answer =>
  (res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ statusCode: status, message: 'Rate limit is exceeded. Try again later.' }));
  };
const invoiceOk: Answer = (res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(INVOICE);
};

let servers: LoopbackServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
});

/** A server answering its n-th request with answers[n] (the last answer repeats). */
async function scripted(answers: Answer[]): Promise<LoopbackServer> {
  const server = await startLoopbackServer((_req, res, seen, index) => {
    (answers[Math.min(index, answers.length - 1)] as Answer)(res, seen);
  });
  servers.push(server);
  return server;
}

const partnerCenter = (
  server: LoopbackServer,
  extra: Partial<ConstructorParameters<typeof PartnerCenterClient>[0]> = {},
) =>
  new PartnerCenterClient({
    baseUrl: server.url,
    credential: anyToken,
    retryDelayInMs: 2,
    maxRetryDelayInMs: 5,
    maxRetryAfterMs: 10_000,
    timeoutMs: 5_000,
    ...extra,
  });

const gap = (server: LoopbackServer) => (server.requests[1]?.at ?? 0) - (server.requests[0]?.at ?? 0);

describe('Partner Center client: the wait before a retry', () => {
  it('Retry-After in seconds: the retry comes no sooner than asked', async () => {
    const server = await scripted([throttled({ 'retry-after': '1' }), invoiceOk]);
    const { invoice } = await partnerCenter(server).getInvoice('G000000001');
    expect(invoice.id).toBe('G000000001');
    expect(server.requests).toHaveLength(2);
    expect(gap(server)).toBeGreaterThanOrEqual(1000 - MARGIN_MS);
    // One call: the retry reuses the MS-RequestId.
    expect(server.requests[1]?.headers['ms-requestid']).toBe(server.requests[0]?.headers['ms-requestid']);
  });

  it('Retry-After as an HTTP date in the future: the retry comes no sooner than that date', async () => {
    let until = 0;
    const server = await scripted([
      (res, seen) => {
        const date = httpDateAhead(1000);
        until = date.at;
        throttled({ 'retry-after': date.header })(res, seen);
      },
      invoiceOk,
    ]);
    await partnerCenter(server).getInvoice('G000000001');
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]?.at).toBeGreaterThanOrEqual(until - MARGIN_MS);
    expect(gap(server)).toBeGreaterThanOrEqual(1000 - MARGIN_MS);
  });

  it('503 with Retry-After and retry-after-ms are honoured too', async () => {
    const server = await scripted([
      throttled({ 'retry-after': '1' }, 503),
      throttled({ 'retry-after-ms': '400', 'retry-after': '30' }),
      invoiceOk,
    ]);
    await partnerCenter(server).getInvoice('G000000001');
    const [a, b, c] = server.requests;
    expect((b?.at ?? 0) - (a?.at ?? 0)).toBeGreaterThanOrEqual(1000 - MARGIN_MS);
    // The millisecond header wins over Retry-After (as the library reads them), and is waited for.
    expect((c?.at ?? 0) - (b?.at ?? 0)).toBeGreaterThanOrEqual(400 - MARGIN_MS);
    expect((c?.at ?? 0) - (b?.at ?? 0)).toBeLessThan(30_000);
  });

  it('429 without Retry-After backs off exponentially, not at once', async () => {
    const server = await scripted([throttled({}), throttled({}), invoiceOk]);
    await partnerCenter(server, { retryDelayInMs: 300, maxRetryDelayInMs: 5_000 }).getInvoice('G000000001');
    const [a, b, c] = server.requests;
    // Jitter keeps each delay in the upper half of 300 ms, then 600 ms.
    expect((b?.at ?? 0) - (a?.at ?? 0)).toBeGreaterThanOrEqual(150 - MARGIN_MS);
    expect((c?.at ?? 0) - (b?.at ?? 0)).toBeGreaterThanOrEqual(300 - MARGIN_MS);
  });

  it('a Retry-After beyond maxRetryAfterMs fails at once with a clear, retriable error', async () => {
    const server = await scripted([throttled({ 'retry-after': '3600' }), invoiceOk]);
    const error = (await partnerCenter(server)
      .getInvoice('G000000001')
      .catch((e: unknown) => e)) as ApiError;
    expect(server.requests).toHaveLength(1);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 429, retriable: true, retryAfterMs: 3_600_000 });
    expect(error.message).toMatch(/server asked to retry after 3600 s, beyond the 10 s limit/);
    expect(error.message).toMatch(/requestId=[0-9a-f-]{36}/);
  });

  it.each([400, 401, 403, 404, 405, 409, 412, 422])('HTTP %i is not retried', async (status) => {
    const server = await scripted([
      (res) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: status, description: `refused with ${status}` }));
      },
      invoiceOk,
    ]);
    const error = await partnerCenter(server)
      .getInvoice('G000000001')
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ status, description: `refused with ${status}` });
    expect(server.requests).toHaveLength(1);
  });

  it('408, 500, 502, 503 and 504 are retried; 501 and 505 are not', async () => {
    const server = await scripted(
      [408, 500, 502, 503, 504]
        .map(
          (status): Answer =>
            (res) => {
              res.writeHead(status);
              res.end();
            },
        )
        .concat(invoiceOk),
    );
    await partnerCenter(server).getInvoice('G000000001');
    expect(server.requests).toHaveLength(6);
    for (const status of [501, 505]) {
      const once = await scripted([
        (res) => {
          res.writeHead(status);
          res.end();
        },
        invoiceOk,
      ]);
      await expect(partnerCenter(once).getInvoice('G000000001')).rejects.toMatchObject({ status, retriable: false });
      expect(once.requests).toHaveLength(1);
    }
  });

  it('a connection reset and a socket hang up are retried with the same MS-RequestId', async () => {
    const server = await startLoopbackServer((req, res, _seen, index) => {
      if (index === 0) return void req.socket.destroy();
      if (index === 1) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
        res.write('{"id":"G0');
        return void setTimeout(() => req.socket.destroy(), 10);
      }
      invoiceOk(res, _seen);
    });
    servers.push(server);
    const { invoice } = await partnerCenter(server).getInvoice('G000000001');
    expect(invoice.id).toBe('G000000001');
    expect(server.requests).toHaveLength(3);
    expect(new Set(server.requests.map((r) => r.headers['ms-requestid'])).size).toBe(1);
  });
});

describe('Graph client: the wait before a retry', () => {
  const graph = (server: LoopbackServer) =>
    new GraphBillingClient({
      baseUrl: server.url,
      credential: anyToken,
      isAllowedLink: (url) => url.origin === server.url,
      allowInsecureLoopback: true,
      retryDelayInMs: 2,
      maxRetryDelayInMs: 5,
      timeoutMs: 5_000,
    });
  // The Location must be on the Graph origin: the server's own host and port.
  const accepted: Answer = (res, seen) => {
    res.writeHead(202, { location: `http://${seen.headers.host}/v1.0/reports/partners/billing/operations/op-1` });
    res.end();
  };
  const graphThrottled =
    (retryAfter: string): Answer =>
    (res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': retryAfter });
      res.end(JSON.stringify({ error: { code: 'TooManyRequests', message: 'Too many requests' } }));
    };

  it('Retry-After in seconds', async () => {
    const server = await scripted([graphThrottled('1'), accepted]);
    const started = await graph(server).startExport('reconciliation', 'G000000001');
    expect(started.operationLocation).toBe(`${server.url}/v1.0/reports/partners/billing/operations/op-1`);
    expect(server.requests).toHaveLength(2);
    expect(gap(server)).toBeGreaterThanOrEqual(1000 - MARGIN_MS);
    expect(server.requests[1]?.headers['client-request-id']).toBe(server.requests[0]?.headers['client-request-id']);
  });

  it('Retry-After as an HTTP date in the future', async () => {
    let until = 0;
    const server = await scripted([
      (res, seen) => {
        const date = httpDateAhead(1000);
        until = date.at;
        graphThrottled(date.header)(res, seen);
      },
      accepted,
    ]);
    await graph(server).startExport('usage', 'G000000001');
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]?.at).toBeGreaterThanOrEqual(until - MARGIN_MS);
  });
});

describe('pipeline policy order', () => {
  it('is declared by phase: ids outside the retries, errors outside them too, auth and logging innermost', () => {
    const names = createPipeline({ credential: anyToken, allowInsecureLoopback: true, onRequestCompleted: () => {} })
      .getOrderedPolicies()
      .map((p) => p.name);
    expect(names).toEqual([
      'requestIdPolicy',
      'apiErrorPolicy',
      'retryPolicy',
      'requestTelemetryPolicy',
      'attemptTimeoutPolicy',
      'boundedBodyPolicy',
      'loopbackBeforeAuthPolicy',
      'bearerTokenAuthenticationPolicy',
      'loopbackAfterAuthPolicy',
      'logPolicy',
    ]);
  });

  it('a pipeline without a credential has no auth policy at all', () => {
    const names = createPipeline({ allowInsecureLoopback: true })
      .getOrderedPolicies()
      .map((p) => p.name);
    expect(names.some((n) => /auth/i.test(n))).toBe(false);
    expect(names).toContain('retryPolicy');
  });

  it('sendForText through a bare pipeline reaches a scripted server', async () => {
    const server = await scripted([invoiceOk]);
    const { text } = await sendForText(createPipeline({ allowInsecureLoopback: true }), `${server.url}/x`);
    expect(JSON.parse(text)).toMatchObject({ id: 'G000000001' });
  });
});
