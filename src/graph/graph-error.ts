// An HTTP failure from Graph or the blob host, with the facts a support case needs and no secrets.
import type { PipelineResponse } from '@azure/core-rest-pipeline';

/** The URL without its query string: SAS signatures and tokens live there. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}${parsed.search ? '?REDACTED' : ''}`;
  } catch {
    return url.replace(/\?.*$/s, '?REDACTED');
  }
}

export class GraphRequestError extends Error {
  override name = 'GraphRequestError';
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
    readonly requestId: string | undefined,
    /** Redacted: no query string. */
    readonly url: string,
    readonly retriable: boolean,
  ) {
    super(message);
  }

  static from(response: PipelineResponse, what: string): GraphRequestError {
    const url = redactUrl(response.request.url);
    const { code, message } = errorBody(response.bodyAsText ?? '');
    const requestId = response.headers.get('request-id') ?? response.headers.get('x-ms-request-id') ?? undefined;
    const retriable = response.status === 408 || response.status === 429 || response.status >= 500;
    const detail = [code, message].filter(Boolean).join(': ');
    return new GraphRequestError(
      `Graph ${what} failed with HTTP ${response.status}${detail ? ` (${detail})` : ''} at ${url}`,
      response.status,
      code,
      requestId,
      url,
      retriable,
    );
  }
}

/** Graph JSON (`{"error":{"code","message"}}`) or Storage XML (`<Code>..</Code><Message>..</Message>`). */
function errorBody(text: string): { code?: string; message?: string } {
  try {
    const json = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const error = json.error ?? (json as { code?: unknown; message?: unknown });
    return {
      code: error.code === undefined ? undefined : String(error.code),
      message: typeof error.message === 'string' ? scrub(error.message) : undefined,
    };
  } catch {
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
    return { code, message: message ? scrub(message.split('\n')[0] ?? '') : undefined };
  }
}

/** Storage error messages can echo the signed URL; never repeat a signature or a token. */
function scrub(text: string): string {
  return text.replace(/(sig|se|skoid|sktid|sv|sp|sr|sasToken)=[^&\s"']*/gi, '$1=REDACTED').slice(0, 500);
}
