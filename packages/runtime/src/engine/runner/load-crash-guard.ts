import { stat } from "node:fs/promises";
import { loadCrashBackoff, loadCrashedTwice } from "../../errors/index.js";

interface FileIdentity {
  size: number;
  mtimeMs: number;
  ino: number;
}

interface LoadCrash {
  path: string;
  /** Filled in once the file was looked at; until then only the path is compared. */
  file?: FileIdentity;
  cause: string;
  count: number;
  at: number;
}

/**
 * Models whose load crashed the runner, so a bad file is not loaded in a loop: after a first crash
 * it is refused until `backoffMs` has passed, then tried once more; after a second crash on the
 * same file it is refused until the file changes or an operator retries (`forget`).
 */
export class LoadCrashGuard {
  private readonly crashes = new Map<string, LoadCrash>();

  constructor(
    private readonly backoffMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records a crash while `modelId` was loading from `path` (synchronously, so a client retrying
   * on its ENGINE_CRASHED already meets it); returns how many times this file crashed the runner.
   */
  record(modelId: string, path: string, cause: string): number {
    const previous = this.crashes.get(modelId);
    const count = previous && previous.path === path ? previous.count + 1 : 1;
    const crash: LoadCrash = { path, cause, count, at: this.now(), file: previous?.path === path ? previous.file : undefined };
    this.crashes.set(modelId, crash);
    void identify(path).then((file) => (crash.file ??= file));
    return count;
  }

  /**
   * Throws ENGINE_CRASHED during the backoff and INVALID_MODEL_FILE after a second crash of the
   * same file. `path` is where the model is now (default: where it crashed); another file clears the record.
   */
  async check(modelId: string, path?: string): Promise<void> {
    const crash = this.crashes.get(modelId);
    if (!crash) return;
    path ??= crash.path;
    if (crash.path !== path || !sameFile(crash.file, await identify(path))) {
      this.crashes.delete(modelId);
      return;
    }
    if (crash.count >= 2) throw loadCrashedTwice(modelId, path, crash.cause);
    const waited = this.now() - crash.at;
    if (waited < this.backoffMs) throw loadCrashBackoff(modelId, path, crash.cause, this.backoffMs - waited);
  }

  /** An operator retry (LoadModel, a new pull) or a successful load clears the record. */
  forget(modelId: string): void {
    this.crashes.delete(modelId);
  }
}

async function identify(path: string): Promise<FileIdentity | undefined> {
  try {
    const { size, mtimeMs, ino } = await stat(path);
    return { size, mtimeMs, ino };
  } catch {
    return undefined;
  }
}

function sameFile(recorded: FileIdentity | undefined, current: FileIdentity | undefined): boolean {
  if (!recorded) return true;
  if (!current) return false;
  return recorded.size === current.size && recorded.mtimeMs === current.mtimeMs && recorded.ino === current.ino;
}
