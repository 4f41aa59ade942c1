// The Partner Center client against a plain loopback server whose answers each test sets: the token scope it asks
// for, plain http only to loopback (127.0.0.1, localhost, [::1]) unless told so, the base URL forms it accepts, and
// what it says about answers it cannot use.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { createHttpHeaders, type HttpClient } from '@azure/core-rest-pipeline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PARTNER_CENTER_SCOPE, PartnerCenterClient } from '../../src/partner-center/index.js';
import { collect } from './support.js';

const EMPTY_LIST = JSON.stringify({ totalCount: 0, items: [], links: {}, attributes: { objectType: 'Collection' } });

let server: http.Server;
let port: number;
const seen: { url: string; authorization: string | undefined }[] = [];
/** The body of every answer (200, JSON); a test sets it and puts the empty list back after. */
let body = EMPTY_LIST;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  // '::' takes IPv4 (as ::ffff:127.x.x.x) and IPv6 loopback alike, so one server answers every loopback name.
  await new Promise<void>((resolve) => server.listen(0, '::', resolve));
  port = (server.address() as AddressInfo).port;
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

const clientFor = (baseUrl: string, credential: TokenCredential, allowInsecureLoopback?: boolean) =>
  new PartnerCenterClient({
    baseUrl,
    credential,
    maxRetries: 0,
    timeoutMs: 5_000,
    ...(allowInsecureLoopback === undefined ? {} : { allowInsecureLoopback }),
  });

describe('PartnerCenterClient over plain http', () => {
  it('asks for a Partner Center token (the .default scope of api.partnercenter.microsoft.com)', async () => {
    const credential = recordingCredential();
    expect(await collect(clientFor(`http://127.0.0.1:${port}`, credential).listInvoices())).toEqual([]);
    expect(PARTNER_CENTER_SCOPE).toBe('https://api.partnercenter.microsoft.com/.default');
    expect(credential.scopes).toEqual([['https://api.partnercenter.microsoft.com/.default']]);
  });

  it.each(['127.0.0.1', 'localhost'])('sends the token over http to loopback %s by default', async (host) => {
    seen.length = 0;
    const items = await collect(clientFor(`http://${host}:${port}`, recordingCredential()).listInvoices());
    expect(items).toEqual([]);
    expect(seen).toEqual([{ url: '/v1/invoices', authorization: 'Bearer token-for-test' }]);
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
    const client = new PartnerCenterClient({
      baseUrl: `http://[::1]:${port}`,
      credential: recordingCredential(),
      maxRetries: 0,
      httpClient: transport,
    });
    expect(await collect(client.listInvoices())).toEqual([]);
    expect(handed).toEqual([{ url: `http://[::1]:${port}/v1/invoices`, authorization: 'Bearer token-for-test' }]);
  });

  it('refuses to send a token over http to any other host, before a byte is sent', async () => {
    seen.length = 0;
    // 127.0.0.2 reaches the same server, but it is not one of the loopback names the client trusts with http.
    const client = clientFor(`http://127.0.0.2:${port}`, recordingCredential());
    await expect(collect(client.listInvoices())).rejects.toThrow(/https|TLS|non-TLS/i);
    expect(seen).toEqual([]);
  });

  it('allowInsecureLoopback: false turns plain http off even for loopback', async () => {
    seen.length = 0;
    const client = clientFor(`http://127.0.0.1:${port}`, recordingCredential(), false);
    await expect(collect(client.listInvoices())).rejects.toThrow(/https|TLS|non-TLS/i);
    expect(seen).toEqual([]);
  });
});

describe('PartnerCenterClient base URL and unusable answers', () => {
  it.each(['', '/', '//', '/v1', '/v1/', '/v1//', '/V1'])(
    'base URL ending in "%s" asks for /v1/invoices',
    async (tail) => {
      seen.length = 0;
      await collect(clientFor(`http://127.0.0.1:${port}${tail}`, recordingCredential()).listInvoices());
      expect(seen.map((s) => s.url)).toEqual(['/v1/invoices']);
    },
  );

  it('an invoice that is not JSON fails naming the invoice and the parse error', async () => {
    body = '{"id": "D01", <html>';
    try {
      const client = clientFor(`http://127.0.0.1:${port}`, recordingCredential());
      await expect(client.getInvoice('D01')).rejects.toThrow(/^invoice D01 is not JSON \(.+\)$/);
      await expect(client.getInvoice('D01')).rejects.toMatchObject({ name: 'InvalidResponseError' });
    } finally {
      body = EMPTY_LIST;
    }
  });

  it('a rejected id is reported as sent up to 80 characters, longer ones cut to 79 and an ellipsis', async () => {
    const ids = ['A'.repeat(79), 'B'.repeat(80), 'C'.repeat(81)];
    body = JSON.stringify({ totalCount: 3, items: ids.map((id) => ({ id })), links: {}, attributes: {} });
    try {
      const listed = await collect(clientFor(`http://127.0.0.1:${port}`, recordingCredential()).listInvoices());
      expect(listed.map((l) => (l.kind === 'rejected' ? l.idAsSent : l.kind))).toEqual([
        'A'.repeat(79),
        'B'.repeat(80),
        `${'C'.repeat(79)}…`,
      ]);
    } finally {
      body = EMPTY_LIST;
    }
  });
});
