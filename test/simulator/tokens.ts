// Unsigned JWTs for the simulated hosts, their checks, and the Entra-like token endpoint (client credentials, the
// device code flow, rotating refresh tokens bound to the kind of client they were issued to) that MSAL and
// @azure/identity can talk to.
import { randomBytes } from 'node:crypto';
import { PARTNER_TENANT_ID } from './dataset.js';

export type Audience = 'partnercenter' | 'graph';
export const AUDIENCES: Record<Audience, string> = {
  partnercenter: 'https://api.partnercenter.microsoft.com',
  graph: 'https://graph.microsoft.com',
};
export const CLIENT_ID = '0b5a3c8e-1111-4a2b-9c3d-5e6f7a8b9c0d';
export const USER_OID = '8f2a1d64-2222-4c1e-8a77-3b4c5d6e7f80';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function makeJwt(payload: Record<string, unknown>): string {
  return `${b64url({ typ: 'JWT', alg: 'RS256', kid: 'sim' })}.${b64url(payload)}.${randomBytes(32).toString('base64url')}`;
}

export interface TokenRequest {
  audience: Audience;
  appUser?: boolean;
  ttlSeconds?: number;
}

export function issueAccessToken(nowMs: number, o: TokenRequest): string {
  const nowS = Math.floor(nowMs / 1000);
  const payload: Record<string, unknown> = {
    aud: AUDIENCES[o.audience],
    iss: `https://sts.windows.net/${PARTNER_TENANT_ID}/`,
    iat: nowS,
    nbf: nowS,
    exp: nowS + (o.ttlSeconds ?? 3600),
    tid: PARTNER_TENANT_ID,
    appid: CLIENT_ID,
    oid: o.appUser ? USER_OID : '5d0c1e2f-3333-4b5a-8c9d-0e1f2a3b4c5d',
  };
  if (o.appUser) {
    payload.scp = o.audience === 'graph' ? 'PartnerBilling.Read.All' : 'user_impersonation';
    payload.amr = ['pwd', 'mfa'];
    payload.upn = 'billing.admin@partner.onmicrosoft.com';
  } else {
    payload.roles = o.audience === 'graph' ? ['PartnerBilling.Read.All'] : ['Invoices.Read'];
  }
  return makeJwt(payload);
}

export type TokenCheck =
  | { ok: true; claims: Record<string, unknown> }
  | { ok: false; reason: 'missing' | 'malformed' | 'audience' | 'expired' };

/** Checks `Authorization: Bearer <jwt>` for the audience on the simulator clock. */
export function checkBearer(header: string | undefined, audience: Audience, nowMs: number): TokenCheck {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!match?.[1]) return { ok: false, reason: 'missing' };
  const segments = match[1].split('.');
  if (segments.length !== 3) return { ok: false, reason: 'malformed' };
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(segments[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (claims.aud !== AUDIENCES[audience] && claims.aud !== `${AUDIENCES[audience]}/`) {
    return { ok: false, reason: 'audience' };
  }
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}

export interface RefreshTokenOptions {
  /** After rotation, how many more times an old refresh token still works (default 1; 0 = revoked at once). */
  reuseAfterRotation?: number;
  /** Lifetime of issued access tokens in seconds (default 3600). */
  accessTokenTtlSeconds?: number;
  /** How many device-code polls answer authorization_pending before the simulated user has signed in (default 0). */
  deviceCodePendingPolls?: number;
}

/**
 * Which kind of client a refresh token was issued to. Entra binds a refresh token to it: one issued to a public
 * client (device code, no client credential) must be redeemed without a credential (else AADSTS700025), one issued to
 * a confidential client must be redeemed with one (else AADSTS7000218).
 */
export type ClientKind = 'public' | 'confidential';

export type Redemption = { ok: true; rotated: string; kind: ClientKind } | { ok: false; reason: 'unknown' | 'kind' };

/** The refresh tokens the simulator issued, with how often each may still be redeemed and by which kind of client. */
export class RefreshTokenStore {
  #tokens = new Map<string, { usesLeft: number; kind: ClientKind }>();
  #deviceCodes = new Map<string, { clientId: string; scope: string; pendingPolls: number; kind?: ClientKind }>();
  constructor(private readonly options: RefreshTokenOptions = {}) {}

  /** A refresh token as the consent would have stored it; public by default (device code, as the consent runs). */
  seed(kind: ClientKind = 'public'): string {
    const token = `0.AAAA${randomBytes(48).toString('base64url')}`;
    this.#tokens.set(token, { usesLeft: Number.POSITIVE_INFINITY, kind });
    return token;
  }

  /** The client kind a token was issued to, or undefined when it is unknown or used up. */
  kindOf(token: string): ClientKind | undefined {
    return this.#tokens.get(token)?.kind;
  }

  /** Redeems a token by a client of `kind`; returns the rotated one (same kind), or why it was refused. */
  redeem(token: string, kind: ClientKind = 'public'): Redemption {
    const entry = this.#tokens.get(token);
    if (!entry || entry.usesLeft <= 0) return { ok: false, reason: 'unknown' };
    if (entry.kind !== kind) return { ok: false, reason: 'kind' };
    // The first redemption rotates; the old token then stays valid for `reuseAfterRotation` more uses.
    entry.usesLeft = Number.isFinite(entry.usesLeft) ? entry.usesLeft - 1 : (this.options.reuseAfterRotation ?? 1);
    if (entry.usesLeft <= 0) this.#tokens.delete(token);
    return { ok: true, rotated: this.seed(entry.kind), kind: entry.kind };
  }

  /** Starts a device authorization; the simulated user signs in after `deviceCodePendingPolls` polls. */
  startDeviceCode(clientId: string, scope: string): string {
    const code = `DC-${randomBytes(24).toString('base64url')}`;
    this.#deviceCodes.set(code, { clientId, scope, pendingPolls: this.options.deviceCodePendingPolls ?? 0 });
    return code;
  }

  /** Polls a device code: 'pending' until the user signed in, then the grant once; 'unknown' afterwards. */
  pollDeviceCode(code: string, clientId: string): 'pending' | 'unknown' | { scope: string } {
    const entry = this.#deviceCodes.get(code);
    if (!entry || entry.clientId !== clientId) return 'unknown';
    if (entry.pendingPolls > 0) {
      entry.pendingPolls -= 1;
      return 'pending';
    }
    this.#deviceCodes.delete(code);
    return { scope: entry.scope };
  }

  revokeAll(): void {
    this.#tokens.clear();
  }
}

export interface TokenEndpointResult {
  status: number;
  body: Record<string, unknown>;
}

function aadError(error: string, code: number, description: string, status = 400): TokenEndpointResult {
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${description} Trace ID: ${crypto.randomUUID()} Correlation ID: ${crypto.randomUUID()} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: crypto.randomUUID(),
      correlation_id: crypto.randomUUID(),
    },
  };
}

/** Whether the request authenticates the client (secret or assertion), i.e. comes from a confidential client. */
function clientKindOf(form: URLSearchParams): ClientKind {
  return form.get('client_secret') || form.get('client_assertion') ? 'confidential' : 'public';
}

/** Entra's answer to a refresh token redeemed by the other kind of client than the one it was issued to. */
function clientKindMismatch(issuedTo: ClientKind): TokenEndpointResult {
  return issuedTo === 'public'
    ? aadError(
        'invalid_client',
        700025,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        401,
      )
    : aadError(
        'invalid_client',
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        401,
      );
}

/** Entra accepts the RFC 8628 URN and the short form MSAL sends. */
const DEVICE_CODE_GRANTS = ['urn:ietf:params:oauth:grant-type:device_code', 'device_code'];

/** POST /{tenant}/oauth2/v2.0/devicecode: the device authorization request of a public client. */
export function deviceAuthorizationEndpoint(
  form: URLSearchParams,
  refreshTokens: RefreshTokenStore,
): TokenEndpointResult {
  const clientId = form.get('client_id');
  if (!clientId)
    return aadError('invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
  const scope = form.get('scope') ?? '';
  if (!audienceOfScope(scope))
    return aadError('invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid.`);
  const userCode = randomBytes(4).toString('hex').toUpperCase();
  return {
    status: 200,
    body: {
      user_code: userCode,
      device_code: refreshTokens.startDeviceCode(clientId, scope),
      verification_uri: 'https://microsoft.com/devicelogin',
      expires_in: 900,
      interval: 1,
      message: `To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ${userCode} to authenticate.`,
    },
  };
}

function audienceOfScope(scope: string): Audience | undefined {
  for (const part of scope.split(/\s+/)) {
    const resource = part.replace(/\/(\.default|user_impersonation|[A-Za-z.]+\.[A-Za-z.]+)$/, '');
    if (resource === AUDIENCES.partnercenter) return 'partnercenter';
    if (resource === AUDIENCES.graph) return 'graph';
  }
  return undefined;
}

/** POST /{tenant}/oauth2/v2.0/token with a form body. */
export function tokenEndpoint(
  tenant: string,
  form: URLSearchParams,
  nowMs: number,
  refreshTokens: RefreshTokenStore,
  options: RefreshTokenOptions,
): TokenEndpointResult {
  const grant = form.get('grant_type');
  const scope = form.get('scope') ?? '';
  const clientId = form.get('client_id');
  if (!clientId)
    return aadError('invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
  const audience = audienceOfScope(scope);
  const ttl = options.accessTokenTtlSeconds ?? 3600;
  if (grant === 'client_credentials') {
    if (!form.get('client_secret') && !form.get('client_assertion')) {
      return aadError(
        'invalid_client',
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      );
    }
    if (form.get('client_assertion') && !form.get('client_assertion_type')) {
      return aadError(
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'client_assertion_type'.",
      );
    }
    if (!audience || !/\/\.default$/.test(scope.trim())) {
      return aadError(
        'invalid_scope',
        1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    }
    return {
      status: 200,
      body: {
        token_type: 'Bearer',
        expires_in: ttl,
        ext_expires_in: ttl,
        access_token: issueAccessToken(nowMs, { audience, ttlSeconds: ttl }),
      },
    };
  }
  let grantedScope = scope;
  let refreshToken: string;
  if (grant === 'refresh_token') {
    const presented = form.get('refresh_token') ?? '';
    if (!audience)
      return aadError('invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid.`);
    const redeemed = refreshTokens.redeem(presented, clientKindOf(form));
    if (!redeemed.ok) {
      const issuedTo = refreshTokens.kindOf(presented);
      if (redeemed.reason === 'kind' && issuedTo) return clientKindMismatch(issuedTo);
      return aadError('invalid_grant', 70000, 'Provided grant is invalid or malformed.');
    }
    refreshToken = redeemed.rotated;
  } else if (DEVICE_CODE_GRANTS.includes(grant ?? '')) {
    const polled = refreshTokens.pollDeviceCode(form.get('device_code') ?? '', clientId);
    if (polled === 'pending') {
      return aadError(
        'authorization_pending',
        70016,
        'OAuth 2.0 device flow error. Authorization is pending. Continue polling.',
      );
    }
    if (polled === 'unknown') return aadError('expired_token', 70019, 'Verification code expired.');
    grantedScope = polled.scope;
    refreshToken = refreshTokens.seed(clientKindOf(form));
  } else {
    return aadError('unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant ?? ''}'.`);
  }
  {
    const tokenAudience = audienceOfScope(grantedScope) ?? 'partnercenter';
    const scope = grantedScope;
    const nowS = Math.floor(nowMs / 1000);
    const scopes = scope.split(/\s+/).filter(Boolean);
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: scopes.filter((s) => !['openid', 'profile', 'offline_access'].includes(s)).join(' '),
      expires_in: ttl,
      ext_expires_in: ttl,
      access_token: issueAccessToken(nowMs, { audience: tokenAudience, appUser: true, ttlSeconds: ttl }),
      refresh_token: refreshToken,
      client_info: Buffer.from(
        JSON.stringify({
          uid: USER_OID,
          utid: tenant === 'common' || tenant === 'organizations' ? PARTNER_TENANT_ID : tenant,
        }),
      ).toString('base64url'),
    };
    if (scopes.includes('openid') || scopes.includes('profile')) {
      body.id_token = makeJwt({
        aud: clientId,
        iss: `https://login.microsoftonline.com/${PARTNER_TENANT_ID}/v2.0`,
        iat: nowS,
        nbf: nowS,
        exp: nowS + ttl,
        name: 'Billing Admin',
        oid: USER_OID,
        preferred_username: 'billing.admin@partner.onmicrosoft.com',
        sub: 'sim-subject',
        tid: PARTNER_TENANT_ID,
        ver: '2.0',
      });
    }
    return { status: 200, body };
  }
}

/** OpenID configuration whose endpoints point at `base` (the authority host as the client sees it). */
export function openIdConfiguration(base: string, tenant: string): Record<string, unknown> {
  const root = `${base.replace(/\/+$/, '')}/${tenant}`;
  return {
    token_endpoint: `${root}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${base}/${tenant === 'common' || tenant === 'organizations' ? '{tenantid}' : tenant}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${base}/oidc/userinfo`,
    authorization_endpoint: `${root}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${root}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${root}/oauth2/v2.0/logout`,
    claims_supported: [
      'sub',
      'iss',
      'aud',
      'exp',
      'iat',
      'auth_time',
      'acr',
      'nonce',
      'preferred_username',
      'name',
      'tid',
      'ver',
      'at_hash',
      'c_hash',
      'email',
    ],
    kerberos_endpoint: `${root}/kerberos`,
    tenant_region_scope: 'EU',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

/** MSAL instance discovery answer naming only the simulator's authority host. */
export function instanceDiscovery(base: string): Record<string, unknown> {
  const host = new URL(base).host;
  return {
    tenant_discovery_endpoint: `${base.replace(/\/+$/, '')}/{tenant}/v2.0/.well-known/openid-configuration`,
    'api-version': '1.1',
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  };
}
