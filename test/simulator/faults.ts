// Fault injection rules: matched in order against each incoming request; each match consumes one `times`.

export type SimHost = 'partnercenter' | 'graph' | 'blob' | 'token';

interface RuleBase {
  host?: SimHost;
  /** HTTP method, case-insensitive. */
  method?: string;
  /** A string matches when the request path (without query) contains it; a RegExp is tested against the path. */
  path?: string | RegExp;
  /** How many matching requests this rule answers (default 1; Infinity for all). */
  times?: number;
}

export type FaultRule = RuleBase &
  (
    | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
    | { kind: 'reset' }
    | { kind: 'resetMidBody' }
    | { kind: 'delay'; ms: number }
    | { kind: 'v2NoData'; polls: number }
  );

export interface Faults {
  add(rule: FaultRule): void;
  clear(): void;
  /** Rules not yet used up, in match order. */
  readonly pending: readonly FaultRule[];
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
}

export class FaultList implements Faults {
  #rules: ActiveRule[] = [];

  add(rule: FaultRule): void {
    this.#rules.push({ rule, remaining: rule.times ?? 1 });
  }

  clear(): void {
    this.#rules = [];
  }

  get pending(): readonly FaultRule[] {
    return this.#rules.map((r) => r.rule);
  }

  /** The first rule matching this request (consuming one use), or undefined. */
  take(host: SimHost, method: string, path: string): FaultRule | undefined {
    for (const active of this.#rules) {
      const { rule } = active;
      if (active.remaining <= 0) continue;
      if (rule.host && rule.host !== host) continue;
      if (rule.method && rule.method.toUpperCase() !== method.toUpperCase()) continue;
      if (rule.path !== undefined) {
        const ok = typeof rule.path === 'string' ? path.includes(rule.path) : rule.path.test(path);
        if (!ok) continue;
      }
      // A no-data rule describes an export, so only an export request can use it up.
      if (rule.kind === 'v2NoData' && !(host === 'graph' && method === 'POST' && /\/export$/i.test(path))) continue;
      active.remaining--;
      this.#rules = this.#rules.filter((r) => r.remaining > 0);
      return rule;
    }
    return undefined;
  }
}

/**
 * The documented Partner Center 429 (ref §9): `{"statusCode":429,"message":"Rate limit is exceeded. Try again in N seconds."}`,
 * with `Retry-After` unless `retryAfterSeconds` is undefined.
 */
/** JSON content type, plus `Retry-After` unless the fault is the one that omits it. */
const throttleHeaders = (retryAfterSeconds: number | undefined): Record<string, string> =>
  retryAfterSeconds === undefined
    ? { 'content-type': 'application/json' }
    : { 'content-type': 'application/json', 'retry-after': String(retryAfterSeconds) };

export function throttle(retryAfterSeconds: number | undefined, rule: RuleBase = {}): FaultRule {
  const seconds = retryAfterSeconds ?? 1;
  return {
    host: 'partnercenter',
    ...rule,
    kind: 'status',
    status: 429,
    headers: throttleHeaders(retryAfterSeconds),
    body: JSON.stringify({ statusCode: 429, message: `Rate limit is exceeded. Try again in ${seconds} seconds.` }),
  };
}

/** Graph's 429 (ref §6.6): `{"error":{"code":"TooManyRequests",...}}` with `Retry-After` unless undefined. */
export function graphThrottle(retryAfterSeconds: number | undefined, rule: RuleBase = {}): FaultRule {
  return {
    host: 'graph',
    ...rule,
    kind: 'status',
    status: 429,
    headers: throttleHeaders(retryAfterSeconds),
    body: JSON.stringify({
      error: {
        code: 'TooManyRequests',
        message: 'Too many requests. Please retry after the time in the Retry-After header.',
        innerError: { date: new Date().toISOString(), 'request-id': crypto.randomUUID() },
      },
    }),
  };
}

/** A Partner Center ApiFault with a numeric (default) or string code (ref §10). */
export function apiFault(
  status: number,
  code: number | string = status === 503 ? 503 : 500,
  rule: RuleBase = {},
): FaultRule {
  return {
    host: 'partnercenter',
    ...rule,
    kind: 'status',
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({
      code,
      description: status === 503 ? 'The service is temporarily unavailable.' : 'An internal error occurred.',
      data: [],
      source: 'PartnerFD',
    }),
  };
}
