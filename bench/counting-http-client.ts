// An HttpClient for the benchmark that counts requests in flight (until the body is read, for streamed bodies)
// and keeps a timeline of line-item page requests. It records only a request's kind, never its URL: a
// pdfDownloadLink's query string carries a signature.
import {
  createDefaultHttpClient,
  type HttpClient,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';

export type RequestKind = 'lineitems' | 'v2blob' | 'graph' | 'other';

export interface TimedRequest {
  kind: RequestKind;
  start: number;
  end: number;
}

export class CountingHttpClient implements HttpClient {
  inFlight = 0;
  maxInFlight = 0;
  total = 0;
  readonly timeline: TimedRequest[] = [];
  private readonly inner = createDefaultHttpClient();

  /** Forget the peak so a later phase is measured on its own. */
  resetPeak(): void {
    this.maxInFlight = this.inFlight;
  }

  async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    const kind = classify(request.url);
    const entry: TimedRequest = { kind, start: performance.now(), end: 0 };
    this.total++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.inFlight--;
      entry.end = performance.now();
      if (kind === 'lineitems' || kind === 'v2blob') this.timeline.push(entry);
    };
    try {
      const response = await this.inner.sendRequest(request);
      const body = response.readableStreamBody;
      if (body) {
        // A streamed body is still a request in flight until it is read (or dropped).
        body.once('end', release);
        body.once('close', release);
        body.once('error', release);
      } else {
        release();
      }
      return response;
    } catch (error) {
      release();
      throw error;
    }
  }
}

function classify(url: string): RequestKind {
  const { pathname } = new URL(url);
  if (/\/lineitems/i.test(pathname)) return 'lineitems';
  if (/fastpath\//i.test(pathname)) return 'v2blob';
  if (pathname.startsWith('/v1.0/')) return 'graph';
  return 'other';
}
