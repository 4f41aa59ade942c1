// Which absolute links (signed PDF links, Graph operation/manifest/blob links) the app may follow: https to an
// allow-listed host pattern or a configured API host; plain http only to loopback when explicitly allowed (local runs).
import type { Settings } from '../config.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.trim().toLowerCase();
  if (!p) return false;
  if (p.startsWith('*.')) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  return host === p;
}

export function linkPolicy(
  settings: Pick<
    Settings,
    'ALLOWED_LINK_HOSTS' | 'ALLOW_INSECURE_LOOPBACK' | 'PARTNER_CENTER_API_URL' | 'GRAPH_API_URL'
  >,
): (url: URL) => boolean {
  const patterns = settings.ALLOWED_LINK_HOSTS.split(',');
  const apiOrigins = new Set([new URL(settings.PARTNER_CENTER_API_URL).origin, new URL(settings.GRAPH_API_URL).origin]);
  return (url: URL) => {
    if (url.username || url.password) return false;
    if (url.protocol === 'http:') return settings.ALLOW_INSECURE_LOOPBACK && LOOPBACK.has(url.hostname);
    if (url.protocol !== 'https:') return false;
    if (apiOrigins.has(url.origin)) return true;
    return patterns.some((p) => hostMatches(p, url.hostname.toLowerCase()));
  };
}
