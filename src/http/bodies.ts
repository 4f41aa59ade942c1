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

/** Requests whose 2xx body the caller reads as text; every other request made here streams its 2xx body. */
const textRequests = new WeakSet<PipelineRequest>();

/** Marks a request as read-as-text: its body is then streamed from the wire and read here, capped. */
export function readBodyAsText(request: PipelineRequest): void {
  textRequests.add(request);
  request.streamResponseStatusCodes = new Set([Number.POSITIVE_INFINITY]);
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
      if (ok && !textRequests.has(request)) return response;
      const cap = ok ? limit.bytes : ERROR_BODY_BYTES;
      const declared = Number(response.headers.get('content-length'));
      if (ok && Number.isFinite(declared) && declared > cap) {
        stream.destroy();
        throw tooLarge(request, response, limit, `(Content-Length ${declared})`);
      }
      response.readableStreamBody = undefined;
      const { text, truncated } = await readCapped(stream, cap, request);
      if (truncated && ok) throw tooLarge(request, response, limit, 'sent');
      response.bodyAsText = text;
      return response;
    },
  };
}

/** Up to `maxBytes` of a stream as UTF-8 text; stops reading (and closes the stream) once past it. */
async function readCapped(
  stream: Readable,
  maxBytes: number,
  request: PipelineRequest,
): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += buf.length;
      if (size > maxBytes) {
        chunks.push(buf.subarray(0, buf.length - (size - maxBytes)));
        return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
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
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
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
