// Response bodies with a size limit. A text (JSON) body is read inside the retry loop, up to a cap, and never
// buffered past it; an error body of a streamed call is read there too (64 KiB at most) so a retried attempt never
// leaves a connection half-read; a streamed 2xx body can be capped as it flows (PDFs).
import { type Readable, Transform } from 'node:stream';
import type { PipelinePolicy, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import { RestError } from '@azure/core-rest-pipeline';
import { ApiError, requestIdsOf } from './errors.js';

/** A cap with the name people configure it by, for the error message. */
export interface BodyLimit {
  bytes: number;
  /** e.g. `maxPageBytes (setting MAX_PAGE_BYTES)`. */
  name: string;
}

/** The most of an error body worth keeping for the message. */
const ERROR_BODY_BYTES = 64 * 1024;

/** Requests whose 2xx body the caller reads whole, as text or as bytes; every other request streams its 2xx body. */
const readRequests = new WeakMap<PipelineRequest, 'text' | 'bytes'>();
/** The 2xx body of a request read as bytes. */
const bodyBytes = new WeakMap<PipelineResponse, Buffer>();

/** Marks a request as read-as-text: its body is then streamed from the wire and read here, capped. */
export function readBodyAsText(request: PipelineRequest): void {
  readRequests.set(request, 'text');
  request.streamResponseStatusCodes = new Set([Number.POSITIVE_INFINITY]);
}

/** Marks a request as read-as-bytes: like text, but the 2xx body is kept as the Buffer read (`bodyBytesOf`). */
export function readBodyAsBytes(request: PipelineRequest): void {
  readRequests.set(request, 'bytes');
  request.streamResponseStatusCodes = new Set([Number.POSITIVE_INFINITY]);
}

/** The 2xx body of a request marked with `readBodyAsBytes`, as read from the socket (never decoded). */
export function bodyBytesOf(response: PipelineResponse): Buffer | undefined {
  return bodyBytes.get(response);
}

function tooLarge(request: PipelineRequest, response: PipelineResponse, limit: BodyLimit, seen: string): ApiError {
  return new ApiError({
    status: response.status,
    code: 'ResponseTooLarge',
    description: `response body ${seen} is larger than ${limit.name} = ${limit.bytes} bytes; not read further`,
    ...requestIdsOf(request, response),
    retriable: false,
    url: request.url,
  });
}

/**
 * Inside the retry policy: reads text bodies (capped by `limit`) and the error bodies of streamed calls, so the
 * retry strategy and the error policy see `bodyAsText`. A connection cut mid-body becomes ECONNRESET (retried).
 */
export function boundedBodyPolicy(limit: BodyLimit): PipelinePolicy {
  return {
    name: 'boundedBodyPolicy',
    async sendRequest(request, next) {
      const response = await next(request);
      const stream = response.readableStreamBody as Readable | undefined;
      if (!stream) return response;
      const ok = response.status >= 200 && response.status < 300;
      const mode = readRequests.get(request);
      if (ok && mode === undefined) return response;
      const cap = ok ? limit.bytes : ERROR_BODY_BYTES;
      const declared = Number(response.headers.get('content-length'));
      if (ok && Number.isFinite(declared) && declared > cap) {
        stream.destroy();
        throw tooLarge(request, response, limit, `(Content-Length ${declared})`);
      }
      response.readableStreamBody = undefined;
      const { bytes, truncated } = await readCapped(stream, cap, request);
      if (truncated && ok) throw tooLarge(request, response, limit, 'sent');
      if (ok && mode === 'bytes') bodyBytes.set(response, bytes);
      else response.bodyAsText = bytes.toString('utf8');
      return response;
    },
  };
}

/** Up to `maxBytes` of a stream; stops reading (and closes the stream) once past it. */
async function readCapped(
  stream: Readable,
  maxBytes: number,
  request: PipelineRequest,
): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += buf.length;
      if (size > maxBytes) {
        chunks.push(buf.subarray(0, buf.length - (size - maxBytes)));
        return { bytes: Buffer.concat(chunks), truncated: true };
      }
      chunks.push(buf);
    }
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') throw e;
    throw new RestError(`connection dropped while reading the response (${(e as Error)?.message || 'no detail'})`, {
      code: 'ECONNRESET',
      request,
    });
  } finally {
    stream.destroy();
  }
  return { bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size), truncated: false };
}

/** A stream that errors (and stops reading its source) once more than `limit.bytes` have passed through it. */
export function limitStream(source: Readable, limit: BodyLimit, what: string): Readable {
  let passed = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      passed += chunk.length;
      if (passed > limit.bytes) {
        callback(
          new ApiError({
            code: 'ResponseTooLarge',
            description: `${what} is larger than ${limit.name} = ${limit.bytes} bytes; stopped reading`,
            retriable: false,
          }),
        );
        return;
      }
      callback(null, chunk);
    },
  });
  source.on('error', (e) => guard.destroy(e));
  guard.on('close', () => source.destroy());
  return source.pipe(guard);
}
