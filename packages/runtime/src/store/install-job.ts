import fs from "node:fs/promises";
import { withFraction, type TransferProgress } from "../events/model-events.js";
import { LlmlbError } from "../errors/index.js";
import type { ArtifactArea, InstalledArtifact } from "./artifact-area.js";
import { tryAcquireLock, type DownloadLockState, type HeldLock } from "./download-lock.js";
import { waitForLock } from "./lock-wait.js";
import type { InstallMetadata } from "./store.js";

/** A downloaded file in the partial directory, with the sha256 of its bytes. */
export interface FetchedFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/** Fetches the files into `partialDir` (the transfer engine: resume, retries, hashing). */
export type FetchFiles = (partialDir: string, signal: AbortSignal, onProgress: (progress: TransferProgress) => void) => Promise<FetchedFile[]>;

export interface InstallJob {
  id: string;
  /** The files expected, in order, with the sha256 each must have when known. */
  expected: ReadonlyArray<{ name: string; sha256?: string }>;
  fetch: FetchFiles;
  /** The content check of the fetched files (GGUF validation); a failure discards them. */
  validate: (paths: string[]) => Promise<void>;
  metadata: InstallMetadata;
  signal: AbortSignal;
  /** How long to wait for another process downloading the same artifact. */
  lockWaitTimeoutSeconds: number;
  /** Another process holds the artifact's lock; this job waits for it. */
  onLockWait?: (holder: DownloadLockState) => void;
  /** Progress of the other process's download, while waiting. */
  onHolderProgress?: (progress: TransferProgress) => void;
  /** This job holds the lock and starts fetching. */
  onFetchStart?: () => void;
  onProgress?: (progress: TransferProgress) => void;
  /** This job installed it; called while the lock is still held. */
  onInstalled?: (installed: InstalledArtifact) => void;
}

export interface InstallOutcome {
  installed: InstalledArtifact;
  /** True when this job fetched and installed it; false when it was found installed under the lock. */
  fetched: boolean;
}

/**
 * The store's install transaction for one artifact: take its cross-process lock (or wait for the
 * process holding it), look again whether it is installed, fetch into the partial directory,
 * verify the fetched files against what was expected and validate their content, then install
 * them atomically.
 */
export async function runInstallJob(home: string, area: ArtifactArea, job: InstallJob): Promise<InstallOutcome> {
  let deadline = Date.now() + job.lockWaitTimeoutSeconds * 1000;
  for (;;) {
    const lost = new AbortController();
    let lock: HeldLock | undefined;
    while (!lock) {
      const attempt = await tryAcquireLock(home, job.id, area.kind, () =>
        lost.abort(new LlmlbError("INTERNAL", `another process took over the download of ${job.id}`)),
      );
      if ("held" in attempt) {
        lock = attempt.held;
        break;
      }
      job.onLockWait?.(attempt.holder);
      await waitForLock(home, job.id, area.kind, {
        signal: job.signal,
        deadline,
        onHolder: (holder) => job.onHolderProgress?.(withFraction(holder.progress)),
      });
      const installed = await area.get(job.id);
      if (installed) return { installed, fetched: false };
    }
    try {
      return await fetchAndInstall(area, job, lock, lost.signal);
    } catch (err) {
      if (!lost.signal.aborted || job.signal.aborted) throw err;
      // This process was judged gone (stopped, or starved of CPU, for longer than a heartbeat may
      // lapse) and another one took the download over: follow it as any second process does,
      // waiting for as long as a fresh wait may last, and take its installed model.
      deadline = Date.now() + job.lockWaitTimeoutSeconds * 1000;
    }
  }
}

/** Under the lock: look again, fetch, verify, validate, install. */
async function fetchAndInstall(area: ArtifactArea, job: InstallJob, held: HeldLock, lost: AbortSignal): Promise<InstallOutcome> {
  try {
    // Another process may have finished between the caller's first look and taking the lock.
    const installed = await area.get(job.id);
    if (installed) return { installed, fetched: false };
    await area.removeStaleStaging(job.id);
    job.onFetchStart?.();
    const fetched = await job.fetch(area.partialDir(job.id), AbortSignal.any([job.signal, lost]), (progress) => {
      held.setProgress(progress);
      job.onProgress?.(progress);
    });
    lost.throwIfAborted();
    verifyFetched(job, fetched);
    try {
      await job.validate(fetched.map((f) => f.path));
    } catch (err) {
      // Deleted, so no retry resumes into the same refused bytes (unless they are another holder's now).
      if (!lost.aborted) await fs.rm(area.partialDir(job.id), { recursive: true, force: true });
      throw err;
    }
    lost.throwIfAborted();
    const result = await area.install(
      job.id,
      fetched.map((f) => ({ name: f.name, from: f.path, size: f.size, sha256: f.sha256 })),
      job.metadata,
    );
    job.onInstalled?.(result);
    return { installed: result, fetched: true };
  } finally {
    await held.release();
  }
}

/** The fetched files are the expected ones, in order, with the expected hashes: nothing else is installed. */
function verifyFetched(job: InstallJob, fetched: FetchedFile[]): void {
  const names = fetched.map((f) => f.name);
  if (names.length !== job.expected.length || job.expected.some((e, i) => e.name !== names[i])) {
    throw new LlmlbError("INTERNAL", `the download of ${job.id} produced ${names.join(", ")}; expected ${job.expected.map((e) => e.name).join(", ")}`);
  }
  job.expected.forEach((e, i) => {
    const actual = fetched[i]!.sha256;
    if (e.sha256 && e.sha256.toLowerCase() !== actual) {
      throw new LlmlbError("CHECKSUM_MISMATCH", `${e.name}: the downloaded bytes have sha256 ${actual}, expected ${e.sha256}; nothing was installed`, {
        file: e.name, expected_sha256: e.sha256, actual_sha256: actual,
      });
    }
  });
}
