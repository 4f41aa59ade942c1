// What an operator reads when a queue message is refused: the queue, what was wrong where, and what a message
// should look like. The handler logs this text and moves the message to its poison queue.
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { invoiceSyncMessageSchema, MalformedMessageError, parseMessage } from '../../src/sync/messages.js';
import { thrownBy } from '../support/thrown.js';

const refusal = (fn: () => unknown) => thrownBy(fn, MalformedMessageError);

describe('parseMessage refusals', () => {
  test('the error is named for the logs', () => {
    const error = refusal(() => parseMessage(invoiceSyncMessageSchema, {}, 'invoice-sync'));
    expect(error.name).toBe('MalformedMessageError');
    expect(String(error)).toMatch(/^MalformedMessageError: Malformed invoice-sync message: /);
  });

  test('text that is not JSON is quoted by its first 40 characters only, with the expected shape', () => {
    const payload = `${'x'.repeat(40)}${'y'.repeat(500)}`;
    const { message } = refusal(() => parseMessage(invoiceSyncMessageSchema, payload, 'invoice-sync'));
    expect(message).toBe(
      `Malformed invoice-sync message: not JSON (starts with "${'x'.repeat(40)}"). ` +
        'Messages are base64-encoded JSON such as {"invoiceId":"G000123456"}.',
    );
  });

  test('every problem is listed with its path; one about the whole message says so', () => {
    const schema = z.strictObject({ outer: z.strictObject({ inner: z.string(), count: z.number() }) });
    const { message } = refusal(() =>
      parseMessage(schema, { outer: { inner: 5, count: 'two' }, extra: true }, 'some-queue'),
    );
    expect(message.startsWith('Malformed some-queue message: ')).toBe(true);
    const problems = message.slice('Malformed some-queue message: '.length).split('; ');
    expect(problems).toHaveLength(3);
    expect(problems.map((p) => p.slice(0, p.indexOf(':')))).toEqual(
      expect.arrayContaining(['outer.inner', 'outer.count', '(message)']),
    );
    expect(problems.find((p) => p.startsWith('(message): '))).toMatch(/extra/);
  });
});
