// GraphBillingClient against the simulator over real HTTP: start, one-step polling, inline and linked manifests,
// multi-blob reads with resume, SAS expiry, 5000 "no data", terminal failures, Retry-After and throttling.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StaticTokenCredential } from '../../src/auth/index.js';
import {
  DisallowedLinkError,
  GraphBillingClient,
  LineTooLongError,
  type Manifest,
  type ManifestCheckpoint,
  ManifestMismatchError,
  type OperationState,
  SasExpiredError,
  UnexpectedOperationError,
  UnsupportedDataFormatError,
} from '../../src/graph/index.js';
import type { Page } from '../../src/http/paging.js';
import { graphThrottle, type Simulator, startSimulator } from '../simulator/index.js';

type ManifestChunk = Page<ManifestCheckpoint> & { rowTexts: string[] };

const INVOICE = 'G016907411';
const LEGACY = 'D02005YFHI';
const loopback = (url: URL) => url.protocol === 'http:' && url.hostname === '127.0.0.1';

function clientFor(sim: Simulator, extra: Partial<ConstructorParameters<typeof GraphBillingClient>[0]> = {}) {
  return new GraphBillingClient({
    baseUrl: sim.graphUrl,
    // The simulator has its own clock; the token's expiry is judged on it.
    credential: new StaticTokenCredential(
      'GRAPH_ACCESS_TOKEN',
      sim.issueToken({ audience: 'graph', ttlSeconds: 7 * 86_400 }),
      sim.clock.now,
    ),
    isAllowedLink: loopback,
    allowInsecureLoopback: true,
    maxRetries: 3,
    timeoutMs: 10_000,
    ...extra,
  });
}

/** Polls one step at a time, as the queue function does across invocations (no sleeping: the test clock moves). */
async function pollUntilDone(client: GraphBillingClient, location: string): Promise<OperationState[]> {
  const states: OperationState[] = [];
  for (let i = 0; i < 10; i++) {
    const state = await client.checkOperation(location);
    states.push(state);
    if (state.status !== 'running') return states;
  }
  throw new Error('operation never finished');
}

async function readAll(
  client: GraphBillingClient,
  manifest: Manifest,
  checkpoint?: ManifestCheckpoint,
  maxLines = 6,
): Promise<ManifestChunk[]> {
  const chunks: ManifestChunk[] = [];
  for await (const page of client.manifestPages(manifest, { checkpoint, maxLines })) {
    const rowTexts = page.rows === 0 ? [] : page.ndjson.toString('utf8').slice(0, -1).split('\n');
    expect(rowTexts).toHaveLength(page.rows);
    chunks.push({ ...page, rowTexts });
  }
  return chunks;
}

describe('GraphBillingClient (link manifests, several blobs)', () => {
  let sim: Simulator;
  let client: GraphBillingClient;
  beforeAll(async () => {
    sim = await startSimulator({ v2: { rowsPerBlob: 7, pollsBeforeDone: 1, retryAfterSeconds: 2 } });
    client = clientFor(sim);
  });
  afterAll(() => sim.stop());

  it('starts both exports, polls running → succeeded/completed, and reads every row verbatim', async () => {
    // The simulator alternates `succeeded` and `completed` between exports (ref §6.2): both must read as done.
    for (const kind of ['reconciliation', 'usage'] as const) {
      const started = await client.startExport(kind, INVOICE);
      expect(started.operationLocation).toMatch(/\/v1\.0\/reports\/partners\/billing\/operations\//);
      const states = await pollUntilDone(client, started.operationLocation);
      expect(states[0]).toEqual({ status: 'running', retryAfterSeconds: 2 });
      const done = states.at(-1)!;
      if (done.status !== 'succeeded') throw new Error(`unexpected ${done.status}`);
      const manifest = done.manifest;
      expect(manifest.rootDirectory).toContain('Fragment=full'); // attributeSet defaults to full
      const rows = sim.dataset.v2Rows(INVOICE, kind);
      expect(manifest.blobCount).toBe(Math.ceil(rows / 7));
      expect(manifest.blobs.length).toBeGreaterThan(1);
      const chunks = await readAll(client, manifest);
      const expected = Array.from({ length: rows }, (_, i) => sim.dataset.v2Row(INVOICE, kind, i));
      expect(chunks.flatMap((c) => c.rowTexts)).toEqual(expected);
      expect(chunks.at(-1)!.next).toBeNull();
    }
    // The manifest came by navigation link: a second GET on the Graph host.
    expect(sim.requests.some((r) => r.host === 'graph' && r.path.includes('/manifests/'))).toBe(true);
  });

  it('never sends Authorization to the blob host, and always sends it to Graph', async () => {
    const blobRequests = sim.requests.filter((r) => r.host === 'blob');
    expect(blobRequests.length).toBeGreaterThan(0);
    expect(blobRequests.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(
      sim.requests.filter((r) => r.host === 'graph').every((r) => r.headers.authorization?.startsWith('Bearer ')),
    ).toBe(true);
  });

  it('resuming from any checkpoint gives exactly the rest of a straight read', async () => {
    const started = await client.startExport('reconciliation', INVOICE, { attributeSet: 'basic' });
    const done = (await pollUntilDone(client, started.operationLocation)).at(-1)!;
    if (done.status !== 'succeeded') throw new Error(done.status);
    expect(done.manifest.rootDirectory).toContain('Fragment=basic');
    const straight = await readAll(client, done.manifest);
    const all = straight.flatMap((c) => c.rowTexts);
    let consumed = 0;
    for (const chunk of straight.slice(0, -1)) {
      consumed += chunk.rows;
      const rest = (await readAll(client, done.manifest, chunk.next!)).flatMap((c) => c.rowTexts);
      expect(rest).toEqual(all.slice(consumed));
    }
  });

  it('refuses an unknown dataFormat or a blobCount that does not match, before any blob is fetched', async () => {
    const started = await client.startExport('usage', INVOICE);
    const done = (await pollUntilDone(client, started.operationLocation)).at(-1)!;
    if (done.status !== 'succeeded') throw new Error(done.status);
    const blobReads = () => sim.requests.filter((r) => r.host === 'blob').length;
    const before = blobReads();
    await expect(readAll(client, { ...done.manifest, dataFormat: 'parquet' })).rejects.toThrowError(
      UnsupportedDataFormatError,
    );
    await expect(readAll(client, { ...done.manifest, blobCount: done.manifest.blobCount + 1 })).rejects.toThrowError(
      ManifestMismatchError,
    );
    expect(blobReads()).toBe(before);
    // The documented names, in any case, read as usual.
    const rows = (await readAll(client, { ...done.manifest, dataFormat: 'COMPRESSEDJSONLINES' })).flatMap(
      (c) => c.rowTexts,
    );
    expect(rows).toHaveLength(sim.dataset.v2Rows(INVOICE, 'usage'));
  });

  it('an expired SAS raises SasExpiredError (no signature in it); a fresh poll gives a working manifest', async () => {
    const started = await client.startExport('usage', INVOICE);
    const done = (await pollUntilDone(client, started.operationLocation)).at(-1)!;
    if (done.status !== 'succeeded') throw new Error(done.status);
    sim.clock.advance(2 * 3_600_000);
    const error = await readAll(client, done.manifest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SasExpiredError);
    expect(String((error as Error).message)).not.toMatch(/sig=|se=/);
    const again = await client.checkOperation(started.operationLocation);
    if (again.status !== 'succeeded') throw new Error(again.status);
    const rows = (await readAll(client, again.manifest)).flatMap((c) => c.rowTexts);
    expect(rows).toHaveLength(sim.dataset.v2Rows(INVOICE, 'usage'));
  });

  it('code 5000 (legacy invoice) is noData, not a crash', async () => {
    const started = await client.startExport('reconciliation', LEGACY);
    const state = await client.checkOperation(started.operationLocation);
    expect(state).toMatchObject({ status: 'noData', code: '5000' });
    expect((state as { message: string }).message).toMatch(/No reconciliation data available/);
  });

  it('a failed operation is terminal: failed with its code, and no poll interval is offered', async () => {
    const started = await client.startExport('usage', INVOICE);
    sim.faults.add({
      host: 'graph',
      path: '/operations/',
      kind: 'status',
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        '@odata.type': '#microsoft.graph.partners.billing.failedOperation',
        id: 'x',
        status: 'failed',
        error: { code: 'InternalError', message: 'Export failed' },
      }),
    });
    const state = await client.checkOperation(started.operationLocation);
    expect(state).toEqual({ status: 'failed', code: 'InternalError', message: 'Export failed' });
    expect('retryAfterSeconds' in state).toBe(false);
  });

  it('an unknown subtype saying completed, with the manifest inline, is success', async () => {
    const started = await client.startExport('usage', INVOICE);
    const done = (await pollUntilDone(client, started.operationLocation)).at(-1)!;
    if (done.status !== 'succeeded') throw new Error(done.status);
    sim.faults.add({
      host: 'graph',
      path: '/operations/',
      kind: 'status',
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        '@odata.type': '#microsoft.graph.partners.billing.operation',
        status: 'completed',
        resourceLocation: done.manifest,
      }),
    });
    const again = await client.checkOperation(started.operationLocation);
    expect(again).toEqual({ status: 'succeeded', manifest: done.manifest });
  });

  it('a running poll without Retry-After, or with an unknown type, falls back to a sane default', async () => {
    const started = await client.startExport('usage', INVOICE);
    for (const body of [
      { '@odata.type': '#microsoft.graph.partners.billing.runningOperation', id: 'x', status: 'running' },
      { '@odata.type': '#microsoft.graph.partners.billing.someFutureOperation', id: 'x', status: 'notStarted' },
    ]) {
      sim.faults.add({
        host: 'graph',
        path: '/operations/',
        kind: 'status',
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(await client.checkOperation(started.operationLocation)).toEqual({
        status: 'running',
        retryAfterSeconds: 30,
      });
    }
  });

  it('an operation body it cannot classify is an error, never an endless "running"', async () => {
    const started = await client.startExport('usage', INVOICE);
    sim.faults.add({
      host: 'graph',
      path: '/operations/',
      kind: 'status',
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ '@odata.type': '#microsoft.graph.partners.billing.someFutureOperation', id: 'x' }),
    });
    await expect(client.checkOperation(started.operationLocation)).rejects.toThrowError(UnexpectedOperationError);
  });

  it('retries a 429 after its Retry-After', async () => {
    const before = sim.requests.length;
    sim.faults.add(graphThrottle(1, { path: '/billed/export' }));
    const started = await client.startExport('reconciliation', INVOICE, { correlationId: 'corr-429' });
    expect(started.operationLocation).toBeTruthy();
    const posts = sim.requests.slice(before).filter((r) => r.method === 'POST');
    expect(posts.map((r) => r.status)).toEqual([429, 202]);
    expect(posts[0]!.headers['client-request-id']).toBe(posts[1]!.headers['client-request-id']);
    expect(posts[1]!.headers['ms-correlationid']).toBe('corr-429');
  });

  it('retries a 500 from the blob host, and a connection cut mid-blob fails loudly instead of losing rows', async () => {
    const fast = clientFor(sim, { retryDelayInMs: 10, maxRetryDelayInMs: 50 });
    const started = await fast.startExport('usage', INVOICE);
    const done = (await pollUntilDone(fast, started.operationLocation)).at(-1)!;
    if (done.status !== 'succeeded') throw new Error(done.status);
    const rows = sim.dataset.v2Rows(INVOICE, 'usage');

    sim.faults.add({ host: 'blob', method: 'GET', kind: 'status', status: 500, body: 'boom' });
    const before = sim.requests.length;
    expect((await readAll(fast, done.manifest)).flatMap((c) => c.rowTexts)).toHaveLength(rows);
    expect(sim.requests.slice(before).filter((r) => r.host === 'blob')[0]!.status).toBe(500);

    sim.faults.add({ host: 'blob', method: 'GET', kind: 'resetMidBody' });
    await expect(readAll(fast, done.manifest)).rejects.toThrow();
  });

  it('never sends the Graph token to a link off the Graph origin, even an allowed one', async () => {
    const started = await client.startExport('usage', INVOICE);
    const onBlobHost = started.operationLocation.replace(sim.graphUrl, sim.blobUrl);
    const before = sim.requests.length;
    await expect(client.checkOperation(onBlobHost)).rejects.toThrowError(/not on the configured Graph origin/);
    expect(sim.requests.length).toBe(before);
  });

  it('refuses to follow a Location the link policy does not allow', async () => {
    const strict = clientFor(sim, { isAllowedLink: undefined });
    await expect(strict.startExport('usage', INVOICE)).rejects.toThrowError(DisallowedLinkError);
    await expect(
      strict.checkOperation(`${sim.graphUrl}/v1.0/reports/partners/billing/operations/x`),
    ).rejects.toThrowError(DisallowedLinkError);
  });
});

describe('GraphBillingClient (inline manifests)', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ v2: { manifestMode: 'inline', pollsBeforeDone: 0 } });
  });
  afterAll(() => sim.stop());

  it('uses resourceLocation inline without a manifest GET', async () => {
    const client = clientFor(sim);
    const started = await client.startExport('usage', INVOICE);
    const state = await client.checkOperation(started.operationLocation);
    if (state.status !== 'succeeded') throw new Error(state.status);
    expect(state.manifest.blobCount).toBe(1);
    const rows = (await readAll(client, state.manifest, undefined, 2000)).flatMap((c) => c.rowTexts);
    expect(rows).toEqual(
      Array.from({ length: sim.dataset.v2Rows(INVOICE, 'usage') }, (_, i) => sim.dataset.v2Row(INVOICE, 'usage', i)),
    );
    expect(sim.requests.some((r) => r.path.includes('/manifests/'))).toBe(false);
  });

  it('maxLineBytes bounds every export row: a row longer than it fails the read with the cap error', async () => {
    const client = clientFor(sim, { maxLineBytes: 64 });
    const started = await client.startExport('usage', INVOICE);
    const state = await client.checkOperation(started.operationLocation);
    if (state.status !== 'succeeded') throw new Error(state.status);
    await expect(readAll(client, state.manifest)).rejects.toThrowError(LineTooLongError);
    await expect(readAll(client, state.manifest)).rejects.toThrow(/maxLineBytes = 64 bytes \(setting MAX_LINE_BYTES\)/);
  });
});
