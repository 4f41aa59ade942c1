// Graph v2 billed exports and the blob host, hit with plain fetch: 202 + Location, polls with Retry-After, both
// status spellings, failed "5000" for legacy invoices and on demand, manifest shapes, gzip JSON Lines, SAS expiry.
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Simulator, type SimulatorOptions, startSimulator } from '../simulator/index.js';

const sims: Simulator[] = [];
let sim: Simulator;
beforeAll(async () => {
  sim = await start({ v2: { retryAfterSeconds: 2, pollsBeforeDone: 2 } });
});
afterAll(async () => {
  await Promise.all(sims.map((s) => s.stop()));
});

async function start(options: SimulatorOptions): Promise<Simulator> {
  const started = await startSimulator(options);
  sims.push(started);
  return started;
}

const auth = (s: Simulator) => ({ authorization: `Bearer ${s.issueToken({ audience: 'graph' })}` });

async function startExport(s: Simulator, kind: 'reconciliation' | 'usage', body: unknown, action = 'export') {
  return fetch(`${s.graphUrl}/v1.0/reports/partners/billing/${kind}/billed/${action}`, {
    method: 'POST',
    headers: { ...auth(s), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

interface Operation {
  '@odata.type': string;
  status: string;
  error?: { code: string; message: string };
  resourceLocation?: Manifest;
  'resourceLocation@odata.navigationLink'?: string;
}
interface Manifest {
  eTag: string;
  rootDirectory: string;
  sasToken: string;
  blobCount: number;
  blobs: { name: string; partitionValue: string }[];
}

async function poll(s: Simulator, location: string): Promise<{ operation: Operation; retryAfter: string | null }> {
  const response = await fetch(location, { headers: auth(s) });
  expect(response.status).toBe(200);
  return { operation: (await response.json()) as Operation, retryAfter: response.headers.get('retry-after') };
}

async function pollUntilDone(s: Simulator, location: string): Promise<Operation> {
  for (let i = 0; i < 20; i++) {
    const { operation } = await poll(s, location);
    if (operation.status !== 'running') return operation;
  }
  throw new Error('never finished');
}

async function readBlobs(manifest: Manifest): Promise<string[]> {
  const lines: string[] = [];
  for (const blob of manifest.blobs) {
    const response = await fetch(`${manifest.rootDirectory}/${blob.name}?${manifest.sasToken}`);
    expect(response.status).toBe(200);
    const text = gunzipSync(Buffer.from(await response.arrayBuffer())).toString('utf8');
    expect(text.endsWith('\n') || text === '').toBe(true);
    lines.push(...text.split('\n').filter(Boolean));
  }
  return lines;
}

describe('export flow', () => {
  test('202 with Location, running polls with Retry-After, then success with a manifest link', async () => {
    const started = await startExport(sim, 'reconciliation', { invoiceId: 'G016907411', attributeSet: 'full' });
    expect(started.status).toBe(202);
    expect(await started.text()).toBe('');
    const location = started.headers.get('location') ?? '';
    expect(location).toMatch(new RegExp(`^${sim.graphUrl}/v1\\.0/reports/partners/billing/operations/[0-9a-f-]{36}$`));
    expect(started.headers.get('retry-after')).toBe('2');

    for (let i = 0; i < 2; i++) {
      const { operation, retryAfter } = await poll(sim, location);
      expect(operation['@odata.type']).toBe('#microsoft.graph.partners.billing.runningOperation');
      expect(retryAfter).toBe('2');
    }
    const { operation, retryAfter } = await poll(sim, location);
    expect(retryAfter).toBeNull();
    expect(operation['@odata.type']).toBe('#microsoft.graph.partners.billing.exportSuccessOperation');
    expect(['succeeded', 'completed']).toContain(operation.status);
    expect(operation.resourceLocation).toBeUndefined();
    const manifestUrl = operation['resourceLocation@odata.navigationLink'] ?? '';
    const manifest = (await (await fetch(manifestUrl, { headers: auth(sim) })).json()) as Manifest;
    expect(manifest.rootDirectory).toMatch(
      /\/v1\/PartnerTenantId=[0-9a-f-]+\/BillingMonth=202503\/InvoiceId=G016907411\/InvoiceVersion=\d+\/Fragment=full\/PartitionType=default$/,
    );
    expect(manifest.rootDirectory.startsWith(sim.blobUrl)).toBe(true);
    expect(manifest.sasToken).not.toMatch(/^\?/);
    expect(manifest.sasToken).toMatch(/(^|&)se=[^&]+/);
    expect(manifest.sasToken).toMatch(/&sig=/);
    expect(manifest.blobCount).toBe(manifest.blobs.length);

    const lines = await readBlobs(manifest);
    const n = sim.dataset.v2Rows('G016907411', 'reconciliation');
    expect(lines).toEqual(Array.from({ length: n }, (_, i) => sim.dataset.v2Row('G016907411', 'reconciliation', i)));
    // The same rows as v1, with PascalCase keys.
    expect(JSON.parse(lines[0] ?? '{}')).toHaveProperty('TotalForCustomer');
    expect(n).toBe(sim.dataset.rows('G016907411', 'one_time', 'billing_line_items'));
  });

  test('the OData action spelling works; status alternates succeeded/completed between operations', async () => {
    const quick = await start({ v2: { pollsBeforeDone: 0 } });
    const statuses: string[] = [];
    for (const action of ['export', 'microsoft.graph.partners.billing.export']) {
      const started = await startExport(quick, 'usage', { invoiceId: 'G016907411' }, action);
      expect(started.status).toBe(202);
      statuses.push((await pollUntilDone(quick, started.headers.get('location') ?? '')).status);
    }
    expect(statuses.sort()).toEqual(['completed', 'succeeded']);
  });

  test('the body is validated', async () => {
    for (const body of [{}, { invoiceId: 'G016907411', attributeSet: 'everything' }]) {
      const response = await startExport(sim, 'usage', body);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('BadRequest');
    }
  });

  test('a legacy invoice fails with code 5000', async () => {
    const started = await startExport(sim, 'reconciliation', { invoiceId: 'D02005YFHI' });
    const operation = await pollUntilDone(sim, started.headers.get('location') ?? '');
    expect(operation['@odata.type']).toBe('#microsoft.graph.partners.billing.failedOperation');
    expect(operation.error?.code).toBe('5000');
    expect(operation.error?.message).toContain('D02005YFHI');
  });

  test('the v2NoData fault answers 5000 n times, then the export proceeds', async () => {
    const quick = await start({ v2: { pollsBeforeDone: 0 } });
    quick.faults.add({ kind: 'v2NoData', polls: 2 });
    const started = await startExport(quick, 'usage', { invoiceId: 'G016907411' });
    const location = started.headers.get('location') ?? '';
    expect((await poll(quick, location)).operation.error?.code).toBe('5000');
    expect((await poll(quick, location)).operation.error?.code).toBe('5000');
    expect((await poll(quick, location)).operation['@odata.type']).toBe(
      '#microsoft.graph.partners.billing.exportSuccessOperation',
    );
  });
});

describe('manifest and blobs', () => {
  test('inline and both manifest modes', async () => {
    for (const manifestMode of ['inline', 'both'] as const) {
      const s = await start({ v2: { pollsBeforeDone: 0, manifestMode } });
      const started = await startExport(s, 'usage', { invoiceId: 'G000024135' });
      const operation = await pollUntilDone(s, started.headers.get('location') ?? '');
      expect(operation.resourceLocation?.blobs.length).toBe(1);
      expect(operation['resourceLocation@odata.navigationLink'] !== undefined).toBe(manifestMode === 'both');
      const lines = await readBlobs(operation.resourceLocation as Manifest);
      expect(lines.length).toBe(s.dataset.v2Rows('G000024135', 'usage'));
    }
  });

  test('several blobs when rows exceed rowsPerBlob; their lines concatenate to the dataset', async () => {
    const s = await start({ v2: { pollsBeforeDone: 0, manifestMode: 'inline', rowsPerBlob: 7 } });
    const started = await startExport(s, 'usage', { invoiceId: 'G000024130' });
    const manifest = (await pollUntilDone(s, started.headers.get('location') ?? '')).resourceLocation as Manifest;
    const n = s.dataset.v2Rows('G000024130', 'usage');
    expect(manifest.blobCount).toBe(Math.ceil(n / 7));
    const lines = await readBlobs(manifest);
    expect(lines).toEqual(Array.from({ length: n }, (_, i) => s.dataset.v2Row('G000024130', 'usage', i)));
  });

  test('dataFormat: compressedJSON by default (every example), compressedJSONLines or any other value as asked', async () => {
    const formatOf = async (dataFormat?: string) => {
      const s = await start({
        v2: { pollsBeforeDone: 0, manifestMode: 'inline', ...(dataFormat ? { dataFormat } : {}) },
      });
      const started = await startExport(s, 'usage', { invoiceId: 'G000024135' });
      const manifest = (await pollUntilDone(s, started.headers.get('location') ?? '')).resourceLocation as Manifest & {
        dataFormat: string;
      };
      // Whatever the label says, the blobs are gzip JSON Lines.
      expect((await readBlobs(manifest)).length).toBe(s.dataset.v2Rows('G000024135', 'usage'));
      return manifest.dataFormat;
    };
    expect(await formatOf()).toBe('compressedJSON');
    expect(await formatOf('compressedJSONLines')).toBe('compressedJSONLines');
    expect(await formatOf('csv')).toBe('csv');
  });

  test('per-blob ItemCount: absent by default, the true line count, or a lie on the first blob', async () => {
    const blobsOf = async (v2: SimulatorOptions['v2']) => {
      const s = await start({ v2: { pollsBeforeDone: 0, manifestMode: 'inline', rowsPerBlob: 7, ...v2 } });
      const started = await startExport(s, 'usage', { invoiceId: 'G000024130' });
      const manifest = (await pollUntilDone(s, started.headers.get('location') ?? '')).resourceLocation as Manifest;
      const counts: number[] = [];
      for (const blob of manifest.blobs) {
        counts.push((await readBlobs({ ...manifest, blobs: [blob] })).length);
      }
      return { blobs: manifest.blobs as Record<string, unknown>[], counts };
    };
    const plain = await blobsOf({});
    expect(plain.blobs.every((b) => Object.keys(b).sort().join() === 'name,partitionValue')).toBe(true);

    const exact = await blobsOf({ itemCount: 'exact' });
    expect(exact.blobs.length).toBeGreaterThan(2);
    expect(exact.blobs.map((b) => b.ItemCount)).toEqual(exact.counts);
    expect(exact.counts.at(-1)).toBeLessThanOrEqual(7);

    const lying = await blobsOf({ itemCount: 'lie', itemCountLieBy: 3 });
    expect(lying.blobs.map((b) => b.ItemCount)).toEqual([(lying.counts[0] ?? 0) + 3, ...lying.counts.slice(1)]);

    const camel = await blobsOf({ itemCount: 'exact', itemCountKey: 'itemCount' });
    expect(camel.blobs.map((b) => b.itemCount)).toEqual(camel.counts);
    expect(camel.blobs.some((b) => 'ItemCount' in b)).toBe(false);
  });

  test('the SAS expires on the simulator clock and the blob host ignores Authorization', async () => {
    const s = await start({ v2: { pollsBeforeDone: 0, manifestMode: 'inline', sasTtlMs: 10 * 60_000 } });
    const started = await startExport(s, 'reconciliation', { invoiceId: 'G058476717' });
    const location = started.headers.get('location') ?? '';
    const manifest = (await pollUntilDone(s, location)).resourceLocation as Manifest;
    const url = `${manifest.rootDirectory}/${manifest.blobs[0]?.name}?${manifest.sasToken}`;
    expect((await fetch(url, { headers: { authorization: 'Bearer nonsense' } })).status).toBe(200);
    expect((await fetch(`${manifest.rootDirectory}/${manifest.blobs[0]?.name}`)).status).toBe(403);
    s.clock.advance(11 * 60_000);
    const expired = await fetch(url);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain('<Code>AuthenticationFailed</Code>');
    // Polling again hands out a fresh SAS.
    const fresh = (await pollUntilDone(s, location)).resourceLocation as Manifest;
    expect((await fetch(`${fresh.rootDirectory}/${fresh.blobs[0]?.name}?${fresh.sasToken}`)).status).toBe(200);
  });

  test('the eTag changes when the invoice data version is bumped', async () => {
    const s = await start({ v2: { pollsBeforeDone: 0, manifestMode: 'inline' } });
    const manifestOf = async () => {
      const started = await startExport(s, 'reconciliation', { invoiceId: 'G012040490' });
      return (await pollUntilDone(s, started.headers.get('location') ?? '')).resourceLocation as Manifest;
    };
    const a = await manifestOf();
    const b = await manifestOf();
    expect(b.eTag).toBe(a.eTag);
    s.bumpV2Version('G012040490');
    const c = await manifestOf();
    expect(c.eTag).not.toBe(a.eTag);
    expect(c.rootDirectory).not.toBe(a.rootDirectory);
  });

  test('graph requires a graph-audience token', async () => {
    const pcToken = sim.issueToken({ audience: 'partnercenter', appUser: true });
    const response = await fetch(`${sim.graphUrl}/v1.0/reports/partners/billing/usage/billed/export`, {
      method: 'POST',
      headers: { authorization: `Bearer ${pcToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ invoiceId: 'G016907411' }),
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('InvalidAuthenticationToken');
  });
});

test('an invoice listed before its lines are published: empty v1 pages and v2 "5000" until the clock passes', async () => {
  const s = await start({
    v2: { pollsBeforeDone: 0 },
    dataset: {
      invoices: [
        {
          id: 'G000000777',
          kind: 'modern',
          billingPeriod: '2026-10',
          linesPublishedAt: '2026-11-22T00:00:00Z',
          parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 3 }],
        },
      ],
    },
  });
  const v1 = async () => {
    const response = await fetch(
      `${s.partnerCenterUrl}/v1/invoices/G000000777/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=10`,
      { headers: { authorization: `Bearer ${s.issueToken({ audience: 'partnercenter' })}` } },
    );
    return ((await response.json()) as { items: unknown[] }).items.length;
  };
  const v2 = async () => {
    const started = await startExport(s, 'reconciliation', { invoiceId: 'G000000777' });
    return (await pollUntilDone(s, started.headers.get('location') ?? '')).status;
  };
  expect(await v1()).toBe(0);
  expect(await v2()).toBe('failed');
  s.clock.advance(24 * 3600_000);
  expect(await v1()).toBe(3);
  expect(['succeeded', 'completed']).toContain(await v2());
});
