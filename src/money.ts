// Amounts as exact decimals: the invoice's totalCharges and the rows' totals are summed and compared as the
// decimal text the API sent, never as binary floating point (0.1 + 0.2 is 0.3 here).
import { Decimal as DecimalJs } from 'decimal.js';

/** Enough significant digits that sums of API amounts (up to 22 digits each) are exact, never rounded. */
export const Decimal = DecimalJs.clone({ precision: 200 });
export type Decimal = InstanceType<typeof Decimal>;

/** An amount's decimal text, or undefined when it is not a finite number. */
export function parseAmount(text: string | undefined): Decimal | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  try {
    const value = new Decimal(text.trim());
    return value.isFinite() ? value : undefined;
  } catch {
    return undefined;
  }
}

export function sumAmounts(amounts: Iterable<Decimal>): Decimal {
  let total = new Decimal(0);
  for (const amount of amounts) total = total.plus(amount);
  return total;
}

/** Plain decimal text, no exponent (`1e-7` is `0.0000001`). */
export const amountText = (value: Decimal): string => value.toFixed();
