import { progressFraction, type TransferProgress } from "../events/model-events.js";
import type { Logger } from "../logging/index.js";
import { formatBytes } from "../config/index.js";

const EMIT_EVERY_MS = 250;
const RATE_WINDOW_MS = 3_000;

/**
 * Progress of one transfer: totals over all its files, a rate over the last few seconds, a log
 * line at every 10% (seed 001) and at most four updates a second to listeners plus the final one.
 */
export class ProgressTracker {
  private total = 0;
  private completed = 0;
  /** Bytes moved by this run (resumed bytes are completed but not transferred now). */
  private transferred = 0;
  private currentFile = "";
  private readonly samples: Array<[number, number]> = [];
  private lastEmit = 0;
  private trailing: NodeJS.Timeout | undefined;
  private loggedDecile: number;
  private restarts = 0;
  private restartReason = "";

  constructor(
    private readonly label: string,
    initial: { totalBytes: number; completedBytes: number },
    private readonly logger: Logger,
    private readonly onProgress: (progress: TransferProgress) => void,
  ) {
    this.total = initial.totalBytes;
    this.completed = initial.completedBytes;
    this.loggedDecile = this.decile();
  }

  addTotal(bytes: number): void {
    this.total += bytes;
  }

  setFile(name: string): void {
    this.currentFile = name;
    this.emit(true);
  }

  add(bytes: number): void {
    this.completed += bytes;
    if (bytes > 0) this.transferred += bytes;
    const decile = this.decile();
    if (decile > this.loggedDecile && decile < 10) {
      this.loggedDecile = decile;
      const p = this.snapshot();
      this.logger.info(
        { progress: `${decile * 10}%`, completedBytes: p.completedBytes, totalBytes: p.totalBytes, bytesPerSecond: Math.round(p.bytesPerSecond) },
        `downloading ${this.label}: ${decile * 10}% (${formatBytes(p.completedBytes)} of ${formatBytes(p.totalBytes)}, ${formatBytes(p.bytesPerSecond)}/s)`,
      );
    }
    this.emit(false);
  }

  /** A file started over from its first byte; progress says so (its bytes went back already). */
  restarted(reason: string): void {
    this.restarts += 1;
    this.restartReason = reason;
    this.emit(true);
  }

  finish(): void {
    if (this.total < this.completed) this.total = this.completed;
    this.logger.info({ completedBytes: this.completed }, `downloading ${this.label}: 100% (${formatBytes(this.completed)})`);
    this.emit(true);
  }

  snapshot(): TransferProgress {
    const now = Date.now();
    this.samples.push([now, this.transferred]);
    while (this.samples.length > 2 && now - this.samples[0]![0] > RATE_WINDOW_MS) this.samples.shift();
    const [t0, b0] = this.samples[0]!;
    const rate = now - t0 > 0 ? ((this.transferred - b0) * 1000) / (now - t0) : 0;
    return {
      fraction: progressFraction(this.completed, this.total),
      completedBytes: this.completed,
      totalBytes: this.total,
      currentFile: this.currentFile,
      bytesPerSecond: rate,
      transferredBytes: this.transferred,
      ...(this.restarts > 0 ? { restarts: this.restarts, restartReason: this.restartReason } : {}),
    };
  }

  private decile(): number {
    return this.total > 0 ? Math.floor((this.completed / this.total) * 10) : 0;
  }

  /** Throttled, but never drops the latest state: a suppressed update goes out when the interval ends. */
  private emit(force: boolean): void {
    const now = Date.now();
    const wait = this.lastEmit + EMIT_EVERY_MS - now;
    if (!force && wait > 0) {
      this.trailing ??= setTimeout(() => {
        this.trailing = undefined;
        this.emit(true);
      }, wait).unref();
      return;
    }
    clearTimeout(this.trailing);
    this.trailing = undefined;
    this.lastEmit = now;
    this.onProgress(this.snapshot());
  }

  /** The transfer ended (done, failed or cancelled): an update still held back by the throttle goes out now, so every byte moved is reported. */
  end(): void {
    if (this.trailing) this.emit(true);
  }
}
