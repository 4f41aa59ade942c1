// Microsoft Graph v2 exports (ref §6, §12 items 7-10), billed (by invoice) and unbilled (by currency and billing
// period, current or last month): start an export, poll its operation, read the manifest; and the blob host that
// serves the manifest's gzip JSON Lines blobs and the signed statement links.
import { createGzip } from 'node:zlib';
import { linesPublished, PARTNER_TENANT_ID, rowChunks, type UnbilledPeriod, type V2Kind } from './dataset.js';
import { type Exchange, type SimState, send, xmlAuthFailed } from './http.js';
import { pdfBytes } from './pdf.js';
import { checkBearer } from './tokens.js';

const BASE = '/v1.0/reports/partners/billing';
const CONTAINERS: Record<V2Kind, string> = {
  usage: 'billedusagefastpath',
  reconciliation: 'billedreconciliationfastpath',
};
// `unbilledusagefastpath` is the container name seen in the wild (ref §6.3); the reconciliation one follows suit.
const UNBILLED_CONTAINERS: Record<V2Kind, string> = {
  usage: 'unbilledusagefastpath',
  reconciliation: 'unbilledreconciliationfastpath',
};

/** What an export covers: one invoice's billed data, or the unbilled data of a currency and month as of a day. */
type ExportTarget =
  | { type: 'billed'; invoiceId: string }
  | { type: 'unbilled'; currency: string; period: UnbilledPeriod; month: string; days: number };

interface Operation {
  id: string;
  sequence: number;
  kind: V2Kind;
  target: ExportTarget;
  attributeSet: 'full' | 'basic';
  createdAt: number;
  polls: number;
  manifestId?: string;
  version?: number;
}

export class GraphState {
  operations = new Map<string, Operation>();
  manifests = new Map<string, Operation>();
  /** Export key (invoice id, or `unbilled|kind|currency|period`) → failed "5000" answers still owed (`v2NoData`). */
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
    /^\/v1\.0\/reports\/partners\/billing\/(reconciliation|usage)\/(billed|unbilled)\/(export|microsoft\.graph\.partners\.billing\.export)$/i.exec(
      path,
    );
  if (exportMatch) {
    if (ex.req.method !== 'POST') return graphError(ex, 405, 'BadRequest', 'The HTTP method is not allowed.');
    let body: { invoiceId?: unknown; attributeSet?: unknown; currencyCode?: unknown; billingPeriod?: unknown };
    try {
      body = JSON.parse(ex.body.toString('utf8') || '{}') as typeof body;
    } catch {
      return graphError(ex, 400, 'BadRequest', 'The request body is not valid JSON.');
    }
    if (typeof body !== 'object' || body === null) {
      return graphError(ex, 400, 'BadRequest', 'The request body must be a JSON object.');
    }
    const attributeSet = body.attributeSet ?? 'full';
    if (attributeSet !== 'full' && attributeSet !== 'basic') {
      return graphError(ex, 400, 'BadRequest', `Invalid value '${String(attributeSet)}' for 'attributeSet'.`);
    }
    const kind = (exportMatch[1] ?? 'usage').toLowerCase() as V2Kind;
    let target: ExportTarget;
    if ((exportMatch[2] ?? '').toLowerCase() === 'billed') {
      if (typeof body.invoiceId !== 'string' || body.invoiceId.trim() === '') {
        return graphError(ex, 400, 'BadRequest', "The parameter 'invoiceId' is required.");
      }
      target = { type: 'billed', invoiceId: body.invoiceId };
    } else {
      // Required; its values are not documented, so any string is taken (one without data fails with 5000).
      if (typeof body.currencyCode !== 'string' || body.currencyCode.trim() === '') {
        return graphError(ex, 400, 'BadRequest', "The parameter 'currencyCode' is required.");
      }
      // Graph's billingPeriod enum: current, last (unknownFutureValue must not be sent).
      if (body.billingPeriod !== 'current' && body.billingPeriod !== 'last') {
        return graphError(
          ex,
          400,
          'BadRequest',
          body.billingPeriod === undefined
            ? "The parameter 'billingPeriod' is required."
            : `Invalid value '${String(body.billingPeriod)}' for 'billingPeriod'; expected 'current' or 'last'.`,
        );
      }
      // The data is taken as of now: the operation keeps serving that day's data however the clock moves on.
      const at = state.now();
      const month = monthOf(at, body.billingPeriod === 'current' ? 0 : -1);
      const days = body.billingPeriod === 'current' ? new Date(at).getUTCDate() : daysIn(month);
      target = { type: 'unbilled', currency: body.currencyCode.toUpperCase(), period: body.billingPeriod, month, days };
    }
    const operation: Operation = {
      id: crypto.randomUUID(),
      sequence: graph.nextSequence(),
      kind,
      target,
      attributeSet,
      createdAt: state.now(),
      polls: 0,
    };
    graph.operations.set(operation.id, operation);
    const key = noDataKey(operation);
    if (ex.noDataPolls) graph.noData.set(key, (graph.noData.get(key) ?? 0) + ex.noDataPolls);
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
  const { target } = operation;
  const rows = exportData(operation, state)?.rows ?? 0;
  const key = noDataKey(operation);
  const owed = graph.noData.get(key) ?? 0;
  if (rows === 0 || owed > 0) {
    if (owed > 0) graph.noData.set(key, owed - 1);
    const what = operation.kind === 'usage' ? 'usage' : 'reconciliation';
    const message =
      target.type === 'billed'
        ? `No ${what} data available currently for Invoice ${target.invoiceId}. Please try again later.`
        : `No unbilled ${what} data available currently for currency ${target.currency} and billing period ${target.period}. Please try again later.`;
    return {
      '@odata.type': '#microsoft.graph.partners.billing.failedOperation',
      ...common,
      status: 'failed',
      error: { message, code: '5000' },
    };
  }
  if (operation.manifestId === undefined) {
    operation.polls++;
    if (operationState(operation, state) === 'running') {
      return { '@odata.type': '#microsoft.graph.partners.billing.runningOperation', ...common, status: 'running' };
    }
    operation.manifestId = crypto.randomUUID();
    operation.version = target.type === 'billed' ? state.dataset.v2Version(target.invoiceId) : 1;
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

const pad2 = (n: number) => String(n).padStart(2, '0');
/** `YYYY-MM` of a UTC instant, shifted by `months`. */
function monthOf(at: number, months = 0): string {
  const d = new Date(at);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1)).toISOString().slice(0, 7);
}
function daysIn(month: string): number {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

function noDataKey(operation: Operation): string {
  const { target } = operation;
  return target.type === 'billed' ? target.invoiceId : `unbilled|${operation.kind}|${target.currency}|${target.period}`;
}

interface ExportData {
  rows: number;
  render: (index: number) => string;
}

/** The rows an operation exports; undefined when there are none to export (failed "5000"). */
function exportData(operation: Operation, state: SimState): ExportData | undefined {
  const { target } = operation;
  if (target.type === 'unbilled') {
    const view = state.dataset.unbilledByMonth(
      operation.kind,
      target.currency,
      target.period,
      target.month,
      target.days,
    );
    return view && view.rows > 0 ? { rows: view.rows, render: view.row } : undefined;
  }
  const spec = state.dataset.invoices().find((s) => s.id === target.invoiceId);
  if (!spec || spec.kind === 'legacy' || !linesPublished(spec, state.now())) return undefined;
  const rows = state.dataset.v2Rows(target.invoiceId, operation.kind);
  return rows > 0 ? { rows, render: v2Renderer(state, target.invoiceId, operation.kind) } : undefined;
}

/** The blob directory of an operation's data (the SAS signs it, so the blob host can trust what it names). */
function rootPathOf(operation: Operation, state: SimState): string {
  const { target } = operation;
  const common = `v1/PartnerTenantId=${PARTNER_TENANT_ID}`;
  if (target.type === 'unbilled') {
    const month = target.month.replace('-', '');
    return `/${UNBILLED_CONTAINERS[operation.kind]}/${common}/BillingMonth=${month}/BillingPeriod=${target.period}/Currency=${target.currency}/AsOf=${month}${pad2(target.days)}/Fragment=${operation.attributeSet}/PartitionType=default`;
  }
  const version = operation.version ?? 1;
  const spec = state.dataset.invoices().find((s) => s.id === target.invoiceId);
  const month = (spec?.billingPeriod ?? '2026-01').replace('-', '');
  const invoiceVersion = `${month}08${String(version).padStart(4, '0')}`;
  return `/${CONTAINERS[operation.kind]}/${common}/BillingMonth=${month}/InvoiceId=${target.invoiceId}/InvoiceVersion=${invoiceVersion}/Fragment=${operation.attributeSet}/PartitionType=default`;
}

/** The manifest (ref §6.3) with a SAS issued now on the simulator clock. */
function manifest(operation: Operation, state: SimState): Record<string, unknown> {
  const rootPath = rootPathOf(operation, state);
  const rows = exportData(operation, state)?.rows ?? 0;
  const { v2 } = state.options;
  const perBlob = v2.rowsPerBlob;
  const blobCount = Math.max(1, Math.ceil(rows / perBlob));
  const uid = hashHex(`${rootPath}|uid`, state, 32);
  const guid = `${uid.slice(0, 8)}-${uid.slice(8, 12)}-${uid.slice(12, 16)}-${uid.slice(16, 20)}-${uid.slice(20, 32)}`;
  const now = state.now();
  const se = isoOf(now + v2.sasTtlMs).replace(/\.\d+Z$/, 'Z');
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
    dataFormat: v2.dataFormat,
    createdDateTime: isoOf(operation.createdAt),
    eTag: Buffer.from(hashHex(`${rootPath}|etag`, state, 16), 'hex')
      .toString('base64url')
      .slice(0, 17),
    partnerTenantId: PARTNER_TENANT_ID,
    rootDirectory: `${state.urls.blob}${rootPath}`,
    sasToken: sas.toString(),
    partitionType: 'default',
    blobCount,
    blobs: Array.from({ length: blobCount }, (_, i) => {
      const blob: Record<string, unknown> = {
        name: `part-${String(i).padStart(5, '0')}-${guid}.c000.json.gz`,
        partitionValue: 'default',
      };
      if (v2.itemCount !== 'omit') {
        const count = Math.max(0, Math.min(rows, (i + 1) * perBlob) - i * perBlob);
        blob[v2.itemCountKey] = v2.itemCount === 'lie' && i === 0 ? count + v2.itemCountLieBy : count;
      }
      return blob;
    }),
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
  const blob = /^(\/([a-z]+fastpath)\/v1\/.*\/PartitionType=default)\/part-(\d{5})-[^/]+\.c000\.json\.gz$/.exec(path);
  if (!blob) return notFound();
  const [, rootPath = '', container = '', index = '0'] = blob;
  if (!sig || state.sign(`${rootPath}|${se}`) !== sig) return denied('Signature did not match.');
  if (expired()) return denied('Signed expiry time has expired.');
  const data = blobData(rootPath, container, state);
  if (!data) return notFound();
  const perBlob = state.options.v2.rowsPerBlob;
  const from = Number(index) * perBlob;
  if (from > 0 && from >= data.rows) return notFound();
  const to = Math.min(data.rows, from + perBlob);
  const gzip = createGzip({ level: 1 });
  const lines = data.rows > 0 ? rowChunks(data.rows, from, to, (i) => `${data.render(i)}\n`, '') : [];
  ex.res.writeHead(200, { ...blobHeaders, 'content-type': 'application/octet-stream', 'x-ms-blob-type': 'BlockBlob' });
  ex.res.on('close', () => gzip.destroy());
  gzip.on('error', () => ex.res.destroy());
  gzip.pipe(ex.res);
  await sendGzip(gzip, lines);
}

/** The rows under a signed blob directory, read back from the path the manifest named. */
function blobData(rootPath: string, container: string, state: SimState): ExportData | undefined {
  const segment = (name: string) => {
    const found = new RegExp(`/${name}=([^/]+)`).exec(rootPath)?.[1];
    return found === undefined ? undefined : decodeURIComponent(found);
  };
  const billedKind = (Object.keys(CONTAINERS) as V2Kind[]).find((k) => CONTAINERS[k] === container);
  if (billedKind) {
    const invoiceId = segment('InvoiceId') ?? '';
    const rows = state.dataset.v2Rows(invoiceId, billedKind);
    return { rows, render: rows > 0 ? v2Renderer(state, invoiceId, billedKind) : () => '' };
  }
  const kind = (Object.keys(UNBILLED_CONTAINERS) as V2Kind[]).find((k) => UNBILLED_CONTAINERS[k] === container);
  const month = segment('BillingMonth');
  const asOf = segment('AsOf');
  const period = segment('BillingPeriod');
  const currency = segment('Currency');
  if (!kind || !month || !asOf || !currency || (period !== 'current' && period !== 'last')) return undefined;
  const view = state.dataset.unbilledByMonth(
    kind,
    currency,
    period,
    `${month.slice(0, 4)}-${month.slice(4, 6)}`,
    Number(asOf.slice(6, 8)),
  );
  return view ? { rows: view.rows, render: view.row } : undefined;
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
