// Splits a JSON collection page into the verbatim text of each `items` element (for NDJSON) plus the parsed
// envelope, so a line item is stored exactly as received and never re-serialized.
import { stripBom } from './pipeline.js';

export interface JsonItemsPage {
  /** The whole page parsed with JSON.parse (items included). */
  envelope: Record<string, unknown>;
  /** Each element of the top-level `items` array, verbatim, with inter-token CR/LF removed (one NDJSON line each). */
  items: string[];
}

const QUOTE = 34; // "
const BACKSLASH = 92;
const COLON = 58;
const COMMA = 44;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

const isWhitespace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

/** Index just past the string literal that opens at `start` (text[start] is a quote). */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (true) {
    const quote = text.indexOf('"', i);
    if (quote < 0) throw new SyntaxError('unterminated string');
    // A quote is escaped when an odd number of backslashes precede it.
    let backslashes = 0;
    for (let j = quote - 1; j > start && text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    i = quote + 1;
  }
}

/** The first index at or after `i` that is not JSON whitespace. */
function skipWhitespace(text: string, i: number): number {
  while (i < text.length && isWhitespace(text.charCodeAt(i))) i++;
  return i;
}

/**
 * The page is validated by JSON.parse first, so this scan can assume well-formed JSON: it only tracks strings
 * (quotes and escapes) and nesting depth to find where each element of the top-level `items` array begins and
 * ends. It was a jsonc-parser token walk; that tokenised every key and value and cost ~22 µs a row, this ~3 µs.
 */
export function splitJsonItems(input: string): JsonItemsPage {
  const text = stripBom(input);
  const parsed: unknown = JSON.parse(text);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SyntaxError('expected a JSON object page');
  }
  const envelope = parsed as Record<string, unknown>;
  if (!Array.isArray(envelope.items)) return { envelope, items: [] };
  const arrayStart = topLevelValueStart(text, 'items');
  if (arrayStart < 0 || text.charCodeAt(arrayStart) !== OPEN_BRACKET) throw new SyntaxError('no top-level items array');
  const items = arrayElements(text, arrayStart);
  if (items.length !== envelope.items.length) {
    throw new SyntaxError(`items split found ${items.length} elements, JSON.parse found ${envelope.items.length}`);
  }
  return { envelope, items };
}

/**
 * Each element of the JSON array `text` (already validated by JSON.parse), verbatim, with inter-token CR/LF
 * removed: e.g. the raw text of every amendment of an invoice.
 */
export function splitJsonArray(input: string): string[] {
  const text = stripBom(input);
  const start = skipWhitespace(text, 0);
  if (text.charCodeAt(start) !== OPEN_BRACKET) throw new SyntaxError('expected a JSON array');
  return arrayElements(text, start);
}

/**
 * The verbatim JSON text of the value of top-level key `key` in the JSON object `text` (which must be valid JSON:
 * parse it first), or undefined when the key is absent. Numbers keep every digit the service sent:
 * `"totalCharges": 12345678901234567.89` gives `12345678901234567.89`, which JSON.parse would round. With a
 * duplicated key this is the first occurrence.
 */
export function rawTopLevelValue(input: string, key: string): string | undefined {
  const text = stripBom(input);
  const start = topLevelValueStart(text, key);
  return start < 0 ? undefined : text.slice(start, valueEnd(text, start));
}

/** Elements of the array whose `[` is at `arrayStart`. */
function arrayElements(text: string, arrayStart: number): string[] {
  const items: string[] = [];
  let i = skipWhitespace(text, arrayStart + 1);
  if (text.charCodeAt(i) === CLOSE_BRACKET) return items;
  while (i < text.length) {
    const start = i;
    i = valueEnd(text, i);
    const raw = text.slice(start, i);
    items.push(raw.indexOf('\n') >= 0 || raw.indexOf('\r') >= 0 ? raw.replace(/[\r\n]/g, '') : raw);
    i = skipWhitespace(text, i);
    if (text.charCodeAt(i) === CLOSE_BRACKET) break;
    if (text.charCodeAt(i) !== COMMA) throw new SyntaxError(`expected , or ] at ${i}`);
    i = skipWhitespace(text, i + 1);
  }
  return items;
}

/** Index just past the JSON value that starts at `start` (trailing whitespace excluded). */
function valueEnd(text: string, start: number): number {
  let i = start;
  let depth = 0;
  // Walk one value: it ends at the first comma or bracket at its own level.
  for (;;) {
    if (i >= text.length) break;
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (depth === 0) return i;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 0) break;
      depth--;
      if (depth === 0) return i + 1;
    } else if (c === COMMA && depth === 0) break;
    i++;
  }
  let end = i;
  while (end > start && isWhitespace(text.charCodeAt(end - 1))) end--;
  return end;
}

/** Index of the first character of the value of the top-level key `key`, or -1 when the object has no such key. */
function topLevelValueStart(text: string, key: string): number {
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (depth === 1) {
        const after = skipWhitespace(text, end);
        if (text.charCodeAt(after) === COLON && JSON.parse(text.slice(i, end)) === key) {
          return skipWhitespace(text, after + 1);
        }
      }
      i = end;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
    i++;
  }
  return -1;
}
