// Queue messages as the Functions host reads them: base64 of UTF-8 JSON carrying ids and a checkpoint, never data.
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

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The inverse of `encodeMessage`, with a clear error on text that is not base64 or not JSON. */
export function decodeMessage<T = unknown>(text: string): T {
  const compact = text.trim();
  if (compact === '' || !BASE64.test(compact)) {
    throw new QueueMessageError(`Queue message is not base64 (length ${text.length}); expected base64(JSON)`);
  }
  const json = Buffer.from(compact, 'base64').toString('utf8');
  try {
    return JSON.parse(json) as T;
  } catch (error) {
    throw new QueueMessageError(`Queue message is base64 but not JSON: ${(error as Error).message}`);
  }
}

export interface SendQueueMessageOptions {
  /** Delay before the message becomes visible (0 to 7 days). */
  visibilityTimeoutSeconds?: number;
  /** Time to live; the service default (7 days) when omitted. -1 = never expires. */
  timeToLiveSeconds?: number;
  abortSignal?: AbortSignal;
}

/** Sends base64(JSON). Refuses bodies over 48 KiB of JSON: a message carries ids and a checkpoint, not data. */
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
        '(64 KiB after base64). Messages carry ids and a checkpoint, never data.',
    );
  }
  const response = await queue.sendMessage(Buffer.from(json, 'utf8').toString('base64'), {
    visibilityTimeout: options.visibilityTimeoutSeconds,
    messageTimeToLive: options.timeToLiveSeconds,
    abortSignal: options.abortSignal,
  });
  return { messageId: response.messageId };
}
