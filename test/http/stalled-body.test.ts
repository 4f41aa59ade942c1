// Bodies that stall after the headers: the simulator's faults stop at headers, so a tiny loopback server sends the
// headers and part of the body, then goes silent.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, createPipeline, sendForStream, sendForText } from '../../src/http/index.js';

describe('stalled response bodies', () => {
  let server: Server;
  let base = '';
  const hits = new Map<string, number>();
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      const n = (hits.get(path) ?? 0) + 1;
      hits.set(path, n);
      res.writeHead(200, { 'content-type': path.startsWith('/pdf') ? 'application/pdf' : 'application/json' });
      // The first attempt of /json-once stalls; later attempts answer.
      if (path === '/json-once' && n > 1) return res.end('{"items":[]}');
      res.write(path.startsWith('/pdf') ? '%PDF-1.7\n' : '{"items":[');
      // ...and never ends (the client must give up).
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const pipeline = () =>
    createPipeline({
      allowInsecureLoopback: true,
      timeoutMs: 200,
      maxRetries: 1,
      retryDelayInMs: 1,
      maxRetryDelayInMs: 2,
    });

  it('a JSON body that stalls is retried, then fails as a retriable ETIMEDOUT ApiError', async () => {
    const { text } = await sendForText(pipeline(), `${base}/json-once`);
    expect(text).toBe('{"items":[]}');
    expect(hits.get('/json-once')).toBe(2);

    const error = (await sendForText(pipeline(), `${base}/json-always`).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ code: 'ETIMEDOUT', retriable: true });
    expect(hits.get('/json-always')).toBe(2);
  });

  it('a streamed body that stalls errors instead of hanging', async () => {
    const { stream } = await sendForStream(pipeline(), `${base}/pdf`);
    const chunks: Buffer[] = [];
    const failure = await (async () => {
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    })().catch((e: unknown) => e);
    expect(Buffer.concat(chunks).toString()).toBe('%PDF-1.7\n');
    expect(failure).toMatchObject({ code: 'ETIMEDOUT' });
  });
});
