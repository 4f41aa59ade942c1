// The unsampled channel to Application Insights. The Functions host samples what the worker logs (host.json
// samplingSettings: traces are sampled, and every `context.log` line is a trace), so a line that an alert or a metric
// counts could be dropped under load. What those read goes here instead: business events become `customEvents`,
// warnings and errors become `traces` at their severity, sent by the Azure Monitor exporter with no sampler, no
// ingestion sampling and a queue large enough that nothing is dropped. The high-volume per-attempt HttpRequest
// lines stay on the host's sampled path (docs/operations.md, "Sampling").
//
// It authenticates with the managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING, as the host does: local
// auth is disabled on the App Insights resource) and is a no-op without APPLICATIONINSIGHTS_CONNECTION_STRING
// (tests, local runs, the CLI).
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { ManagedIdentityCredential } from '@azure/identity';
import { AzureMonitorLogExporter } from '@azure/monitor-opentelemetry-exporter';
import { type Context, context as otelContext, ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { type AnyValueMap, type Logger, SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import type { EventProperties } from './logger.js';

/** The Functions invocation a line belongs to, so App Insights files it under the same operation as the host does. */
export interface InvocationTrace {
  /** W3C traceparent of the invocation (InvocationContext.traceContext.traceParent). */
  traceParent?: string | null;
  invocationId?: string;
  functionName?: string;
}

export interface TelemetrySink {
  /** False when no connection string is set: callers keep their usual path and nothing is sent. */
  readonly enabled: boolean;
  /** A business event, as a customEvents row named `name` with the properties as custom dimensions. */
  event(name: string, properties: EventProperties, invocation?: InvocationTrace): void;
  /** A warning or error line, as a traces row at severity 2 (warning) or 3 (error). */
  trace(level: 'warn' | 'error', message: string, properties?: EventProperties, invocation?: InvocationTrace): void;
  /** Sends what is queued (after each invocation, before the platform may freeze the instance). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** The exporter maps a log record with this attribute to a custom event (customEvents), the name being its value. */
export const CUSTOM_EVENT_NAME_ATTRIBUTE = 'microsoft.custom_event.name';

export const noopSink: TelemetrySink = {
  enabled: false,
  event: () => {},
  trace: () => {},
  flush: async () => {},
  shutdown: async () => {},
};

export interface AzureMonitorSinkOptions {
  /** Test hooks: who proves the ingestion request (default: the managed identity) and the HTTP client. */
  credential?: TokenCredential;
  httpClient?: HttpClient;
  /** Keep failed batches on disk for a retry (the exporter's default); tests turn it off. */
  disableOfflineStorage?: boolean;
  /** How long the batch processor waits before sending (default 1 s). */
  scheduledDelayMillis?: number;
}

/** `Authorization=AAD;ClientId=<id>` → the managed identity that ingests; undefined when AAD is not asked for. */
export function ingestionCredential(authenticationString: string | undefined): TokenCredential | undefined {
  if (!authenticationString) return undefined;
  const parts = new Map(
    authenticationString
      .split(';')
      .map((p) => p.split('=').map((s) => s.trim()))
      .filter((kv): kv is [string, string] => kv.length === 2 && Boolean(kv[0]))
      .map(([k, v]) => [k.toLowerCase(), v] as const),
  );
  if (parts.get('authorization')?.toUpperCase() !== 'AAD') return undefined;
  const clientId = parts.get('clientid');
  return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
}

/** The OpenTelemetry context of a W3C traceparent (`00-<trace>-<span>-<flags>`), or the root context. */
export function contextOf(traceParent: string | null | undefined): Context {
  const match = /^[\da-f]{2}-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})$/.exec(traceParent?.trim() ?? '');
  if (!match) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: Number.parseInt(match[3]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  });
}

function attributes(properties: EventProperties | undefined, invocation: InvocationTrace | undefined): AnyValueMap {
  const out: AnyValueMap = {};
  for (const [key, value] of Object.entries(properties ?? {}))
    if (value !== undefined && value !== null) out[key] = value;
  if (invocation?.invocationId) out.InvocationId = invocation.invocationId;
  if (invocation?.functionName) out.FunctionName = invocation.functionName;
  return out;
}

const lineOf = (message: string, properties?: EventProperties) =>
  properties && Object.keys(properties).length > 0 ? `${message} ${JSON.stringify(properties)}` : message;

/** The sink for this process: the Azure Monitor exporter when a connection string is set, else the no-op sink. */
export function azureMonitorSink(
  env: Record<string, string | undefined> = process.env,
  options: AzureMonitorSinkOptions = {},
): TelemetrySink {
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim();
  if (!connectionString) return noopSink;
  const credential = options.credential ?? ingestionCredential(env.APPLICATIONINSIGHTS_AUTHENTICATION_STRING);
  const exporter = new AzureMonitorLogExporter({
    connectionString,
    ...(credential ? { credential } : {}),
    ...(options.httpClient ? { httpClient: options.httpClient } : {}),
    ...(options.disableOfflineStorage ? { disableOfflineStorage: true } : {}),
  });
  const provider = new LoggerProvider({
    // cloud_RoleName: the Function App's name, as on the host's own telemetry.
    resource: resourceFromAttributes({ 'service.name': env.WEBSITE_SITE_NAME || 'csp-invoice-sync' }),
    processors: [
      new BatchLogRecordProcessor(exporter, {
        scheduledDelayMillis: options.scheduledDelayMillis ?? 1000,
        // The default queue (2048) drops records when full; these are few, and none may be dropped.
        maxQueueSize: 100_000,
        maxExportBatchSize: 512,
      }),
    ],
  });
  const logger: Logger = provider.getLogger('csp-invoice-sync');
  const emit = (record: Parameters<Logger['emit']>[0], invocation?: InvocationTrace) =>
    otelContext.with(contextOf(invocation?.traceParent), () =>
      logger.emit({ ...record, context: contextOf(invocation?.traceParent) }),
    );
  return {
    enabled: true,
    event(name, properties, invocation) {
      emit(
        {
          body: name,
          attributes: { ...attributes(properties, invocation), [CUSTOM_EVENT_NAME_ATTRIBUTE]: name },
        },
        invocation,
      );
    },
    trace(level, message, properties, invocation) {
      emit(
        {
          body: lineOf(message, properties),
          severityNumber: level === 'error' ? SeverityNumber.ERROR : SeverityNumber.WARN,
          severityText: level === 'error' ? 'Error' : 'Warning',
          attributes: attributes(properties, invocation),
        },
        invocation,
      );
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
