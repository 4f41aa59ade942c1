// In Azure every line belongs to a function run: the handlers open a scope per invocation, and the logger files
// each line (including those from process-wide objects such as the HTTP clients) under the run it belongs to.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { InvocationContext } from '@azure/functions';
import type { EventProperties, SyncLogger } from '../telemetry/logger.js';

/** The Functions invocation the current async call chain belongs to (set by the handlers). */
export const invocationScope = new AsyncLocalStorage<Pick<InvocationContext, 'log' | 'warn' | 'error'>>();

const formatLine = (message: string, properties?: EventProperties) =>
  properties && Object.keys(properties).length > 0 ? `${message} ${JSON.stringify(properties)}` : message;

/**
 * In Azure: every line, including those from process-wide objects such as the HTTP clients, goes through the
 * invocation it belongs to, so the host files it under that function run in App Insights. Outside an invocation
 * it falls back to `outside`.
 */
export function invocationLogger(outside: SyncLogger, options: { tee?: boolean } = {}): SyncLogger {
  // `tee` also writes lines of an invocation to `outside` (local runs and tests that capture both).
  const route = (
    toInvocation: (c: Pick<InvocationContext, 'log' | 'warn' | 'error'>) => void,
    toOutside: () => void,
  ) => {
    const current = invocationScope.getStore();
    if (current) toInvocation(current);
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
      ),
    error: (m, p) =>
      route(
        (c) => c.error(formatLine(m, p)),
        () => outside.error(m, p),
      ),
    event: (name, p) =>
      route(
        (c) => c.log(formatLine(`event:${name}`, p)),
        () => outside.event(name, p),
      ),
  };
}
