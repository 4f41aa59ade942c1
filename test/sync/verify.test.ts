import { describe, expect, test } from 'vitest';
import { rowTotal, totalFields } from '../../src/sync/export/verify.js';

describe('rowTotal reads the amount a line item adds to the invoice', () => {
  const billing = totalFields(['totalforcustomer', 'posttaxtotal', 'amount']);
  test('v1 camelCase and v2 PascalCase, numbers and numeric strings', () => {
    expect(rowTotal('{"subtotal":5,"totalForCustomer":60.25,"amount":1}', billing)).toEqual({
      text: '60.25',
      field: 'totalForCustomer',
    });
    expect(rowTotal('{"TotalForCustomer": "-12.5E1"}', billing)).toEqual({
      text: '-12.5E1',
      field: 'TotalForCustomer',
    });
    // The exact text, not a double (which would keep only about 17 significant digits).
    expect(rowTotal('{"postTaxTotal":0.1999968000511991808131}', billing)?.text).toBe('0.1999968000511991808131');
  });
  test('the priority of the candidates wins over their order in the row', () => {
    expect(rowTotal('{"amount":1,"postTaxTotal":2}', billing)).toEqual({ text: '2', field: 'postTaxTotal' });
  });
  test('a key inside a string value is not a field', () => {
    expect(rowTotal('{"note":"{\\"totalForCustomer\\":99}","amount":3}', billing)).toEqual({
      text: '3',
      field: 'amount',
    });
    expect(rowTotal('{"name":"x"}', billing)).toBeUndefined();
    expect(rowTotal('{"totalForCustomer":null,"amount":"n/a"}', billing)).toBeUndefined();
  });
});
