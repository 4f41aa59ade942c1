// describeError gives a specific, non-empty, redacted text for every kind of failure the app meets, from real
// sources where one can run (scripted HTTP servers, Azurite for Storage and Tables), and failureKind says whether
// a later attempt can help.
import { TableClient } from '@azure/data-tables';
import { BlobClient, BlobSASPermissions, BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DisallowedLinkError, SasExpiredError, UnsupportedDataFormatError } from '../../src/graph/index.js';
import {
  ApiError,
  createPipeline,
  describeError,
  failureKind,
  OperationError,
  sendForText,
  withOperation,
} from '../../src/http/index.js';
import { assertSafeId } from '../../src/ids.js';
import { asInvoice, PartnerCenterClient } from '../../src/partner-center/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { anyToken, type LoopbackServer, startLoopbackServer } from './loopback-server.js';

const SECRET = 'TopSecretSig0123456789';

let server: LoopbackServer;
/** The next answer of the scripted server: status, headers, body. */
let answer: { status: number; headers?: Record<string, string>; body?: string | Buffer } = { status: 200 };

beforeAll(async () => {
  server = await startLoopbackServer((_req, res) => {
    res.writeHead(answer.status, answer.headers ?? {});
    res.end(answer.body ?? '');
  });
});
afterAll(async () => {
  await server.stop();
});

const client = () =>
  new PartnerCenterClient({
    baseUrl: server.url,
    credential: anyToken,
    maxRetries: 0,
    retryDelayInMs: 1,
    timeoutMs: 2_000,
  });

async function failureOf(status: number, body: string | Buffer, headers: Record<string, string> = {}) {
  answer = { status, body, headers: { 'content-type': 'application/json', 'MS-RequestId': 'server-rid', ...headers } };
  const error = await client()
    .getInvoice('G000000001')
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

describe('describeError: Partner Center error bodies (ref §10)', () => {
  it.each([
    [
      'ApiFault, numeric code',
      404,
      '{"code":3000,"description":"Partner Organization with partner_id 9999999 could not be found","data":[],"source":"PartnerFD"}',
      /^HTTP 404 code 3000 Partner Organization with partner_id 9999999 could not be found \(http:\/\/127\.0\.0\.1:\d+\/v1\/invoices\/G000000001\) requestId=[0-9a-f-]{36} correlationId=[0-9a-f-]{36}$/,
    ],
    [
      'ApiFault, string code',
      400,
      '{"code":"InvalidInput","description":"Invoice Line Item type is not valid"}',
      /^HTTP 400 code InvalidInput Invoice Line Item type is not valid /,
    ],
    ['{message}', 400, '{"message":"The request is invalid."}', /^HTTP 400 The request is invalid\. /],
    [
      '{statusCode,message} 429',
      429,
      '{"statusCode":429,"message":"Rate limit is exceeded. Try again in 57 seconds."}',
      /^HTTP 429 code 429 Rate limit is exceeded\. Try again in 57 seconds\. /,
    ],
    ['an empty body', 404, '', /^HTTP 404 no error description in the response body \(/],
    ['plain text', 403, 'Forbidden by proxy', /^HTTP 403 Forbidden by proxy \(/],
    [
      'an HTML page',
      502,
      '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad</h1></body></html>',
      /^HTTP 502 HTML page: 502 Bad Gateway \(/,
    ],
    [
      'a BOM before the JSON',
      404,
      '\uFEFF{"code":1000,"description":"Not found","data":[],"source":"PartnerFD"}',
      /^HTTP 404 code 1000 Not found \(/,
    ],
  ])('%s', async (_name, status, body, expected) => {
    const error = await failureOf(status, body);
    expect(describeError(error)).toMatch(expected);
    expect(describeError(error)).toContain(`requestId=${server.requests.at(-1)?.headers['ms-requestid']}`);
  });

  it('a Graph error body names its code, message and request-id', async () => {
    const body = JSON.stringify({
      error: {
        code: 'BadRequest',
        message: 'invoiceId is required',
        innerError: { date: '2026-11-21T00:00:00', 'request-id': 'b0a9e8f7-0000-4000-8000-000000000001' },
      },
    });
    const text = describeError(await failureOf(400, body));
    expect(text).toMatch(
      /^HTTP 400 code BadRequest invoiceId is required \(Graph request-id b0a9e8f7-0000-4000-8000-000000000001, 2026-11-21T00:00:00\)/,
    );
  });

  it('never shows a signature or a token from the body, the URL or the headers', async () => {
    const body = JSON.stringify({
      message: `see https://x.blob.core.windows.net/c/b.pdf?sv=1&sig=${SECRET} with Bearer eyJabcdefgh.${SECRET}.sig`,
    });
    const text = describeError(await failureOf(400, body));
    expect(text).not.toContain(SECRET);
    expect(text).toContain('REDACTED');
  });

  it('a 401 with an expired token is transient; other 4xx are permanent; 5xx, 408, 429, 409, 412 transient', async () => {
    const expired = await failureOf(401, '{"code":401,"description":"Unauthorized"}', {
      'www-authenticate': 'Bearer error="invalid_token", error_description="The access token expired"',
    });
    expect(failureKind(expired)).toBe('transient');
    for (const status of [400, 401, 403, 404, 422]) {
      expect(failureKind(await failureOf(status, '{}')), String(status)).toBe('permanent');
    }
    for (const status of [408, 409, 412, 429, 500, 503]) {
      expect(failureKind(await failureOf(status, '{}')), String(status)).toBe('transient');
    }
  });
});

describe('describeError: transport failures, aborts, validation, odd throws', () => {
  it('a connection reset', async () => {
    const reset = await startLoopbackServer((req) => {
      req.socket.destroy();
    });
    try {
      const error = await sendForText(
        createPipeline({ allowInsecureLoopback: true, maxRetries: 0 }),
        `${reset.url}/x`,
      ).catch((e: unknown) => e);
      expect(describeError(error)).toMatch(
        /^request failed code ECONNRESET .+ \(http:\/\/127\.0\.0\.1:\d+\/x\) requestId=/,
      );
      expect(failureKind(error)).toBe('transient');
    } finally {
      await reset.stop();
    }
  });

  it('a timeout', async () => {
    const slow = await startLoopbackServer(() => {
      // Never answers.
    });
    try {
      const pipeline = createPipeline({ allowInsecureLoopback: true, maxRetries: 0, timeoutMs: 100 });
      const error = await sendForText(pipeline, `${slow.url}/x`).catch((e: unknown) => e);
      expect(describeError(error)).toMatch(/^request failed code ETIMEDOUT no complete response within 100 ms /);
      expect(failureKind(error)).toBe('transient');
    } finally {
      await slow.stop();
    }
  });

  it('an abort by the caller', async () => {
    const slow = await startLoopbackServer(() => {});
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const pipeline = createPipeline({ allowInsecureLoopback: true, timeoutMs: 5_000 });
      const error = await sendForText(pipeline, `${slow.url}/x`, { abortSignal: controller.signal }).catch(
        (e: unknown) => e,
      );
      expect((error as Error).name).toBe('AbortError');
      expect(describeError(error)).toMatch(/^aborted: .*aborted/i);
      expect(failureKind(error)).toBe('transient');
    } finally {
      await slow.stop();
    }
  });

  it('a zod validation error lists the paths', () => {
    const error = (() => {
      try {
        z.strictObject({ blobIndex: z.number().int(), line: z.number() }).parse({
          blobIndex: 1.5,
          line: 'x',
          extra: 1,
        });
      } catch (e) {
        return e;
      }
    })();
    expect(describeError(error)).toMatch(/^validation failed: blobIndex: .+; line: .+; \(root\): .*extra/);
    expect(failureKind(error)).toBe('permanent');
  });

  it('an invoice of the wrong shape and a refused id are permanent, with a clear text', () => {
    const shape = (() => {
      try {
        asInvoice({ invoiceDate: 5 });
      } catch (e) {
        return e;
      }
    })();
    expect(describeError(shape)).toMatch(/^InvalidResponseError unexpected invoice shape: id: /);
    expect(failureKind(shape)).toBe('permanent');
    const id = (() => {
      try {
        assertSafeId('../x');
      } catch (e) {
        return e;
      }
    })();
    expect(describeError(id)).toMatch(/^InvalidIdError code InvalidId Unsafe invoice id "\.\.\/x"/);
    expect(failureKind(id)).toBe('permanent');
  });

  it.each([
    ['an Error with an empty message', new Error(''), /^Error with no message$/],
    ['a TypeError with an empty message', new TypeError(''), /^TypeError with no message$/],
    [
      'a system error without a message',
      Object.assign(new Error(''), { code: 'ECONNREFUSED', syscall: 'connect' }),
      /^Error code ECONNREFUSED the connection was refused \(connect\)$/,
    ],
    [
      'an Error with a cause',
      new Error('save PDF', { cause: new Error('') }),
      /^save PDF caused by Error with no message$/,
    ],
    ['a thrown string', 'boom', /^thrown string: boom$/],
    ['an empty thrown string', '', /^an empty string was thrown$/],
    ['a thrown object', { status: 'bad', sig: 'x' }, /^thrown Object: \{"status":"bad","sig":"x"\}$/],
    ['an empty thrown object', {}, /^thrown Object with no readable fields$/],
    ['undefined', undefined, /^undefined was thrown$/],
    ['null', null, /^null was thrown$/],
    ['a number', 42, /^thrown number: 42$/],
  ])('%s', (_name, value, expected) => {
    expect(describeError(value)).toMatch(expected);
  });

  it('OperationError names the step and keeps the cause and its kind', async () => {
    const inner = await failureOf(503, '{"code":503,"description":"The service is temporarily unavailable."}');
    const error = await withOperation('syncInvoice G000000001: fetch invoice', async () => {
      throw inner;
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as OperationError).operation).toBe('syncInvoice G000000001: fetch invoice');
    expect((error as Error).cause).toBe(inner);
    expect(describeError(error)).toMatch(
      /^syncInvoice G000000001: fetch invoice: HTTP 503 code 503 The service is temporarily unavailable\. /,
    );
    expect(failureKind(error)).toBe('transient');
    const permanent = new OperationError('parse', new SyntaxError('Unexpected token <'));
    expect(failureKind(permanent)).toBe('permanent');
    expect(await withOperation('ok', async () => 7)).toBe(7);
  });

  it('the errors of the clients carry their kind', () => {
    expect(failureKind(new UnsupportedDataFormatError('parquet'))).toBe('permanent');
    expect(failureKind(new DisallowedLinkError('manifest blob', 'https://x.example/'))).toBe('permanent');
    expect(failureKind(new SasExpiredError('https://x.blob.core.windows.net/c/b', 0))).toBe('transient');
    expect(failureKind(new ApiError({ status: 500, description: 'x', retriable: true }))).toBe('transient');
    expect(failureKind(new ApiError({ status: 500, description: 'x', retriable: false }))).toBe('permanent');
  });
});

describe('describeError: Azure Storage and Tables (Azurite)', () => {
  let azurite: Azurite;
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(async () => {
    await azurite?.stop();
  });

  it('a HEAD of a missing blob (empty message): status, error code and request id; no SAS signature', async () => {
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const container = service.getContainerClient('errors-test');
    await container.createIfNotExists();
    const error = await container
      .getBlobClient('missing.json')
      .getProperties()
      .catch((e: unknown) => e);
    const text = describeError(error);
    expect(text).toMatch(
      /^HTTP 404 code BlobNotFound no message \(a HEAD response has no body\) \(HEAD http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1\/errors-test\/missing\.json\) requestId=[0-9a-f-]{36}$/,
    );
    expect(failureKind(error)).toBe('permanent');

    const sas = await container.getBlobClient('missing.json').generateSasUrl({
      permissions: BlobSASPermissions.parse('r'),
      expiresOn: new Date(Date.now() + 3_600_000),
    });
    const signature = new URL(sas).searchParams.get('sig') ?? '';
    expect(signature.length).toBeGreaterThan(10);
    const signedError = await new BlobClient(sas).download().catch((e: unknown) => e);
    const signedText = describeError(signedError);
    expect(signedText).toMatch(/^HTTP 404 code BlobNotFound /);
    expect(signedText).not.toContain(signature);
    expect(signedText).not.toContain(encodeURIComponent(signature));
  });

  it('a Tables entity that is missing, and an update with a stale ETag (412: transient)', async () => {
    const table = TableClient.fromConnectionString(azurite.connectionString, 'errorstest', {
      allowInsecureConnection: true,
    });
    await table.createTable();
    const missing = await table.getEntity('p', 'r').catch((e: unknown) => e);
    expect(describeError(missing)).toMatch(
      /^HTTP 404 code ResourceNotFound The specified resource does not exist\. \(GET http.*\) requestId=[0-9a-f-]{36}$/,
    );
    expect(failureKind(missing)).toBe('permanent');

    await table.createEntity({ partitionKey: 'p', rowKey: 'r', n: 1 });
    const stale = 'W/"datetime\'2020-01-01T00%3A00%3A00.0000000Z\'"';
    const conflict = await table
      .updateEntity({ partitionKey: 'p', rowKey: 'r', n: 2 }, 'Merge', { etag: stale })
      .catch((e: unknown) => e);
    expect(describeError(conflict)).toMatch(/^HTTP 412 code UpdateConditionNotSatisfied .*requestId=/);
    expect(failureKind(conflict)).toBe('transient');
  });
});
