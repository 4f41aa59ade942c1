// A quick look at storage before a command works on it: one small ledger read with a short timeout and no long
// retry, so an unreachable Azurite or account is named within seconds, and `status` can tell "no ledger yet"
// without creating anything.
import { RestError } from '@azure/data-tables';
import { describeError } from '../http/errors.js';
import type { Storage } from '../storage/index.js';

export class StorageCheckError extends Error {
  override name = 'StorageCheckError';
}

export const PROBE_TIMEOUT_MS = 4000;

/** Reads one ledger row. `ledgerExists: false` when the table is not there (404); throws when storage cannot answer. */
export async function probeStorage(
  storage: Pick<Storage, 'ledger'>,
  options: { timeoutMs?: number } = {},
): Promise<{ ledgerExists: boolean }> {
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  const table = storage.ledger.table;
  const where = `the ledger table "${table.tableName}" at ${table.url}`;
  const abort = new AbortController();
  // Set once the endpoint answers anything: from then on the read may take its time (a sign-in through
  // DefaultAzureCredential can take seconds), and only silence from the endpoint is cut short.
  let reachable = false;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (reachable) return;
      abort.abort();
      reject(new StorageCheckError(`no answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
  });
  // A plain request to the endpoint fails at once when nothing listens there (the SDK would retry for ~20 s);
  // any HTTP answer means the endpoint is up, and the ledger read below decides.
  const ping = new AbortController();
  const unreachable = fetch(table.url, { signal: ping.signal }).then(
    (response) => {
      reachable = true;
      void response.body?.cancel().catch(() => undefined);
      return new Promise<never>(() => {});
    },
    (error: unknown) => {
      if (ping.signal.aborted) return new Promise<never>(() => {});
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new StorageCheckError(cause?.code ?? cause?.message ?? describeError(error));
    },
  );
  try {
    const pages = table
      .listEntities({ queryOptions: { filter: "PartitionKey eq 'invoice'" }, abortSignal: abort.signal })
      .byPage({ maxPageSize: 1 });
    await Promise.race([pages.next(), timedOut, unreachable]);
    return { ledgerExists: true };
  } catch (error) {
    if (error instanceof RestError && error.statusCode === 404) return { ledgerExists: false };
    const cause =
      error instanceof StorageCheckError
        ? error.message
        : error instanceof RestError && error.statusCode
          ? `HTTP ${error.statusCode}${error.code ? ` ${error.code}` : ''}: ${describeError(error).slice(0, 300)}`
          : describeError(error).slice(0, 300);
    const refused = error instanceof RestError && (error.statusCode === 401 || error.statusCode === 403);
    throw new StorageCheckError(
      refused
        ? `Storage refused to read ${where} (${cause}): does this sign-in have a data role on the account ` +
            '(Storage Table Data Reader or Contributor)?'
        : `Cannot read ${where} (${cause}): is Azurite / the storage account reachable? ` +
            'Check AzureWebJobsStorage (or AzureWebJobsStorage__tableServiceUri).',
    );
  } finally {
    clearTimeout(timer);
    ping.abort();
  }
}
