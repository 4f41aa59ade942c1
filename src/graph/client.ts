// The Graph v2 billed exports (ref §6): start an export, check its operation one step at a time (a Function never
// sleeps waiting), and stream the manifest's gzip JSON Lines blobs from their SAS URLs, resumable by line.
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient, Pipeline, PipelineResponse } from '@azure/core-rest-pipeline';
import { ApiError } from '../http/errors.js';
import { BLOB_HOST_PATTERN, createLinkPolicy } from '../http/link-policy.js';
import type { Page } from '../http/paging.js';
import {
  createPipeline,
  DEFAULT_MAX_PAGE_BYTES,
  defaultHttpClient,
  type RequestTelemetry,
  sendForStream,
  sendForText,
} from '../http/pipeline.js';
import { redactUrl } from '../http/redact.js';
import { retryAfterMs } from '../http/retry.js';
import { DisallowedLinkError, SasExpiredError, UnexpectedOperationError } from './errors.js';
import {
  checkManifest,
  type Manifest,
  type ManifestCheckpoint,
  manifestCheckpointSchema,
  manifestSchema,
  readManifestPages,
} from './lines.js';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';

export type ExportKind = 'reconciliation' | 'usage';
export type AttributeSet = 'full' | 'basic';
/** The unbilled exports' `billingPeriod`: Graph takes only these two words, never a month. */
export type UnbilledPeriod = 'current' | 'last';

export interface GraphBillingClientOptions {
  /** `https://graph.microsoft.com` (a trailing `/v1.0` or `/beta` is kept as given). */
  baseUrl: string;
  credential: TokenCredential;
  /** Which service-provided links may be followed; default: https to graph.microsoft.com or *.blob.core.windows.net. */
  isAllowedLink?: (url: URL) => boolean;
  timeoutMs?: number;
  maxRetries?: number;
  /** Base and cap of the exponential backoff between retries (shared pipeline defaults when absent). */
  retryDelayInMs?: number;
  maxRetryDelayInMs?: number;
  /** A Retry-After longer than this fails the call at once (a retriable ApiError) instead of blocking. */
  maxRetryAfterMs?: number;
  /** The largest JSON body (operation, manifest) read (default 256 MiB, setting MAX_PAGE_BYTES). */
  maxPageBytes?: number;
  /** Local runs against the simulator only: plain http (with the bearer token) to loopback. */
  allowInsecureLoopback?: boolean;
  /** Test and local-demo hook only. */
  httpClient?: HttpClient;
  /** Poll interval used when the service sends no Retry-After (seconds). */
  defaultRetryAfterSeconds?: number;
  /** The longest JSON line an export blob may hold (default 4 MiB, setting MAX_LINE_BYTES). */
  maxLineBytes?: number;
  /** Telemetry of every HTTP attempt (retries included): host `graph`, export blobs `blob`. */
  onRequestCompleted?: (info: RequestTelemetry) => void;
}

export interface StartExportOptions {
  attributeSet?: AttributeSet;
  correlationId?: string;
  abortSignal?: AbortSignal;
}

export interface StartedExport {
  operationLocation: string;
  retryAfterSeconds: number;
}

export type OperationState =
  | { status: 'running'; retryAfterSeconds: number }
  | { status: 'succeeded'; manifest: Manifest }
  | { status: 'noData'; code: '5000'; message: string }
  | { status: 'failed'; code: string; message: string };

export interface ManifestPagesOptions {
  /** Where to resume: the `next` of the last page whose rows are durable; absent for the start. */
  checkpoint?: ManifestCheckpoint | null;
  /** Rows per page (default 2000). */
  maxLines?: number;
  abortSignal?: AbortSignal;
}

export const DEFAULT_MAX_LINE_BYTES = 4 * 1024 ** 2;

/** Graph's "no data available (yet)" failure code: legacy invoices, or data not published yet (ref §7). */
const NO_DATA_CODE = '5000';

/** Default link policy: https to graph.microsoft.com or an Azure blob host (the export SAS URLs). */
export const defaultGraphLinkPolicy = createLinkPolicy({ hostPatterns: ['graph.microsoft.com', BLOB_HOST_PATTERN] });

/** A poll interval from the response's Retry-After (whole seconds, rounded up), or undefined. */
function retryAfterSecondsOf(headers: PipelineResponse['headers']): number | undefined {
  const ms = retryAfterMs(headers);
  return ms === undefined ? undefined : Math.ceil(ms / 1000);
}

export class GraphBillingClient {
  readonly #baseUrl: string;
  readonly #isAllowedLink: (url: URL) => boolean;
  readonly #defaultRetryAfter: number;
  readonly #maxLineBytes: number;
  readonly #api: Pipeline;
  readonly #blobs: Pipeline;
  readonly #httpClient: HttpClient;

  constructor(options: GraphBillingClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#isAllowedLink = options.isAllowedLink ?? defaultGraphLinkPolicy;
    this.#defaultRetryAfter = options.defaultRetryAfterSeconds ?? 30;
    this.#maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const common = {
      timeoutMs: options.timeoutMs,
      maxRetries: options.maxRetries,
      retryDelayInMs: options.retryDelayInMs,
      maxRetryDelayInMs: options.maxRetryDelayInMs,
      maxRetryAfterMs: options.maxRetryAfterMs,
      textBodyLimit: {
        bytes: options.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES,
        name: 'maxPageBytes (setting MAX_PAGE_BYTES)',
      },
      allowInsecureLoopback: options.allowInsecureLoopback,
      onRequestCompleted: options.onRequestCompleted,
    };
    this.#api = createPipeline({
      ...common,
      telemetryHost: 'graph',
      credential: options.credential,
      scopes: GRAPH_SCOPE,
      requestIdHeaderName: 'client-request-id',
    });
    // No credential at all: a SAS URL must never carry an Authorization header.
    this.#blobs = createPipeline({ ...common, telemetryHost: 'blob', requestIdHeaderName: 'x-ms-client-request-id' });
    this.#httpClient = options.httpClient ?? defaultHttpClient();
  }

  /** POST the billed export; the service answers 202 with the operation's URL in `Location`. */
  async startExport(kind: ExportKind, invoiceId: string, options: StartExportOptions = {}): Promise<StartedExport> {
    return this.#start(
      kind,
      'billed',
      { invoiceId, attributeSet: options.attributeSet ?? 'full' },
      `the ${kind} export of ${invoiceId}`,
      options,
    );
  }

  /**
   * POST the unbilled export of a currency for `current` or `last` (the only billing periods Graph takes: never a
   * month); the same operation, manifest and SAS-blob flow as the billed exports.
   */
  async startUnbilledExport(
    kind: ExportKind,
    target: { currencyCode: string; billingPeriod: UnbilledPeriod },
    options: StartExportOptions = {},
  ): Promise<StartedExport> {
    return this.#start(
      kind,
      'unbilled',
      {
        currencyCode: target.currencyCode,
        billingPeriod: target.billingPeriod,
        attributeSet: options.attributeSet ?? 'full',
      },
      `the unbilled ${kind} export of ${target.currencyCode} (${target.billingPeriod})`,
      options,
    );
  }

  async #start(
    kind: ExportKind,
    scope: 'billed' | 'unbilled',
    body: Record<string, string>,
    what: string,
    options: StartExportOptions,
  ): Promise<StartedExport> {
    const area = kind === 'usage' ? 'usage' : 'reconciliation';
    const versioned = /\/(v1\.0|beta)$/.test(this.#baseUrl) ? this.#baseUrl : `${this.#baseUrl}/v1.0`;
    const url = `${versioned}/reports/partners/billing/${area}/${scope}/export`;
    const { response } = await sendForText(
      this.#api,
      url,
      {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'Content-Type': 'application/json' },
        correlationId: options.correlationId,
        abortSignal: options.abortSignal,
      },
      this.#httpClient,
    );
    const location = response.headers.get('location');
    if (!location) {
      throw new UnexpectedOperationError(`Graph accepted ${what} without a Location header`);
    }
    const operationLocation = this.#graphLink('operation Location', new URL(location, url)).href;
    return {
      operationLocation,
      retryAfterSeconds: retryAfterSecondsOf(response.headers) ?? this.#defaultRetryAfter,
    };
  }

  /** One poll of the operation; the caller decides when to poll again (`retryAfterSeconds`). */
  async checkOperation(
    operationLocation: string,
    options: { correlationId?: string; abortSignal?: AbortSignal } = {},
  ): Promise<OperationState> {
    const url = this.#graphLink('operation Location', new URL(operationLocation));
    const response = await this.#getJson(url, 'check export operation', options);
    const body = response.json;
    const type = String(body['@odata.type'] ?? '').toLowerCase();
    const status = String(body.status ?? '').toLowerCase();
    const retryAfterSeconds = retryAfterSecondsOf(response.headers) ?? this.#defaultRetryAfter;

    if (type.endsWith('.failedoperation') || status === 'failed') {
      const error = (body.error ?? {}) as { code?: unknown; message?: unknown };
      const code = error.code === undefined || error.code === null ? 'unknown' : String(error.code);
      const message = typeof error.message === 'string' ? error.message : 'The export operation failed';
      return code === NO_DATA_CODE
        ? { status: 'noData', code: NO_DATA_CODE, message }
        : { status: 'failed', code, message };
    }
    const done = status === 'succeeded' || status === 'completed';
    if (type.endsWith('.exportsuccessoperation') || (done && !type.endsWith('.runningoperation'))) {
      return { status: 'succeeded', manifest: await this.#manifestOf(body, options) };
    }
    if (type.endsWith('.runningoperation') || status === 'running' || status === 'notstarted') {
      return { status: 'running', retryAfterSeconds };
    }
    throw new UnexpectedOperationError(
      `Unexpected export operation state (type ${JSON.stringify(body['@odata.type'])}, status ${JSON.stringify(body.status)})`,
    );
  }

  /**
   * Rows of every blob in manifest order, in pages of at most `maxLines` (a page never spans two blobs),
   * resumable from a checkpoint. Before any blob is fetched: the rootDirectory must be allowed, the dataFormat
   * known and blobCount equal to the blobs listed; the checkpoint is validated.
   */
  async *manifestPages(
    manifest: Manifest,
    options: ManifestPagesOptions = {},
  ): AsyncIterableIterator<Page<ManifestCheckpoint>> {
    this.#allowed('manifest rootDirectory', new URL(manifest.rootDirectory));
    checkManifest(manifest);
    const checkpoint = options.checkpoint
      ? manifestCheckpointSchema.parse(options.checkpoint)
      : { blobIndex: 0, line: 0, rowsThrough: 0 };
    yield* readManifestPages(manifest, {
      checkpoint,
      maxLines: Math.max(1, Math.floor(options.maxLines ?? 2000)),
      maxLineBytes: this.#maxLineBytes,
      open: (url, blobIndex) => this.#openBlob(url, blobIndex, options.abortSignal),
    });
  }

  async #openBlob(url: string, blobIndex: number, abortSignal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    this.#allowed('manifest blob', new URL(url));
    try {
      const { stream } = await sendForStream(
        this.#blobs,
        url,
        { headers: { Accept: 'application/octet-stream' }, abortSignal },
        this.#httpClient,
      );
      return stream;
    } catch (error) {
      if (error instanceof ApiError && error.status === 403 && isSasFailure(error)) {
        throw new SasExpiredError(redactUrl(url), blobIndex);
      }
      throw error;
    }
  }

  async #manifestOf(
    operation: Record<string, unknown>,
    options: { correlationId?: string; abortSignal?: AbortSignal },
  ): Promise<Manifest> {
    const inline = operation.resourceLocation;
    if (inline && typeof inline === 'object') return asManifest(inline);
    const link = operation['resourceLocation@odata.navigationLink'] ?? inline;
    if (typeof link !== 'string' || !link) {
      throw new UnexpectedOperationError('The export succeeded but names no manifest (no resourceLocation)');
    }
    const url = this.#graphLink('manifest link', new URL(link, this.#baseUrl));
    return asManifest((await this.#getJson(url, 'get export manifest', options)).json);
  }

  async #getJson(
    url: URL,
    what: string,
    options: { correlationId?: string; abortSignal?: AbortSignal },
  ): Promise<{ json: Record<string, unknown>; headers: PipelineResponse['headers'] }> {
    const { text, response } = await sendForText(
      this.#api,
      url.href,
      { correlationId: options.correlationId, abortSignal: options.abortSignal },
      this.#httpClient,
    );
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UnexpectedOperationError(`Graph returned a body that is not JSON (${what}, ${redactUrl(url.href)})`);
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) {
      throw new UnexpectedOperationError(`Graph returned a JSON body that is not an object (${what})`);
    }
    return { json: json as Record<string, unknown>, headers: response.headers };
  }

  #allowed(what: string, url: URL): URL {
    if (!this.#isAllowedLink(url)) throw new DisallowedLinkError(what, redactUrl(url.href));
    return url;
  }

  /** A link that gets the Graph bearer token: allowed, and on the configured Graph origin only (never a blob host). */
  #graphLink(what: string, url: URL): URL {
    this.#allowed(what, url);
    if (url.origin !== new URL(this.#baseUrl).origin) {
      throw new DisallowedLinkError(what, redactUrl(url.href), 'it is not on the configured Graph origin');
    }
    return url;
  }
}

function asManifest(value: unknown): Manifest {
  const result = manifestSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new UnexpectedOperationError(`The export manifest does not have the expected shape: ${problems}`);
}

/** Storage answers 403 AuthenticationFailed for an expired or otherwise rejected SAS. */
function isSasFailure(error: ApiError): boolean {
  return error.code === 'AuthenticationFailed' || /AuthenticationFailed|expired|signature/i.test(error.description);
}
