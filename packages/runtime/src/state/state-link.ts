import type { Logger } from "../logging/index.js";

export interface StateLinkOptions {
  /** What the logs call the store (its URL without credentials). */
  name: string;
  /** A remote operation slower than this counts as the store being unreachable. */
  opTimeoutMs: number;
  /** While unreachable, the store is asked again this often. */
  probeIntervalMs: number;
  /**
   * A cheap round trip to the store; rejects when it is unreachable. Answers whether the store
   * holds what this node published (false for a new store, or one restarted without its data).
   */
  probe: () => Promise<boolean>;
  /** Notes that this node's state is published into the store as it is now (after a full republish). */
  markIntact: () => Promise<unknown>;
  logger: Logger;
}

export type RemoteResult<T> = { ok: true; value: T } | { ok: false };

/**
 * The node's connection to the shared state store, as one up/down state for every namespace.
 * The first failed (or slow) operation marks it down with one warning; while down, remote
 * operations are skipped at once (callers fall back to local state) and a probe runs in the
 * background; when it answers again, recovery listeners republish what was written locally.
 */
export class StateLink {
  private up = true;
  private closed = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly recoveryListeners = new Set<(storeWasReset: boolean) => Promise<void>>();
  private readonly changeListeners = new Set<(up: boolean) => void>();

  constructor(private readonly options: StateLinkOptions) {}

  get reachable(): boolean {
    return this.up && !this.closed;
  }

  /** Runs a remote operation; a failure or timeout marks the store down and answers { ok: false }. */
  async run<T>(op: () => Promise<T>): Promise<RemoteResult<T>> {
    if (!this.reachable) return { ok: false };
    try {
      return { ok: true, value: await withTimeout(op(), this.options.opTimeoutMs) };
    } catch (err) {
      this.lost(err);
      return { ok: false };
    }
  }

  /**
   * Called (in order) each time the store is reachable again; storeWasReset: it lost the fleet's
   * data meanwhile, so every local entry is republished, not only those written while it was down.
   */
  onRecovered(listener: (storeWasReset: boolean) => Promise<void>): () => void {
    this.recoveryListeners.add(listener);
    return () => this.recoveryListeners.delete(listener);
  }

  onChange(listener: (up: boolean) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.probeTimer);
  }

  private lost(err: unknown): void {
    if (!this.up || this.closed) return;
    this.up = false;
    this.options.logger.warn(
      { store: this.options.name, err: err instanceof Error ? err.message : String(err) },
      "shared state store unreachable: running on local state only; local changes are republished when it is back",
    );
    for (const listener of this.changeListeners) listener(false);
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.closed) return;
    this.probeTimer = setTimeout(() => void this.probe(), this.options.probeIntervalMs);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    let intact: boolean;
    try {
      intact = await withTimeout(this.options.probe(), this.options.opTimeoutMs);
    } catch {
      this.scheduleProbe();
      return;
    }
    if (this.closed) return;
    this.up = true;
    this.options.logger.info(
      { store: this.options.name, storeWasReset: !intact },
      intact ? "shared state store reachable again; republishing local changes" : "shared state store reachable again but empty; republishing local state",
    );
    for (const listener of this.changeListeners) listener(true);
    for (const listener of this.recoveryListeners) {
      await listener(!intact).catch((err: unknown) => this.options.logger.warn({ err }, "republishing to the shared state store failed"));
    }
    if (!intact) await this.run(() => this.options.markIntact());
  }

  /**
   * First contact at start-up, allowed `timeoutMs` (connecting, creating tables): answers whether
   * the store already held the fleet's data (undefined: unreachable, now probing in the background).
   */
  async connect(timeoutMs: number): Promise<boolean | undefined> {
    let answer: RemoteResult<boolean>;
    try {
      answer = { ok: true, value: await withTimeout(this.options.probe(), timeoutMs) };
    } catch (err) {
      this.lost(err);
      answer = { ok: false };
    }
    if (!answer.ok) return undefined;
    if (!answer.value) await this.run(() => this.options.markIntact());
    return answer.value;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
