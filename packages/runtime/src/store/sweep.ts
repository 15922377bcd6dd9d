import fs from "node:fs/promises";
import path from "node:path";
import type { ArtifactKind } from "./artifact-kind.js";
import { listDownloadLocks, pidAlive } from "./download-lock.js";
import { TMP_NAME } from "./fs-utils.js";
import type { Logger } from "../logging/index.js";
import { idToFileName } from "./model-id.js";

/** A partial download untouched this long is abandoned (resuming a week-old file is worth less than the disk). */
export const ABANDONED_PARTIAL_MS = 7 * 24 * 3600 * 1000;
/** A takeover mutex directory older than this belongs to a process that died mid-takeover. */
const STALE_TAKEOVER_MS = 60_000;
/**
 * A temporary file lives for milliseconds: one of a dead pid that is older than this is a leftover.
 * (The age also spares a live process on another host sharing the home, whose pid means nothing here.)
 */
const STALE_TMP_MS = 60_000;

export interface SweptEntry {
  path: string;
  bytes: number;
  why: string;
}

async function sizeOf(target: string): Promise<number> {
  const stat = await fs.lstat(target).catch(() => undefined);
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.size;
  const names = await fs.readdir(target).catch(() => [] as string[]);
  let total = 0;
  for (const name of names) total += await sizeOf(path.join(target, name));
  return total;
}

async function entries(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).map((n) => path.join(dir, n));
}

/** Newest mtime under a directory (a partial download's files are touched as bytes arrive). */
async function newestMtime(target: string): Promise<number> {
  const stat = await fs.lstat(target).catch(() => undefined);
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const child of await entries(target)) newest = Math.max(newest, await newestMtime(child));
  return newest;
}

/**
 * Removes what crashed or abandoned work left in the store, and logs each removal: everything in
 * `.trash/` (a delete that died before its rm), staging directories and partial downloads of
 * artifacts no live process is downloading (staging only while no lock is held; partial files only
 * when untouched for a week, since a fresh one is resumable), stale lock-takeover mutexes, and the
 * temporary files (`*.<pid>.<hex>.tmp`) that processes no longer running left in `.locks/` and `.partial/`.
 */
export async function sweepLeftovers(home: string, logger: Logger, now = Date.now()): Promise<SweptEntry[]> {
  const swept: SweptEntry[] = [];
  const remove = async (target: string, why: string) => {
    const bytes = await sizeOf(target);
    await fs.rm(target, { recursive: true, force: true });
    swept.push({ path: target, bytes, why });
    logger.info({ path: target, bytes, why }, "removed a leftover from an earlier run");
  };
  /** A temporary file (lock, reservations, partial-download record) of a process that is gone: a write that died midway. */
  const removeDeadTmp = async (entry: string) => {
    const pid = TMP_NAME.exec(path.basename(entry))?.[1];
    if (!pid || Number(pid) === process.pid || pidAlive(Number(pid))) return;
    const stat = await fs.lstat(entry).catch(() => undefined);
    if (stat?.isFile() && now - stat.mtimeMs > STALE_TMP_MS) await remove(entry, "a temporary file of a process that is no longer running");
  };
  const areas: Array<[string, ArtifactKind]> = [[path.join(home, "models"), "model"], [path.join(home, "adapters"), "adapter"]];
  for (const [root, kind] of areas) {
    const live = new Set((await listDownloadLocks(home, kind)).filter((l) => !l.stale).map((l) => idToFileName(l.id)));
    for (const trash of await entries(path.join(root, ".trash"))) await remove(trash, "deleted files left in .trash");
    for (const staging of await entries(path.join(root, ".staging"))) {
      const owner = path.basename(staging).replace(/-[0-9a-f]{12}$/, "");
      if (!live.has(owner)) await remove(staging, "an install that stopped before it was renamed into place");
    }
    for (const partial of await entries(path.join(root, ".partial"))) {
      if (live.has(path.basename(partial))) continue;
      if (now - (await newestMtime(partial)) > ABANDONED_PARTIAL_MS) await remove(partial, "a partial download untouched for over a week");
      else for (const entry of await entries(partial)) await removeDeadTmp(entry);
    }
  }
  for (const dir of [path.join(home, ".locks"), path.join(home, ".locks", "adapters"), path.join(home, ".locks", "disk")]) {
    for (const entry of await entries(dir)) {
      await removeDeadTmp(entry);
      if (!entry.endsWith(".takeover")) continue;
      const stat = await fs.stat(entry).catch(() => undefined);
      if (stat && now - stat.mtimeMs > STALE_TAKEOVER_MS) await remove(entry, "a lock takeover of a process that died");
    }
  }
  return swept;
}
