// Runs queue-triggered handlers in-process with the Functions host's queue semantics, for local runs and tests:
// base64-decoded JSON payloads, dequeue count, retry after a visibility timeout, and `<queue>-poison` after
// `maxDequeueCount` failures. It drains until every queue (visible or delayed messages) is empty.
import { randomUUID } from 'node:crypto';
import functions, { type InvocationContext, type LogHandler } from '@azure/functions';
import type { QueueClient } from '@azure/storage-queue';
import pLimit from 'p-limit';

// @azure/functions is CommonJS and Node's named-export detection misses InvocationContext: take it from the default.
const { InvocationContext: InvocationContextClass } = functions;

export type QueueHandler = (payload: unknown, context: InvocationContext) => Promise<void>;

export interface QueueBinding {
  functionName: string;
  queue: QueueClient;
  /** `<queue>-poison`, where the host moves a message after `maxDequeueCount` failures. */
  poisonQueue: QueueClient;
  handler: QueueHandler;
}

export interface QueueHostOptions {
  maxDequeueCount: number;
  /** Messages fetched per receive call, per queue (the host's `batchSize`). */
  batchSize?: number;
  /** Handlers running at once across all queues. */
  concurrency?: number;
  /**
   * host.json `newBatchThreshold`: when set, each queue is read as the Functions host reads it, fetching its next
   * batch as soon as its running messages fall to this many (so a queue runs up to batchSize + newBatchThreshold
   * at once, and a message that arrives while long handlers run starts without waiting for them). Unset: one
   * batch of every queue at a time, all of it finished before the next receive.
   */
  newBatchThreshold?: number;
  /**
   * How long a received message stays invisible; renewed every third of it while its handler works (as the
   * Functions host does), so a message of a crashed process is visible again within this.
   */
  lockSeconds?: number;
  /** Delay before a failed message is visible again (host.json `visibilityTimeout`). */
  retryVisibilitySeconds?: number;
  pollIntervalMs?: number;
  logHandler?: LogHandler;
  onOutcome?: (outcome: QueueOutcome) => void;
}

export interface QueueOutcome {
  functionName: string;
  messageId: string;
  dequeueCount: number;
  result: 'ok' | 'retry' | 'poison';
  error?: string;
}

export interface DrainStats {
  processed: number;
  failed: number;
  poisoned: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the Functions worker does with a decoded queue message: JSON if it parses, else the string. */
export function decodeTriggerPayload(messageText: string): unknown {
  const text = Buffer.from(messageText, 'base64').toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class LocalQueueHost {
  private readonly options: Required<Omit<QueueHostOptions, 'logHandler' | 'onOutcome' | 'newBatchThreshold'>> &
    Pick<QueueHostOptions, 'logHandler' | 'onOutcome' | 'newBatchThreshold'>;

  constructor(
    private readonly bindings: QueueBinding[],
    options: QueueHostOptions,
  ) {
    this.options = {
      batchSize: 8,
      concurrency: 4,
      lockSeconds: 30,
      retryVisibilitySeconds: 1,
      pollIntervalMs: 250,
      ...options,
    };
  }

  /** Process messages until all queues are empty, including messages that are delayed or being retried. */
  async drain(opts: { maxDurationMs?: number; signal?: AbortSignal } = {}): Promise<DrainStats> {
    if (this.options.newBatchThreshold !== undefined)
      return this.drainByThreshold(this.options.newBatchThreshold, opts);
    const stats: DrainStats = { processed: 0, failed: 0, poisoned: 0 };
    const limit = pLimit(this.options.concurrency);
    const deadline = Date.now() + (opts.maxDurationMs ?? 30 * 60_000);
    while (!opts.signal?.aborted) {
      if (Date.now() > deadline) throw new Error('Local queue host: queues did not drain before the deadline');
      const batches = await Promise.all(
        this.bindings.map(async (binding) => ({
          binding,
          items: (
            await binding.queue.receiveMessages({
              numberOfMessages: this.options.batchSize,
              visibilityTimeout: this.options.lockSeconds,
            })
          ).receivedMessageItems,
        })),
      );
      const work = batches.flatMap(({ binding, items }) =>
        items.map((item) => limit(() => this.dispatch(binding, item, stats))),
      );
      if (work.length > 0) {
        await Promise.all(work);
        continue;
      }
      const pending = await Promise.all(
        this.bindings.map(async (b) => (await b.queue.getProperties()).approximateMessagesCount ?? 0),
      );
      if (pending.every((n) => n === 0)) return stats;
      await sleep(this.options.pollIntervalMs);
    }
    return stats;
  }

  /** The Functions host's loop: per queue, a new batch whenever its running messages fall to `threshold`. */
  private async drainByThreshold(
    threshold: number,
    opts: { maxDurationMs?: number; signal?: AbortSignal },
  ): Promise<DrainStats> {
    const stats: DrainStats = { processed: 0, failed: 0, poisoned: 0 };
    const limit = pLimit(this.options.concurrency);
    const deadline = Date.now() + (opts.maxDurationMs ?? 30 * 60_000);
    const running = new Map<QueueBinding, number>(this.bindings.map((b) => [b, 0]));
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let wake: () => void = () => {};
    while (!opts.signal?.aborted) {
      if (failure !== undefined) throw failure;
      if (Date.now() > deadline) throw new Error('Local queue host: queues did not drain before the deadline');
      let received = 0;
      await Promise.all(
        this.bindings.map(async (binding) => {
          if ((running.get(binding) ?? 0) > threshold) return;
          const { receivedMessageItems: items } = await binding.queue.receiveMessages({
            numberOfMessages: this.options.batchSize,
            visibilityTimeout: this.options.lockSeconds,
          });
          received += items.length;
          for (const item of items) {
            running.set(binding, (running.get(binding) ?? 0) + 1);
            const work = limit(() => this.dispatch(binding, item, stats))
              .catch((error: unknown) => {
                failure ??= error;
              })
              .finally(() => {
                running.set(binding, (running.get(binding) ?? 1) - 1);
                inFlight.delete(work);
                wake();
              });
            inFlight.add(work);
          }
        }),
      );
      if (received > 0 && [...running.values()].some((n) => n <= threshold)) continue;
      if (inFlight.size === 0) {
        const pending = await Promise.all(
          this.bindings.map(async (b) => (await b.queue.getProperties()).approximateMessagesCount ?? 0),
        );
        if (pending.every((n) => n === 0) && inFlight.size === 0) return stats;
      }
      // Until a handler finishes (a queue may fetch again) or the poll interval passes (a delayed message).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.pollIntervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = () => {};
    }
    await Promise.all(inFlight);
    return stats;
  }

  private async dispatch(
    binding: QueueBinding,
    item: Awaited<ReturnType<QueueClient['receiveMessages']>>['receivedMessageItems'][number],
    stats: DrainStats,
  ): Promise<void> {
    const context = new InvocationContextClass({
      invocationId: randomUUID(),
      functionName: binding.functionName,
      triggerMetadata: {
        id: item.messageId,
        dequeueCount: item.dequeueCount,
        popReceipt: item.popReceipt,
        insertionTime: item.insertedOn.toISOString(),
        expirationTime: item.expiresOn.toISOString(),
        nextVisibleTime: item.nextVisibleOn.toISOString(),
      },
      logHandler: this.options.logHandler ?? (() => {}),
    });
    const report = (result: QueueOutcome['result'], error?: string) =>
      this.options.onOutcome?.({
        functionName: binding.functionName,
        messageId: item.messageId,
        dequeueCount: item.dequeueCount,
        result,
        ...(error === undefined ? {} : { error }),
      });
    // The host keeps a message invisible while its handler runs; the pop receipt changes with every renewal.
    let popReceipt = item.popReceipt;
    let renewing: Promise<unknown> = Promise.resolve();
    const renewal = setInterval(
      () => {
        renewing = binding.queue
          .updateMessage(item.messageId, popReceipt, undefined, this.options.lockSeconds)
          .then((r) => {
            popReceipt = r.popReceipt ?? popReceipt;
          })
          .catch(() => undefined);
      },
      (this.options.lockSeconds * 1000) / 3,
    );
    renewal.unref();
    const settle = async () => {
      clearInterval(renewal);
      await renewing;
    };
    try {
      await binding.handler(decodeTriggerPayload(item.messageText), context);
      await settle();
      await binding.queue.deleteMessage(item.messageId, popReceipt);
      stats.processed++;
      report('ok');
    } catch (error) {
      await settle();
      stats.failed++;
      const message = error instanceof Error ? error.message : String(error);
      if (item.dequeueCount >= this.options.maxDequeueCount) {
        await binding.poisonQueue.sendMessage(item.messageText);
        await binding.queue.deleteMessage(item.messageId, popReceipt);
        stats.poisoned++;
        report('poison', message);
      } else {
        await binding.queue.updateMessage(item.messageId, popReceipt, undefined, this.options.retryVisibilitySeconds);
        report('retry', message);
      }
    }
  }
}
