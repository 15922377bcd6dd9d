import { AsyncQueue } from "../events/async-queue.js";
import type { Model } from "../gen/llmlb/node/v1/model_pb.js";

/** One change as WatchModels sends it: the model as it is now, or its removal. */
export interface WatchItem {
  id: string;
  model: Model;
  removed: boolean;
  /** Only the progress changed (such items replace each other while queued). */
  progressOnly: boolean;
}

interface Watcher {
  ids: ReadonlySet<string> | undefined;
  queue: AsyncQueue<WatchItem>;
}

/** A queued item beyond this many is dropped when it only carries progress (a stalled client). */
const MAX_QUEUE = 10_000;

/**
 * Fans catalog changes out to WatchModels streams. Each stream has its own queue, so a slow client
 * delays no one; queued progress-only items of a model are replaced by newer ones, state changes
 * are always kept in order.
 */
export class WatchHub {
  private readonly watchers = new Set<Watcher>();

  get size(): number {
    return this.watchers.size;
  }

  publish(item: WatchItem): void {
    for (const watcher of this.watchers) {
      if (watcher.ids && !watcher.ids.has(item.id)) continue;
      const { queue } = watcher;
      const last = queue.last;
      if (item.progressOnly && last?.id === item.id && last.progressOnly) queue.replaceLast(item);
      else if (!item.progressOnly || queue.size < MAX_QUEUE) queue.push(item);
    }
  }

  /**
   * Streams changes until `signal` aborts. `initial()` is called after the stream is registered,
   * so nothing that happens while the initial state is sent is lost.
   */
  async *watch(ids: readonly string[], signal: AbortSignal, initial: () => WatchItem[]): AsyncGenerator<WatchItem> {
    const watcher: Watcher = { ids: ids.length > 0 ? new Set(ids) : undefined, queue: new AsyncQueue(signal) };
    this.watchers.add(watcher);
    try {
      for (const item of initial()) {
        if (signal.aborted) return;
        yield item;
      }
      yield* watcher.queue;
    } finally {
      this.watchers.delete(watcher);
      watcher.queue.end();
    }
  }
}
