// Splits a JSON collection page into the verbatim text of each `items` element (for NDJSON) plus the parsed
// envelope, so a line item is stored exactly as received and never re-serialized.
import { createScanner, type SyntaxKind as ScannerKind } from 'jsonc-parser';
import { stripBom } from './pipeline.js';

export interface JsonItemsPage {
  /** The whole page parsed with JSON.parse (items included). */
  envelope: Record<string, unknown>;
  /** Each element of the top-level `items` array, verbatim, with inter-token CR/LF removed (one NDJSON line each). */
  items: string[];
}

// jsonc-parser's SyntaxKind is an ambient const enum, which isolatedModules cannot read: mirror its values.
const SyntaxKind = {
  OpenBraceToken: 1,
  CloseBraceToken: 2,
  OpenBracketToken: 3,
  CloseBracketToken: 4,
  CommaToken: 5,
  StringLiteral: 10,
  LineCommentTrivia: 12,
  BlockCommentTrivia: 13,
  LineBreakTrivia: 14,
  Trivia: 15,
  EOF: 17,
} as const satisfies Record<string, ScannerKind>;

const OPEN = new Set<number>([SyntaxKind.OpenBraceToken, SyntaxKind.OpenBracketToken]);
const CLOSE = new Set<number>([SyntaxKind.CloseBraceToken, SyntaxKind.CloseBracketToken]);
const TRIVIA = new Set<number>([
  SyntaxKind.Trivia,
  SyntaxKind.LineBreakTrivia,
  SyntaxKind.LineCommentTrivia,
  SyntaxKind.BlockCommentTrivia,
]);

export function splitJsonItems(input: string): JsonItemsPage {
  const text = stripBom(input);
  const parsed: unknown = JSON.parse(text);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SyntaxError('expected a JSON object page');
  }
  const envelope = parsed as Record<string, unknown>;
  const items: string[] = [];
  if (!Array.isArray(envelope.items)) return { envelope, items };

  const scanner = createScanner(text, true);
  let depth = 0;
  let lastKeyAtTop: string | undefined;
  let inItems = false;
  let itemStart = -1;
  let itemEnd = -1;
  const flush = () => {
    if (itemStart >= 0) items.push(text.slice(itemStart, itemEnd).replace(/[\r\n]/g, ''));
    itemStart = -1;
  };
  for (let kind: number = scanner.scan(); kind !== SyntaxKind.EOF; kind = scanner.scan()) {
    if (TRIVIA.has(kind)) continue;
    const offset = scanner.getTokenOffset();
    const end = offset + scanner.getTokenLength();
    if (inItems && depth >= 2) {
      if (depth === 2 && (kind === SyntaxKind.CommaToken || kind === SyntaxKind.CloseBracketToken)) {
        flush();
        if (kind === SyntaxKind.CloseBracketToken) {
          inItems = false;
          depth--;
        }
        continue;
      }
      if (itemStart < 0) itemStart = offset;
      itemEnd = end;
      if (OPEN.has(kind)) depth++;
      else if (CLOSE.has(kind)) depth--;
      continue;
    }
    if (OPEN.has(kind)) {
      depth++;
      if (depth === 2 && kind === SyntaxKind.OpenBracketToken && lastKeyAtTop === 'items') inItems = true;
    } else if (CLOSE.has(kind)) {
      depth--;
    } else if (depth === 1 && kind === SyntaxKind.StringLiteral) {
      lastKeyAtTop = scanner.getTokenValue();
    }
  }
  if (items.length !== envelope.items.length) {
    throw new SyntaxError(`items split found ${items.length} elements, JSON.parse found ${envelope.items.length}`);
  }
  return { envelope, items };
}
