import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ActiveDownload } from "./lock-poller.js";

/** A lock whose heartbeat is older than this is a crashed download, not a running one (as the store's locks). */
export const LOCK_STALE_MS = 30_000;

interface LockFileBody {
  pid?: unknown;
  host?: unknown;
  heartbeatAt?: unknown;
  progress?: unknown;
}

/**
 * Reads the model locks <home>/.locks/<id>.lock ({pid, host, startedAt, heartbeatAt, progress}) and returns
 * the downloads whose process is alive: same host and the pid exists, or another host with a
 * recent heartbeat.
 */
export async function readActiveDownloads(home: string, now = Date.now()): Promise<ActiveDownload[]> {
  const dir = path.join(home, ".locks");
  const files = await lockFiles(dir);
  const out: ActiveDownload[] = [];
  for (const file of files) {
    let body: LockFileBody;
    try {
      body = JSON.parse(await fs.readFile(path.join(dir, file), "utf8")) as LockFileBody;
    } catch {
      continue; // being written or removed right now
    }
    if (!isLive(body, now)) continue;
    // Lock files are named by the store's idToFileName: "/" of namespace/name ids is "%2F".
    out.push({ modelId: file.slice(0, -".lock".length).replace("%2F", "/"), progress: progressOf(body.progress) });
  }
  return out;
}

async function lockFiles(dir: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isFile() && e.name.endsWith(".lock")).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

function isLive(body: LockFileBody, now: number): boolean {
  const heartbeat = typeof body.heartbeatAt === "number" ? body.heartbeatAt : typeof body.heartbeatAt === "string" ? Date.parse(body.heartbeatAt) : NaN;
  if (Number.isFinite(heartbeat) && now - heartbeat > LOCK_STALE_MS) return false;
  if (typeof body.host === "string" && body.host !== os.hostname()) return Number.isFinite(heartbeat);
  return typeof body.pid === "number" && pidAlive(body.pid);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function progressOf(raw: unknown): ActiveDownload["progress"] {
  const p = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);
  const completedBytes = n(p.completedBytes);
  const totalBytes = n(p.totalBytes);
  return {
    completedBytes,
    totalBytes,
    fraction: totalBytes > 0 ? Math.min(1, completedBytes / totalBytes) : 0,
    currentFile: typeof p.currentFile === "string" ? p.currentFile : "",
    bytesPerSecond: n(p.bytesPerSecond),
  };
}
