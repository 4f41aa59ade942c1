// The metrics of a run as aggregations over its events, the same ones the KQL in docs/queries computes, so the
// CLI's summary and App Insights tell one story. Feed it events through `collector.logger(base)`.
import type { EventProperties, SyncLogger } from './logger.js';

export interface EndpointStats {
  requests: number;
  retries: number;
  throttled: number;
  failed: number;
}

export interface TelemetrySummary {
  invoices: {
    discovered: number;
    queued: number;
    completed: number;
    failed: number;
    unsettled: number;
    mismatch: number;
  };
  parts: { exported: number; unsettled: number; rows: number; bytes: number; slowestMs: number };
  /**
   * failedCalls: calls (one request id, all its attempts) whose last attempt failed; recoveredAttempts: failed
   * attempts of calls that then succeeded on a retry.
   */
  http: EndpointStats & { failedCalls: number; recoveredAttempts: number; byEndpoint: Record<string, EndpointStats> };
  pdfAgeMs: { count: number; p50?: number; p99?: number; max?: number };
  refreshTokenAgeDays?: number;
}

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/** Nearest-rank percentile of a sorted list (what KQL's percentile() approximates). */
function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export class TelemetryCollector {
  readonly events: { name: string; properties: EventProperties }[] = [];

  record(name: string, properties: EventProperties): void {
    this.events.push({ name, properties });
  }

  /** A logger that records every event and passes every call on to `base`. */
  logger(base?: SyncLogger): SyncLogger {
    return {
      info: (m, p) => base?.info(m, p),
      warn: (m, p) => base?.warn(m, p),
      error: (m, p) => base?.error(m, p),
      event: (name, p) => {
        this.record(name, p);
        base?.event(name, p);
      },
    };
  }

  summary(): TelemetrySummary {
    const s: TelemetrySummary = {
      invoices: { discovered: 0, queued: 0, completed: 0, failed: 0, unsettled: 0, mismatch: 0 },
      parts: { exported: 0, unsettled: 0, rows: 0, bytes: 0, slowestMs: 0 },
      http: { requests: 0, retries: 0, throttled: 0, failed: 0, failedCalls: 0, recoveredAttempts: 0, byEndpoint: {} },
      pdfAgeMs: { count: 0 },
    };
    const pdfAges: number[] = [];
    // The last attempt of each call (the pipeline reuses a call's request id on every retry).
    const calls = new Map<string, { failedAttempts: number; lastFailed: boolean }>();
    let failedWithoutId = 0;
    for (const { name, properties: p } of this.events) {
      switch (name) {
        case 'InvoiceDiscovered':
          s.invoices.discovered++;
          break;
        case 'InvoiceQueued':
          s.invoices.queued++;
          break;
        case 'InvoiceStateChanged':
          if (p.state === 'complete') s.invoices.completed++;
          else if (p.state === 'failed') s.invoices.failed++;
          else if (p.state === 'unsettled') s.invoices.unsettled++;
          else if (p.state === 'mismatch') s.invoices.mismatch++;
          break;
        case 'PartExported':
          s.parts.exported++;
          s.parts.rows += num(p.rows);
          s.parts.bytes += num(p.bytes);
          s.parts.slowestMs = Math.max(s.parts.slowestMs, num(p.durationMs));
          break;
        case 'PartUnsettled':
          s.parts.unsettled++;
          break;
        case 'PdfSaved':
          pdfAges.push(num(p.pdfAgeMs));
          break;
        case 'RefreshTokenAge':
          s.refreshTokenAgeDays = num(p.ageDays);
          break;
        case 'HttpRequest': {
          const key = `${String(p.host)} ${String(p.method)} ${String(p.endpoint)}`;
          const stats = s.http.byEndpoint[key] ?? { requests: 0, retries: 0, throttled: 0, failed: 0 };
          s.http.byEndpoint[key] = stats;
          const retry = num(p.attempt) > 1 ? 1 : 0;
          const throttled = p.throttled === true ? 1 : 0;
          const status = num(p.status);
          const failed = status === 0 || status >= 400 ? 1 : 0;
          if (typeof p.requestId === 'string' && p.requestId) {
            const call = calls.get(p.requestId) ?? { failedAttempts: 0, lastFailed: false };
            calls.set(p.requestId, { failedAttempts: call.failedAttempts + failed, lastFailed: failed === 1 });
          } else failedWithoutId += failed;
          for (const target of [stats, s.http]) {
            target.requests++;
            target.retries += retry;
            target.throttled += throttled;
            target.failed += failed;
          }
          break;
        }
      }
    }
    s.http.failedCalls = failedWithoutId + [...calls.values()].filter((c) => c.lastFailed).length;
    s.http.recoveredAttempts = [...calls.values()].reduce((n, c) => n + (c.lastFailed ? 0 : c.failedAttempts), 0);
    pdfAges.sort((a, b) => a - b);
    s.pdfAgeMs = {
      count: pdfAges.length,
      p50: percentile(pdfAges, 50),
      p99: percentile(pdfAges, 99),
      max: pdfAges.at(-1),
    };
    return s;
  }
}

/** A few plain lines for a terminal (the CLI's run summary). */
export function formatSummary(s: TelemetrySummary): string[] {
  const lines = [
    `invoices: ${s.invoices.discovered} discovered, ${s.invoices.completed} completed, ${s.invoices.failed} failed, ${s.invoices.unsettled} unsettled, ${s.invoices.mismatch} mismatch`,
    `parts: ${s.parts.exported} exported (${s.parts.rows} rows, ${s.parts.bytes} bytes, slowest ${s.parts.slowestMs} ms), ${s.parts.unsettled} unsettled`,
    `http: ${s.http.requests} requests, ${s.http.retries} retries, ${s.http.throttled} throttled (429), ${s.http.failed} failed attempts`,
  ];
  if (s.http.failed > 0) {
    // An attempt that failed (a 429, a 5xx, a lost connection, or a 4xx) is not a failed call: most are retried.
    lines.push(
      `  failed attempts (an error or no response): ${s.http.recoveredAttempts} recovered (a retry of the call ` +
        `succeeded), ${s.http.failedCalls} call${s.http.failedCalls === 1 ? '' : 's'} failed for good`,
    );
  }
  if (s.pdfAgeMs.count > 0) {
    lines.push(`pdf age at save: p50 ${s.pdfAgeMs.p50} ms, p99 ${s.pdfAgeMs.p99} ms (link expires after 30 min)`);
  }
  if (s.refreshTokenAgeDays !== undefined)
    lines.push(`refresh token age: ${s.refreshTokenAgeDays} days (lapses at 90)`);
  const throttled = Object.entries(s.http.byEndpoint)
    .filter(([, e]) => e.throttled > 0 || e.retries > 0)
    .sort(([, a], [, b]) => b.throttled - a.throttled || b.retries - a.retries);
  for (const [endpoint, e] of throttled) {
    lines.push(`  ${endpoint}: ${e.requests} requests, ${e.retries} retries, ${e.throttled} throttled`);
  }
  return lines;
}
