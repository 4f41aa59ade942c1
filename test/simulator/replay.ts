// Replay (benchmarks): a line-item page or export blob is rendered once, on its first GET, and every later GET of
// the same page is answered from memory with the same status, headers and bytes. The benchmark uses it so the
// source serves pages faster than the exporter can take them, and the throughput figures measure the exporter.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { SimHost } from './faults.js';

interface Recorded {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

export class ReplayCache {
  readonly #pages = new Map<string, Recorded>();
  hits = 0;
  misses = 0;

  /** The key of a replayable request: a GET of a line-item page (with its continuation token) or an export blob. */
  keyOf(host: SimHost, method: string, url: URL, headers: IncomingHttpHeaders): string | undefined {
    if (method !== 'GET') return undefined;
    if (host === 'partnercenter' && url.pathname.includes('/lineitems')) {
      // An unauthenticated request is still answered by the simulator itself (401).
      if (!headers.authorization) return undefined;
      return `pc ${url.pathname}${url.search} ${headers['ms-continuationtoken'] ?? ''}`;
    }
    // The SAS changes with every manifest; the blob's bytes do not. A request without a signature is not replayed.
    if (host === 'blob' && url.pathname.endsWith('.json.gz') && url.searchParams.get('sig')) {
      return `blob ${url.pathname}`;
    }
    return undefined;
  }

  /** Answers from memory when the page was recorded; true when it did. */
  replay(key: string, res: ServerResponse): boolean {
    const hit = this.#pages.get(key);
    if (!hit) return false;
    this.hits++;
    res.writeHead(hit.status, { ...hit.headers, 'content-length': String(hit.body.length) });
    res.end(hit.body);
    return true;
  }

  /** Records what the handler writes to `res`, kept when it finishes with 200. */
  record(key: string, res: ServerResponse): void {
    this.misses++;
    const chunks: Buffer[] = [];
    const toBuffer = (chunk: unknown, encoding: unknown) =>
      Buffer.isBuffer(chunk)
        ? Buffer.from(chunk)
        : Buffer.from(chunk as string, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    // Headers given to writeHead are sent without being stored on the response: keep them here.
    let written: OutgoingHttpHeaders = {};
    const writeHead = res.writeHead.bind(res);
    res.writeHead = ((status: number, ...rest: unknown[]) => {
      const headers = rest.find((r) => typeof r === 'object' && r !== null);
      if (headers && !Array.isArray(headers)) written = { ...(headers as OutgoingHttpHeaders) };
      return writeHead(status, ...(rest as []));
    }) as typeof res.writeHead;
    const write = res.write.bind(res);
    const end = res.end.bind(res);
    res.write = ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
      if (chunk !== undefined && chunk !== null) chunks.push(toBuffer(chunk, encoding));
      return write(chunk as never, encoding as never, callback as never);
    }) as typeof res.write;
    res.end = ((chunk?: unknown, encoding?: unknown, callback?: unknown) => {
      if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') chunks.push(toBuffer(chunk, encoding));
      return end(chunk as never, encoding as never, callback as never);
    }) as typeof res.end;
    res.on('finish', () => {
      if (res.statusCode !== 200) return;
      const headers: OutgoingHttpHeaders = { ...res.getHeaders(), ...written };
      delete headers['content-length'];
      delete headers['transfer-encoding'];
      this.#pages.set(key, { status: 200, headers, body: Buffer.concat(chunks) });
    });
  }
}
