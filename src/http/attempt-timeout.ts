// Bounds each attempt: headers and a text body must arrive within `timeoutMs`, and a streamed body may not stall
// longer than that between chunks. (The library's own `request.timeout` stops at the headers.)
import { type Readable, pipeline as streamPipeline, Transform } from 'node:stream';
import { type PipelinePolicy, RestError } from '@azure/core-rest-pipeline';

/**
 * A timeout becomes a RestError ETIMEDOUT, which the retry strategy treats as a transport failure. The caller's
 * own abort signal still ends the whole call: it is chained into each attempt's signal and restored after it.
 */
export function attemptTimeoutPolicy(timeoutMs: number): PipelinePolicy {
  return {
    name: 'attemptTimeoutPolicy',
    async sendRequest(request, next) {
      const callerSignal = request.abortSignal;
      const attempt = new AbortController();
      const onCallerAbort = () => attempt.abort();
      if (callerSignal?.aborted) attempt.abort();
      callerSignal?.addEventListener('abort', onCallerAbort);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        attempt.abort();
      }, timeoutMs);
      request.abortSignal = attempt.signal;
      try {
        const response = await next(request);
        if (response.readableStreamBody) {
          response.readableStreamBody = withIdleTimeout(response.readableStreamBody as Readable, timeoutMs);
        }
        return response;
      } catch (e) {
        if (timedOut && !callerSignal?.aborted) {
          throw new RestError(`no complete response within ${timeoutMs} ms`, { code: 'ETIMEDOUT', request });
        }
        throw e;
      } finally {
        clearTimeout(timer);
        callerSignal?.removeEventListener('abort', onCallerAbort);
        // The retry policy checks the caller's signal, not ours, to decide whether an abort is final.
        request.abortSignal = callerSignal;
      }
    },
  };
}

/** A streamed body that fails (instead of hanging a Function) when no data arrives for `idleMs`. */
function withIdleTimeout(body: Readable, idleMs: number): Readable {
  const guard = new Transform({
    transform(chunk, _encoding, callback) {
      timer.refresh();
      callback(null, chunk);
    },
  });
  const timer = setTimeout(() => {
    guard.destroy(Object.assign(new Error(`response body stalled for ${idleMs} ms`), { code: 'ETIMEDOUT' }));
  }, idleMs);
  guard.on('close', () => clearTimeout(timer));
  guard.on('end', () => clearTimeout(timer));
  streamPipeline(body, guard, () => clearTimeout(timer));
  return guard;
}
