// The invoice model's JSON columns: each decodes exactly what was encoded, an absent or empty column is nothing,
// and a value of the wrong shape is refused instead of being read as something else.
import { describe, expect, it } from 'vitest';
import {
  ACTIVE_INVOICE_STATES,
  decodeNotes,
  decodeReceipts,
  decodeReconciliation,
  decodeSavedFile,
  encodeReceipts,
  INVOICE_STATES,
  INVOICE_TRANSITIONS,
  invoiceEntitySchema,
} from '../../src/storage/invoices.js';

describe('the invoice state machine', () => {
  it('discovered goes to queued or failed only; queued/pdf_saved/exporting are the active states', () => {
    expect([...INVOICE_TRANSITIONS.discovered].sort()).toEqual(['failed', 'queued']);
    expect([...ACTIVE_INVOICE_STATES].sort()).toEqual(['exporting', 'pdf_saved', 'queued']);
    for (const state of INVOICE_STATES) expect(INVOICE_TRANSITIONS[state], state).toBeDefined();
    expect(INVOICE_TRANSITIONS.complete).not.toContain('pdf_saved');
  });
});

describe('the JSON columns', () => {
  const receipt = { id: 'R1', path: 'p/receipts/R1.pdf', bytes: 10, sha256: 'ab' };

  it('every state after discovered may be queued again, exported again, or come to rest in any resting state', () => {
    // The re-sync and re-export paths (a redelivered message, a mismatch healed, an unsettled invoice settling).
    const resting = ['complete', 'mismatch', 'unsettled', 'failed'];
    for (const state of INVOICE_STATES.filter((s) => s !== 'discovered')) {
      expect(INVOICE_TRANSITIONS[state], state).toEqual(expect.arrayContaining(['queued', 'exporting', ...resting]));
    }
    // pdf_saved is the step between queued and exporting: only a queued invoice reaches it.
    const into = INVOICE_STATES.filter((s) => s !== 'pdf_saved' && INVOICE_TRANSITIONS[s].includes('pdf_saved'));
    expect(into).toEqual(['queued']);
  });

  it('receipts round-trip; none stored is none', () => {
    expect(decodeReceipts({ receipts: encodeReceipts([receipt]) })).toEqual([receipt]);
    expect(decodeReceipts({})).toEqual([]);
    expect(decodeReceipts({ receipts: '' })).toEqual([]);
    expect(() => encodeReceipts([{ ...receipt, bytes: -1 }])).toThrow();
    expect(() => decodeReceipts({ receipts: JSON.stringify([{ ...receipt, id: undefined }]) })).toThrow();
    expect(() => decodeReceipts({ receipts: JSON.stringify([{ ...receipt, extra: 1 }]) })).toThrow();
  });

  it('a saved file decodes exactly; absent is undefined; a wrong shape is refused', () => {
    const file = { path: 'p/invoice.json', bytes: 5, sha256: 'cd' };
    expect(decodeSavedFile(JSON.stringify(file))).toEqual(file);
    expect(decodeSavedFile(undefined)).toBeUndefined();
    expect(decodeSavedFile('')).toBeUndefined();
    expect(() => decodeSavedFile(JSON.stringify({ ...file, bytes: 1.5 }))).toThrow();
  });

  it('notes are a list of strings', () => {
    expect(decodeNotes({ notes: '["a","b"]' })).toEqual(['a', 'b']);
    expect(decodeNotes({})).toEqual([]);
    expect(decodeNotes({ notes: '' })).toEqual([]);
    expect(() => decodeNotes({ notes: '[1]' })).toThrow();
  });

  it('the reconciliation decodes exactly; absent is undefined; a wrong shape is refused', () => {
    const reconciliation = {
      invoiceTotalCharges: '10.00',
      lineItemTotal: '10.00',
      difference: '0.00',
      matches: true,
      tolerance: '0.01',
      basis: 'TotalForCustomer',
    };
    expect(decodeReconciliation({ reconciliation: JSON.stringify(reconciliation) })).toEqual(reconciliation);
    expect(decodeReconciliation({})).toBeUndefined();
    expect(decodeReconciliation({ reconciliation: '' })).toBeUndefined();
    expect(() =>
      decodeReconciliation({ reconciliation: JSON.stringify({ ...reconciliation, matches: 'yes' }) }),
    ).toThrow();
  });

  it('the entity refuses a bad period, state or count', () => {
    const entity = {
      invoiceId: 'G1',
      billingPeriod: '2024-03',
      invoiceDate: '2024-03-01T00:00:00Z',
      documentType: 'Invoice',
      invoiceType: 'Recurring',
      currencyCode: 'USD',
      totalCharges: '1.00',
      state: 'queued',
      attempts: 0,
      discoveredAt: 't',
      updatedAt: 't',
      correlationId: 'c',
    };
    expect(invoiceEntitySchema.parse(entity)).toEqual(entity);
    for (const [field, value] of [
      ['billingPeriod', '2024-13'],
      ['billingPeriod', '2024-00'],
      ['billingPeriod', 'x2024-03'],
      ['billingPeriod', '2024-031'],
      ['state', 'done'],
      ['attempts', -1],
      ['attempts', 1.5],
      ['pdfBytes', -1],
    ] as const) {
      expect(invoiceEntitySchema.safeParse({ ...entity, [field]: value }).success, `${field} = ${value}`).toBe(false);
    }
  });
});
