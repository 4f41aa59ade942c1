// A large v2 blob streams through gzip with backpressure and without piling up listeners: every drain wait used to
// leave a `close` listener on the Gzip stream behind, and a big export printed MaxListenersExceededWarning.
import { createGunzip } from 'node:zlib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Simulator, startSimulator } from '../simulator/index.js';

const ROWS = 60_000;
let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({
    v2: { pollsBeforeDone: 0, manifestMode: 'inline', rowsPerBlob: ROWS },
    dataset: {
      invoices: [
        {
          id: 'G0BIGBLOB1',
          kind: 'modern',
          billingPeriod: '2025-06',
          parts: [{ provider: 'one_time', lineItemType: 'usage_line_items', rows: ROWS }],
        },
      ],
    },
  });
});
afterAll(async () => {
  await sim?.stop();
});

test('a 60,000-row v2 blob streams completely and emits no process warning', async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  try {
    const auth = { authorization: `Bearer ${sim.issueToken({ audience: 'graph' })}` };
    const started = await fetch(`${sim.graphUrl}/v1.0/reports/partners/billing/usage/billed/export`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ invoiceId: 'G0BIGBLOB1' }),
    });
    const operation = (await (await fetch(started.headers.get('location') ?? '', { headers: auth })).json()) as {
      resourceLocation: { rootDirectory: string; sasToken: string; blobs: { name: string }[] };
    };
    const manifest = operation.resourceLocation;
    expect(manifest.blobs.length).toBe(1);
    const response = await fetch(`${manifest.rootDirectory}/${manifest.blobs[0]?.name}?${manifest.sasToken}`);
    expect(response.status).toBe(200);
    const body = response.body;
    if (!body) throw new Error('no body');
    // Read through gunzip as a stream, so the server sees real backpressure and many drain waits.
    const gunzip = createGunzip();
    let newlines = 0;
    let bytes = 0;
    let last = '';
    const counted = (async () => {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) newlines++;
        last = chunk.subarray(Math.max(0, chunk.length - 2000)).toString('utf8');
      }
    })();
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      if (!gunzip.write(chunk)) await new Promise((resolve) => gunzip.once('drain', resolve));
    }
    gunzip.end();
    await counted;
    expect(newlines).toBe(ROWS);
    expect(bytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(last.endsWith(`${sim.dataset.v2Row('G0BIGBLOB1', 'usage', ROWS - 1)}\n`)).toBe(true);
    // Warnings are emitted on a later tick: give them the chance to arrive.
    await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    process.off('warning', onWarning);
  }
  expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
}, 60_000);
