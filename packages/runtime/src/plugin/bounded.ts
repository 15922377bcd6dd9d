import pMap from "p-map";

/** Most lookups (HEAD requests, shard probes) a source runs at once for one artifact. */
export const MAX_PARALLEL_LOOKUPS = 8;

/**
 * Maps items through an async function with at most `concurrency` calls in flight, in order: a
 * model of 200 shards asks its source 8 questions at a time, not 200.
 */
export function mapBounded<T, R>(items: Iterable<T>, fn: (item: T, index: number) => Promise<R>, concurrency = MAX_PARALLEL_LOOKUPS): Promise<R[]> {
  return pMap(items, fn, { concurrency });
}
