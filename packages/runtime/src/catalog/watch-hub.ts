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
  queue: WatchItem[];
  wake: (() => void) | undefined;
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
      const last = watcher.queue[watcher.queue.length - 1];
      if (item.progressOnly && last?.id === item.id && last.progressOnly) watcher.queue[watcher.queue.length - 1] = item;
      else if (!item.progressOnly || watcher.queue.length < MAX_QUEUE) watcher.queue.push(item);
      watcher.wake?.();
    }
  }

  /**
   * Streams changes until `signal` aborts. `initial()` is called after the stream is registered,
   * so nothing that happens while the initial state is sent is lost.
   */
  async *watch(ids: readonly string[], signal: AbortSignal, initial: () => WatchItem[]): AsyncGenerator<WatchItem> {
    const watcher: Watcher = { ids: ids.length > 0 ? new Set(ids) : undefined, queue: [], wake: undefined };
    const onAbort = () => watcher.wake?.();
    signal.addEventListener("abort", onAbort);
    this.watchers.add(watcher);
    try {
      for (const item of initial()) {
        if (signal.aborted) return;
        yield item;
      }
      while (!signal.aborted) {
        const item = watcher.queue.shift();
        if (item) {
          yield item;
          continue;
        }
        await new Promise<void>((resolve) => {
          watcher.wake = resolve;
        });
        watcher.wake = undefined;
      }
    } finally {
      this.watchers.delete(watcher);
      signal.removeEventListener("abort", onAbort);
    }
  }
}
