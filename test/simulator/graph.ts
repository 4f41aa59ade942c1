// Microsoft Graph v2 billed exports (ref §6, §12 items 7-10): start an export, poll its operation, read the
// manifest; and the blob host that serves the manifest's gzip JSON Lines blobs and the signed statement links.
import { createGzip } from 'node:zlib';
import { linesPublished, PARTNER_TENANT_ID, rowChunks, type V2Kind } from './dataset.js';
import { type Exchange, type SimState, send, xmlAuthFailed } from './http.js';
import { pdfBytes } from './pdf.js';
import { checkBearer } from './tokens.js';

const BASE = '/v1.0/reports/partners/billing';
const CONTAINERS: Record<V2Kind, string> = {
  usage: 'billedusagefastpath',
  reconciliation: 'billedreconciliationfastpath',
};

interface Operation {
  id: string;
  sequence: number;
  kind: V2Kind;
  invoiceId: string;
  attributeSet: 'full' | 'basic';
  createdAt: number;
  polls: number;
  manifestId?: string;
  version?: number;
}

export class GraphState {
  operations = new Map<string, Operation>();
  manifests = new Map<string, Operation>();
  /** Invoice id → failed "5000" answers still owed (the `v2NoData` fault). */
  noData = new Map<string, number>();
  #sequence = 0;
  nextSequence(): number {
    return this.#sequence++;
  }
}

const graphError = (
  ex: Exchange,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
) =>
  send(
    ex,
    status,
    JSON.stringify({
      error: {
        code,
        message,
        innerError: {
          date: new Date().toISOString(),
          'request-id': crypto.randomUUID(),
          'client-request-id': String(ex.req.headers['client-request-id'] ?? ''),
        },
      },
    }),
    { 'content-type': 'application/json', ...headers },
  );

const isoOf = (ms: number) => new Date(ms).toISOString();

export async function handleGraph(ex: Exchange, state: SimState, graph: GraphState): Promise<void> {
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    send(ex, status, JSON.stringify(body), {
      'content-type':
        'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8',
      'request-id': crypto.randomUUID(),
      'client-request-id': String(ex.req.headers['client-request-id'] ?? crypto.randomUUID()),
      ...headers,
    });
  if (state.options.requireAuth) {
    const check = checkBearer(ex.req.headers.authorization, 'graph', state.now());
    if (!check.ok) {
      return graphError(
        ex,
        401,
        'InvalidAuthenticationToken',
        check.reason === 'expired'
          ? 'Access token has expired or is not yet valid.'
          : `Access token is ${check.reason}.`,
        {
          'www-authenticate':
            'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
        },
      );
    }
  }
  const path = ex.url.pathname;
  const exportMatch =
    /^\/v1\.0\/reports\/partners\/billing\/(reconciliation|usage)\/billed\/(export|microsoft\.graph\.partners\.billing\.export)$/i.exec(
      path,
    );
  if (exportMatch) {
    if (ex.req.method !== 'POST') return graphError(ex, 405, 'BadRequest', 'The HTTP method is not allowed.');
    let body: { invoiceId?: unknown; attributeSet?: unknown };
    try {
      body = JSON.parse(ex.body.toString('utf8') || '{}') as typeof body;
    } catch {
      return graphError(ex, 400, 'BadRequest', 'The request body is not valid JSON.');
    }
    if (typeof body.invoiceId !== 'string' || body.invoiceId.trim() === '') {
      return graphError(ex, 400, 'BadRequest', "The parameter 'invoiceId' is required.");
    }
    const attributeSet = body.attributeSet ?? 'full';
    if (attributeSet !== 'full' && attributeSet !== 'basic') {
      return graphError(ex, 400, 'BadRequest', `Invalid value '${String(attributeSet)}' for 'attributeSet'.`);
    }
    const operation: Operation = {
      id: crypto.randomUUID(),
      sequence: graph.nextSequence(),
      kind: (exportMatch[1] ?? 'usage').toLowerCase() as V2Kind,
      invoiceId: body.invoiceId,
      attributeSet,
      createdAt: state.now(),
      polls: 0,
    };
    graph.operations.set(operation.id, operation);
    if (ex.noDataPolls)
      graph.noData.set(operation.invoiceId, (graph.noData.get(operation.invoiceId) ?? 0) + ex.noDataPolls);
    return send(ex, 202, undefined, {
      location: `${state.urls.graph}${BASE}/operations/${operation.id}`,
      'retry-after': String(state.options.v2.retryAfterSeconds),
    });
  }
  if (ex.req.method !== 'GET') return graphError(ex, 405, 'BadRequest', 'The HTTP method is not allowed.');
  const operationMatch = /^\/v1\.0\/reports\/partners\/billing\/operations\/([^/]+)$/i.exec(path);
  if (operationMatch) {
    const operation = graph.operations.get(operationMatch[1] ?? '');
    if (!operation) return graphError(ex, 404, 'NotFound', 'The operation was not found.');
    return json(200, operationBody(operation, state, graph), operationHeaders(operation, state));
  }
  const manifestMatch = /^\/v1\.0\/reports\/partners\/billing\/manifests\/([^/]+)$/i.exec(path);
  if (manifestMatch) {
    const operation = graph.manifests.get(manifestMatch[1] ?? '');
    if (!operation) return graphError(ex, 404, 'NotFound', 'The manifest was not found.');
    return json(200, {
      '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#reports/partners/billing/manifests/$entity',
      ...manifest(operation, state),
    });
  }
  return graphError(ex, 400, 'BadRequest', `Resource not found for the segment '${path.split('/').pop() ?? ''}'.`);
}

function operationHeaders(operation: Operation, state: SimState): Record<string, string> {
  return operation.manifestId === undefined && operation.polls > 0 && operationState(operation, state) === 'running'
    ? { 'retry-after': String(state.options.v2.retryAfterSeconds) }
    : {};
}

function operationState(operation: Operation, state: SimState): 'running' | 'done' {
  return operation.polls <= state.options.v2.pollsBeforeDone ? 'running' : 'done';
}

function operationBody(operation: Operation, state: SimState, graph: GraphState): Record<string, unknown> {
  const common = {
    '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#reports/partners/billing/operations/$entity',
    id: operation.id,
    createdDateTime: isoOf(operation.createdAt),
    lastActionDateTime: isoOf(state.now()),
  };
  const spec = state.dataset.invoices().find((s) => s.id === operation.invoiceId);
  const rows =
    spec && linesPublished(spec, state.now()) ? state.dataset.v2Rows(operation.invoiceId, operation.kind) : 0;
  const owed = graph.noData.get(operation.invoiceId) ?? 0;
  if (!spec || spec.kind === 'legacy' || rows === 0 || owed > 0) {
    if (owed > 0) graph.noData.set(operation.invoiceId, owed - 1);
    const what = operation.kind === 'usage' ? 'usage' : 'reconciliation';
    return {
      '@odata.type': '#microsoft.graph.partners.billing.failedOperation',
      ...common,
      status: 'failed',
      error: {
        message: `No ${what} data available currently for Invoice ${operation.invoiceId}. Please try again later.`,
        code: '5000',
      },
    };
  }
  if (operation.manifestId === undefined) {
    operation.polls++;
    if (operationState(operation, state) === 'running') {
      return { '@odata.type': '#microsoft.graph.partners.billing.runningOperation', ...common, status: 'running' };
    }
    operation.manifestId = crypto.randomUUID();
    operation.version = state.dataset.v2Version(operation.invoiceId);
    graph.manifests.set(operation.manifestId, operation);
  }
  const body: Record<string, unknown> = {
    '@odata.type': '#microsoft.graph.partners.billing.exportSuccessOperation',
    ...common,
    // The sources disagree (ref §6.2 item 3): alternate so clients must accept both.
    status: operation.sequence % 2 === 0 ? 'succeeded' : 'completed',
  };
  const mode = state.options.v2.manifestMode;
  if (mode === 'inline' || mode === 'both') body.resourceLocation = manifest(operation, state);
  if (mode === 'link' || mode === 'both') {
    body['resourceLocation@odata.navigationLink'] = `${state.urls.graph}${BASE}/manifests/${operation.manifestId}`;
  }
  return body;
}

function hashHex(text: string, state: SimState, length: number): string {
  return Buffer.from(state.sign(text), 'base64').toString('hex').slice(0, length);
}

/** The manifest (ref §6.3) with a SAS issued now on the simulator clock. */
function manifest(operation: Operation, state: SimState): Record<string, unknown> {
  const version = operation.version ?? 1;
  const spec = state.dataset.invoices().find((s) => s.id === operation.invoiceId);
  const month = (spec?.billingPeriod ?? '2026-01').replace('-', '');
  const invoiceVersion = `${month}08${String(version).padStart(4, '0')}`;
  const rootPath = `/${CONTAINERS[operation.kind]}/v1/PartnerTenantId=${PARTNER_TENANT_ID}/BillingMonth=${month}/InvoiceId=${operation.invoiceId}/InvoiceVersion=${invoiceVersion}/Fragment=${operation.attributeSet}/PartitionType=default`;
  const rows = state.dataset.v2Rows(operation.invoiceId, operation.kind);
  const blobCount = Math.max(1, Math.ceil(rows / state.options.v2.rowsPerBlob));
  const uid = hashHex(`${rootPath}|uid`, state, 32);
  const guid = `${uid.slice(0, 8)}-${uid.slice(8, 12)}-${uid.slice(12, 16)}-${uid.slice(16, 20)}-${uid.slice(20, 32)}`;
  const now = state.now();
  const se = isoOf(now + state.options.v2.sasTtlMs).replace(/\.\d+Z$/, 'Z');
  const sig = state.sign(`${rootPath}|${se}`);
  const sas = new URLSearchParams({
    skoid: 'b6f8a4c2-9d3e-4f1a-8b7c-6d5e4f3a2b1c',
    sktid: PARTNER_TENANT_ID,
    skt: isoOf(now).replace(/\.\d+Z$/, 'Z'),
    ske: se,
    sks: 'b',
    skv: '2021-08-06',
    sv: '2021-08-06',
    se,
    sr: 'd',
    sp: 'rl',
    sdd: '7',
    sig,
  });
  return {
    id: operation.manifestId,
    schemaVersion: '2',
    dataFormat: 'compressedJSON',
    createdDateTime: isoOf(operation.createdAt),
    eTag: Buffer.from(hashHex(`${rootPath}|etag`, state, 16), 'hex')
      .toString('base64url')
      .slice(0, 17),
    partnerTenantId: PARTNER_TENANT_ID,
    rootDirectory: `${state.urls.blob}${rootPath}`,
    sasToken: sas.toString(),
    partitionType: 'default',
    blobCount,
    blobs: Array.from({ length: blobCount }, (_, i) => ({
      name: `part-${String(i).padStart(5, '0')}-${guid}.c000.json.gz`,
      partitionValue: 'default',
    })),
  };
}

/** The blob host: signed statement links and the export blobs, each checked against its signature and `se`. */
export async function handleBlob(ex: Exchange, state: SimState): Promise<void> {
  const path = ex.url.pathname;
  const se = ex.url.searchParams.get('se') ?? '';
  const sig = ex.url.searchParams.get('sig') ?? '';
  const denied = (detail: string) => send(ex, 403, xmlAuthFailed(detail), { 'content-type': 'application/xml' });
  const notFound = () =>
    send(
      ex,
      404,
      `\uFEFF<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.\nRequestId:${crypto.randomUUID()}</Message></Error>`,
      { 'content-type': 'application/xml' },
    );
  const expired = () => Number.isNaN(Date.parse(se)) || Date.parse(se) <= state.now();
  const blobHeaders = { 'x-ms-request-id': crypto.randomUUID(), 'x-ms-version': '2021-08-06' };

  const statement = /^\/statements\/([^/]+)\.pdf$/.exec(path);
  if (statement) {
    const id = decodeURIComponent(statement[1] ?? '');
    if (!sig || state.sign(`${path}|${se}`) !== sig) return denied('Signature did not match.');
    if (expired()) return denied('Signed expiry time has expired.');
    if (!state.dataset.invoices().some((s) => s.id === id)) return notFound();
    return send(ex, 200, pdfBytes(`statement:${state.options.seed}:${id}`, `Invoice ${id}`), {
      ...blobHeaders,
      'content-type': 'application/pdf',
      'content-disposition': `attachment; filename=Invoice_${id}.pdf`,
    });
  }
  const blob =
    /^(\/(billedusagefastpath|billedreconciliationfastpath)\/v1\/.*\/InvoiceId=([^/]+)\/.*\/PartitionType=default)\/part-(\d{5})-[^/]+\.c000\.json\.gz$/.exec(
      path,
    );
  if (!blob) return notFound();
  const [, rootPath = '', container = '', invoiceId = '', index = '0'] = blob;
  if (!sig || state.sign(`${rootPath}|${se}`) !== sig) return denied('Signature did not match.');
  if (expired()) return denied('Signed expiry time has expired.');
  const kind: V2Kind = container === CONTAINERS.usage ? 'usage' : 'reconciliation';
  const rows = state.dataset.v2Rows(decodeURIComponent(invoiceId), kind);
  const perBlob = state.options.v2.rowsPerBlob;
  const from = Number(index) * perBlob;
  if (from > 0 && from >= rows) return notFound();
  const to = Math.min(rows, from + perBlob);
  const id = decodeURIComponent(invoiceId);
  const gzip = createGzip({ level: 1 });
  const render = state.dataset.v2Rows(id, kind) > 0 ? v2Renderer(state, id, kind) : undefined;
  const lines = render ? rowChunks(rows, from, to, (i) => `${render(i)}\n`, '') : [];
  ex.res.writeHead(200, { ...blobHeaders, 'content-type': 'application/octet-stream', 'x-ms-blob-type': 'BlockBlob' });
  ex.res.on('close', () => gzip.destroy());
  gzip.on('error', () => ex.res.destroy());
  gzip.pipe(ex.res);
  await sendGzip(gzip, lines);
}

function v2Renderer(state: SimState, invoiceId: string, kind: V2Kind): (index: number) => string {
  const part = state.dataset.findPart(invoiceId, 'onetime', kind === 'usage' ? 'usage' : 'billing');
  if (!part) return (index) => state.dataset.v2Row(invoiceId, kind, index);
  return state.dataset.renderer(invoiceId, part, true);
}

async function sendGzip(gzip: ReturnType<typeof createGzip>, chunks: Iterable<string>): Promise<void> {
  for (const chunk of chunks) {
    if (gzip.destroyed) return;
    if (!gzip.write(chunk)) {
      // Both listeners go once either fires: `once('close')` alone stayed behind after every drain, and a large
      // blob piled up enough of them for a MaxListenersExceededWarning.
      await new Promise<void>((resolve) => {
        const done = () => {
          gzip.off('drain', done);
          gzip.off('close', done);
          resolve();
        };
        gzip.on('drain', done);
        gzip.on('close', done);
      });
    }
  }
  gzip.end();
}
