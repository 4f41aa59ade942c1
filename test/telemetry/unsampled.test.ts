// The events alerts and metrics count are sent the unsampled way: through the real Azure Monitor exporter to an
// ingestion endpoint on loopback, authenticated with a bearer token (local auth is disabled in Azure), at sample rate
// 100 and filed under the invocation's operation id; the per-attempt HttpRequest lines and info lines stay on the
// Functions host's (sampled) path. Without a connection string nothing is sent and every line goes to the host.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import type { AccessToken } from '@azure/core-auth';
import { InvocationContext } from '@azure/functions';
import { ManagedIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invocationLogger, invocationScope } from '../../src/app/invocation-logger.js';
import { originRewritingHttpClient } from '../../src/auth/origin-rewrite.js';
import { azureMonitorSink, ingestionCredential, type TelemetrySink } from '../../src/telemetry/azure-monitor.js';
import { isUnsampledEvent, SYNC_EVENTS } from '../../src/telemetry/events.js';
import type { SyncLogger } from '../../src/telemetry/logger.js';

const INGESTION = 'https://ingest.telemetry.test';
const IKEY = '00000000-0000-4000-8000-000000000001';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

interface Envelope {
  name: string;
  sampleRate: number;
  tags: Record<string, string>;
  data: {
    baseType: string;
    baseData: { name?: string; message?: string; severityLevel?: string; properties: Record<string, string> };
  };
}

let server: Server;
let origin: string;
const received: { authorization?: string; path: string; envelopes: Envelope[] }[] = [];

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

beforeAll(async () => {
  // Statsbeat (the exporter's own usage telemetry) would go to a fixed Microsoft endpoint; not from a test.
  process.env.APPLICATION_INSIGHTS_NO_STATSBEAT = 'true';
  server = createServer(async (req, res) => {
    const text = (await body(req)).toString('utf8');
    const parsed = JSON.parse(text) as Envelope | Envelope[];
    const envelopes = Array.isArray(parsed) ? parsed : [parsed];
    received.push({ authorization: req.headers.authorization, path: req.url ?? '', envelopes });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ itemsReceived: envelopes.length, itemsAccepted: envelopes.length, errors: [] }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.close();
  await once(server, 'close');
  delete process.env.APPLICATION_INSIGHTS_NO_STATSBEAT;
});

function sink(): TelemetrySink {
  return azureMonitorSink(
    {
      APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=${IKEY};IngestionEndpoint=${INGESTION}/`,
      WEBSITE_SITE_NAME: 'func-test',
    },
    {
      credential: {
        getToken: async (): Promise<AccessToken> => ({
          token: 'entra-token',
          expiresOnTimestamp: Date.now() + 3_600_000,
        }),
      },
      httpClient: originRewritingHttpClient({ [INGESTION]: origin }),
      disableOfflineStorage: true,
      scheduledDelayMillis: 60_000,
    },
  );
}

const silent: SyncLogger = { info: () => {}, warn: () => {}, error: () => {}, event: () => {} };

function invocation(lines: { level: string; message: string }[]) {
  return new InvocationContext({
    invocationId: 'inv-1',
    functionName: 'syncInvoice',
    traceContext: { traceParent: TRACEPARENT, traceState: '', attributes: {} },
    logHandler: (level, ...args) => lines.push({ level, message: args.map(String).join(' ') }),
  });
}

describe('the unsampled channel', () => {
  it('sends events and warnings/errors to ingestion, and leaves HttpRequest and info lines to the host', async () => {
    const unsampled = sink();
    expect(unsampled.enabled).toBe(true);
    const log = invocationLogger(silent, { unsampled });
    const hostLines: { level: string; message: string }[] = [];
    await invocationScope.run(invocation(hostLines), async () => {
      log.event('InvoiceStateChanged', { invoiceId: 'G000024130', state: 'failed', correlationId: 'c-1' });
      log.event('PartExported', { invoiceId: 'G000024130', partId: 'p1', rows: 2000, bytes: 812345 });
      log.event('HttpRequest', { host: 'partnercenter', endpoint: '/v1/invoices', status: 429, attempt: 2 });
      log.info('Exporting part', { partId: 'p1' });
      log.warn('The App+User refresh token is 70 days old; it lapses after 90 days', { daysLeft: 20 });
      log.error('Invoice sync failed for good; message goes to poison', { invoiceId: 'G000024130', attempt: 5 });
    });
    received.length = 0;
    await unsampled.flush();

    const envelopes = received.flatMap((r) => r.envelopes);
    expect(received.every((r) => r.authorization === 'Bearer entra-token')).toBe(true);
    expect(received.every((r) => r.path.endsWith('/v2.1/track'))).toBe(true);
    expect(envelopes.map((e) => e.sampleRate)).toEqual([100, 100, 100, 100]);
    for (const e of envelopes) {
      expect(e.tags['ai.operation.id']).toBe(TRACE_ID);
      expect(e.tags['ai.cloud.role']).toBe('func-test');
    }
    const events = envelopes.filter((e) => e.data.baseType === 'EventData');
    expect(events.map((e) => e.data.baseData.name)).toEqual(['InvoiceStateChanged', 'PartExported']);
    expect(events[0]!.data.baseData.properties).toMatchObject({
      invoiceId: 'G000024130',
      state: 'failed',
      InvocationId: 'inv-1',
      FunctionName: 'syncInvoice',
    });
    expect(events[1]!.data.baseData.properties).toMatchObject({ rows: '2000', bytes: '812345' });
    const traces = envelopes.filter((e) => e.data.baseType === 'MessageData');
    expect(traces.map((t) => [t.data.baseData.severityLevel, t.data.baseData.message?.split(' {')[0]])).toEqual([
      ['Warning', 'The App+User refresh token is 70 days old; it lapses after 90 days'],
      ['Error', 'Invoice sync failed for good; message goes to poison'],
    ]);

    // The host got only what may be sampled: the per-attempt HttpRequest event and the info line.
    expect(hostLines.map((l) => l.message.split(' {')[0])).toEqual(['event:HttpRequest', 'Exporting part']);
    await unsampled.shutdown();
  });

  it('treats every event but the per-attempt HttpRequest and the per-page PartProgress as unsampled', () => {
    expect(Object.keys(SYNC_EVENTS).filter((n) => !isUnsampledEvent(n))).toEqual(['PartProgress', 'HttpRequest']);
  });

  it('is a no-op without a connection string: every line goes to the host as before', async () => {
    const unsampled = azureMonitorSink({});
    expect(unsampled.enabled).toBe(false);
    const log = invocationLogger(silent, { unsampled });
    const hostLines: { level: string; message: string }[] = [];
    received.length = 0;
    invocationScope.run(invocation(hostLines), () => {
      log.event('InvoiceStateChanged', { invoiceId: 'G1', state: 'complete' });
      log.error('Part export failed; will retry', { attempt: 1 });
    });
    await unsampled.flush();
    expect(received).toEqual([]);
    expect(hostLines.map((l) => [l.level, l.message.split(' {')[0]])).toEqual([
      ['information', 'event:InvoiceStateChanged'],
      ['error', 'Part export failed; will retry'],
    ]);
  });

  it('authenticates ingestion with the managed identity named in APPLICATIONINSIGHTS_AUTHENTICATION_STRING', () => {
    expect(ingestionCredential('ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD')).toBeInstanceOf(
      ManagedIdentityCredential,
    );
    expect(ingestionCredential('Authorization=AAD')).toBeInstanceOf(ManagedIdentityCredential);
    expect(ingestionCredential(undefined)).toBeUndefined();
    expect(ingestionCredential('ClientId=x')).toBeUndefined();
  });
});
