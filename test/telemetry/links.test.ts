// Links are only followed where they belong: a signed PDF link or a manifest rootDirectory that points anywhere
// but an allow-listed host (https), or plain http off the simulator's loopback, is refused with a clear error,
// recorded in the ledger and the log, and never fetched (a recording server on 127.0.0.2 proves no connection).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSyncDeps } from '../../src/app/create-deps.js';
import { invocationLogger } from '../../src/app/invocation-logger.js';
import { runPass } from '../../src/app/run-pass.js';
import { loadSettings, settingsSchema } from '../../src/config.js';
import { linkPolicy } from '../../src/http/link-policy.js';
import type { SyncLogger } from '../../src/telemetry/logger.js';
import { type InvoiceSpec, type Simulator, startSimulator } from '../simulator/index.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { hostWith, simulatorEnvironment } from '../support/sim-env.js';

const legacy: InvoiceSpec = {
  id: 'D0LNK00001',
  kind: 'legacy',
  billingPeriod: '2023-02',
  parts: [{ provider: 'office', lineItemType: 'billing_line_items', rows: 5 }],
};
const recent: InvoiceSpec = {
  id: 'G0LNK00001',
  kind: 'modern',
  billingPeriod: '2026-10',
  parts: [{ provider: 'one_time', lineItemType: 'billing_line_items', rows: 5 }],
};

let azurite: Azurite;
let sim: Simulator;
/** Counts every TCP connection: a refused link must never reach it, over http or https. */
let recorder: TcpServer;
let recorderPort: number;
let connections = 0;

beforeAll(async () => {
  azurite = await startAzurite();
  sim = await startSimulator({ seed: 5, dataset: { invoices: [legacy, recent] }, v2: { retryAfterSeconds: 0 } });
  recorder = createTcpServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.2', resolve));
  recorderPort = (recorder.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((resolve) => recorder?.close(resolve));
  await sim?.stop();
  await azurite?.stop();
});

/**
 * A loopback front for one simulator host that rewrites its JSON bodies: the app sees the proxy's origin
 * everywhere (bodies and Location), and `rewrite` plants the hostile link.
 */
async function rewritingProxy(target: string, rewrite: (path: string, body: string) => string): Promise<Server> {
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const self = `http://${req.headers.host}`;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host') headers[k] = v;
    const upstream = await fetch(`${target}${req.url}`, {
      method: req.method,
      headers,
      body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
    });
    const out: Record<string, string> = {};
    upstream.headers.forEach((value, key) => {
      if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(key)) {
        out[key] = value.split(target).join(self);
      }
    });
    const isJson = (upstream.headers.get('content-type') ?? '').includes('json');
    const raw = Buffer.from(await upstream.arrayBuffer());
    const body = isJson ? Buffer.from(rewrite(req.url ?? '', raw.toString('utf8').split(target).join(self))) : raw;
    res.writeHead(upstream.status, out);
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const origin = (server: Server) => `http://127.0.0.1:${(server.address() as { port: number }).port}`;

async function runAgainst(settings: Record<string, string>) {
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
  const env = await simulatorEnvironment(sim, azurite, {
    INVOICE_CONTAINER: `inv${suffix}`,
    LEDGER_TABLE: `ledger${suffix}`,
    ...settings,
  });
  const lines: string[] = [];
  const log: SyncLogger = {
    info: (m, p) => lines.push(`info ${m} ${JSON.stringify(p ?? {})}`),
    warn: (m, p) => lines.push(`warn ${m} ${JSON.stringify(p ?? {})}`),
    error: (m, p) => lines.push(`error ${m} ${JSON.stringify(p ?? {})}`),
    event: (m, p) => lines.push(`event ${m} ${JSON.stringify(p)}`),
  };
  const deps = await createSyncDeps(loadSettings(env.settings, hostWith({ maxDequeueCount: 1 })), {
    ...env.overrides,
    // As in Azure (src/sync/runtime.ts): lines of an invocation go to its InvocationContext; tee keeps the capture.
    log: invocationLogger(log, { tee: true }),
  });
  const hostLog: string[] = [];
  const result = await runPass(deps, {
    retryVisibilitySeconds: 0,
    logHandler: (level, ...args) => hostLog.push(`${level} ${args.map(String).join(' ')}`),
  });
  return { result, lines, hostLog };
}

const PLANTED_SIG = 'PlantedSignature0123456789abcdefXYZ%3D';

describe('a pdfDownloadLink off the allow-list is never fetched: the PDF comes from /documents/statement', () => {
  const cases = [
    { name: 'https to a host that is not allow-listed', link: () => `https://127.0.0.2:${recorderPort}` },
    {
      name: 'plain http to a loopback address that is not the simulator',
      link: () => `http://127.0.0.2:${recorderPort}`,
    },
    { name: 'plain http to a public host', link: () => 'http://invoices.example.com' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const before = connections;
      const hostile = `${c.link()}/statements/${legacy.id}.pdf?se=2099-01-01&sig=${PLANTED_SIG}`;
      const proxy = await rewritingProxy(sim.partnerCenterUrl, (path, body) => {
        if (!new RegExp(`^/v1/invoices/${legacy.id}$`).test(path)) return body;
        const invoice = JSON.parse(body);
        invoice.pdfDownloadLink = hostile;
        return JSON.stringify(invoice);
      });
      try {
        const pdfFetches = () => sim.requests.filter((r) => r.host === 'blob' && r.path.includes(legacy.id)).length;
        const pdfFetchesBefore = pdfFetches();
        const statements = () =>
          sim.requests.filter((r) => r.path === `/v1/invoices/${legacy.id}/documents/statement`).length;
        const statementsBefore = statements();
        const { result, lines, hostLog } = await runAgainst({ PARTNER_CENTER_API_URL: origin(proxy) });
        const invoice = result.invoices.find((i) => i.invoiceId === legacy.id);
        expect(invoice?.state).toBe('complete');
        expect(lines.some((l) => l.includes('PdfSaved') && l.includes('"source":"statement"'))).toBe(true);
        expect([...hostLog, ...lines].join('\n')).not.toContain(PLANTED_SIG);
        // Never fetched: no connection to the recorder, no request to the simulator's blob host.
        expect(connections).toBe(before);
        expect(pdfFetches()).toBe(pdfFetchesBefore);
        expect(statements()).toBe(statementsBefore + 1);
        expect(invoice?.pdfSha256).toBeTruthy();
      } finally {
        await new Promise((resolve) => proxy.close(resolve));
      }
    });
  }
});

describe('a manifest rootDirectory off the allow-list is refused, recorded and never fetched', () => {
  test('https rootDirectory on a foreign host: the part fails with a clear error, no blob is read', async () => {
    const before = connections;
    const proxy = await rewritingProxy(sim.graphUrl, (path, body) => {
      if (!path.includes('/manifests/') && !body.includes('rootDirectory')) return body;
      return body.replace(
        /"rootDirectory"\s*:\s*"[^"]*"/,
        `"rootDirectory":"https://127.0.0.2:${recorderPort}/exports"`,
      );
    });
    try {
      const blobRequestsBefore = sim.requests.filter((r) => r.host === 'blob' && r.path.includes('fastpath')).length;
      const { result, hostLog } = await runAgainst({ GRAPH_API_URL: origin(proxy) });
      const part = result.parts.find((p) => p.invoiceId === recent.id);
      expect(part?.api).toBe('v2');
      expect(part?.state).toBe('failed');
      expect(part?.lastError).toMatch(/Refusing to follow manifest rootDirectory https:\/\/127\.0\.0\.2:\d+\/exports/);
      expect(hostLog.some((l) => l.includes('Refusing to follow manifest rootDirectory'))).toBe(true);
      expect(connections).toBe(before);
      expect(sim.requests.filter((r) => r.host === 'blob' && r.path.includes('fastpath')).length).toBe(
        blobRequestsBefore,
      );
      // The invoice does not claim completeness it does not have.
      expect(result.invoices.find((i) => i.invoiceId === recent.id)?.state).toBe('failed');
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe('the link policy from the settings', () => {
  const defaults = settingsSchema.parse({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
  test.each([
    ['https://contoso.blob.core.windows.net/statements/x.pdf?sig=s', true],
    ['https://api.partnercenter.microsoft.com/v1/invoices/G1/documents/statement', true],
    ['https://graph.microsoft.com/v1.0/reports/partners/billing/operations/1', true],
    ['http://contoso.blob.core.windows.net/statements/x.pdf', false],
    ['https://blob.core.windows.net/x', false],
    ['https://contoso.blob.core.windows.net.evil.example/x', false],
    ['https://evil.example/contoso.blob.core.windows.net/x', false],
    ['https://user:pw@contoso.blob.core.windows.net/x', false],
    ['ftp://contoso.blob.core.windows.net/x', false],
    ['http://127.0.0.1:7071/x', false],
  ])('%s → %s (defaults)', (url, allowed) => {
    expect(linkPolicy(defaults)(new URL(url))).toBe(allowed);
  });

  test('plain http is allowed only to loopback and only with ALLOW_INSECURE_LOOPBACK', () => {
    const local = linkPolicy({ ...defaults, ALLOW_INSECURE_LOOPBACK: true });
    expect(local(new URL('http://127.0.0.1:7073/statements/x.pdf'))).toBe(true);
    expect(local(new URL('http://localhost:7073/x'))).toBe(true);
    expect(local(new URL('http://[::1]:7073/x'))).toBe(true);
    expect(local(new URL('http://127.0.0.2:7073/x'))).toBe(false);
    expect(local(new URL('http://contoso.blob.core.windows.net/x'))).toBe(false);
  });

  test('ALLOWED_LINK_HOSTS replaces the default host patterns', () => {
    const custom = linkPolicy({ ...defaults, ALLOWED_LINK_HOSTS: '*.blob.core.usgovcloudapi.net' });
    expect(custom(new URL('https://acct.blob.core.usgovcloudapi.net/x'))).toBe(true);
    expect(custom(new URL('https://acct.blob.core.windows.net/x'))).toBe(false);
  });
});
