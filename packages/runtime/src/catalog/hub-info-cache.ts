import type { Logger } from "../logging/index.js";

/** Popularity of a repository on the Hub. */
export interface HubStats {
  downloads: number;
  likes: number;
  /** Epoch milliseconds. */
  fetchedAt: number;
}

export type HubStatsFetcher = (repo: string, signal: AbortSignal) => Promise<{ downloads: number; likes: number } | undefined>;

export interface HubInfoCacheOptions {
  /** Persistent cache (its own namespace); entries expire after ttlMs. */
  kv: {
    getMany(keys: string[]): Promise<Array<HubStats | undefined>>;
    set(key: string, value: HubStats, ttlMs: number): Promise<unknown>;
  };
  fetchStats: HubStatsFetcher;
  ttlMs: number;
  /** A failed repo is not asked again before this long. */
  retryAfterMs: number;
  /** Fetches running at once across all repos. */
  concurrency: number;
  logger: Logger;
  now?: () => number;
}

/**
 * Hub downloads/likes, cached in memory and in keyv with a TTL. Readers never wait: peek() answers
 * from memory, and a stale or missing entry is refreshed in the background (at most one request
 * per repo at a time, a bounded number overall, failed repos backed off). A stale value is served
 * until the refresh lands, with its fetchedAt.
 */
export class HubInfoCache {
  private readonly memory = new Map<string, HubStats>();
  private readonly queued = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly failedAt = new Map<string, number>();
  private readonly controller = new AbortController();
  private readonly updateListeners = new Set<(repo: string) => void>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly options: HubInfoCacheOptions) {
    this.now = options.now ?? (() => Date.now());
  }

  /** Loads unexpired entries of the given repos from keyv (start-up). */
  async warm(repos: Iterable<string>): Promise<void> {
    const list = [...new Set(repos)];
    if (list.length === 0) return;
    const values = await this.options.kv.getMany(list);
    list.forEach((repo, i) => {
      const value = values[i];
      if (value && typeof value.downloads === "number" && typeof value.likes === "number") this.memory.set(repo, value);
    });
  }

  /** Calls `listener` whenever a repo's stats changed; returns the unsubscribe function. */
  onUpdate(listener: (repo: string) => void): () => void {
    this.updateListeners.add(listener);
    return () => this.updateListeners.delete(listener);
  }

  /** The cached stats, fresh or stale; never does I/O. */
  peek(repo: string): HubStats | undefined {
    return this.memory.get(repo);
  }

  isFresh(repo: string): boolean {
    const value = this.memory.get(repo);
    return value !== undefined && this.now() - value.fetchedAt < this.options.ttlMs;
  }

  /** Schedules a background refresh when the entry is missing or older than the TTL. O(1). */
  refreshIfStale(repo: string): void {
    if (this.closed || this.isFresh(repo) || this.queued.has(repo) || this.inFlight.has(repo)) return;
    const failed = this.failedAt.get(repo);
    if (failed !== undefined && this.now() - failed < this.options.retryAfterMs) return;
    this.queued.add(repo);
    this.pump();
  }

  /** Stops refreshing and aborts requests in flight. */
  close(): void {
    this.closed = true;
    this.queued.clear();
    this.controller.abort();
  }

  private pump(): void {
    while (!this.closed && this.inFlight.size < this.options.concurrency && this.queued.size > 0) {
      const repo = this.queued.values().next().value as string;
      this.queued.delete(repo);
      this.inFlight.add(repo);
      void this.refresh(repo).finally(() => {
        this.inFlight.delete(repo);
        this.pump();
      });
    }
  }

  private async refresh(repo: string): Promise<void> {
    try {
      const stats = await this.options.fetchStats(repo, this.controller.signal);
      if (this.closed) return;
      if (!stats) {
        this.failedAt.set(repo, this.now());
        return;
      }
      const value: HubStats = { ...stats, fetchedAt: this.now() };
      this.failedAt.delete(repo);
      this.memory.set(repo, value);
      await this.options.kv.set(repo, value, this.options.ttlMs).catch((err: unknown) => {
        this.options.logger.debug({ err, repo }, "could not persist hub info");
      });
      for (const listener of this.updateListeners) listener(repo);
    } catch (err) {
      if (!this.closed) {
        this.failedAt.set(repo, this.now());
        this.options.logger.debug({ err, repo }, "hub info refresh failed");
      }
    }
  }
}
