// The progress shown off a terminal, fed the events and log lines a pass emits: at most one line per part per
// interval, with rows, pages and elapsed time, the v2 wait, and the App+User note once.
import { describe, expect, test } from 'vitest';
import { APP_USER_HINT, progressLogger } from '../../src/cli/progress.js';

const silent = { info() {}, warn() {}, error() {}, event() {} };

function capture() {
  const lines: string[] = [];
  return { lines, io: { out: (t: string) => lines.push(t), err: (t: string) => lines.push(t), isTTY: false } };
}

describe('progress off a terminal', () => {
  test('one line per part every interval: rows and pages so far, elapsed; the Graph wait', () => {
    let now = 1_000_000;
    const { lines, io } = capture();
    const progress = progressLogger(io, silent, { partIntervalMs: 5000, now: () => now });
    const page = (rows: number, blocks: number) =>
      progress.event('PartProgress', { invoiceId: 'G1', partId: 'azure-billing', api: 'v1', rows, blocks, bytes: 1 });
    page(2000, 1);
    now += 1000;
    page(4000, 2);
    now += 1000;
    page(6000, 3);
    now += 3500;
    page(8000, 4);
    progress.info('Waiting for the Graph export', { invoiceId: 'G2', partId: 'onetime-billing', retryAfterSeconds: 5 });
    now += 2000;
    progress.info('Waiting for the Graph export', { invoiceId: 'G2', partId: 'onetime-billing', retryAfterSeconds: 5 });
    now += 4000;
    progress.info('Waiting for the Graph export', { invoiceId: 'G2', partId: 'onetime-billing', retryAfterSeconds: 5 });
    expect(lines).toEqual([
      '  G1 azure-billing: 2000 rows, 1 page so far (v1), 0.0 s\n',
      '  G1 azure-billing: 8000 rows, 4 pages so far (v1), 5.5 s\n',
      '  G2 onetime-billing: waiting for the Graph export (0.0 s)\n',
      '  G2 onetime-billing: waiting for the Graph export (6.0 s)\n',
    ]);
  });

  test('the App+User refusal is explained once, then its error lines are counted, not printed', () => {
    const { lines, io } = capture();
    const progress = progressLogger(io, silent);
    for (let i = 0; i < 12; i++) {
      progress.event('HttpRequest', { host: 'partnercenter', status: 403, errorCode: '2032', attempt: 1 });
      progress.error('Invoice sync failed permanently; recorded, not retried now', {
        invoiceId: `G${i}`,
        error: `fetch invoice G${i} by id: HTTP 403 code 2032 Access denied requestId=r${i}`,
      });
    }
    progress.warn('Lease renewal failed; will try again', { invoiceId: 'G1' });
    expect(lines.filter((l) => l.includes(APP_USER_HINT))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('2032') && !l.includes(APP_USER_HINT))).toEqual([]);
    expect(progress.suppressed).toBe(12);
    expect(lines.at(-1)).toBe('warn: Lease renewal failed; will try again {"invoiceId":"G1"}\n');
  });
});
