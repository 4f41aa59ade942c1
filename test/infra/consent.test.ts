// The consent command against a loopback token endpoint speaking the real device code protocol (MSAL does the
// HTTP): the refresh token lands in the secret store with its issuedAt tag, and never in the log.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { authorityMetadataFor, cloudDiscoveryMetadataFor, originRewritingNetworkClient } from '../../src/auth/index.js';
import { ISSUED_AT_TAG } from '../../src/auth/refresh-token.js';
import { InMemorySecretStore, type SecretStore } from '../../src/auth/secret-store.js';
import { CONSENT_SCOPES, ConsentError, runConsent } from '../../src/setup/consent.js';

const TENANT = '11111111-2222-3333-4444-555555555555';
const CLIENT = '66666666-7777-8888-9999-000000000000';
const AUTHORITY_HOST = 'https://login.consent.test';
const REFRESH_TOKEN = '0.AAAA-refresh-token-from-the-device-flow';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

interface Behaviour {
  pendingPolls: number;
  outcome: 'ok' | 'declined';
}

let server: Server;
let origin: string;
let behaviour: Behaviour;
let requests: { path: string; form: URLSearchParams }[];

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const form = await readForm(req);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ path, form });
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === `/${TENANT}/oauth2/v2.0/devicecode`) {
      return json(200, {
        device_code: 'device-code-1',
        user_code: 'ABCD-EFGH',
        verification_uri: 'https://microsoft.com/devicelogin',
        expires_in: 60,
        interval: 1,
        message: 'To sign in, open https://microsoft.com/devicelogin and enter the code ABCD-EFGH.',
      });
    }
    if (path === `/${TENANT}/oauth2/v2.0/token`) {
      if (behaviour.pendingPolls > 0) {
        behaviour.pendingPolls -= 1;
        return json(400, { error: 'authorization_pending', error_description: 'AADSTS70016: pending' });
      }
      if (behaviour.outcome === 'declined') {
        return json(400, { error: 'authorization_declined', error_description: 'AADSTS70000: the user declined' });
      }
      const now = Math.floor(Date.now() / 1000);
      const idToken = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({
        aud: CLIENT,
        iss: `${AUTHORITY_HOST}/${TENANT}/v2.0`,
        tid: TENANT,
        oid: 'user-oid',
        sub: 'user-sub',
        preferred_username: 'billing.admin@partner.example',
        name: 'Billing Admin',
        iat: now,
        nbf: now,
        exp: now + 3600,
      })}.sig`;
      return json(200, {
        token_type: 'Bearer',
        scope: 'https://api.partnercenter.microsoft.com/user_impersonation',
        expires_in: 3600,
        ext_expires_in: 3600,
        access_token: 'access-token-not-stored',
        refresh_token: REFRESH_TOKEN,
        id_token: idToken,
        client_info: b64url({ uid: 'user-oid', utid: TENANT }),
      });
    }
    json(404, { error: 'not_found' });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.close();
  await once(server, 'close');
});

beforeEach(() => {
  behaviour = { pendingPolls: 0, outcome: 'ok' };
  requests = [];
});

function consent(store: SecretStore, lines: string[]) {
  const authority = `${AUTHORITY_HOST}/${TENANT}`;
  return runConsent({
    tenantId: TENANT,
    clientId: CLIENT,
    authorityHost: AUTHORITY_HOST,
    keyVaultUrl: 'https://kv-test.vault.azure.net',
    secretName: 'partner-center-refresh-token',
    log: (m) => lines.push(m),
    secretStore: store,
    networkClient: originRewritingNetworkClient({ [AUTHORITY_HOST]: origin }),
    authorityMetadata: authorityMetadataFor(authority),
    cloudDiscoveryMetadata: cloudDiscoveryMetadataFor(authority),
    timeoutSeconds: 30,
    now: () => new Date('2026-11-22T10:00:00.000Z'),
  });
}

describe('runConsent (device code flow)', () => {
  it('stores the refresh token in the vault with its issue time, after the user finishes signing in', async () => {
    behaviour.pendingPolls = 1;
    const store = new InMemorySecretStore();
    const lines: string[] = [];
    const result = await consent(store, lines);

    expect(result).toEqual({
      username: 'billing.admin@partner.example',
      secretName: 'partner-center-refresh-token',
      issuedAt: '2026-11-22T10:00:00.000Z',
    });
    const stored = await store.get('partner-center-refresh-token');
    expect(stored?.value).toBe(REFRESH_TOKEN);
    expect(stored?.tags?.[ISSUED_AT_TAG]).toBe('2026-11-22T10:00:00.000Z');
    expect(stored?.tags?.grantedBy).toBe('billing.admin@partner.example');

    // The user was told where to go, and polling continued past "authorization_pending".
    expect(lines[0]).toContain('ABCD-EFGH');
    expect(requests.filter((r) => r.path.endsWith('/token')).length).toBe(2);
  });

  it('asks for Partner Center as the user, plus offline_access, as a public client (no secret sent)', async () => {
    await consent(new InMemorySecretStore(), []);
    const deviceCode = requests.find((r) => r.path.endsWith('/devicecode'));
    const scopes = deviceCode?.form.get('scope')?.split(' ') ?? [];
    for (const scope of CONSENT_SCOPES) expect(scopes).toContain(scope);
    expect(deviceCode?.form.get('client_id')).toBe(CLIENT);
    const token = requests.find((r) => r.path.endsWith('/token'));
    expect(token?.form.get('grant_type')).toBe('device_code');
    expect(token?.form.has('client_secret')).toBe(false);
    expect(token?.form.has('client_assertion')).toBe(false);
  });

  it('never writes a token to the log', async () => {
    const lines: string[] = [];
    await consent(new InMemorySecretStore(), lines);
    const log = lines.join('\n');
    expect(log).not.toContain(REFRESH_TOKEN);
    expect(log).not.toContain('access-token-not-stored');
    expect(log).toContain('partner-center-refresh-token');
  });

  it('stores nothing and explains when the user declines', async () => {
    behaviour.outcome = 'declined';
    const store = new InMemorySecretStore();
    const error = await consent(store, []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConsentError);
    expect((error as Error).message).toMatch(/Sign-in did not complete/);
    expect(await store.get('partner-center-refresh-token')).toBeUndefined();
  });

  it('reports a vault write failure with the role to grant, without the token', async () => {
    const failing: SecretStore = {
      get: async () => undefined,
      set: async () => {
        throw Object.assign(new Error('Forbidden'), { statusCode: 403 });
      },
    };
    const error = (await consent(failing, []).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(ConsentError);
    expect(error.message).toContain('Key Vault Secrets Officer');
    expect(error.message).not.toContain(REFRESH_TOKEN);
  });
});
