// The pipeline's own decisions, against a scripted loopback server: the defaults it runs with, which ids it sets and
// which it keeps, what counts as success, the request it builds, and which header values its log lines may show.
import { AzureLogger, setLogLevel } from '@azure/logger';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ApiError,
  createApiRequest,
  createPipeline,
  defaultHttpClient,
  sendForBytes,
  sendForStream,
  sendForText,
  stripBom,
} from '../../src/http/index.js';
import { anyToken, type LoopbackServer, startLoopbackServer } from './loopback-server.js';

let servers: LoopbackServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
});
async function serve(
  status: number,
  headers: Record<string, string> = {},
  body = '{"ok":true}',
  after?: { status: number; body: string },
): Promise<LoopbackServer> {
  const server = await startLoopbackServer((_req, res, _seen, index) => {
    if (after && index > 0) {
      res.writeHead(after.status, { 'content-type': 'application/json' });
      return void res.end(after.body);
    }
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  });
  servers.push(server);
  return server;
}
const loopback = { allowInsecureLoopback: true } as const;

describe('defaults', () => {
  it('a Retry-After beyond two minutes fails at once by default; the call is not retried', async () => {
    const server = await serve(429, { 'retry-after': '121' }, '{"statusCode":429,"message":"later"}');
    const error = (await sendForText(createPipeline(loopback), `${server.url}/x`).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 429, retriable: true, retryAfterMs: 121_000 });
    expect(error.message).toMatch(/beyond the 120 s limit/);
    expect(server.requests).toHaveLength(1);
  });

  it('the retry count given is the count used', async () => {
    const server = await serve(503, { 'retry-after': '0' }, '{"error":{"code":"Busy","message":"busy"}}');
    await expect(sendForText(createPipeline({ ...loopback, maxRetries: 2 }), `${server.url}/x`)).rejects.toMatchObject({
      status: 503,
    });
    expect(server.requests).toHaveLength(3);
  });

  it('one keep-alive client per process', () => {
    expect(defaultHttpClient()).toBe(defaultHttpClient());
  });
});

describe('request and correlation ids', () => {
  it('sets both when absent, keeps the caller’s when present, under the configured header names', async () => {
    const server = await serve(200);
    await sendForText(createPipeline(loopback), `${server.url}/a`);
    await sendForText(createPipeline(loopback), `${server.url}/b`, {
      headers: { 'MS-RequestId': 'caller-request' },
      correlationId: 'caller-correlation',
    });
    const graphStyle = createPipeline({
      ...loopback,
      requestIdHeaderName: 'client-request-id',
      correlationIdHeaderName: 'x-correlation',
    });
    await sendForText(graphStyle, `${server.url}/c`);
    await sendForText(graphStyle, `${server.url}/d`, {
      correlationId: 'mine',
      correlationIdHeaderName: 'x-correlation',
    });
    const [a, b, c, d] = server.requests;
    expect(a?.headers['ms-requestid']).toMatch(/^[0-9a-f-]{36}$/);
    expect(a?.headers['ms-correlationid']).toMatch(/^[0-9a-f-]{36}$/);
    expect(a?.headers['ms-requestid']).not.toBe(a?.headers['ms-correlationid']);
    expect(b?.headers['ms-requestid']).toBe('caller-request');
    expect(b?.headers['ms-correlationid']).toBe('caller-correlation');
    expect(c?.headers['client-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(c?.headers['x-correlation']).toMatch(/^[0-9a-f-]{36}$/);
    expect(c?.headers['ms-requestid']).toBeUndefined();
    expect(c?.headers['ms-correlationid']).toBeUndefined();
    expect(d?.headers['x-correlation']).toBe('mine');
  });

  it('the bearer token is sent over loopback when a credential is given, and none without one', async () => {
    const server = await serve(200);
    await sendForText(createPipeline({ ...loopback, credential: anyToken, scopes: 'api://x/.default' }), server.url);
    await sendForText(createPipeline(loopback), server.url);
    expect(server.requests[0]?.headers.authorization).toBe('Bearer test-token');
    expect(server.requests[1]?.headers.authorization).toBeUndefined();
  });
});

describe('what counts as success', () => {
  it.each([200, 201, 204, 299])('%i is returned', async (status) => {
    const server = await serve(status, {}, status === 204 ? '' : '{"ok":true}');
    const { response } = await sendForText(createPipeline(loopback), `${server.url}/x`);
    expect(response.status).toBe(status);
  });

  it.each([300, 301, 302, 304, 399])('%i is an ApiError (redirects are not followed)', async (status) => {
    const server = await serve(status, { location: '/elsewhere' }, '');
    const error = (await sendForText(createPipeline(loopback), `${server.url}/x`).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status, retriable: false });
    expect(server.requests.map((r) => r.path)).toEqual(['/x']);
  });

  it('a connection refused, retries used up, is a retriable ApiError naming the code', async () => {
    const server = await serve(200);
    const url = `${server.url}/x`;
    await server.stop();
    servers = [];
    const error = (await sendForText(createPipeline({ ...loopback, maxRetries: 0 }), url).catch(
      (e: unknown) => e,
    )) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED', retriable: true, status: undefined });
    expect(error.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('the request it builds', () => {
  it('GET with Accept: application/json by default; method, body and headers as given', async () => {
    const server = await serve(200);
    await sendForText(createPipeline(loopback), `${server.url}/get`);
    await sendForText(createPipeline(loopback), `${server.url}/post`, {
      method: 'POST',
      body: '{"a":1}',
      headers: { 'content-type': 'application/json', Accept: 'text/plain' },
    });
    const [get, post] = server.requests;
    expect(get).toMatchObject({ method: 'GET', path: '/get' });
    expect(get?.headers.accept).toBe('application/json');
    expect(post).toMatchObject({ method: 'POST', path: '/post' });
    expect(post?.headers.accept).toBe('text/plain');
    expect(post?.headers['content-length']).toBe('7');
  });

  it('stream requests stream every status; the correlation id only when given', () => {
    const stream = createApiRequest('https://x.example/a', { stream: true });
    expect(stream.streamResponseStatusCodes?.has(Number.POSITIVE_INFINITY)).toBe(true);
    expect(createApiRequest('https://x.example/a', { correlationId: 'c1' }).headers.get('MS-CorrelationId')).toBe('c1');
    expect(createApiRequest('https://x.example/a').headers.has('MS-CorrelationId')).toBe(false);
  });

  it('sendForStream hands back the body as a stream; an error body still becomes the ApiError', async () => {
    const ok = await serve(200, { 'content-type': 'application/pdf' }, '%PDF-1.7 body');
    const { stream, response } = await sendForStream(createPipeline(loopback), `${ok.url}/doc.pdf`);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('%PDF-1.7 body');
    expect(response.status).toBe(200);
    const refused = await serve(404, {}, '{"code":"NotFound","description":"no such document"}');
    await expect(sendForStream(createPipeline(loopback), `${refused.url}/doc.pdf`)).rejects.toMatchObject({
      status: 404,
      code: 'NotFound',
      description: 'no such document',
    });
  });

  it('stripBom removes only a leading BOM', () => {
    expect(stripBom('\uFEFF{"a":1}')).toBe('{"a":1}');
    expect(stripBom('{"a":1}\uFEFF')).toBe('{"a":1}\uFEFF');
    expect(stripBom('x\uFEFFy')).toBe('x\uFEFFy');
    expect(stripBom('')).toBe('');
  });
});

describe('log lines', () => {
  it('show the values of the allow-listed request headers only; every other value is REDACTED', async () => {
    const allowed = {
      'MS-RequestId': 'v-request-id',
      'MS-CorrelationId': 'v-correlation-id',
      'MS-CV': 'v-cv',
      'MS-ServerId': 'v-server-id',
      'Retry-After': 'v-retry-after',
      'client-request-id': 'v-client-request-id',
      'request-id': 'v-plain-request-id',
      'x-ms-request-id': 'v-ms-request-id',
      Location: 'v-location',
      'x-extra-allowed': 'v-extra',
    };
    const server = await serve(200);
    const lines: string[] = [];
    const previous = AzureLogger.log;
    AzureLogger.log = (...args: unknown[]) => lines.push(args.map(String).join(' '));
    setLogLevel('info');
    try {
      await sendForText(
        createPipeline({ ...loopback, credential: anyToken, additionalAllowedHeaderNames: ['x-extra-allowed'] }),
        `${server.url}/logged`,
        { headers: { ...allowed, 'x-internal-secret': 'v-secret-value' } },
      );
    } finally {
      setLogLevel('warning');
      AzureLogger.log = previous;
    }
    const request = lines.find((l) => l.includes('Request: ')) ?? '';
    for (const [name, value] of Object.entries(allowed)) expect(request, name).toContain(value);
    expect(request).not.toContain('v-secret-value');
    expect(request).not.toContain('test-token');
    expect(request).toMatch(/"x-internal-secret": "REDACTED"/);
    // The token reached the server all the same.
    expect(server.requests[0]?.headers.authorization).toBe('Bearer test-token');
  });
});

describe('the policies and their order', () => {
  const names = (options: Parameters<typeof createPipeline>[0]) =>
    createPipeline(options)
      .getOrderedPolicies()
      .map((p) => p.name);
  const retryPhase = ['retryPolicy', 'attemptTimeoutPolicy', 'boundedBodyPolicy'];

  it('ids and errors outside the retries; per attempt telemetry, timeout and bodies; sign; then the log', () => {
    expect(names({})).toEqual(['requestIdPolicy', 'apiErrorPolicy', ...retryPhase, 'logPolicy']);
    expect(names({ onRequestCompleted: () => undefined })).toEqual([
      'requestIdPolicy',
      'apiErrorPolicy',
      'retryPolicy',
      'requestTelemetryPolicy',
      'attemptTimeoutPolicy',
      'boundedBodyPolicy',
      'logPolicy',
    ]);
    expect(names({ credential: anyToken, scopes: 's' })).toEqual([
      'requestIdPolicy',
      'apiErrorPolicy',
      ...retryPhase,
      'bearerTokenAuthenticationPolicy',
      'logPolicy',
    ]);
    expect(names({ credential: anyToken, scopes: 's', allowInsecureLoopback: true })).toEqual([
      'requestIdPolicy',
      'apiErrorPolicy',
      ...retryPhase,
      'loopbackBeforeAuthPolicy',
      'bearerTokenAuthenticationPolicy',
      'loopbackAfterAuthPolicy',
      'logPolicy',
    ]);
    expect(names({ allowInsecureLoopback: true })).toEqual([
      'requestIdPolicy',
      'apiErrorPolicy',
      ...retryPhase,
      'loopbackInsecurePolicy',
      'logPolicy',
    ]);
  });

  it('a credential without scopes is asked for a token of no scope', async () => {
    const server = await serve(200);
    const asked: unknown[] = [];
    const credential = {
      async getToken(scopes: string | string[]) {
        asked.push(scopes);
        return { token: 't', expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    await sendForText(createPipeline({ ...loopback, credential }), `${server.url}/x`);
    expect(asked).toEqual([[]]);
  });
});

describe('sendForBytes', () => {
  it('hands back the bytes as read, not decoded, whatever the options asked for', async () => {
    const raw = Buffer.from([0xef, 0xbb, 0xbf, 0xff, 0xfe, 0x00, 0x7b, 0x7d]);
    const server = await startLoopbackServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(raw);
    });
    servers.push(server);
    const { bytes, response } = await sendForBytes(createPipeline(loopback), `${server.url}/b`, { stream: true });
    expect(bytes.equals(raw)).toBe(true);
    expect(response.status).toBe(200);
    const plain = await sendForBytes(createPipeline(loopback), `${server.url}/b`);
    expect(plain.bytes.equals(raw)).toBe(true);
  });
});
