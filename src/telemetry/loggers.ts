// Logger wrappers every log line passes through before it leaves the process: secrets are redacted from messages
// and properties, and a line about an invoice carries that invoice's correlation id (MS-CorrelationId).
import { redactText } from '../http/redact.js';
import type { EventProperties, SyncLogger } from './logger.js';

function redactProperties(properties: EventProperties | undefined): EventProperties | undefined {
  if (!properties) return properties;
  const out: EventProperties = {};
  for (const [key, value] of Object.entries(properties))
    out[key] = typeof value === 'string' ? redactText(value) : value;
  return out;
}

/** Every message and string property through `redactText`: a last line of defence if a caller forgot. */
export function redactingLogger(base: SyncLogger): SyncLogger {
  return {
    info: (m, p) => base.info(redactText(m), redactProperties(p)),
    warn: (m, p) => base.warn(redactText(m), redactProperties(p)),
    error: (m, p) => base.error(redactText(m), redactProperties(p)),
    event: (name, p) => base.event(name, redactProperties(p) ?? {}),
  };
}

/**
 * Remembers each invoice's correlation id from the lines that carry both, and adds it to later lines that name
 * the invoice but not the id (a support case quotes it). Bounded: the oldest invoices are forgotten first.
 */
export function correlatingLogger(base: SyncLogger, maxInvoices = 10_000): SyncLogger {
  const known = new Map<string, string>();
  const enrich = (properties: EventProperties | undefined): EventProperties | undefined => {
    const invoiceId = properties?.invoiceId;
    if (!properties || typeof invoiceId !== 'string') return properties;
    const correlationId = properties.correlationId;
    if (typeof correlationId === 'string' && correlationId) {
      if (known.get(invoiceId) !== correlationId) {
        known.delete(invoiceId);
        known.set(invoiceId, correlationId);
        if (known.size > maxInvoices) known.delete(known.keys().next().value as string);
      }
      return properties;
    }
    const remembered = known.get(invoiceId);
    return remembered ? { ...properties, correlationId: remembered } : properties;
  };
  return {
    info: (m, p) => base.info(m, enrich(p)),
    warn: (m, p) => base.warn(m, enrich(p)),
    error: (m, p) => base.error(m, enrich(p)),
    event: (name, p) => base.event(name, enrich(p) ?? {}),
  };
}
