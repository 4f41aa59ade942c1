import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTriggerPayload } from '../../src/app/queue-host.js';
import {
  encodeMessage,
  MAX_MESSAGE_JSON_BYTES,
  QueueMessageError,
  sendQueueMessage,
} from '../../src/storage/queues.js';
import { type Azurite, startAzurite } from '../support/azurite.js';

let azurite: Azurite;
let queue: QueueClient;

beforeAll(async () => {
  azurite = await startAzurite();
  queue = new QueueClient(azurite.connectionString, 'queue-test');
  await queue.create();
});
afterAll(async () => {
  await azurite?.stop();
});

describe('queue messages', () => {
  it('encode as base64 of UTF-8 JSON, as the Functions host expects', () => {
    const body = { invoiceId: 'G1', note: 'Ünïcødé – 請求書 🧾' };
    const encoded = encodeMessage(body);
    expect(encoded).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(JSON.parse(Buffer.from(encoded, 'base64').toString('utf8'))).toEqual(body);
    // What the Functions worker hands the handler: base64-decoded, then parsed as JSON.
    expect(decodeTriggerPayload(encoded)).toEqual(body);
  });

  it('round-trip through a real queue, including non-ASCII', async () => {
    const body = { invoiceId: 'G000024135', partId: 'office-billing', note: 'Größe €' };
    await sendQueueMessage(queue, body);
    const received = await queue.receiveMessages({ numberOfMessages: 1 });
    const message = received.receivedMessageItems[0];
    expect(message).toBeDefined();
    expect(message?.messageText).toBe(encodeMessage(body));
    expect(decodeTriggerPayload(message?.messageText ?? '')).toEqual(body);
    await queue.deleteMessage(message?.messageId ?? '', message?.popReceipt ?? '');
  });

  it('honours the visibility delay', async () => {
    await sendQueueMessage(queue, { invoiceId: 'LATER' }, { visibilityTimeoutSeconds: 60 });
    const peeked = await queue.peekMessages({ numberOfMessages: 32 });
    expect(peeked.peekedMessageItems.map((m) => decodeTriggerPayload(m.messageText))).not.toContainEqual({
      invoiceId: 'LATER',
    });
    const properties = await queue.getProperties();
    expect(properties.approximateMessagesCount).toBeGreaterThanOrEqual(1);
  });

  it('refuses a body over 48 KiB of JSON and sends nothing', async () => {
    await queue.clearMessages();
    const fits = { invoiceId: 'G1', pad: 'x'.repeat(MAX_MESSAGE_JSON_BYTES - 40) };
    expect(Buffer.byteLength(JSON.stringify(fits))).toBeLessThanOrEqual(MAX_MESSAGE_JSON_BYTES);
    await sendQueueMessage(queue, fits);
    const tooBig = { invoiceId: 'G1', pad: 'é'.repeat(MAX_MESSAGE_JSON_BYTES / 2) };
    await expect(sendQueueMessage(queue, tooBig)).rejects.toThrow(/limit is 49152.*never data/);
    const peeked = await queue.peekMessages({ numberOfMessages: 32 });
    expect(peeked.peekedMessageItems).toHaveLength(1);
  });
});

describe('queue message limits and options', () => {
  it('a body JSON cannot hold is refused, by encodeMessage and by sendQueueMessage', async () => {
    expect(() => encodeMessage(undefined)).toThrow(
      new QueueMessageError('Queue message body is not JSON-serialisable'),
    );
    await expect(sendQueueMessage(queue, () => 1)).rejects.toThrow(
      new QueueMessageError('Queue message body is not JSON-serialisable'),
    );
    expect(new QueueMessageError('x').name).toBe('QueueMessageError');
  });

  it('exactly 48 KiB of JSON is sent; one byte more is refused, naming the queue and both sizes', async () => {
    await queue.clearMessages();
    const padded = (bytes: number) => ({ p: 'x'.repeat(bytes - '{"p":""}'.length) });
    expect(Buffer.byteLength(JSON.stringify(padded(MAX_MESSAGE_JSON_BYTES)))).toBe(MAX_MESSAGE_JSON_BYTES);
    const sent = await sendQueueMessage(queue, padded(MAX_MESSAGE_JSON_BYTES));
    expect(sent.messageId).toBeTruthy();
    await expect(sendQueueMessage(queue, padded(MAX_MESSAGE_JSON_BYTES + 1))).rejects.toThrow(
      new QueueMessageError(
        'Queue message for queue-test is 49153 bytes of JSON; the limit is 49152 (64 KiB after base64). Messages carry ids, never data.',
      ),
    );
    const peeked = await queue.peekMessages({ numberOfMessages: 32 });
    expect(peeked.peekedMessageItems.map((m) => m.messageId)).toEqual([sent.messageId]);
  });

  it('sets the time to live, and an aborted send sends nothing', async () => {
    await queue.clearMessages();
    await sendQueueMessage(queue, { invoiceId: 'TTL' }, { timeToLiveSeconds: 120 });
    const [message] = (await queue.peekMessages({ numberOfMessages: 1 })).peekedMessageItems;
    expect(message && message.expiresOn.getTime() - message.insertedOn.getTime()).toBe(120_000);
    const controller = new AbortController();
    controller.abort();
    await expect(
      sendQueueMessage(queue, { invoiceId: 'ABORTED' }, { abortSignal: controller.signal }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    const peeked = await queue.peekMessages({ numberOfMessages: 32 });
    expect(peeked.peekedMessageItems).toHaveLength(1);
  });
});
