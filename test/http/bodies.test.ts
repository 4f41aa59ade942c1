// Bounded responses: a JSON page beyond maxPageBytes fails with a clear permanent error and is not read past the
// cap (even a body that never ends); a PDF beyond maxPdfBytes fails, before reading when its length is declared
// and as a stream error when it is not.
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, failureKind } from '../../src/http/index.js';
import { PartnerCenterClient, type PartnerCenterClientOptions } from '../../src/partner-center/index.js';
import { simClient } from '../partner-center/support.js';
import { type Simulator, startSimulator } from '../simulator/index.js';
import { anyToken, type LoopbackServer, startLoopbackServer } from './loopback-server.js';

const LINE_ITEMS = {
  path: '/v1/invoices/D02005YFHI/lineitems/Azure/UsageLineItems',
  query: 'size=2000',
  paging: 'offset',
} as const;

async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

describe('maxPageBytes', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ dataset: { rowsPerPart: 200 } });
  });
  afterAll(async () => {
    await sim.stop();
  });

  it('a page over the cap fails at once: permanent, named by its setting, not retried', async () => {
    const pc = simClient(sim, { maxPageBytes: 64 * 1024 });
    const before = sim.requests.length;
    const error = (await pc
      .lineItemPages(LINE_ITEMS)
      .next()
      .catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ code: 'ResponseTooLarge', retriable: false, status: 200 });
    expect(error.message).toMatch(/larger than maxPageBytes \(setting MAX_PAGE_BYTES\) = 65536 bytes/);
    expect(error.message).toMatch(/requestId=[0-9a-f-]{36}/);
    expect(failureKind(error)).toBe('permanent');
    expect(sim.requests.length - before).toBe(1);
    // Under the cap, the same page reads.
    const page = await simClient(sim, { maxPageBytes: 4 * 1024 ** 2 })
      .lineItemPages(LINE_ITEMS)
      .next();
    expect(page.value?.rows).toBe(sim.dataset.rows('D02005YFHI', 'azure', 'usage_line_items'));
  });

  it('a body that never ends is not buffered past the cap (no Content-Length)', async () => {
    let written = 0;
    let closed = false;
    const endless: LoopbackServer = await startLoopbackServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"items":[');
      const row = Buffer.from(`${JSON.stringify({ pad: 'x'.repeat(1000) })},`);
      const pump = () => {
        while (!closed && res.write(row)) written += row.length;
        if (!closed) res.once('drain', pump);
      };
      res.on('close', () => {
        closed = true;
      });
      pump();
    });
    try {
      const pc = new PartnerCenterClient({ baseUrl: endless.url, credential: anyToken, maxPageBytes: 256 * 1024 });
      const error = await pc
        .lineItemPages({ ...LINE_ITEMS, path: '/v1/invoices/D1/lineitems/Azure/UsageLineItems' })
        .next()
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ResponseTooLarge', retriable: false });
      expect(endless.requests).toHaveLength(1);
      // The connection was closed: the server stopped well short of the gigabytes it would have sent.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(closed).toBe(true);
      expect(written).toBeLessThan(64 * 1024 ** 2);
    } finally {
      await endless.stop();
    }
  });

  it('a declared Content-Length over the cap fails before the body is read', async () => {
    const big: LoopbackServer = await startLoopbackServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 ** 2) });
      res.write('{"items":[');
      // ...and then nothing: a client that waited for the body would time out instead.
    });
    try {
      const pc = new PartnerCenterClient({
        baseUrl: big.url,
        credential: anyToken,
        maxPageBytes: 1024 * 1024,
        timeoutMs: 30_000,
      });
      const error = await pc
        .lineItemPages({ ...LINE_ITEMS, path: '/v1/invoices/D1/lineitems/Azure/UsageLineItems' })
        .next()
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ResponseTooLarge' });
      expect((error as Error).message).toMatch(/\(Content-Length 10485760\) is larger than maxPageBytes/);
    } finally {
      await big.stop();
    }
  });
});

describe('maxPdfBytes', () => {
  const pdfServer = (declareLength: boolean) =>
    startLoopbackServer((req, res) => {
      if (!req.url?.includes('/documents/statement')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ id: 'G000000001', invoiceDate: '2025-01-05T00:00:00Z' }));
      }
      const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(200 * 1024, 0x20)]);
      res.writeHead(200, {
        'content-type': 'application/pdf',
        ...(declareLength ? { 'content-length': String(pdf.length) } : {}),
      });
      res.end(pdf);
    });
  const client = (server: LoopbackServer, options: Partial<PartnerCenterClientOptions> = {}) =>
    new PartnerCenterClient({ baseUrl: server.url, credential: anyToken, ...options });

  it('a PDF stream over the cap errors with the limit and its setting', async () => {
    const server = await pdfServer(false);
    try {
      const pdf = await client(server, { maxPdfBytes: 64 * 1024 }).openInvoicePdf('G000000001');
      const error = await drain(pdf.stream).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ResponseTooLarge' });
      expect((error as Error).message).toMatch(
        /statement of invoice G000000001 is larger than maxPdfBytes \(setting MAX_PDF_BYTES\) = 65536 bytes/,
      );
      // Under the cap the same PDF streams whole.
      const ok = await client(server, { maxPdfBytes: 1024 * 1024 }).openInvoicePdf('G000000001');
      expect(await drain(ok.stream)).toBe(9 + 200 * 1024);
    } finally {
      await server.stop();
    }
  });

  it('a declared length over the cap fails before streaming', async () => {
    const server = await pdfServer(true);
    try {
      const error = await client(server, { maxPdfBytes: 64 * 1024 })
        .openInvoicePdf('G000000001')
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ResponseTooLarge', retriable: false });
      expect((error as Error).message).toMatch(/declares 204809 bytes, more than maxPdfBytes/);
    } finally {
      await server.stop();
    }
  });
});

describe('line-item pages as bytes', () => {
  it('the rows reach the page byte for byte as sent, split across chunks and after a BOM', async () => {
    // Multi-byte characters, escapes and a lone surrogate escape, written in small chunks so characters straddle
    // the chunk boundaries the client reads.
    const rows = ['{"a":"é☃ 😀","b":"\\u00e9\\ud83d\\ude00\\udc00","n":-1.50e+2}', '{"c":"\\"quoted\\\\"}'];
    const body = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(`{"totalCount":2,"items":[\r\n${rows.join(',\r\n')}],"links":{}}`, 'utf8'),
    ]);
    const server: LoopbackServer = await startLoopbackServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      for (let at = 0; at < body.length; at += 7) res.write(body.subarray(at, at + 7));
      res.end();
    });
    try {
      const pc = new PartnerCenterClient({ baseUrl: server.url, credential: anyToken });
      const page = await pc
        .lineItemPages({ ...LINE_ITEMS, path: '/v1/invoices/D1/lineitems/Azure/UsageLineItems' })
        .next();
      expect(page.value?.rows).toBe(2);
      expect(page.value?.ndjson.equals(Buffer.from(`${rows.join('\n')}\n`, 'utf8'))).toBe(true);
    } finally {
      await server.stop();
    }
  });
});
