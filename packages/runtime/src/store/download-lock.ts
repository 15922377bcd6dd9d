import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileNameToId, idToFileName } from "./model-id.js";
import type { ArtifactKind } from "./artifact-kind.js";
import { isErrno, randomSuffix, tmpNameFor, writeFileAtomic } from "./fs-utils.js";

/** A lock whose heartbeat is older than this is abandoned and may be taken over. */
export const STALE_LOCK_MS = 30_000;
const HEARTBEAT_MS = 1_000;
const TAKEOVER_MUTEX_STALE_MS = 10_000;

export interface LockProgress {
  completedBytes: number;
  totalBytes: number;
  currentFile: string;
  bytesPerSecond: number;
}

/** Content of `<home>/.locks/<id>.lock` (seed 001): who downloads what, since when, how far. */
export interface DownloadLockInfo {
  id: string;
  kind: ArtifactKind;
  pid: number;
  host: string;
  startedAt: string;
  heartbeatAt: string;
  progress: LockProgress;
  /** Random per acquisition: tells the holder its lock from one that replaced it. */
  token: string;
}

export interface DownloadLockState extends DownloadLockInfo {
  /** Dead pid on this host, or no heartbeat for STALE_LOCK_MS: the download is not running. */
  stale: boolean;
}

const EMPTY_PROGRESS: LockProgress = { completedBytes: 0, totalBytes: 0, currentFile: "", bytesPerSecond: 0 };

export function locksDir(home: string, kind: ArtifactKind = "model"): string {
  return kind === "model" ? path.join(home, ".locks") : path.join(home, ".locks", "adapters");
}

export function lockFile(home: string, id: string, kind: ArtifactKind = "model"): string {
  return path.join(locksDir(home, kind), `${idToFileName(id)}.lock`);
}

/** Whether a process with this pid runs on this host (EPERM: it does, under another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, "EPERM");
  }
}

export function isLockStale(info: Pick<DownloadLockInfo, "pid" | "host" | "heartbeatAt">, now = Date.now()): boolean {
  if (info.host === os.hostname() && !pidAlive(info.pid)) return true;
  const beat = Date.parse(info.heartbeatAt);
  return !Number.isFinite(beat) || now - beat > STALE_LOCK_MS;
}

function parseLock(text: string): DownloadLockInfo | undefined {
  try {
    const data = JSON.parse(text) as DownloadLockInfo;
    if (typeof data !== "object" || data === null || typeof data.pid !== "number" || typeof data.host !== "string") return undefined;
    return { ...data, progress: { ...EMPTY_PROGRESS, ...data.progress } };
  } catch {
    return undefined;
  }
}

async function readLockAt(file: string, id: string, kind: ArtifactKind): Promise<DownloadLockState | undefined> {
  let text: string;
  let mtimeMs: number;
  try {
    [text, { mtimeMs }] = await Promise.all([fs.readFile(file, "utf8"), fs.stat(file)]);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
  const info = parseLock(text);
  if (!info) {
    // Unreadable content (written by something else): judge it by its age alone.
    const heartbeatAt = new Date(mtimeMs).toISOString();
    const unknown = { id, kind, pid: 0, host: "", startedAt: heartbeatAt, heartbeatAt, progress: EMPTY_PROGRESS, token: "" };
    return { ...unknown, stale: Date.now() - mtimeMs > STALE_LOCK_MS };
  }
  return { ...info, id, kind, stale: isLockStale(info) };
}

/** The lock of a model's download, if any (live or stale). */
export function readDownloadLock(home: string, id: string, kind: ArtifactKind = "model"): Promise<DownloadLockState | undefined> {
  return readLockAt(lockFile(home, id, kind), id, kind);
}

/** Every model download lock under `<home>/.locks` (check `stale` before showing one as running). */
export async function listDownloadLocks(home: string, kind: ArtifactKind = "model"): Promise<DownloadLockState[]> {
  let names: string[];
  try {
    names = await fs.readdir(locksDir(home, kind));
  } catch {
    return [];
  }
  const states = await Promise.all(
    names
      .filter((name) => name.endsWith(".lock"))
      .map((name) => {
        const id = fileNameToId(name.slice(0, -".lock".length));
        return id ? readLockAt(path.join(locksDir(home, kind), name), id, kind) : undefined;
      }),
  );
  return states.filter((s): s is DownloadLockState => s !== undefined);
}

/** A lock this process holds: heartbeats every second with the latest progress until released. */
export class HeldLock {
  private progress: LockProgress = EMPTY_PROGRESS;
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();
  private released = false;

  constructor(
    readonly file: string,
    private readonly info: DownloadLockInfo,
    /** Called once if another process took the lock over (this one was judged stale). */
    private readonly onLost: () => void,
  ) {
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  setProgress(progress: LockProgress): void {
    this.progress = progress;
  }

  private beat(): Promise<void> {
    this.writing = this.writing.then(async () => {
      if (this.released) return;
      const current = await readLockAt(this.file, this.info.id, this.info.kind).catch(() => undefined);
      if (current?.token !== this.info.token) {
        this.stop();
        this.onLost();
        return;
      }
      const next = { ...this.info, heartbeatAt: new Date().toISOString(), progress: this.progress };
      await writeFileAtomic(this.file, JSON.stringify(next)).catch(() => undefined);
    });
    return this.writing;
  }

  private stop(): void {
    this.released = true;
    clearInterval(this.timer);
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    if (this.released) return;
    this.stop();
    await this.writing;
    const current = await readLockAt(this.file, this.info.id, this.info.kind).catch(() => undefined);
    if (current?.token === this.info.token) await fs.rm(this.file, { force: true });
  }
}

export type AcquireResult = { held: HeldLock } | { holder: DownloadLockState };

/**
 * Creates the lock atomically (a complete file appears at once through link(2), which fails if
 * one exists). A stale lock is taken over; a live one is returned as the holder.
 */
export function tryAcquireLock(home: string, id: string, kind: ArtifactKind, onLost: () => void): Promise<AcquireResult> {
  return tryAcquireLockFile(lockFile(home, id, kind), id, kind, onLost);
}

/** The same lock at any path (e.g. the short-lived mutex of the disk reservations file). */
export async function tryAcquireLockFile(file: string, id: string, kind: ArtifactKind, onLost: () => void): Promise<AcquireResult> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const now = new Date().toISOString();
  const info: DownloadLockInfo = {
    id, kind, pid: process.pid, host: os.hostname(), startedAt: now, heartbeatAt: now, progress: EMPTY_PROGRESS,
    token: randomSuffix(),
  };
  const tmp = tmpNameFor(file);
  try {
    // Inside the try: a write that fails (a full disk) must not leave the temporary file behind.
    await fs.writeFile(tmp, JSON.stringify(info));
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await fs.link(tmp, file);
        return { held: new HeldLock(file, info, onLost) };
      } catch (err) {
        if (!isErrno(err, "EEXIST")) throw err;
      }
      const holder = await readLockAt(file, id, kind);
      if (!holder) continue; // released between our link and our read
      if (!holder.stale) return { holder };
      await takeOver(file, holder);
    }
    const holder = await readLockAt(file, id, kind);
    if (holder) return { holder };
    throw new Error(`could not create lock file ${file}`);
  } finally {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
  }
}

/**
 * Removes a stale lock, serialised by a mutex directory so that two processes taking over the
 * same stale lock cannot remove each other's fresh one.
 */
async function takeOver(file: string, seen: DownloadLockState): Promise<void> {
  const mutex = `${file}.takeover`;
  try {
    await fs.mkdir(mutex);
  } catch (err) {
    if (!isErrno(err, "EEXIST")) throw err;
    const stat = await fs.stat(mutex).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > TAKEOVER_MUTEX_STALE_MS) await fs.rm(mutex, { recursive: true, force: true });
    return;
  }
  try {
    const current = await readLockAt(file, seen.id, seen.kind);
    if (current && current.token === seen.token && current.stale) await fs.rm(file, { force: true });
  } finally {
    await fs.rm(mutex, { recursive: true, force: true });
  }
}
