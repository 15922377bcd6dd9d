import { setTimeout as sleep } from "node:timers/promises";
import { LlmlbError } from "../errors/index.js";
import { readDownloadLock, type DownloadLockState } from "./download-lock.js";
import type { ArtifactKind } from "./artifact-kind.js";

export interface LockWaitOptions {
  signal: AbortSignal;
  /** Absolute time (ms since epoch) after which waiting gives up with LOCK_WAIT_TIMEOUT. */
  deadline: number;
  /** Called on every poll while the holder is alive (its progress is in the state). */
  onHolder: (holder: DownloadLockState) => void;
  pollMs?: number;
}

/** Waits until another process's lock on an artifact is gone ("released") or abandoned ("stale"). */
export async function waitForLock(home: string, id: string, kind: ArtifactKind, options: LockWaitOptions): Promise<"released" | "stale"> {
  const pollMs = options.pollMs ?? 250;
  for (;;) {
    options.signal.throwIfAborted();
    const holder = await readDownloadLock(home, id, kind);
    if (!holder) return "released";
    if (holder.stale) return "stale";
    options.onHolder(holder);
    const left = options.deadline - Date.now();
    if (left <= 0) {
      const seconds = Math.round((Date.now() - Date.parse(holder.startedAt)) / 1000);
      throw new LlmlbError(
        "LOCK_WAIT_TIMEOUT",
        `gave up waiting for ${id}: process ${holder.pid} on ${holder.host} has been downloading it for ${seconds} s ` +
          `(${holder.progress.completedBytes} of ${holder.progress.totalBytes} bytes); raise LLMLB_LOCK_WAIT_TIMEOUT or try again later`,
        { holder_pid: String(holder.pid), holder_host: holder.host, id },
      );
    }
    await sleep(Math.min(pollMs, left), undefined, { signal: options.signal });
  }
}
