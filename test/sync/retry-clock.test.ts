// The retry clock of an invoice in trouble (failed, or its line items do not add up): when it is tried again and
// when it is left alone. Every figure is a pinned instant; nothing here reads the real clock.
import { describe, expect, test } from 'vitest';
import {
  afterRetryQueued,
  clearTroubleClock,
  retryDue,
  retryInterval,
  troubleClock,
} from '../../src/sync/retry-clock.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 11, 1, 9, 30, 0);
const iso = (ms: number) => new Date(ms).toISOString();
const settings = { FAILED_RETRY_DAYS: 7 };

describe('retryInterval: 1 h, then doubling, at most a day apart', () => {
  test.each([
    [0, 1],
    [1, 2],
    [2, 4],
    [3, 8],
    [4, 16],
    [5, 24],
    [10, 24],
    [11, 24],
    [1000, 24],
  ])('retry %i waits %i h', (retries, hours) => {
    expect(retryInterval(retries)).toBe(hours * HOUR);
  });
});

describe('troubleClock: starts at the first trouble and keeps running', () => {
  test('a first trouble starts the clock now, with the first retry an hour later', () => {
    expect(troubleClock({}, T0)).toEqual({ troubleSince: iso(T0), retries: 0, nextRetryAt: iso(T0 + HOUR) });
  });

  test('a later trouble keeps the clock as it stands', () => {
    const running = { troubleSince: iso(T0 - 5 * HOUR), retries: 3, nextRetryAt: iso(T0 + 2 * HOUR) };
    expect(troubleClock(running, T0)).toEqual(running);
  });

  test('each field left unset is started on its own', () => {
    expect(troubleClock({ troubleSince: iso(T0 - DAY) }, T0)).toEqual({
      troubleSince: iso(T0 - DAY),
      retries: 0,
      nextRetryAt: iso(T0 + HOUR),
    });
    expect(troubleClock({ retries: 2 }, T0)).toEqual({
      troubleSince: iso(T0),
      retries: 2,
      nextRetryAt: iso(T0 + HOUR),
    });
  });

  test('a healthy end clears all three fields (each named, so a ledger merge removes them)', () => {
    const cleared = clearTroubleClock();
    expect(Object.keys(cleared).sort()).toEqual(['nextRetryAt', 'retries', 'troubleSince']);
    expect(Object.values(cleared)).toEqual([undefined, undefined, undefined]);
    // Spread over a troubled invoice, as finalize does, nothing of the clock is left.
    const healed = { state: 'complete', troubleSince: iso(T0), retries: 4, nextRetryAt: iso(T0), ...cleared };
    expect(healed).toStrictEqual({
      state: 'complete',
      troubleSince: undefined,
      retries: undefined,
      nextRetryAt: undefined,
    });
  });
});

describe('retryDue: both sides of every window', () => {
  const troubled = { troubleSince: iso(T0), nextRetryAt: iso(T0 + HOUR) };

  test('left alone before its next retry, due at it and after it', () => {
    expect(retryDue(troubled, T0 + HOUR - 1, settings)).toBe(false);
    expect(retryDue(troubled, T0 + HOUR, settings)).toBe(true);
    expect(retryDue(troubled, T0 + HOUR + 1, settings)).toBe(true);
  });

  test('due while FAILED_RETRY_DAYS have not passed since the trouble began, left as it is after', () => {
    const late = { troubleSince: iso(T0), nextRetryAt: iso(T0) };
    expect(retryDue(late, T0 + 7 * DAY, settings)).toBe(true);
    expect(retryDue(late, T0 + 7 * DAY + 1, settings)).toBe(false);
    expect(retryDue(late, T0 + 2 * DAY + 1, { FAILED_RETRY_DAYS: 2 })).toBe(false);
    expect(retryDue(late, T0 + 2 * DAY, { FAILED_RETRY_DAYS: 2 })).toBe(true);
    // FAILED_RETRY_DAYS 0: retried only at the very instant the trouble began.
    expect(retryDue(late, T0 + 1, { FAILED_RETRY_DAYS: 0 })).toBe(false);
  });

  test('no trouble start (or an unreadable one) is never due', () => {
    expect(retryDue({ nextRetryAt: iso(T0) }, T0 + HOUR, settings)).toBe(false);
    expect(retryDue({ troubleSince: 'yesterday', nextRetryAt: iso(T0) }, T0 + HOUR, settings)).toBe(false);
  });

  test('a trouble start without a next retry (or an unreadable one) is due at once', () => {
    expect(retryDue({ troubleSince: iso(T0) }, T0, settings)).toBe(true);
    expect(retryDue({ troubleSince: iso(T0), nextRetryAt: 'soon' }, T0, settings)).toBe(true);
  });
});

describe('afterRetryQueued: one more retry, the next one further away', () => {
  test('the first retry queued counts 1 and waits 2 h for the next', () => {
    expect(afterRetryQueued({}, T0)).toEqual({ retries: 1, nextRetryAt: iso(T0 + 2 * HOUR) });
  });

  test('each retry doubles the wait, up to a day', () => {
    expect(afterRetryQueued({ retries: 3 }, T0)).toEqual({ retries: 4, nextRetryAt: iso(T0 + 16 * HOUR) });
    expect(afterRetryQueued({ retries: 9 }, T0)).toEqual({ retries: 10, nextRetryAt: iso(T0 + DAY) });
  });

  test('a schedule from the first trouble: retried at 1 h, 3 h, 7 h ... never before its time', () => {
    let clock = { ...troubleClock({}, T0) } as { troubleSince?: string; retries?: number; nextRetryAt?: string };
    const queuedAt: number[] = [];
    for (let now = T0; now <= T0 + 3 * DAY; now += 15 * 60_000) {
      if (!retryDue(clock, now, settings)) continue;
      queuedAt.push((now - T0) / HOUR);
      clock = { ...clock, ...afterRetryQueued(clock, now) };
    }
    expect(queuedAt).toEqual([1, 3, 7, 15, 31, 55]);
  });
});
