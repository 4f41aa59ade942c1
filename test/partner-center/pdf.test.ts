import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taxReceipts } from '../../src/partner-center/index.js';
import { startLoopbackServer } from '../http/loopback-server.js';
import { type Simulator, startSimulator } from '../simulator/index.js';
import { pdfBytes } from '../simulator/pdf.js';
import { simClient } from './support.js';

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

const statementPdf = (id: string) => pdfBytes(`statement:1:${id}`, `Invoice ${id}`);
const html = {
  kind: 'status',
  status: 200,
  body: '<html>Sign in</html>',
  headers: { 'content-type': 'text/html' },
} as const;

describe('invoice and receipt PDFs', () => {
  let signed: Simulator;
  let relative: Simulator;
  beforeAll(async () => {
    signed = await startSimulator({ pdfLinkMode: 'signed' });
    relative = await startSimulator({ pdfLinkMode: 'relative' });
  });
  afterAll(async () => {
    // An absolute signed link must never have been sent an Authorization header.
    expect(signed.requests.filter((r) => r.host === 'blob' && r.headers.authorization !== undefined)).toEqual([]);
    await signed.stop();
    await relative.stop();
  });

  it('downloads from an absolute signed link without any Authorization header', async () => {
    const pc = simClient(signed);
    const before = signed.requests.length;
    const pdf = await pc.openInvoicePdf('G000024130', { correlationId: 'sync-7' });
    expect(pdf.source).toBe('link');
    expect(pdf.linkIssuedAt).toBeInstanceOf(Date);
    expect((await bytesOf(pdf.stream)).equals(statementPdf('G000024130'))).toBe(true);
    const made = signed.requests.slice(before);
    expect(made.map((r) => `${r.host} ${r.path} ${r.status}`)).toEqual([
      'partnercenter /v1/invoices/G000024130 200',
      'blob /statements/G000024130.pdf 200',
    ]);
    expect(made[1]?.headers.authorization).toBeUndefined();
    expect(made[0]?.headers.authorization).toMatch(/^Bearer /);
  });

  it('downloads a relative link from Partner Center with the token', async () => {
    const pc = simClient(relative);
    const before = relative.requests.length;
    const pdf = await pc.openInvoicePdf('D02005YFHI');
    expect(pdf.source).toBe('link');
    expect((await bytesOf(pdf.stream)).equals(statementPdf('D02005YFHI'))).toBe(true);
    const download = relative.requests.slice(before).at(-1);
    expect(download?.path).toBe('/v1/invoices/D02005YFHI/documents/statement');
    expect(download?.headers.authorization).toMatch(/^Bearer /);
    expect(download?.headers.accept).toBe('application/pdf');
  });

  it('an expired signed link is replaced by fetching the invoice once more', async () => {
    const pc = simClient(signed);
    const { invoice } = await pc.getInvoice('G016907411');
    signed.clock.advance(31 * 60_000);
    const before = signed.requests.length;
    const pdf = await pc.openInvoicePdf('G016907411', { invoice });
    expect((await bytesOf(pdf.stream)).equals(statementPdf('G016907411'))).toBe(true);
    expect(signed.requests.slice(before).map((r) => `${r.host} ${r.status}`)).toEqual([
      'blob 403',
      'partnercenter 200',
      'blob 200',
    ]);
  });

  it('falls back to /documents/statement when fresh links keep failing', async () => {
    const expiring = await startSimulator({ pdfLinkMode: 'signed', pdfLinkTtlMs: 0 });
    try {
      const before = expiring.requests.length;
      const pdf = await simClient(expiring).openInvoicePdf('G000024135');
      expect(pdf.source).toBe('statement');
      expect((await bytesOf(pdf.stream)).equals(statementPdf('G000024135'))).toBe(true);
      const made = expiring.requests.slice(before);
      expect(made.map((r) => `${r.host} ${r.status}`)).toEqual([
        'partnercenter 200',
        'blob 403',
        'partnercenter 200',
        'blob 403',
        'partnercenter 200',
      ]);
      expect(made.at(-1)?.path).toBe('/v1/invoices/G000024135/documents/statement');
      expect(made.at(-1)?.headers.accept).toBe('application/pdf');
    } finally {
      await expiring.stop();
    }
  });

  it('a signed link to a host off the allow-list is not fetched: the statement is used, with a note', async () => {
    const pc = simClient(signed, { isAllowedLink: undefined });
    const before = signed.requests.length;
    const pdf = await pc.openInvoicePdf('G000024130');
    expect(pdf.source).toBe('statement');
    expect(pdf.note).toMatch(/pdfDownloadLink host 127\.0\.0\.1:\d+ is not on the link allow-list/);
    expect(pdf.note).not.toMatch(/sig=/);
    expect((await bytesOf(pdf.stream)).equals(statementPdf('G000024130'))).toBe(true);
    const made = signed.requests.slice(before);
    expect(made.filter((r) => r.host === 'blob')).toEqual([]);
    expect(made.map((r) => r.path)).toEqual(['/v1/invoices/G000024130', '/v1/invoices/G000024130/documents/statement']);
  });

  it('a by-id pdfDownloadLink to an off-list https host: that host is never contacted, the statement is fetched once', async () => {
    const offList = await startLoopbackServer((_req, res) => {
      res.end('%PDF-1.7 not this one');
    });
    try {
      const link = `${offList.url.replace('http:', 'https:')}/statements/G016907411.pdf?se=2030-01-01&sig=SECRETSIG`;
      const invoice = { ...relative.dataset.invoiceJson('G016907411'), pdfDownloadLink: link };
      relative.faults.add({
        kind: 'status',
        status: 200,
        path: /^\/v1\/invoices\/G016907411$/,
        body: JSON.stringify(invoice),
        headers: { 'content-type': 'application/json' },
      });
      const before = relative.requests.length;
      const pdf = await simClient(relative).openInvoicePdf('G016907411');
      expect(pdf).toMatchObject({ source: 'statement' });
      expect(pdf.note).toContain('is not on the link allow-list');
      expect(pdf.note).not.toContain('SECRETSIG');
      expect((await bytesOf(pdf.stream)).equals(statementPdf('G016907411'))).toBe(true);
      expect(relative.requests.slice(before).map((r) => r.path)).toEqual([
        '/v1/invoices/G016907411',
        '/v1/invoices/G016907411/documents/statement',
      ]);
      expect(offList.connections).toBe(0);
    } finally {
      await offList.stop();
    }
  });

  it('a body that is not a PDF falls back to the statement, and fails there with NotAPdf', async () => {
    const pc = simClient(relative);
    relative.faults.add({ ...html, path: '/documents/statement' });
    const recovered = await pc.openInvoicePdf('G000024130');
    expect(recovered.source).toBe('statement');
    expect((await bytesOf(recovered.stream)).subarray(0, 4).toString()).toBe('%PDF');

    relative.faults.add({ ...html, path: '/documents/statement', times: 2 });
    await expect(pc.openInvoicePdf('G000024130')).rejects.toMatchObject({ name: 'ApiError', code: 'NotAPdf' });
    relative.faults.add({ kind: 'status', status: 200, body: '', path: '/documents/statement', times: 2 });
    await expect(pc.openInvoicePdf('G000024130')).rejects.toMatchObject({ code: 'NotAPdf' });
  });

  it('downloads tax receipts', async () => {
    const pc = simClient(relative);
    const { invoice } = await pc.getInvoice('G000024130');
    const { receipts, skipped } = taxReceipts(invoice);
    expect(skipped).toEqual([]);
    expect(receipts.length).toBe(2);
    for (const receipt of receipts) {
      const rid = receipt.id;
      const { stream } = await pc.openReceiptPdf('G000024130', rid);
      const expected = pdfBytes(`receipt:1:G000024130:${rid}`, `Tax receipt ${rid}`);
      expect((await bytesOf(stream)).equals(expected)).toBe(true);
    }
    await expect(pc.openReceiptPdf('G000024130', 'nope')).rejects.toMatchObject({ status: 404, code: '1000' });
  });
});
