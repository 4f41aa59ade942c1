import { describe, expect, it } from 'vitest';
import { monthOfDate } from '../../src/storage/layout.js';
import { decidePeriod, listedPeriod, NoPeriodError } from '../../src/sync/period.js';

describe('the billing period is the UTC month of the date the API states', () => {
  it.each([
    ['2018-02-08T22:40:37.5897767Z', '2018-02'],
    ['2017-05-12T00:00:00', '2017-05'],
    ['2019-01-03T19:53:55.1292512+00:00', '2019-01'],
    // The API reports UTC; an offset names the same instant.
    ['2019-01-31T23:30:00.1234567-01:00', '2019-02'],
    ['2024-03-01T00:30:00+02:00', '2024-02'],
    ['2024-08-31T19:00:00-05:00', '2024-09'],
    ['2024-12-31T23:59:59.9999999Z', '2024-12'],
    ['2024-07-15', '2024-07'],
  ])('%s is %s', (date, period) => {
    expect(monthOfDate(date)).toBe(period);
  });

  it('refuses what is not a date', () => {
    expect(() => monthOfDate('yesterday')).toThrow(/Unrecognised date/);
    expect(() => monthOfDate('2024-13-01T00:00:00Z')).toThrow(/Unrecognised date/);
  });
});

describe('one decision, most authoritative source first', () => {
  const list = { invoiceDate: '2025-10-08T00:00:00Z' };
  it('a list item without period fields is filed provisionally by its invoice date', () => {
    expect(listedPeriod(list)).toEqual({ period: '2025-10', source: 'invoice-date' });
    expect(listedPeriod({ ...list, billingPeriodStartDate: '2025-09-01T00:00:00Z' })).toEqual({
      period: '2025-09',
      source: 'list',
    });
    expect(() => listedPeriod({})).toThrow(NoPeriodError);
  });

  it('the by-id period start wins: September billed on 8 October is 2025-09', () => {
    const recorded = listedPeriod(list);
    expect(decidePeriod({ ...list, billingPeriodStartDate: '2025-09-01T00:00:00Z' }, recorded)).toEqual({
      period: '2025-09',
      source: 'by-id',
    });
  });

  it("without a by-id period start, the list's period start, and only then the invoice date", () => {
    expect(decidePeriod(list, { period: '2025-09', source: 'list' })).toEqual({ period: '2025-09', source: 'list' });
    expect(decidePeriod(list, { period: '2025-10', source: 'invoice-date' })).toEqual({
      period: '2025-10',
      source: 'invoice-date',
    });
    expect(decidePeriod({ invoiceDate: '2025-11-08T00:00:00Z' }, undefined)).toEqual({
      period: '2025-11',
      source: 'invoice-date',
    });
    expect(() => decidePeriod({}, undefined)).toThrow(NoPeriodError);
  });
});
