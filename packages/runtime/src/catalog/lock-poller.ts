import type { TransferProgress } from "../events/model-events.js";
import type { Logger } from "../logging/index.js";

/** A live download of one model, as another process's lock file describes it. */
export interface ActiveDownload {
  modelId: string;
  progress: TransferProgress;
}

/** Reads the download locks under <home>/.locks that belong to live processes. */
export type ActiveDownloadsReader = () => Promise<ActiveDownload[]>;

export interface LockPollerOptions {
  read: ActiveDownloadsReader;
  /** Called with every poll's result. */
  onPoll: (downloads: ActiveDownload[]) => Promise<void> | void;
  intervalMs: number;
  /** Keep polling this long after the last demand (a ListModels or GetModel call). */
  lingerMs: number;
  /** True while someone watches (WatchModels streams are open). */
  watched: () => boolean;
  logger: Logger;
}

/**
 * Polls other processes' download locks about once a second, but only while someone looks:
 * while a WatchModels stream is open, or for a little while after a ListModels/GetModel call.
 * Idle nodes touch no files.
 */
export class LockPoller {
  private timer: NodeJS.Timeout | undefined;
  private lastDemand = -Infinity;
  private running = false;
  private closed = false;

  constructor(private readonly options: LockPollerOptions) {}

  /** Someone looked at states: keep (or start) polling. Never waits. */
  demand(): void {
    this.lastDemand = Date.now();
    this.ensureRunning();
  }

  /** A watcher arrived: poll right away and keep polling while it stays. */
  ensureRunning(): void {
    if (this.closed || this.timer || this.running) return;
    void this.poll();
  }

  /** One poll now (also used at start-up). */
  async poll(): Promise<void> {
    if (this.closed || this.running) return;
    this.running = true;
    try {
      await this.options.onPoll(await this.options.read());
    } catch (err) {
      this.options.logger.debug({ err }, "reading download locks failed");
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    const wanted = this.options.watched() || Date.now() - this.lastDemand < this.options.lingerMs;
    if (!wanted) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.poll();
    }, this.options.intervalMs);
    this.timer.unref();
  }
}
