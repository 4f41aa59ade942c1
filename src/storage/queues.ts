// Queue messages as the Functions host reads them: base64 of UTF-8 JSON carrying ids, never data.
import type { QueueClient } from '@azure/storage-queue';

/** Raw JSON limit: 48 KiB becomes 64 KiB after base64, the Azure Queue message limit. */
export const MAX_MESSAGE_JSON_BYTES = 48 * 1024;

export class QueueMessageError extends Error {
  override name = 'QueueMessageError';
}

/** base64(UTF-8 JSON). The Functions queue trigger base64-decodes; `@azure/storage-queue` does not encode. */
export function encodeMessage(body: unknown): string {
  const json = JSON.stringify(body);
  if (json === undefined) throw new QueueMessageError('Queue message body is not JSON-serialisable');
  return Buffer.from(json, 'utf8').toString('base64');
}

export interface SendQueueMessageOptions {
  /** Delay before the message becomes visible (0 to 7 days). */
  visibilityTimeoutSeconds?: number;
  /** Time to live; the service default (7 days) when omitted. -1 = never expires. */
  timeToLiveSeconds?: number;
  abortSignal?: AbortSignal;
}

/** Sends base64(JSON). Refuses bodies over 48 KiB of JSON: a message carries ids, not data. */
export async function sendQueueMessage(
  queue: QueueClient,
  body: unknown,
  options: SendQueueMessageOptions = {},
): Promise<{ messageId: string }> {
  const json = JSON.stringify(body);
  if (json === undefined) throw new QueueMessageError('Queue message body is not JSON-serialisable');
  const size = Buffer.byteLength(json, 'utf8');
  if (size > MAX_MESSAGE_JSON_BYTES) {
    throw new QueueMessageError(
      `Queue message for ${queue.name} is ${size} bytes of JSON; the limit is ${MAX_MESSAGE_JSON_BYTES} ` +
        '(64 KiB after base64). Messages carry ids, never data.',
    );
  }
  const response = await queue.sendMessage(Buffer.from(json, 'utf8').toString('base64'), {
    visibilityTimeout: options.visibilityTimeoutSeconds,
    messageTimeToLive: options.timeToLiveSeconds,
    abortSignal: options.abortSignal,
  });
  return { messageId: response.messageId };
}
