// In Azure every line belongs to a function run: the handlers open a scope per invocation, and the logger files
// each line (including those from process-wide objects such as the HTTP clients) under the run it belongs to.
// What alerts and metrics count (business events, warnings, errors) goes through the unsampled sink when one is
// configured; the rest (info lines, the per-attempt HttpRequest events) through the host, which may sample them.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { InvocationContext } from '@azure/functions';
import type { InvocationTrace, TelemetrySink } from '../telemetry/azure-monitor.js';
import { isUnsampledEvent } from '../telemetry/events.js';
import type { EventProperties, SyncLogger } from '../telemetry/logger.js';

type ScopeContext = Pick<InvocationContext, 'log' | 'warn' | 'error'> &
  Partial<Pick<InvocationContext, 'invocationId' | 'functionName' | 'traceContext'>>;

/** The Functions invocation the current async call chain belongs to (set by the handlers). */
export const invocationScope = new AsyncLocalStorage<ScopeContext>();

const formatLine = (message: string, properties?: EventProperties) =>
  properties && Object.keys(properties).length > 0 ? `${message} ${JSON.stringify(properties)}` : message;

const traceOf = (c: ScopeContext | undefined): InvocationTrace | undefined =>
  c && { traceParent: c.traceContext?.traceParent, invocationId: c.invocationId, functionName: c.functionName };

/**
 * In Azure: every line, including those from process-wide objects such as the HTTP clients, goes through the
 * invocation it belongs to, so the host files it under that function run in App Insights. Outside an invocation
 * it falls back to `outside`. With an enabled `unsampled` sink, events other than HttpRequest and every warning and
 * error go there instead (with the invocation's operation id), where no sampling applies.
 */
export function invocationLogger(
  outside: SyncLogger,
  options: { tee?: boolean; unsampled?: TelemetrySink } = {},
): SyncLogger {
  const sink = options.unsampled?.enabled ? options.unsampled : undefined;
  // `tee` also writes lines of an invocation to `outside` (local runs and tests that capture both).
  const route = (
    toInvocation: (c: ScopeContext) => void,
    toOutside: () => void,
    toSink?: (c?: ScopeContext) => void,
  ) => {
    const current = invocationScope.getStore();
    if (sink && toSink) toSink(current);
    else if (current) toInvocation(current);
    if (!current || options.tee) toOutside();
  };
  return {
    info: (m, p) =>
      route(
        (c) => c.log(formatLine(m, p)),
        () => outside.info(m, p),
      ),
    warn: (m, p) =>
      route(
        (c) => c.warn(formatLine(m, p)),
        () => outside.warn(m, p),
        (c) => sink?.trace('warn', m, p, traceOf(c)),
      ),
    error: (m, p) =>
      route(
        (c) => c.error(formatLine(m, p)),
        () => outside.error(m, p),
        (c) => sink?.trace('error', m, p, traceOf(c)),
      ),
    event: (name, p) =>
      route(
        (c) => c.log(formatLine(`event:${name}`, p)),
        () => outside.event(name, p),
        isUnsampledEvent(name) ? (c) => sink?.event(name, p, traceOf(c)) : undefined,
      ),
  };
}
