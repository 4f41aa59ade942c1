// The token endpoint: client credentials (secret or assertion), rotating refresh tokens, AADSTS errors, metadata;
// and MSAL node itself acquiring tokens from it through a fake https origin.
import {
  ConfidentialClientApplication,
  type INetworkModule,
  type NetworkRequestOptions,
  type NetworkResponse,
  PublicClientApplication,
} from '@azure/msal-node';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLIENT_ID, PARTNER_TENANT_ID, type Simulator, startSimulator } from '../simulator/index.js';

const ORIGIN = 'https://login.simulator.test';
let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ auth: { publicAuthorityUrl: ORIGIN } });
});
afterAll(async () => {
  await sim?.stop();
});

const tokenUrl = () => `${sim.authorityUrl}/${PARTNER_TENANT_ID}/oauth2/v2.0/token`;
const post = (form: Record<string, string>) =>
  fetch(tokenUrl(), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

test('client credentials give an app-only token for the asked resource', async () => {
  const response = await post({
    grant_type: 'client_credentials',
    client_id: CLIENT_ID,
    client_secret: 's3cret',
    scope: 'https://api.partnercenter.microsoft.com/.default',
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600 });
  const payload = claims(String(body.access_token));
  expect(payload.aud).toBe('https://api.partnercenter.microsoft.com');
  expect(payload.roles).toBeDefined();
  expect(payload.scp).toBeUndefined();
  // That token lists invoices but may not fetch one by id.
  const auth = { authorization: `Bearer ${body.access_token}` };
  expect((await fetch(`${sim.partnerCenterUrl}/v1/invoices`, { headers: auth })).status).toBe(200);
  expect((await fetch(`${sim.partnerCenterUrl}/v1/invoices/G000024130`, { headers: auth })).status).toBe(403);

  const assertion = await post({
    grant_type: 'client_credentials',
    client_id: CLIENT_ID,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: 'eyJ.eyJ.sig',
    scope: 'https://graph.microsoft.com/.default',
  });
  expect(claims(String(((await assertion.json()) as Record<string, unknown>).access_token)).aud).toBe(
    'https://graph.microsoft.com',
  );
});

test('bad requests get AADSTS errors', async () => {
  const noSecret = await post({
    grant_type: 'client_credentials',
    client_id: CLIENT_ID,
    scope: 'https://graph.microsoft.com/.default',
  });
  expect(noSecret.status).toBe(400);
  expect(((await noSecret.json()) as { error: string }).error).toBe('invalid_client');
  const badScope = await post({
    grant_type: 'client_credentials',
    client_id: CLIENT_ID,
    client_secret: 'x',
    scope: 'https://example.com/.default',
  });
  expect(((await badScope.json()) as { error: string }).error).toBe('invalid_scope');
  const badGrant = await post({
    grant_type: 'refresh_token',
    client_id: CLIENT_ID,
    refresh_token: 'never-issued',
    scope: 'https://api.partnercenter.microsoft.com/.default offline_access',
  });
  expect(badGrant.status).toBe(400);
  const error = (await badGrant.json()) as { error: string; error_description: string; error_codes: number[] };
  expect(error.error).toBe('invalid_grant');
  expect(error.error_description).toMatch(/^AADSTS70000:/);
  expect(error.error_codes).toEqual([70000]);
});

test('a refresh token rotates; the old one works once more, then is revoked', async () => {
  const seeded = sim.seedRefreshToken();
  const redeem = (refresh: string) =>
    post({
      grant_type: 'refresh_token',
      client_id: CLIENT_ID,
      refresh_token: refresh,
      scope: 'https://api.partnercenter.microsoft.com/.default openid profile offline_access',
    });
  const first = await redeem(seeded);
  expect(first.status).toBe(200);
  const body = (await first.json()) as Record<string, string>;
  expect(body.refresh_token).toBeTruthy();
  expect(body.refresh_token).not.toBe(seeded);
  expect(claims(body.access_token ?? '').scp).toBeTruthy();
  expect(claims(body.id_token ?? '').tid).toBe(PARTNER_TENANT_ID);
  expect(JSON.parse(Buffer.from(body.client_info ?? '', 'base64url').toString())).toHaveProperty('uid');
  expect((await redeem(seeded)).status).toBe(200);
  expect((await redeem(seeded)).status).toBe(400);
  expect((await redeem(body.refresh_token ?? '')).status).toBe(200);
  sim.revokeRefreshTokens();
  expect((await redeem(body.refresh_token ?? '')).status).toBe(400);
});

test('metadata endpoints point at the public authority URL', async () => {
  const config = (await (
    await fetch(`${sim.authorityUrl}/${PARTNER_TENANT_ID}/v2.0/.well-known/openid-configuration`)
  ).json()) as Record<string, string>;
  expect(config.token_endpoint).toBe(`${ORIGIN}/${PARTNER_TENANT_ID}/oauth2/v2.0/token`);
  const discovery = (await (await fetch(`${sim.authorityUrl}/common/discovery/instance`)).json()) as {
    metadata: { aliases: string[] }[];
  };
  expect(discovery.metadata[0]?.aliases).toEqual(['login.simulator.test']);
});

/** MSAL insists on https: send the fake origin's requests to the simulator's http host. */
function rewritingNetwork(): INetworkModule {
  const send = async <T>(method: string, url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> => {
    const target = url.startsWith(ORIGIN) ? sim.authorityUrl + url.slice(ORIGIN.length) : url;
    const response = await fetch(target, { method, headers: options?.headers, body: options?.body });
    const headers: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      headers[key] = value;
    });
    return { status: response.status, headers, body: (await response.json()) as T };
  };
  return {
    sendGetRequestAsync: (url, options) => send('GET', url, options),
    sendPostRequestAsync: (url, options) => send('POST', url, options),
  };
}

test('MSAL node acquires app-only and refresh-token tokens from the simulator', async () => {
  const system = { networkClient: rewritingNetwork() };
  const authority = `${ORIGIN}/${PARTNER_TENANT_ID}`;
  const confidential = new ConfidentialClientApplication({
    auth: { clientId: CLIENT_ID, clientSecret: 'x', authority, knownAuthorities: ['login.simulator.test'] },
    system,
  });
  const app = await confidential.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
  expect(claims(app?.accessToken ?? '').aud).toBe('https://graph.microsoft.com');

  const publicClient = new PublicClientApplication({
    auth: { clientId: CLIENT_ID, authority, knownAuthorities: ['login.simulator.test'] },
    system,
  });
  const delegated = await publicClient.acquireTokenByRefreshToken({
    refreshToken: sim.seedRefreshToken(),
    scopes: ['https://api.partnercenter.microsoft.com/.default'],
  });
  expect(claims(delegated?.accessToken ?? '').scp).toBeTruthy();
  const response = await fetch(`${sim.partnerCenterUrl}/v1/invoices/G000024130`, {
    headers: { authorization: `Bearer ${delegated?.accessToken}` },
  });
  expect(response.status).toBe(200);
});

test('a refresh token is bound to the kind of client it was issued to, as Entra binds it', async () => {
  const scope = 'https://api.partnercenter.microsoft.com/.default offline_access';
  // Issued to a public client (the device-code consent): a secret or assertion on the redemption is refused.
  const withSecret = await post({
    grant_type: 'refresh_token',
    client_id: CLIENT_ID,
    client_secret: 'app-secret',
    refresh_token: sim.seedRefreshToken(),
    scope,
  });
  expect(withSecret.status).toBe(401);
  const refused = (await withSecret.json()) as { error: string; error_description: string; error_codes: number[] };
  expect(refused.error).toBe('invalid_client');
  expect(refused.error_codes).toEqual([700025]);
  expect(refused.error_description).toMatch(
    /^AADSTS700025: Client is public so neither 'client_assertion' nor 'client_secret' should be presented\./,
  );
  // Redeemed without a credential, the same kind of token works.
  const publicRedemption = await post({
    grant_type: 'refresh_token',
    client_id: CLIENT_ID,
    refresh_token: sim.seedRefreshToken(),
    scope,
  });
  expect(publicRedemption.status).toBe(200);
});

test('the device code flow: authorization_pending until the user signs in, then tokens for a public client', async () => {
  const scope = 'https://api.partnercenter.microsoft.com/.default offline_access';
  const device = await fetch(`${sim.authorityUrl}/${PARTNER_TENANT_ID}/oauth2/v2.0/devicecode`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: CLIENT_ID, scope }),
  });
  expect(device.status).toBe(200);
  const started = (await device.json()) as Record<string, string | number>;
  expect(started).toMatchObject({ verification_uri: 'https://microsoft.com/devicelogin', interval: 1 });
  expect(String(started.message)).toContain(String(started.user_code));
  const poll = () =>
    post({ grant_type: 'device_code', client_id: CLIENT_ID, device_code: String(started.device_code), scope });
  const granted = await poll();
  expect(granted.status).toBe(200);
  const body = (await granted.json()) as Record<string, string>;
  expect(claims(body.access_token ?? '').scp).toBe('user_impersonation');
  // A device code is good for one sign-in; the refresh token it gave is public.
  expect(((await (await poll()).json()) as { error: string }).error).toBe('expired_token');
  const redeemed = await post({
    grant_type: 'refresh_token',
    client_id: CLIENT_ID,
    refresh_token: body.refresh_token!,
    scope,
  });
  expect(redeemed.status).toBe(200);
});
