// Which absolute links (signed PDF links, Graph operation/manifest/blob links) the app may follow: https to an
// allow-listed host pattern or a configured API origin; plain http only to loopback when explicitly allowed (local
// runs). One builder serves the settings-based policy and each client's default.

// URL.hostname keeps the brackets of an IPv6 address.
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface LinkPolicyOptions {
  /** Host names (`api.partnercenter.microsoft.com`) or `*.suffix` patterns (`*.blob.core.windows.net`). */
  hostPatterns: readonly string[];
  /** Origins always allowed (the configured API hosts), e.g. `https://graph.microsoft.com`. */
  origins?: readonly string[];
  /** Plain http to 127.0.0.1/localhost/[::1] (the local simulator). Default false. */
  allowInsecureLoopback?: boolean;
}

function hostMatches(pattern: string, host: string): boolean {
  // An empty pattern (",," in the setting) matches nothing: no URL of ours has an empty host.
  const p = pattern.trim().toLowerCase();
  if (p.startsWith('*.')) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  return host === p;
}

/** The one link policy builder: no credentials in URLs, https only (loopback http only when allowed). */
export function createLinkPolicy(options: LinkPolicyOptions): (url: URL) => boolean {
  const origins = new Set((options.origins ?? []).map((o) => new URL(o).origin));
  const patterns = [...options.hostPatterns];
  return (url: URL) => {
    if (url.username || url.password) return false;
    if (url.protocol === 'http:') return options.allowInsecureLoopback === true && LOOPBACK.has(url.hostname);
    if (url.protocol !== 'https:') return false;
    if (origins.has(url.origin)) return true;
    return patterns.some((p) => hostMatches(p, url.hostname.toLowerCase()));
  };
}

/** The policy the app runs with: ALLOWED_LINK_HOSTS plus the two configured API origins. */
export function linkPolicy(
  // The four settings it reads, by shape: the HTTP layer sits below config.ts and does not import it.
  settings: {
    ALLOWED_LINK_HOSTS: string;
    ALLOW_INSECURE_LOOPBACK: boolean;
    PARTNER_CENTER_API_URL: string;
    GRAPH_API_URL: string;
  },
): (url: URL) => boolean {
  return createLinkPolicy({
    hostPatterns: settings.ALLOWED_LINK_HOSTS.split(','),
    origins: [settings.PARTNER_CENTER_API_URL, settings.GRAPH_API_URL],
    allowInsecureLoopback: settings.ALLOW_INSECURE_LOOPBACK,
  });
}

/** Export blobs and signed PDF links live on Azure Blob Storage. */
export const BLOB_HOST_PATTERN = '*.blob.core.windows.net';
