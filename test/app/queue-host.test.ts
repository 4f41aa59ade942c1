import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalQueueHost, type QueueBinding } from '../../src/app/queue-host.js';
import { sendQueueMessage } from '../../src/storage/queues.js';
import { type Azurite, startAzurite } from '../support/azurite.js';

let azurite: Azurite;

beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

async function freshQueue(name: string): Promise<{ queue: QueueClient; poison: QueueClient }> {
  const queue = new QueueClient(azurite.connectionString, name);
  const poison = new QueueClient(azurite.connectionString, `${name}-poison`);
  await queue.create();
  await poison.create();
  return { queue, poison };
}

describe('LocalQueueHost with newBatchThreshold (the Functions host loop)', () => {
  it('starts a message that arrives while a batch is still running, up to batchSize + newBatchThreshold at once', async () => {
    const { queue, poison } = await freshQueue('threshold-late');
    const order: string[] = [];
    let running = 0;
    let maxRunning = 0;
    let releaseLong: () => void = () => {};
    const lateHandled = new Promise<void>((resolve) => {
      releaseLong = resolve;
    });
    const binding: QueueBinding = {
      functionName: 'test',
      queue,
      poisonQueue: poison,
      handler: async (payload) => {
        const { name } = payload as { name: string };
        running++;
        maxRunning = Math.max(maxRunning, running);
        order.push(`start ${name}`);
        if (name === 'long-1') await sendQueueMessage(queue, { name: 'late' });
        if (name.startsWith('long')) {
          // The long handlers finish only once the late message has run: a host that waited for its whole batch
          // before receiving again would never get there (the guard turns that into a failure, not a hang).
          let guard: NodeJS.Timeout | undefined;
          await Promise.race([
            lateHandled,
            new Promise((_, reject) => {
              guard = setTimeout(() => reject(new Error('late message never started')), 10_000);
            }),
          ]).finally(() => clearTimeout(guard));
        }
        if (name === 'late') releaseLong();
        order.push(`end ${name}`);
        running--;
      },
    };
    await sendQueueMessage(queue, { name: 'long-1' });
    await sendQueueMessage(queue, { name: 'long-2' });
    const stats = await new LocalQueueHost([binding], {
      maxDequeueCount: 1,
      batchSize: 2,
      newBatchThreshold: 2,
      concurrency: 4,
      pollIntervalMs: 20,
    }).drain({ maxDurationMs: 60_000 });
    expect(stats).toEqual({ processed: 3, failed: 0, poisoned: 0 });
    expect(order.indexOf('start late')).toBeLessThan(order.indexOf('end long-1'));
    expect(maxRunning).toBe(3);
    expect((await queue.getProperties()).approximateMessagesCount).toBe(0);
  });

  it('retries a failed message and poisons it after maxDequeueCount, as the batch loop does', async () => {
    const { queue, poison } = await freshQueue('threshold-poison');
    let calls = 0;
    const binding: QueueBinding = {
      functionName: 'test',
      queue,
      poisonQueue: poison,
      handler: async () => {
        calls++;
        throw new Error('always fails');
      },
    };
    await sendQueueMessage(queue, { name: 'bad' });
    const stats = await new LocalQueueHost([binding], {
      maxDequeueCount: 2,
      batchSize: 4,
      newBatchThreshold: 2,
      retryVisibilitySeconds: 0,
      pollIntervalMs: 20,
    }).drain({ maxDurationMs: 60_000 });
    expect(stats).toEqual({ processed: 0, failed: 2, poisoned: 1 });
    expect(calls).toBe(2);
    expect((await poison.peekMessages()).peekedMessageItems).toHaveLength(1);
  });
});
