// Deterministic, small, well-formed PDF documents for statements and tax receipts (tests compare their sha256).
import { createHash } from 'node:crypto';

const cache = new Map<string, Buffer>();

/** A PDF of a few KB whose bytes depend only on `key` (e.g. `statement:G000024130`). */
export function pdfBytes(key: string, title: string): Buffer {
  const cached = cache.get(key);
  if (cached) return cached;
  // Filler lines derived from the key make each document distinct and a few KB long.
  const filler: string[] = [];
  let digest = createHash('sha256').update(key).digest('hex');
  for (let i = 0; i < 60; i++) {
    digest = createHash('sha256').update(digest).digest('hex');
    filler.push(`BT /F1 8 Tf 40 ${760 - i * 11} Td (${digest}) Tj ET`);
  }
  const content = `BT /F1 18 Tf 40 790 Td (${title.replace(/[()\\]/g, '')}) Tj ET\n${filler.join('\n')}\n`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${Buffer.byteLength(content, 'latin1')} >>\nstream\n${content}endstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let body = '%PDF-1.7\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    offsets.push(Buffer.byteLength(body, 'latin1'));
    body += `${i + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = Buffer.byteLength(body, 'latin1');
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) body += `${String(offset).padStart(10, '0')} 00000 n \n`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  const bytes = Buffer.from(body, 'latin1');
  cache.set(key, bytes);
  return bytes;
}
