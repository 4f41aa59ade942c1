// The one rule for the ids that become request paths, blob paths, table keys and queue messages: letters, digits
// and dashes, starting with a letter or digit, at most 64 characters (ref §2.4: ids are opaque; only these occur).
// Anything else is refused before it reaches a URL, a blob name or a table key.

export const INVOICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

/** A refused id: a validation error, permanent (the same id is refused every time). */
export class InvalidIdError extends Error {
  override name = 'InvalidIdError';
  readonly code = 'InvalidId';
}

/** A short, printable rendering of an untrusted value for an error message. */
export function describeValue(value: unknown): string {
  const text = JSON.stringify(typeof value === 'string' ? value : String(value)) ?? '""';
  return text.length > 82 ? `${text.slice(0, 80)}…` : text;
}

export function isSafeId(id: unknown): id is string {
  return typeof id === 'string' && INVOICE_ID_PATTERN.test(id);
}

/** Throws InvalidIdError unless `id` (an invoice id, a receipt id) is safe as a path segment, key and message id. */
export function assertSafeId(id: unknown, kind = 'invoice id'): asserts id is string {
  if (!isSafeId(id)) {
    throw new InvalidIdError(
      `Unsafe ${kind} ${describeValue(id)}: expected 1-64 letters, digits or dashes, starting with a letter or digit ` +
        '(no dots, slashes, spaces or escapes)',
    );
  }
}
