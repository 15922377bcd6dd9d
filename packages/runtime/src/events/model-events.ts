/** Progress of one transfer as the transfer engine reports it. */
export interface TransferProgress {
  fraction: number;
  completedBytes: number;
  totalBytes: number;
  currentFile: string;
  bytesPerSecond: number;
  /** Bytes this transfer moved so far (not the bytes a resume found on disk; a restart's twice), when it runs in this process. */
  transferredBytes?: number;
  /** Times the transfer started over from the first byte (a server without ranges, a changed file). */
  restarts?: number;
  /** Why it last started over. */
  restartReason?: string;
}

/** The share of a transfer that is done, 0..1 (0 while the total is unknown). */
export function progressFraction(completedBytes: number, totalBytes: number): number {
  return totalBytes > 0 ? Math.min(1, completedBytes / totalBytes) : 0;
}

/** Progress counters with their fraction filled in. */
export function withFraction(progress: Omit<TransferProgress, "fraction">): TransferProgress {
  return { ...progress, fraction: progressFraction(progress.completedBytes, progress.totalBytes) };
}

/**
 * What happens to models on this node. The resolver, store and engine publish; the catalog derives
 * states from it and WatchModels streams it, the metrics count from it. `external` marks a transfer
 * run by another process (seen through its lock file).
 */
export type ModelEvent =
  | { type: "transfer-started"; modelId: string; source: string; external?: boolean }
  | { type: "transfer-progress"; modelId: string; progress: TransferProgress; external?: boolean }
  /** Installed: the copy's first file, total size and whether every file matched a known sha256. */
  | { type: "transfer-finished"; modelId: string; source: string; path: string; sizeBytes: number; verified: boolean; revision?: string; downloadedAt?: number }
  | { type: "transfer-failed"; modelId: string; reason: string; code: string }
  /** Stopped because every caller waiting for it went away: not a failure; the partial file stays for the next attempt. */
  | { type: "transfer-cancelled"; modelId: string }
  /** A source found the model's files on this machine (an extra model directory): used in place, not installed. */
  | { type: "found-local"; modelId: string; source: string; path: string; sizeBytes: number; verified: boolean }
  | { type: "deleted"; modelId: string }
  | { type: "load-started"; modelId: string; path: string }
  | { type: "loaded"; modelId: string }
  | { type: "unloaded"; modelId: string }
  | { type: "load-failed"; modelId: string; reason: string; code: string }
  /**
   * A request to the model ended, however it ended (answered, cancelled, failed): the tokens it had
   * the model process (prompt tokens, cached ones included; tokens generated).
   */
  | { type: "tokens-processed"; modelId: string; promptTokens: number; completionTokens: number };

export type ModelEventListener = (event: ModelEvent) => void;

export class ModelEvents {
  private readonly listeners = new Set<ModelEventListener>();

  /** Subscribes; returns the unsubscribe function. */
  on(listener: ModelEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: ModelEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A faulty listener must not break the publisher (a transfer, a load).
      }
    }
  }
}
