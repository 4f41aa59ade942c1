// The HTTP pipelines of the Graph client: one with the Graph bearer token (API calls), one with none (SAS blobs).
// Built from core-rest-pipeline's own policies; retries and Retry-After handling are theirs, not hand-written.
import type { TokenCredential } from '@azure/core-auth';
import {
  bearerTokenAuthenticationPolicy,
  createDefaultHttpClient,
  createEmptyPipeline,
  createHttpHeaders,
  createPipelineRequest,
  defaultRetryPolicy,
  type HttpClient,
  type HttpMethods,
  type Pipeline,
  type PipelineResponse,
  setClientRequestIdPolicy,
  userAgentPolicy,
} from '@azure/core-rest-pipeline';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';

export interface GraphPipelineOptions {
  /** Absent for the blob pipeline: a SAS URL must never carry an Authorization header. */
  credential?: TokenCredential;
  maxRetries: number;
}

export function graphPipeline(options: GraphPipelineOptions): Pipeline {
  const pipeline = createEmptyPipeline();
  pipeline.addPolicy(userAgentPolicy({ userAgentPrefix: 'csp-invoice-sync' }));
  // Graph's documented per-request id header (the Microsoft sample sends one per request).
  pipeline.addPolicy(setClientRequestIdPolicy('client-request-id'));
  // One retry loop: 429/503 honour Retry-After, other 5xx and connection errors back off exponentially.
  pipeline.addPolicy(defaultRetryPolicy({ maxRetries: options.maxRetries, retryDelayInMs: 500 }), { phase: 'Retry' });
  if (options.credential) {
    pipeline.addPolicy(bearerTokenAuthenticationPolicy({ credential: options.credential, scopes: GRAPH_SCOPE }), {
      phase: 'Sign',
    });
  }
  return pipeline;
}

export interface SendOptions {
  method: HttpMethods;
  url: string;
  body?: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Stream the body of these statuses instead of buffering it. */
  stream?: boolean;
  abortSignal?: AbortSignal;
}

export function sendRequest(
  pipeline: Pipeline,
  httpClient: HttpClient,
  options: SendOptions,
): Promise<PipelineResponse> {
  const request = createPipelineRequest({
    url: options.url,
    method: options.method,
    body: options.body,
    headers: createHttpHeaders(options.headers),
    timeout: options.timeoutMs,
    abortSignal: options.abortSignal,
    streamResponseStatusCodes: options.stream ? new Set([200]) : undefined,
  });
  return pipeline.sendRequest(httpClient, request);
}

export { createDefaultHttpClient };
