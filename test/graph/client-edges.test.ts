// GraphBillingClient's edges against the simulator over real HTTP (ref §6): what it sends (scope, JSON body and its
// content type, unbilled targets, Accept on blobs, correlation id, telemetry hosts, base URL forms), how it reads
// operation bodies (keyed on @odata.type, any status word; failures without a code), where it finds the manifest
// (inline, navigation link, a string resourceLocation), which blob errors are an expired SAS, and the exact texts of
// the errors it raises.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StaticTokenCredential } from '../../src/auth/index.js';
import {
  DisallowedLinkError,
  defaultGraphLinkPolicy,
  GRAPH_SCOPE,
  GraphBillingClient,
  type GraphBillingClientOptions,
  type Manifest,
  SasExpiredError,
  UnexpectedOperationError,
} from '../../src/graph/index.js';
import { ApiError } from '../../src/http/errors.js';
import type { RequestTelemetry } from '../../src/http/pipeline.js';
import { type Simulator, startSimulator } from '../simulator/index.js';

const INVOICE = 'G016907411';
const loopback = (url: URL) => url.protocol === 'http:' && url.hostname === '127.0.0.1';
const OPERATION_TYPE = '#microsoft.graph.partners.billing.';

/** A credential that hands out the simulator's token and records the scopes each call asked for. */
class ScopeRecordingCredential implements TokenCredential {
  readonly scopes: (string | string[])[] = [];
  constructor(readonly inner: TokenCredential) {}
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.scopes.push(scopes);
    return this.inner.getToken(scopes, options);
  }
}

function clientFor(sim: Simulator, extra: Partial<GraphBillingClientOptions> = {}) {
  return new GraphBillingClient({
    baseUrl: sim.graphUrl,
    credential: new StaticTokenCredential(
      'GRAPH_ACCESS_TOKEN',
      sim.issueToken({ audience: 'graph', ttlSeconds: 7 * 86_400 }),
      sim.clock.now,
    ),
    isAllowedLink: loopback,
    allowInsecureLoopback: true,
    maxRetries: 0,
    timeoutMs: 10_000,
    ...extra,
  });
}

/** The next GET of the operation answers with this JSON body (and Retry-After 5). */
function nextOperationBody(sim: Simulator, body: unknown, raw?: string) {
  sim.faults.add({
    host: 'graph',
    method: 'GET',
    path: '/operations/',
    kind: 'status',
    status: 200,
    headers: { 'content-type': 'application/json', 'retry-after': '5' },
    body: raw ?? JSON.stringify(body),
  });
}

async function readRows(client: GraphBillingClient, manifest: Manifest, maxLines?: number) {
  const pages: number[] = [];
  for await (const page of client.manifestPages(manifest, { maxLines })) pages.push(page.rows);
  return pages;
}

describe('defaultGraphLinkPolicy', () => {
  it('allows https to graph.microsoft.com and to Azure blob hosts, nothing else', () => {
    expect(defaultGraphLinkPolicy(new URL('https://graph.microsoft.com/v1.0/reports/partners/billing/x'))).toBe(true);
    expect(defaultGraphLinkPolicy(new URL('https://adlsrecon.blob.core.windows.net/billedusagefastpath/v1/x'))).toBe(
      true,
    );
    expect(defaultGraphLinkPolicy(new URL('https://example.com/x'))).toBe(false);
    expect(defaultGraphLinkPolicy(new URL('http://graph.microsoft.com/x'))).toBe(false);
  });
});

describe('GraphBillingClient requests (inline manifests)', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ v2: { manifestMode: 'inline', pollsBeforeDone: 0, rowsPerBlob: 7 } });
  });
  afterAll(() => sim.stop());
  beforeEach(() => sim.faults.clear());

  async function manifestOf(client: GraphBillingClient): Promise<Manifest> {
    const started = await client.startExport('usage', INVOICE);
    const state = await client.checkOperation(started.operationLocation);
    if (state.status !== 'succeeded') throw new Error(state.status);
    return state.manifest;
  }

  it('asks for the Graph scope and POSTs a JSON body with its content type', async () => {
    expect(GRAPH_SCOPE).toBe('https://graph.microsoft.com/.default');
    const credential = new ScopeRecordingCredential(
      new StaticTokenCredential('GRAPH_ACCESS_TOKEN', sim.issueToken({ audience: 'graph' }), sim.clock.now),
    );
    const before = sim.requests.length;
    await clientFor(sim, { credential }).startExport('reconciliation', INVOICE);
    expect(credential.scopes.flat()).toEqual(['https://graph.microsoft.com/.default']);
    const post = sim.requests.slice(before).find((r) => r.method === 'POST')!;
    expect(post.path).toBe('/v1.0/reports/partners/billing/reconciliation/billed/export');
    expect(post.headers['content-type']).toBe('application/json');
  });

  it('starts an unbilled export of a currency and period, attributeSet full unless asked', async () => {
    const client = clientFor(sim);
    for (const billingPeriod of ['current', 'last'] as const) {
      const before = sim.requests.length;
      const started = await client.startUnbilledExport('usage', { currencyCode: 'EUR', billingPeriod });
      expect(sim.requests.slice(before).map((r) => [r.method, r.path, r.status])).toEqual([
        ['POST', '/v1.0/reports/partners/billing/usage/unbilled/export', 202],
      ]);
      const state = await client.checkOperation(started.operationLocation);
      if (state.status !== 'succeeded') throw new Error(state.status);
      expect(state.manifest.rootDirectory).toContain(`/BillingPeriod=${billingPeriod}/Currency=EUR/`);
      expect(state.manifest.rootDirectory).toMatch(/\/Fragment=full\/PartitionType=default$/);
    }
    const basic = await client.startUnbilledExport(
      'reconciliation',
      { currencyCode: 'USD', billingPeriod: 'current' },
      { attributeSet: 'basic' },
    );
    const state = await client.checkOperation(basic.operationLocation);
    if (state.status !== 'succeeded') throw new Error(state.status);
    expect(state.manifest.rootDirectory).toContain('unbilledreconciliationfastpath');
    expect(state.manifest.rootDirectory).toMatch(/\/Fragment=basic\/PartitionType=default$/);
  });

  it('keeps the base URL forms: trailing slashes dropped, /v1.0 added unless a version ends the path', async () => {
    const paths: string[] = [];
    for (const baseUrl of [`${sim.graphUrl}//`, `${sim.graphUrl}/`, `${sim.graphUrl}/v1.0`, `${sim.graphUrl}/v1.0/`]) {
      const before = sim.requests.length;
      const started = await clientFor(sim, { baseUrl }).startExport('usage', INVOICE);
      expect(started.operationLocation.startsWith(`${sim.graphUrl}/v1.0/reports/partners/billing/operations/`)).toBe(
        true,
      );
      paths.push(...sim.requests.slice(before).map((r) => r.path));
    }
    expect(new Set(paths)).toEqual(new Set(['/v1.0/reports/partners/billing/usage/billed/export']));
    // A path that only starts like a version segment is not one.
    for (const [baseUrl, path] of [
      [`${sim.graphUrl}/betaproxy`, '/betaproxy/v1.0/reports/partners/billing/usage/billed/export'],
      [`${sim.graphUrl}/v1.0x`, '/v1.0x/v1.0/reports/partners/billing/usage/billed/export'],
      [`${sim.graphUrl}/beta`, '/beta/reports/partners/billing/usage/billed/export'],
    ] as const) {
      const before = sim.requests.length;
      await expect(clientFor(sim, { baseUrl }).startExport('usage', INVOICE)).rejects.toThrow(ApiError);
      expect(sim.requests.slice(before).map((r) => r.path)).toEqual([path]);
    }
  });

  it('sends the caller correlation id on the poll, Accept octet-stream to the blob host', async () => {
    const client = clientFor(sim);
    const started = await client.startExport('usage', INVOICE);
    const before = sim.requests.length;
    const state = await client.checkOperation(started.operationLocation, { correlationId: 'corr-poll-1' });
    expect(sim.requests.slice(before).map((r) => r.headers['ms-correlationid'])).toEqual(['corr-poll-1']);
    if (state.status !== 'succeeded') throw new Error(state.status);
    const blobsBefore = sim.requests.length;
    await readRows(client, state.manifest);
    const blobGets = sim.requests.slice(blobsBefore).filter((r) => r.host === 'blob');
    expect(blobGets.length).toBe(state.manifest.blobCount);
    expect(blobGets.every((r) => r.headers.accept === 'application/octet-stream')).toBe(true);
  });

  it('reports each attempt with host graph or blob', async () => {
    const seen: RequestTelemetry[] = [];
    const client = clientFor(sim, { onRequestCompleted: (info) => seen.push(info) });
    const manifest = await manifestOf(client);
    await readRows(client, manifest);
    expect(seen.map((s) => [s.host, s.method])).toEqual([
      ['graph', 'POST'],
      ['graph', 'GET'],
      ...manifest.blobs.map(() => ['blob', 'GET']),
    ]);
  });

  it('pages hold maxLines rows (at least 1, whole numbers, default 2000)', async () => {
    const client = clientFor(sim);
    const manifest = await manifestOf(client);
    const rows = sim.dataset.v2Rows(INVOICE, 'usage');
    const perBlob = manifest.blobs.map((_, i) => Math.min(7, rows - i * 7));
    expect(await readRows(client, manifest)).toEqual(perBlob);
    expect(await readRows(client, manifest, 5.9)).toEqual(perBlob.flatMap((n) => (n > 5 ? [5, n - 5] : [n])));
    expect(await readRows(client, manifest, 0)).toEqual(perBlob.flatMap((n) => Array.from({ length: n }, () => 1)));
  });

  it('a body over maxPageBytes fails naming the setting', async () => {
    const client = clientFor(sim, { maxPageBytes: 64 });
    const started = await client.startExport('usage', INVOICE);
    const error = await client.checkOperation(started.operationLocation).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('ResponseTooLarge');
    expect((error as ApiError).description).toMatch(
      /is larger than maxPageBytes \(setting MAX_PAGE_BYTES\) = 64 bytes/,
    );
  });

  it('a blob host 403 is an expired SAS only when storage says AuthenticationFailed (or signature/expiry)', async () => {
    const client = clientFor(sim);
    const manifest = await manifestOf(client);
    const xml = (code: string, message: string) =>
      `\uFEFF<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
    const blobAnswer = (status: number, body: string) =>
      sim.faults.add({
        host: 'blob',
        method: 'GET',
        kind: 'status',
        status,
        body,
        headers: { 'content-type': 'application/xml' },
      });

    blobAnswer(403, xml('AuthenticationFailed', 'Server failed to authenticate the request.'));
    const sas = await readRows(client, manifest).catch((e: unknown) => e);
    expect(sas).toBeInstanceOf(SasExpiredError);
    expect((sas as SasExpiredError).blobIndex).toBe(0);
    expect((sas as SasExpiredError).url).toBe(`${manifest.rootDirectory}/${manifest.blobs[0]!.name}?REDACTED`);

    blobAnswer(403, 'Signature did not match. String to sign used was r');
    expect(await readRows(client, manifest).catch((e: unknown) => e)).toBeInstanceOf(SasExpiredError);

    for (const [status, body] of [
      [403, xml('AuthorizationPermissionMismatch', 'This request is not authorized to perform this operation.')],
      [400, xml('AuthenticationFailed', 'Server failed to authenticate the request.')],
      [404, xml('BlobNotFound', 'The specified blob does not exist.')],
    ] as const) {
      blobAnswer(status, body);
      const error = await readRows(client, manifest).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ApiError);
      expect(error).not.toBeInstanceOf(SasExpiredError);
      expect((error as ApiError).status).toBe(status);
    }
  });
});

describe('GraphBillingClient operation bodies (ref §6.2: key on @odata.type)', () => {
  let sim: Simulator;
  let client: GraphBillingClient;
  let location: string;
  let manifest: Manifest;
  beforeAll(async () => {
    sim = await startSimulator({ v2: { manifestMode: 'inline', pollsBeforeDone: 0 } });
    client = clientFor(sim);
    location = (await client.startExport('usage', INVOICE)).operationLocation;
    const state = await client.checkOperation(location);
    if (state.status !== 'succeeded') throw new Error(state.status);
    manifest = state.manifest;
  });
  afterAll(() => sim.stop());
  beforeEach(() => sim.faults.clear());

  const check = async (body: unknown) => {
    nextOperationBody(sim, body);
    return client.checkOperation(location);
  };

  it('a failedOperation is failed by its type alone, whatever its status says', async () => {
    for (const status of [undefined, 'running', 'succeeded']) {
      expect(
        await check({
          '@odata.type': `${OPERATION_TYPE}failedOperation`,
          status,
          error: { code: 'InternalError', message: 'Export failed' },
        }),
      ).toEqual({ status: 'failed', code: 'InternalError', message: 'Export failed' });
    }
    expect(
      await check({
        '@odata.type': `${OPERATION_TYPE.toUpperCase()}FAILEDOPERATION`,
        error: { code: 'X', message: 'm' },
      }),
    ).toEqual({ status: 'failed', code: 'X', message: 'm' });
  });

  it('status failed (any case) of an unknown type is failed; code and message default when absent', async () => {
    expect(await check({ '@odata.type': `${OPERATION_TYPE}someFutureOperation`, status: 'Failed' })).toEqual({
      status: 'failed',
      code: 'unknown',
      message: 'The export operation failed',
    });
    expect(await check({ status: 'failed', error: { code: null, message: 42 } })).toEqual({
      status: 'failed',
      code: 'unknown',
      message: 'The export operation failed',
    });
    expect(await check({ status: 'failed', error: { code: 5000, message: 'No data available' } })).toEqual({
      status: 'noData',
      code: '5000',
      message: 'No data available',
    });
  });

  it('an exportSuccessOperation is success by its type alone; a done status of an unknown type too', async () => {
    for (const body of [
      { '@odata.type': `${OPERATION_TYPE}exportSuccessOperation`, resourceLocation: manifest },
      { '@odata.type': `${OPERATION_TYPE}exportSuccessOperation`, status: 'running', resourceLocation: manifest },
      { '@odata.type': `${OPERATION_TYPE}someFutureOperation`, status: 'Succeeded', resourceLocation: manifest },
      { status: 'succeeded', resourceLocation: manifest },
      { status: 'COMPLETED', resourceLocation: manifest },
    ]) {
      expect(await check(body)).toEqual({ status: 'succeeded', manifest });
    }
  });

  it('a runningOperation is running by its type alone, even when its status already says done', async () => {
    for (const status of [undefined, 'succeeded', 'completed', 'notStarted']) {
      expect(await check({ '@odata.type': `${OPERATION_TYPE}runningOperation`, status })).toEqual({
        status: 'running',
        retryAfterSeconds: 5,
      });
    }
    for (const status of ['running', 'Running', 'NOTSTARTED']) {
      expect(await check({ '@odata.type': `${OPERATION_TYPE}someFutureOperation`, status })).toEqual({
        status: 'running',
        retryAfterSeconds: 5,
      });
    }
  });

  it('a body it cannot classify names its type and status', async () => {
    await expect(check({ '@odata.type': `${OPERATION_TYPE}someFutureOperation`, status: 'paused' })).rejects.toThrow(
      new UnexpectedOperationError(
        'Unexpected export operation state (type "#microsoft.graph.partners.billing.someFutureOperation", status "paused")',
      ),
    );
    await expect(check({ id: 'x' })).rejects.toThrow(
      new UnexpectedOperationError('Unexpected export operation state (type undefined, status undefined)'),
    );
  });

  it('a body that is not JSON, or JSON that is not an object, is refused with what was asked', async () => {
    nextOperationBody(sim, undefined, '<html>gateway</html>');
    const error = await client.checkOperation(location).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnexpectedOperationError);
    expect((error as Error).message).toBe(
      `Graph returned a body that is not JSON (check export operation, ${location})`,
    );
    for (const raw of ['null', '[]', '[{"status":"running"}]', '5', '"running"', 'true', '0']) {
      nextOperationBody(sim, undefined, raw);
      await expect(client.checkOperation(location)).rejects.toThrow(
        new UnexpectedOperationError('Graph returned a JSON body that is not an object (check export operation)'),
      );
    }
  });

  it('a success that names no manifest, or one of the wrong shape, says so', async () => {
    const type = `${OPERATION_TYPE}exportSuccessOperation`;
    for (const body of [
      { '@odata.type': type },
      { '@odata.type': type, resourceLocation: '' },
      { '@odata.type': type, 'resourceLocation@odata.navigationLink': 42 },
      { '@odata.type': type, resourceLocation: true },
    ]) {
      await expect(check(body)).rejects.toThrow(
        new UnexpectedOperationError('The export succeeded but names no manifest (no resourceLocation)'),
      );
    }
    await expect(check({ '@odata.type': type, resourceLocation: [manifest] })).rejects.toThrow(
      new UnexpectedOperationError(
        'The export manifest does not have the expected shape: (root): Invalid input: expected object, received array',
      ),
    );
    const { rootDirectory: _, ...withoutRoot } = manifest;
    const broken = { ...withoutRoot, blobCount: 'many', blobs: [{ name: '' }] };
    await expect(check({ '@odata.type': type, resourceLocation: broken })).rejects.toThrow(
      new UnexpectedOperationError(
        'The export manifest does not have the expected shape: rootDirectory: Invalid input: expected string, received undefined; blobCount: Invalid input: expected number, received NaN; blobs.0.name: Too small: expected string to have >=1 characters',
      ),
    );
  });
});

describe('GraphBillingClient manifest links and link errors', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ v2: { manifestMode: 'link', pollsBeforeDone: 0 } });
  });
  afterAll(() => sim.stop());
  beforeEach(() => sim.faults.clear());

  it('a resourceLocation that is a link string is fetched like the navigation link', async () => {
    const client = clientFor(sim);
    const location = (await client.startExport('usage', INVOICE)).operationLocation;
    const state = await client.checkOperation(location);
    if (state.status !== 'succeeded') throw new Error(state.status);
    const manifestPath = sim.requests.filter((r) => r.path.includes('/manifests/')).at(-1)!.path;
    nextOperationBody(sim, {
      '@odata.type': `${OPERATION_TYPE}exportSuccessOperation`,
      resourceLocation: manifestPath,
    });
    const before = sim.requests.length;
    expect(await client.checkOperation(location)).toEqual(state);
    expect(sim.requests.slice(before).map((r) => r.path)).toEqual([new URL(location).pathname, manifestPath]);
  });

  it('a manifest GET that is not JSON is refused naming that request', async () => {
    const client = clientFor(sim);
    const location = (await client.startExport('usage', INVOICE)).operationLocation;
    sim.faults.add({ host: 'graph', method: 'GET', path: '/manifests/', kind: 'status', status: 200, body: 'nope' });
    const error = await client.checkOperation(location).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnexpectedOperationError);
    expect((error as Error).message).toMatch(
      /^Graph returned a body that is not JSON \(get export manifest, http:\/\/127\.0\.0\.1:\d+\/v1\.0\/reports\/partners\/billing\/manifests\/[^ ]+\)$/,
    );
  });

  it('a Location header missing from the 202 is an error naming the export', async () => {
    const client = clientFor(sim);
    const accepted = () =>
      sim.faults.add({ host: 'graph', method: 'POST', path: '/export', kind: 'status', status: 202, body: '' });
    accepted();
    await expect(client.startExport('reconciliation', INVOICE)).rejects.toThrow(
      new UnexpectedOperationError(`Graph accepted the reconciliation export of ${INVOICE} without a Location header`),
    );
    accepted();
    await expect(client.startUnbilledExport('usage', { currencyCode: 'USD', billingPeriod: 'last' })).rejects.toThrow(
      new UnexpectedOperationError('Graph accepted the unbilled usage export of USD (last) without a Location header'),
    );
  });

  it('each refused link names what it was', async () => {
    const graph = sim.graphUrl;
    const refusal = (what: string) =>
      new RegExp(
        `^Refusing to follow ${what} http://127\\.0\\.0\\.1:\\d+/[^ ]*: not allowed by the link policy \\(https to graph\\.microsoft\\.com or \\*\\.blob\\.core\\.windows\\.net by default\\)$`,
      );
    const strict = clientFor(sim, { isAllowedLink: undefined });
    const started = strict.startExport('usage', INVOICE);
    await expect(started).rejects.toThrow(DisallowedLinkError);
    await expect(started).rejects.toThrow(refusal('operation Location'));
    await expect(strict.checkOperation(`${graph}/v1.0/reports/partners/billing/operations/x`)).rejects.toThrow(
      refusal('operation Location'),
    );

    const open = clientFor(sim);
    const location = (await open.startExport('usage', INVOICE)).operationLocation;
    const state = await open.checkOperation(location);
    if (state.status !== 'succeeded') throw new Error(state.status);
    await expect(readRows(strict, state.manifest)).rejects.toThrow(refusal('manifest rootDirectory'));

    // The root is allowed, its blobs are not: each blob URL is checked by itself.
    const noBlobs = clientFor(sim, { isAllowedLink: (url) => loopback(url) && !url.pathname.endsWith('.json.gz') });
    const blobError = await readRows(noBlobs, state.manifest).catch((e: unknown) => e);
    expect(blobError).toBeInstanceOf(DisallowedLinkError);
    expect((blobError as Error).message).toMatch(
      /^Refusing to follow manifest blob http:\/\/127\.0\.0\.1:\d+\/.*\.json\.gz/,
    );

    const noManifests = clientFor(sim, {
      isAllowedLink: (url) => loopback(url) && !url.pathname.includes('/manifests/'),
    });
    const linkError = await noManifests
      .checkOperation((await noManifests.startExport('usage', INVOICE)).operationLocation)
      .catch((e: unknown) => e);
    expect(linkError).toBeInstanceOf(DisallowedLinkError);
    expect((linkError as Error).message).toMatch(
      /^Refusing to follow manifest link http:\/\/127\.0\.0\.1:\d+\/v1\.0\//,
    );
  });
});
