// Splits a JSON collection page into the verbatim text of each `items` element (for NDJSON) plus the parsed
// envelope, so a line item is stored exactly as received and never re-serialized.
import { isUtf8 } from 'node:buffer';
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

const TWO_ITEMS_KEYS = 'the page has two top-level items keys';

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
  const itemsMembers = topLevelMembers(text).filter((m) => m.key === 'items');
  // As the byte scan does: two top-level `items` keys are refused (JSON.parse would keep the last one silently).
  if (itemsMembers.length > 1) throw new SyntaxError(TWO_ITEMS_KEYS);
  if (!Array.isArray(envelope.items)) return { envelope, items: [] };
  const arrayStart = itemsMembers[0]?.valueStart ?? -1;
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

/** One top-level member of a JSON object: its key (decoded) and where its value's verbatim text lies. */
export interface JsonMember {
  key: string;
  valueStart: number;
  valueEnd: number;
}

/**
 * Every top-level member of the JSON object `text` (which must be valid JSON: parse it first), in the order
 * written, duplicates included: the verbatim text of each value is `text.slice(valueStart, valueEnd)`.
 */
export function topLevelMembers(text: string): JsonMember[] {
  const members: JsonMember[] = [];
  let i = skipWhitespace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) throw new SyntaxError('expected a JSON object');
  i = skipWhitespace(text, i + 1);
  while (i < text.length && text.charCodeAt(i) !== CLOSE_BRACE) {
    if (text.charCodeAt(i) !== QUOTE) throw new SyntaxError(`expected a key at ${i}`);
    const keyEnd = stringEnd(text, i);
    const literal = text.slice(i, keyEnd);
    const key = literal.includes('\\') ? (JSON.parse(literal) as string) : literal.slice(1, -1);
    const colon = skipWhitespace(text, keyEnd);
    if (text.charCodeAt(colon) !== COLON) throw new SyntaxError(`expected : at ${colon}`);
    const valueStart = skipWhitespace(text, colon + 1);
    const end = valueEnd(text, valueStart);
    members.push({ key, valueStart, valueEnd: end });
    i = skipWhitespace(text, end);
    if (text.charCodeAt(i) === COMMA) i = skipWhitespace(text, i + 1);
  }
  return members;
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

/** One v1 page as bytes: the envelope parsed, the rows as NDJSON bytes copied from the page, never decoded. */
export interface NdjsonItemsPage {
  /** The page without its `items` elements, parsed (`items` is an empty array when the page has one). */
  envelope: Record<string, unknown>;
  /** Each `items` element verbatim, line breaks between tokens removed, each followed by "\n". */
  ndjson: Buffer;
  /** Elements in `ndjson`. */
  rows: number;
}

const EMPTY_ITEMS = Buffer.from('[]');
const LF = 10;
const CR = 13;

/** Positions found by one validating pass over a page: where its top-level `items` array and elements lie. */
interface PageScan {
  /** `[` and just past `]` of the top-level `items` array; -1 when there is none. */
  arrayStart: number;
  arrayEnd: number;
  /** start, end pairs of each element. */
  ranges: number[];
  /** Index into `ranges / 2` of elements with a raw CR or LF between their tokens. */
  broken: number[];
}

function syntaxError(what: string, at: number): SyntaxError {
  return new SyntaxError(`invalid JSON page: ${what} at byte ${at}`);
}

/**
 * The page's rows as NDJSON bytes, found by one pass over the bytes that also checks the whole page is JSON
 * (RFC 8259 grammar: strings with valid escapes and no raw control characters, numbers, literals, nesting), so
 * no string is made of the rows and no object is built of them: the rows are copied byte for byte into the block.
 * Only the envelope (the page without its elements) is parsed. A page that is not valid UTF-8 is decoded as text
 * (invalid sequences become U+FFFD, as the text reader does) and split from that.
 */
export function ndjsonItems(input: Buffer): NdjsonItemsPage {
  let bytes = input;
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  if (!isUtf8(bytes)) {
    const { envelope, items } = splitJsonItems(bytes.toString('utf8'));
    const ndjson = items.length === 0 ? Buffer.alloc(0) : Buffer.from(`${items.join('\n')}\n`, 'utf8');
    return { envelope: { ...envelope, items: [] }, ndjson, rows: items.length };
  }
  const scan = scanPage(bytes);
  const envelopeBytes =
    scan.arrayStart < 0
      ? bytes
      : Buffer.concat([bytes.subarray(0, scan.arrayStart), EMPTY_ITEMS, bytes.subarray(scan.arrayEnd)]);
  const envelope = JSON.parse(envelopeBytes.toString('utf8')) as Record<string, unknown>;
  const { ranges, broken } = scan;
  const rows = ranges.length / 2;
  let size = rows;
  for (let k = 0; k < ranges.length; k += 2) size += (ranges[k + 1] as number) - (ranges[k] as number);
  const ndjson = Buffer.allocUnsafe(size);
  let at = 0;
  let nextBroken = broken.length > 0 ? (broken[0] as number) : -1;
  let brokenIndex = 0;
  for (let row = 0; row < rows; row++) {
    const start = ranges[2 * row] as number;
    const end = ranges[2 * row + 1] as number;
    if (row === nextBroken) {
      for (let i = start; i < end; i++) {
        const c = bytes[i] as number;
        if (c !== LF && c !== CR) ndjson[at++] = c;
      }
      nextBroken = ++brokenIndex < broken.length ? (broken[brokenIndex] as number) : -1;
    } else {
      at += bytes.copy(ndjson, at, start, end);
    }
    ndjson[at++] = LF;
  }
  return { envelope, ndjson: at === size ? ndjson : ndjson.subarray(0, at), rows };
}

const isDigit = (c: number) => c >= 48 && c <= 57;
const isHex = (c: number) => isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);

/** Index just past the string whose opening quote is at `start`; checks escapes and control characters. */
function byteStringEnd(b: Uint8Array, start: number): number {
  let i = start + 1;
  for (;;) {
    const c = b[i] as number;
    // The common byte first: anything but a quote, a backslash or a control character (undefined: the end).
    if (c !== QUOTE && c !== BACKSLASH && c >= 32) {
      i++;
      continue;
    }
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      const e = b[i + 1];
      if (e === 117 /* u */) {
        if (!(isHex(b[i + 2] ?? 0) && isHex(b[i + 3] ?? 0) && isHex(b[i + 4] ?? 0) && isHex(b[i + 5] ?? 0))) {
          throw syntaxError('bad \\u escape', i);
        }
        i += 6;
        continue;
      }
      // " \ / b f n r t
      if (e !== 34 && e !== 92 && e !== 47 && e !== 98 && e !== 102 && e !== 110 && e !== 114 && e !== 116) {
        throw syntaxError('bad escape', i);
      }
      i += 2;
      continue;
    }
    if (i >= b.length) throw syntaxError('unterminated string', start);
    throw syntaxError('control character in a string', i);
  }
}

/** Index just past the number at `start` (-?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?). */
function byteNumberEnd(b: Uint8Array, start: number): number {
  let i = start;
  if (b[i] === 45) i++;
  if (b[i] === 48) i++;
  else if (isDigit(b[i] ?? 0)) while (isDigit(b[i] ?? 0)) i++;
  else throw syntaxError('bad number', start);
  if (b[i] === 46) {
    i++;
    if (!isDigit(b[i] ?? 0)) throw syntaxError('bad number', start);
    while (isDigit(b[i] ?? 0)) i++;
  }
  if (b[i] === 101 || b[i] === 69) {
    i++;
    if (b[i] === 43 || b[i] === 45) i++;
    if (!isDigit(b[i] ?? 0)) throw syntaxError('bad number', start);
    while (isDigit(b[i] ?? 0)) i++;
  }
  return i;
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');
const ITEMS_KEY = Buffer.from('"items"');

function literalEnd(b: Uint8Array, start: number, word: Buffer): number {
  for (let k = 0; k < word.length; k++) if (b[start + k] !== word[k]) throw syntaxError('unexpected token', start);
  return start + word.length;
}

/** Whether the key whose quotes are at start and end - 1 is `items` (decoded only when it has an escape). */
function isItemsKey(b: Buffer, start: number, end: number): boolean {
  if (end - start === ITEMS_KEY.length && b.compare(ITEMS_KEY, 0, ITEMS_KEY.length, start, end) === 0) return true;
  const backslash = b.indexOf(BACKSLASH, start);
  return backslash !== -1 && backslash < end && JSON.parse(b.toString('utf8', start, end)) === 'items';
}

enum Expect {
  Value,
  Key,
  AfterValue,
}

/** One validating pass over a JSON page (an object), noting where the top-level `items` elements lie. */
function scanPage(page: Buffer): PageScan {
  // A plain byte view: element reads on it are cheaper than on the Buffer subclass.
  const b = new Uint8Array(page.buffer, page.byteOffset, page.length);
  const n = b.length;
  const scan: PageScan = { arrayStart: -1, arrayEnd: -1, ranges: [], broken: [] };
  /** Open containers: OPEN_BRACE or OPEN_BRACKET. */
  const stack: number[] = [];
  let state = Expect.Value;
  let i = 0;
  let lastKeyIsItems = false;
  let sawItemsKey = false;
  /** Depth of the top-level items array when inside it (2), else 0. */
  let inItems = false;
  let itemStart = -1;
  let itemBroken = false;
  for (;;) {
    // Whitespace; a line break inside an element marks it for removal of its breaks.
    let c = b[i];
    while (c === 32 || c === 10 || c === 13 || c === 9) {
      if ((c === 10 || c === 13) && itemStart >= 0) itemBroken = true;
      c = b[++i];
    }
    if (state === Expect.AfterValue) {
      const depth = stack.length;
      if (inItems && depth === 2 && itemStart >= 0 && i > itemStart) {
        // The element that began at itemStart ended at the last non-space byte before i.
        let end = i;
        while (end > itemStart) {
          const w = b[end - 1];
          if (w !== 32 && w !== 10 && w !== 13 && w !== 9) break;
          end--;
        }
        if (itemBroken) scan.broken.push(scan.ranges.length / 2);
        scan.ranges.push(itemStart, end);
        itemStart = -1;
        itemBroken = false;
      }
      if (depth === 0) {
        if (i !== n) throw syntaxError('text after the page', i);
        return scan;
      }
      const open = stack[depth - 1];
      if (c === COMMA) {
        i++;
        state = open === OPEN_BRACE ? Expect.Key : Expect.Value;
        continue;
      }
      if ((c === CLOSE_BRACE && open === OPEN_BRACE) || (c === CLOSE_BRACKET && open === OPEN_BRACKET)) {
        stack.pop();
        i++;
        if (inItems && depth === 2) {
          inItems = false;
          scan.arrayEnd = i;
        }
        continue;
      }
      throw syntaxError(c === undefined ? 'unexpected end' : 'expected , or a closing bracket', i);
    }
    if (state === Expect.Key) {
      if (c !== QUOTE) throw syntaxError('expected a key', i);
      const end = byteStringEnd(b, i);
      if (stack.length === 1) {
        lastKeyIsItems = isItemsKey(page, i, end);
        if (lastKeyIsItems) {
          // JSON.parse keeps the last of two equal keys, where this scan would take the first array: a page that
          // names its rows twice is refused, whatever the values, not read one way or the other.
          if (sawItemsKey) throw new SyntaxError(TWO_ITEMS_KEYS);
          sawItemsKey = true;
        }
      }
      i = end;
      // Whitespace between a key and its colon: a line break here is inside the element too.
      let w = b[i];
      while (w === 32 || w === 10 || w === 13 || w === 9) {
        if ((w === 10 || w === 13) && itemStart >= 0) itemBroken = true;
        w = b[++i];
      }
      if (w !== COLON) throw syntaxError('expected :', i);
      i++;
      state = Expect.Value;
      continue;
    }
    // A value.
    if (inItems && stack.length === 2) {
      itemStart = i;
      itemBroken = false;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (stack.length === 1 && lastKeyIsItems && c === OPEN_BRACKET) {
        scan.arrayStart = i;
        inItems = true;
      }
      if (stack.length === 0 && c !== OPEN_BRACE) throw new SyntaxError('expected a JSON object page');
      stack.push(c);
      i++;
      let d = b[i];
      while (d === 32 || d === 10 || d === 13 || d === 9) {
        if ((d === 10 || d === 13) && itemStart >= 0) itemBroken = true;
        d = b[++i];
      }
      if ((c === OPEN_BRACE && d === CLOSE_BRACE) || (c === OPEN_BRACKET && d === CLOSE_BRACKET)) {
        // An empty container is a whole value.
        stack.pop();
        i++;
        if (inItems && stack.length === 1) {
          inItems = false;
          scan.arrayEnd = i;
        }
        state = Expect.AfterValue;
        continue;
      }
      state = c === OPEN_BRACE ? Expect.Key : Expect.Value;
      if (stack.length === 1) lastKeyIsItems = false;
      continue;
    }
    if (stack.length === 1) lastKeyIsItems = false;
    if (c === QUOTE) i = byteStringEnd(b, i);
    else if (c === 45 || isDigit(c ?? 0)) i = byteNumberEnd(b, i);
    else if (c === 116) i = literalEnd(b, i, TRUE);
    else if (c === 102) i = literalEnd(b, i, FALSE);
    else if (c === 110) i = literalEnd(b, i, NULL);
    else throw syntaxError(c === undefined ? 'unexpected end' : 'unexpected token', i);
    if (stack.length === 0) throw new SyntaxError('expected a JSON object page');
    state = Expect.AfterValue;
  }
}
