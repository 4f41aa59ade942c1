// Removes secrets (SAS signatures, bearer/refresh tokens, client secrets, signed-link query strings) from any
// URL or text before it reaches a log line or an error message.

const SENSITIVE_QUERY_KEYS = new Set([
  'sig',
  'sastoken',
  'client_secret',
  'refresh_token',
  'access_token',
  'client_assertion',
  'assertion',
  'token',
  'code',
  'password',
]);

/** True when the query looks like a SAS / pre-signed link: then the whole query is a credential. */
function isSignedQuery(params: URLSearchParams): boolean {
  for (const key of params.keys()) {
    const k = key.toLowerCase();
    if (k === 'sig' || k === 'signature' || k === 'x-amz-signature' || k === 'sastoken') return true;
  }
  return false;
}

/** A URL safe to log: signed links lose their whole query, other URLs lose the values of sensitive parameters. */
export function redactUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url, 'http://relative.invalid') : new URL(url.href);
  } catch {
    return redactText(String(url));
  }
  const relative = typeof url === 'string' && !/^[a-z][a-z0-9+.-]*:/i.test(url);
  parsed.username = '';
  parsed.password = '';
  if (parsed.search) {
    if (isSignedQuery(parsed.searchParams)) {
      parsed.search = '?REDACTED';
    } else {
      const kept = new URLSearchParams();
      for (const [key, value] of parsed.searchParams) {
        kept.append(key, SENSITIVE_QUERY_KEYS.has(key.toLowerCase()) ? 'REDACTED' : value);
      }
      parsed.search = kept.toString();
    }
  }
  return relative ? `${parsed.pathname}${parsed.search}${parsed.hash}` : parsed.href;
}

const URL_WITH_QUERY = /\bhttps?:\/\/[^\s"'<>\\]+\?[^\s"'<>\\]*/gi;
const BEARER = /\bBearer\s+[A-Za-z0-9\-._~+/]+=*/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
const QUERY_SECRET =
  /(^|[^A-Za-z0-9_])(sig|sasToken|client_secret|refresh_token|access_token|client_assertion)=([^&\s"'<>\\]*)/gi;
const JSON_SECRET =
  /"(sasToken|refresh_token|refreshToken|access_token|accessToken|client_secret|clientSecret|token)"\s*:\s*"[^"]*"/gi;

/** Any free text (error bodies, messages) with tokens, secrets and signed-link queries removed. */
export function redactText(text: string): string {
  return text
    .replace(URL_WITH_QUERY, (match) => redactUrl(match))
    .replace(BEARER, 'Bearer REDACTED')
    .replace(JWT, 'REDACTED')
    .replace(QUERY_SECRET, (_m, lead: string, key: string) => `${lead}${key}=REDACTED`)
    .replace(JSON_SECRET, (_m, key: string) => `"${key}":"REDACTED"`);
}
