// Runs an async function over a list with bounded concurrency and yields the results in list
// order. At most `window` results (running or finished-but-not-yet-yielded) exist at once, so
// memory stays bounded however slow one item is, and output order never depends on timing.

export type Settled<T, R> = { index: number; item: T; ok: true; value: R } | { index: number; item: T; ok: false; error: unknown };

export interface OrderedMapOptions {
  concurrency: number;
  /** Items allowed in flight ahead of the consumer; at least `concurrency`. Default 2x. */
  window?: number;
  signal?: AbortSignal;
}

export async function* orderedMap<T, R>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<R>,
  options: OrderedMapOptions,
): AsyncGenerator<Settled<T, R>> {
  const concurrency = Math.max(1, Math.floor(options.concurrency));
  const window = Math.max(concurrency, Math.floor(options.window ?? 2 * concurrency));
  const pending = new Map<number, Promise<Settled<T, R>>>();
  const waiting: (() => void)[] = [];
  let running = 0;
  let launched = 0;

  // A slot is held only while fn runs; finished results wait in `pending` without one.
  const acquire = async (): Promise<void> => {
    if (running < concurrency) {
      running++;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  const start = (index: number): Promise<Settled<T, R>> => {
    const item = items[index];
    return (async (): Promise<Settled<T, R>> => {
      await acquire();
      try {
        return { index, item, ok: true, value: await fn(item, index) };
      } catch (error) {
        return { index, item, ok: false, error };
      } finally {
        release();
      }
    })();
  };

  for (let next = 0; next < items.length; next++) {
    while (launched < items.length && launched < next + window) {
      pending.set(launched, start(launched));
      launched++;
    }
    if (options.signal?.aborted) {
      // Let started work settle so nothing runs on after the caller has given up.
      await Promise.allSettled(pending.values());
      throw options.signal.reason instanceof Error ? options.signal.reason : new Error('aborted');
    }
    const result = pending.get(next);
    if (!result) throw new Error(`orderedMap: item ${next} was never started`);
    pending.delete(next);
    yield await result;
  }
}
