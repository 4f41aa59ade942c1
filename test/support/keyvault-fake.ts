// A small, faithful Key Vault secrets endpoint over real HTTP on loopback, for the REAL @azure/keyvault-secrets
// SecretClient: the 401 bearer challenge first, then GET/PUT /secrets/{name}[/{version}] with SecretBundle JSON.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeSecretVersion {
  value: string;
  version: string;
  created: Date;
  updated: Date;
  tags?: Record<string, string>;
  contentType?: string;
}

export interface KeyVaultFake {
  /** The https vault URL the SecretClient is configured with (rewritten to `url` by the test's HTTP client). */
  vaultUrl: string;
  /** The real loopback http origin. */
  url: string;
  /** Every version of every secret, oldest first. */
  secrets: Map<string, FakeSecretVersion[]>;
  /** Requests as received (method, path, whether an Authorization header was present). */
  requests: { method: string; path: string; authorized: boolean }[];
  seed(name: string, value: string, options?: { updated?: Date; tags?: Record<string, string> }): void;
  /** Answer the next `count` writes with 403 Forbidden (e.g. a missing Key Vault Secrets Officer role). */
  failNextWrites(count: number): void;
  latest(name: string): FakeSecretVersion | undefined;
  stop(): Promise<void>;
}

export async function startKeyVaultFake(
  options: { vaultUrl?: string; tenantId?: string; acceptToken?: string } = {},
): Promise<KeyVaultFake> {
  const vaultUrl = (options.vaultUrl ?? 'https://csp-sync-test.vault.azure.net').replace(/\/+$/, '');
  const tenantId = options.tenantId ?? '00000000-0000-0000-0000-000000000001';
  const secrets = new Map<string, FakeSecretVersion[]>();
  const requests: KeyVaultFake['requests'] = [];
  let failingWrites = 0;

  const bundle = (name: string, s: FakeSecretVersion) => ({
    value: s.value,
    id: `${vaultUrl}/secrets/${name}/${s.version}`,
    contentType: s.contentType,
    tags: s.tags,
    attributes: {
      enabled: true,
      created: Math.floor(s.created.getTime() / 1000),
      updated: Math.floor(s.updated.getTime() / 1000),
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 90,
    },
  });

  const send = (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const auth = req.headers.authorization;
    requests.push({ method: req.method ?? '', path: url.pathname, authorized: Boolean(auth) });
    if (!url.searchParams.get('api-version')) {
      return send(res, 400, { error: { code: 'BadParameter', message: 'api-version is required' } });
    }
    const expected = options.acceptToken ? `Bearer ${options.acceptToken}` : undefined;
    if (!auth?.startsWith('Bearer ') || (expected && auth !== expected)) {
      // The challenge the SDK's keyVaultAuthenticationPolicy expects before it sends a token.
      return send(
        res,
        401,
        { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
        {
          'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="https://vault.azure.net"`,
        },
      );
    }
    const match = /^\/secrets\/([0-9a-zA-Z-]{1,127})(?:\/([0-9a-f]*))?\/?$/.exec(url.pathname);
    if (!match) return send(res, 404, { error: { code: 'NotFound', message: 'No such route' } });
    const name = match[1]!;
    const version = match[2] || undefined;
    if (req.method === 'GET') {
      const versions = secrets.get(name) ?? [];
      const found = version ? versions.find((v) => v.version === version) : versions.at(-1);
      if (!found) {
        return send(res, 404, {
          error: {
            code: 'SecretNotFound',
            message: `A secret with (name/id) ${name} was not found in this key vault.`,
          },
        });
      }
      return send(res, 200, bundle(name, found));
    }
    if (req.method === 'PUT' && !version) {
      if (failingWrites > 0) {
        failingWrites--;
        return send(res, 403, {
          error: { code: 'Forbidden', message: 'The user, group or application does not have secrets set permission.' },
        });
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as {
        value?: string;
        tags?: Record<string, string>;
        contentType?: string;
      };
      if (typeof body.value !== 'string') {
        return send(res, 400, { error: { code: 'BadParameter', message: 'value is required' } });
      }
      const now = new Date();
      const created = secrets.get(name)?.[0]?.created ?? now;
      const entry: FakeSecretVersion = {
        value: body.value,
        version: randomUUID().replaceAll('-', ''),
        created,
        updated: now,
        tags: body.tags,
        contentType: body.contentType,
      };
      secrets.set(name, [...(secrets.get(name) ?? []), entry]);
      return send(res, 200, bundle(name, entry));
    }
    return send(res, 405, { error: { code: 'MethodNotAllowed', message: `${req.method} not supported` } });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { error: { code: 'Internal', message: String(error) } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    vaultUrl,
    url: `http://127.0.0.1:${port}`,
    secrets,
    requests,
    seed(name, value, seedOptions = {}) {
      const updated = seedOptions.updated ?? new Date();
      secrets.set(name, [
        ...(secrets.get(name) ?? []),
        { value, version: randomUUID().replaceAll('-', ''), created: updated, updated, tags: seedOptions.tags },
      ]);
    },
    latest: (name) => secrets.get(name)?.at(-1),
    failNextWrites: (count) => {
      failingWrites = count;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
