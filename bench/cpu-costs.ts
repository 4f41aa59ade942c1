// CPU cost per row of each step the export does to a page, in this process, on a page the simulator would serve:
// the evidence behind the fixes recommended in bench/results.md. `tsx bench/cpu-costs.ts`.
// `fastSplitItems` is a bench-only prototype of a cheaper splitJsonItems, checked against it for equal output.
import { createHash } from 'node:crypto';
import { splitJsonItems } from '../src/http/json-items.js';
import { rowTotal } from '../src/sync/export/verify.js';
import { createDataset } from '../test/simulator/dataset.js';

export interface CpuCost {
  step: string;
  usPerRow: number;
}

/**
 * The verbatim text of each top-level `items` element: JSON.parse once (validity and the envelope), then one pass
 * that jumps over each string with indexOf (most of a row is inside strings) and looks at structural characters
 * only outside them. Same contract as splitJsonItems: inter-token CR/LF removed.
 */
export function fastSplitItems(text: string): { envelope: Record<string, unknown>; items: string[] } {
  const envelope = JSON.parse(text) as Record<string, unknown>;
  const items: string[] = [];
  if (!Array.isArray(envelope.items)) return { envelope, items };
  let depth = 0;
  let lastKeyAt = -1;
  let inItems = false;
  let itemStart = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      if (depth === 1) lastKeyAt = i;
      if (inItems && depth === 2 && itemStart < 0) itemStart = i;
      // Jump to the closing quote: one not preceded by an odd run of backslashes.
      let j = text.indexOf('"', i + 1);
      while (j !== -1 && isEscaped(text, j)) j = text.indexOf('"', j + 1);
      if (j === -1) throw new SyntaxError('unterminated string');
      i = j;
      continue;
    }
    if (c === 123 || c === 91) {
      if (depth === 1 && c === 91 && lastKeyAt >= 0 && text.startsWith('"items"', lastKeyAt)) {
        inItems = true;
      } else if (inItems && depth === 2 && itemStart < 0) {
        itemStart = i;
      }
      depth++;
    } else if (c === 125 || c === 93) {
      depth--;
      if (inItems && depth === 1) {
        if (itemStart >= 0) items.push(clean(text, itemStart, lastNonSpace(text, i)));
        inItems = false;
        itemStart = -1;
      }
    } else if (inItems && depth === 2) {
      if (c === 44) {
        items.push(clean(text, itemStart, lastNonSpace(text, i)));
        itemStart = -1;
      } else if (itemStart < 0 && c !== 32 && c !== 10 && c !== 13 && c !== 9) {
        itemStart = i;
      }
    }
  }
  if (items.length !== envelope.items.length) throw new SyntaxError('split mismatch');
  return { envelope, items };
}

function isEscaped(text: string, quoteAt: number): boolean {
  let backslashes = 0;
  for (let k = quoteAt - 1; k >= 0 && text.charCodeAt(k) === 92; k--) backslashes++;
  return backslashes % 2 === 1;
}

function lastNonSpace(text: string, end: number): number {
  let j = end;
  while (j > 0) {
    const c = text.charCodeAt(j - 1);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break;
    j--;
  }
  return j;
}

function clean(text: string, from: number, to: number): string {
  const item = text.slice(from, to);
  return item.includes('\n') || item.includes('\r') ? item.replace(/[\r\n]/g, '') : item;
}

/** A v1 page as the simulator renders it (items separated by `,\n`). */
export function samplePage(rows: number): { text: string; rows: string[] } {
  const dataset = createDataset(7, {
    invoices: [
      {
        id: 'D0BENCHCPU',
        kind: 'legacy',
        billingPeriod: '2024-01',
        parts: [{ provider: 'azure', lineItemType: 'usage_line_items', rows }],
      },
    ],
  });
  const part = dataset.findPart('D0BENCHCPU', 'azure', 'usage');
  if (!part) throw new Error('no part');
  const render = dataset.renderer('D0BENCHCPU', part);
  const list = Array.from({ length: rows }, (_, i) => render(i));
  const text = `{"totalCount":${rows},"items":[\n${list.join(',\n')}\n],"links":{"self":{"uri":"/x","method":"GET","headers":[]}},"attributes":{"objectType":"Collection"}}`;
  return { text, rows: list };
}

function timePerRow(rows: number, repeat: number, fn: () => void): number {
  fn();
  const started = performance.now();
  for (let i = 0; i < repeat; i++) fn();
  return ((performance.now() - started) * 1000) / (rows * repeat);
}

export function measureCpuCosts(pageRows = 2000, repeat = 10): CpuCost[] {
  const { text, rows } = samplePage(pageRows);
  const ours = splitJsonItems(text).items;
  const fast = fastSplitItems(text).items;
  if (ours.length !== fast.length || ours.some((row, i) => row !== fast[i])) {
    throw new Error('fastSplitItems differs from splitJsonItems');
  }
  const body = Buffer.from(`${rows.join('\n')}\n`);
  return [
    {
      step: 'splitJsonItems as in this checkout (src/http/json-items.ts)',
      usPerRow: timePerRow(pageRows, repeat, () => splitJsonItems(text)),
    },
    { step: 'JSON.parse of the page alone', usPerRow: timePerRow(pageRows, repeat, () => JSON.parse(text)) },
    {
      step: 'bench prototype fastSplitItems (indexOf over strings) + JSON.parse',
      usPerRow: timePerRow(pageRows, repeat, () => fastSplitItems(text)),
    },
    {
      step: 'verify: rowTotal per row as in this checkout (src/sync/export/verify.ts)',
      usPerRow: timePerRow(pageRows, repeat, () => {
        for (const row of rows) rowTotal(row, ['billingpretaxtotal', 'pretaxcharges']);
      }),
    },
    {
      step: 'stagePage: join + Buffer + line-break check + MD5',
      usPerRow: timePerRow(pageRows, repeat, () => {
        for (const row of rows) if (row.includes('\n') || row.includes('\r')) throw new Error('x');
        const b = Buffer.from(`${rows.join('\n')}\n`, 'utf8');
        createHash('md5').update(b).digest();
      }),
    },
    {
      step: 'verify: SHA-256 of the bytes',
      usPerRow: timePerRow(pageRows, repeat, () => createHash('sha256').update(body).digest()),
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const cost of measureCpuCosts()) {
    process.stdout.write(`${cost.usPerRow.toFixed(2).padStart(8)} us/row  ${cost.step}\n`);
  }
}
