// Keeps one item in flight ahead of the consumer, so the next page downloads while this one is written.
export async function* prefetch<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let pending = iterator.next();
  // The consumer may stop early; an error of the item nobody waits for must not become an unhandled rejection.
  pending.catch(() => {});
  try {
    while (true) {
      const result = await pending;
      if (result.done) return;
      pending = iterator.next();
      pending.catch(() => {});
      yield result.value;
    }
  } finally {
    await iterator.return?.();
  }
}
