// The logging contract every job and client reporter writes through: structured lines and named business events.
// Where the lines go (the Functions host, a file, a test) is decided by whoever builds the logger.

export type EventProperties = Record<string, string | number | boolean | undefined | null>;

/** Structured log lines and events. In Azure they go through the Functions host to App Insights. */
export interface SyncLogger {
  info(message: string, properties?: EventProperties): void;
  warn(message: string, properties?: EventProperties): void;
  error(message: string, properties?: EventProperties): void;
  /** A named business event (invoice state change, part finished, ...) with dimensions and measurements. */
  event(name: string, properties: EventProperties): void;
}

/** A logger that writes one JSON line per call; the CLI and tests wrap or replace it. */
export function consoleLogger(write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): SyncLogger {
  const emit = (level: string, message: string, properties?: EventProperties) =>
    write(JSON.stringify({ time: new Date().toISOString(), level, message, ...properties }));
  return {
    info: (m, p) => emit('info', m, p),
    warn: (m, p) => emit('warn', m, p),
    error: (m, p) => emit('error', m, p),
    event: (name, p) => emit('event', name, p),
  };
}
