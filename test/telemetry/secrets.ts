// The secrets a run handled, as the simulator saw them on the wire, and a scanner that reports which of them
// appear in some captured text.
import type { Simulator } from '../simulator/index.js';

export interface Secret {
  kind: 'bearer' | 'refresh-token' | 'client-secret' | 'sig' | 'sasToken' | 'pdf-link-query';
  value: string;
}

/** The query string as sent, in both encodings a leak could take (encoded, and decoded). */
function queryForms(query: Record<string, string>): string[] {
  const encoded = new URLSearchParams(query).toString();
  const decoded = Object.entries(query)
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return [...new Set([encoded, decoded])];
}

export function secretsSeenBy(sim: Simulator, known: { clientSecret: string; refreshTokens: string[] }): Secret[] {
  const secrets: Secret[] = [{ kind: 'client-secret', value: known.clientSecret }];
  for (const token of known.refreshTokens) secrets.push({ kind: 'refresh-token', value: token });
  for (const request of sim.requests) {
    const auth = request.headers.authorization;
    if (auth?.toLowerCase().startsWith('bearer ')) secrets.push({ kind: 'bearer', value: auth.slice(7).trim() });
    if (request.host !== 'blob') continue;
    const sig = request.query.sig;
    if (sig) {
      secrets.push({ kind: 'sig', value: sig });
      // URL-encoded, as it appears inside a link.
      secrets.push({ kind: 'sig', value: encodeURIComponent(sig) });
    }
    if (Object.keys(request.query).length === 0) continue;
    const kind = request.path.startsWith('/statements/') ? 'pdf-link-query' : 'sasToken';
    for (const form of queryForms(request.query)) secrets.push({ kind, value: form });
  }
  // Short values (a 4-character sig would match by chance) make the scan meaningless; none are expected.
  const unique = new Map(secrets.filter((s) => s.value.length >= 16).map((s) => [`${s.kind}:${s.value}`, s]));
  return [...unique.values()];
}

/** Which secrets occur in `text` (each reported once, with where it was found). */
export function findSecrets(sources: Record<string, string>, secrets: Secret[]): string[] {
  const found: string[] = [];
  for (const secret of secrets) {
    for (const [where, text] of Object.entries(sources)) {
      if (text.includes(secret.value)) {
        found.push(`${secret.kind} ${secret.value.slice(0, 6)}… in ${where}`);
        break;
      }
    }
  }
  return found;
}
