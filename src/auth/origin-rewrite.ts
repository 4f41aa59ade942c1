// Test/local-demo plumbing only: identity libraries insist on https authorities and vaults, so requests to a fake
// https origin (e.g. https://login.simulator.test) are sent to a local http server instead. Never used in Azure.
import {
  createDefaultHttpClient,
  type HttpClient,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

/** fake https origin → real (http) base URL, e.g. `{ 'https://login.simulator.test': 'http://127.0.0.1:5001/auth' }`. */
export type OriginMap = Record<string, string>;

export function rewriteUrl(url: string, origins: OriginMap): string {
  const parsed = new URL(url);
  const target = origins[parsed.origin];
  if (!target) return url;
  return `${target.replace(/\/+$/, '')}${parsed.pathname}${parsed.search}`;
}

/** A core-rest-pipeline HttpClient (for @azure/identity and @azure/keyvault-secrets) that rewrites mapped origins. */
export function originRewritingHttpClient(
  origins: OriginMap,
  inner: HttpClient = createDefaultHttpClient(),
): HttpClient {
  return {
    sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const original = request.url;
      const insecure = request.allowInsecureConnection;
      request.url = rewriteUrl(original, origins);
      // Only a mapped (loopback test) origin may go over plain http.
      if (request.url !== original) request.allowInsecureConnection = true;
      const restore = () => {
        request.url = original;
        request.allowInsecureConnection = insecure;
      };
      return inner.sendRequest(request).then(
        (response) => {
          restore();
          return response;
        },
        (error: unknown) => {
          restore();
          throw error;
        },
      );
    },
  };
}

/** An MSAL network module (fetch-based) that rewrites mapped origins. */
export function originRewritingNetworkClient(origins: OriginMap): INetworkModule {
  const send = async <T>(
    method: 'GET' | 'POST',
    url: string,
    options?: NetworkRequestOptions,
    timeout?: number,
  ): Promise<NetworkResponse<T>> => {
    const response = await fetch(rewriteUrl(url, origins), {
      method,
      headers: options?.headers,
      body: method === 'POST' ? options?.body : undefined,
      signal: timeout ? AbortSignal.timeout(timeout) : undefined,
    });
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { error: 'invalid_response', error_description: `Non-JSON response (HTTP ${response.status})` };
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    return { headers, body: body as T, status: response.status };
  };
  return {
    sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number) {
      return send<T>('GET', url, options, timeout);
    },
    sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number) {
      return send<T>('POST', url, options, timeout);
    },
  };
}

/** OpenID metadata for an authority, so MSAL needs no discovery round trip against a non-Microsoft host. */
export function authorityMetadataFor(authority: string): string {
  const base = authority.replace(/\/+$/, '');
  return JSON.stringify({
    token_endpoint: `${base}/oauth2/v2.0/token`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    issuer: `${base}/v2.0`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
  });
}

/** Cloud discovery metadata naming only the authority's own host (no call to login.microsoftonline.com). */
export function cloudDiscoveryMetadataFor(authority: string): string {
  const host = new URL(authority).host;
  return JSON.stringify({
    tenant_discovery_endpoint: `${authority.replace(/\/+$/, '')}/v2.0/.well-known/openid-configuration`,
    'api-version': '1.1',
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  });
}
