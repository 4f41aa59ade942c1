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
  const items: string[] = [];
  if (!Array.isArray(envelope.items)) return { envelope, items };

  const arrayStart = topLevelItemsArray(text);
  let i = skipWhitespace(text, arrayStart + 1);
  if (text.charCodeAt(i) !== CLOSE_BRACKET) {
    while (i < text.length) {
      const start = i;
      let depth = 0;
      // Walk one element: it ends at the first comma or bracket at its own level.
      for (;;) {
        const c = text.charCodeAt(i);
        if (c === QUOTE) {
          i = stringEnd(text, i);
          continue;
        }
        if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
        else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
          if (depth === 0) break;
          depth--;
        } else if (c === COMMA && depth === 0) break;
        i++;
      }
      let end = i;
      while (end > start && isWhitespace(text.charCodeAt(end - 1))) end--;
      const raw = text.slice(start, end);
      items.push(raw.indexOf('\n') >= 0 || raw.indexOf('\r') >= 0 ? raw.replace(/[\r\n]/g, '') : raw);
      if (text.charCodeAt(i) === CLOSE_BRACKET) break;
      i = skipWhitespace(text, i + 1);
    }
  }
  if (items.length !== envelope.items.length) {
    throw new SyntaxError(`items split found ${items.length} elements, JSON.parse found ${envelope.items.length}`);
  }
  return { envelope, items };
}

/** Index of the `[` that opens the value of the top-level key `items`. */
function topLevelItemsArray(text: string): number {
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (depth === 1) {
        const after = skipWhitespace(text, end);
        if (text.charCodeAt(after) === COLON && JSON.parse(text.slice(i, end)) === 'items') {
          const value = skipWhitespace(text, after + 1);
          if (text.charCodeAt(value) === OPEN_BRACKET) return value;
        }
      }
      i = end;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
    i++;
  }
  throw new SyntaxError('no top-level items array');
}
