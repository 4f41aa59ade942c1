// The Functions host settings the app must agree with, read from the host.json that ships with it: how many
// deliveries a queue message gets before the host moves it to `-poison`, and how long one invocation may run.
// One owner: the code reads these numbers instead of repeating them as app settings that could drift.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export interface HostConfig {
  /** host.json `extensions.queues.maxDequeueCount` (the host's default 5 when absent). */
  maxDequeueCount: number;
  /** host.json `functionTimeout` in seconds (Flex Consumption's default 30 min when absent). */
  functionTimeoutSeconds: number;
  /** host.json `extensions.queues.batchSize`: messages fetched at once per queue (the host's default 16). */
  batchSize: number;
  /** host.json `extensions.queues.newBatchThreshold`: a queue fetches again once its running messages fall to this
   *  (the host's default batchSize / 2), so one queue runs up to batchSize + newBatchThreshold at once. */
  newBatchThreshold: number;
  /** Where it was read from, for error messages. */
  source: string;
}

const TIMESPAN = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/;

function timespanSeconds(value: string): number {
  const match = TIMESPAN.exec(value.trim());
  if (!match) throw new Error(`functionTimeout ${JSON.stringify(value)} is not a [d.]hh:mm:ss timespan`);
  const [, days = '0', h, m, s] = match;
  return Number(days) * 86_400 + Number(h) * 3600 + Number(m) * 60 + Number(s);
}

const hostJsonSchema = z.looseObject({
  functionTimeout: z.string().optional(),
  extensions: z
    .looseObject({
      queues: z
        .looseObject({
          maxDequeueCount: z.number().int().min(1).optional(),
          batchSize: z.number().int().min(1).max(32).optional(),
          newBatchThreshold: z.number().int().min(0).optional(),
        })
        .optional(),
    })
    .optional(),
});

/** Parses host.json text; `source` names it in errors. */
export function parseHostConfig(text: string, source = 'host.json'): HostConfig {
  const parsed = hostJsonSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${source} is not a valid host.json: ${parsed.error.message}`);
  const host = parsed.data;
  const batchSize = host.extensions?.queues?.batchSize ?? 16;
  return {
    maxDequeueCount: host.extensions?.queues?.maxDequeueCount ?? 5,
    functionTimeoutSeconds: host.functionTimeout ? timespanSeconds(host.functionTimeout) : 1800,
    batchSize,
    newBatchThreshold: host.extensions?.queues?.newBatchThreshold ?? Math.floor(batchSize / 2),
    source,
  };
}

/** The host.json nearest above this module (the app root, in the repository, the build output and the package). */
export function findHostJson(from = path.dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'host.json');
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

let cached: HostConfig | undefined;

/** host.json of this app, read once; the host's defaults when none is found (a library use outside the app). */
export function readHostConfig(): HostConfig {
  if (cached) return cached;
  const file = findHostJson();
  cached = file
    ? parseHostConfig(readFileSync(file, 'utf8'), file)
    : {
        maxDequeueCount: 5,
        functionTimeoutSeconds: 1800,
        batchSize: 16,
        newBatchThreshold: 8,
        source: 'the Functions host defaults (no host.json found)',
      };
  return cached;
}
