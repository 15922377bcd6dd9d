import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { reservationsLockTimeout } from "../errors/index.js";
import { isLockStale, locksDir, tryAcquireLockFile } from "./download-lock.js";
import { isErrno, randomSuffix, writeFileAtomic } from "./fs-utils.js";

/** One process's promise: bytes its running downloads have yet to write. */
interface ReservationEntry {
  pid: number;
  host: string;
  /** The boot the process runs in: after a reboot a reused pid is not taken for the old process. */
  boot: string;
  /** Random per ledger, so a process tells its own entry from another's with a reused pid. */
  token: string;
  bytes: number;
  heartbeatAt: string;
}

/** A live holder keeps the mutex for milliseconds; this long means something is wrong with it. */
const MUTEX_WAIT_MS = 10_000;
const MUTEX_POLL_MS = 5;

/**
 * The disk reservations of every process using one home (nodes, `llmlb-node pull`), in
 * `<home>/.locks/disk/reservations.json`. It is read and written only under a mutex that is a
 * download lock (link(2)-created, dead holders taken over), so two processes cannot both count
 * the same free space. Entries of dead processes (pid gone on this host, another boot, or no
 * heartbeat for 30 s) are ignored and dropped.
 */
export class SharedReservations {
  private readonly dir: string;
  private readonly file: string;
  private readonly mutex: string;
  private readonly token = randomSuffix();
  private readonly host = os.hostname();
  private readonly boot = bootIdentity();

  constructor(home: string) {
    this.dir = path.join(locksDir(home), "disk");
    this.file = path.join(this.dir, "reservations.json");
    this.mutex = path.join(this.dir, "reservations.lock");
  }

  /**
   * Under the mutex: `check` gets the bytes the other live processes have promised and may throw
   * (nothing is written then); afterwards this process's entry is set to `ours()` (0 removes it).
   */
  async update(ours: () => number, check?: (othersBytes: number) => Promise<void>): Promise<void> {
    await this.locked(async () => {
      const others = (await this.read()).filter((e) => e.token !== this.token && this.alive(e));
      await check?.(others.reduce((n, e) => n + e.bytes, 0));
      const bytes = ours();
      const entries = bytes > 0 ? [...others, this.entry(bytes)] : others;
      await writeFileAtomic(this.file, JSON.stringify({ entries }));
    });
  }

  private entry(bytes: number): ReservationEntry {
    return { pid: process.pid, host: this.host, boot: this.boot, token: this.token, bytes, heartbeatAt: new Date().toISOString() };
  }

  private alive(entry: ReservationEntry): boolean {
    if (entry.host === this.host && entry.boot !== this.boot) return false;
    return !isLockStale(entry);
  }

  private async read(): Promise<ReservationEntry[]> {
    try {
      const data = JSON.parse(await fsp.readFile(this.file, "utf8")) as { entries?: unknown };
      return Array.isArray(data.entries) ? data.entries.filter(isEntry) : [];
    } catch (err) {
      // Missing, or unreadable (written by something else): no promises to honour.
      if (isErrno(err, "ENOENT") || err instanceof SyntaxError) return [];
      throw err;
    }
  }

  private async locked(run: () => Promise<void>): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    const deadline = Date.now() + MUTEX_WAIT_MS;
    for (;;) {
      const attempt = await tryAcquireLockFile(this.mutex, "disk-reservations", "model", () => undefined);
      if ("held" in attempt) {
        try {
          return await run();
        } finally {
          await attempt.held.release();
        }
      }
      if (Date.now() > deadline) throw reservationsLockTimeout(this.mutex, attempt.holder);
      await sleep(MUTEX_POLL_MS);
    }
  }
}

function isEntry(value: unknown): value is ReservationEntry {
  const e = value as ReservationEntry;
  return typeof e === "object" && e !== null && typeof e.pid === "number" && typeof e.host === "string" &&
    typeof e.boot === "string" && typeof e.token === "string" && typeof e.bytes === "number" && typeof e.heartbeatAt === "string";
}

/** Linux's boot id; elsewhere the boot time to the minute. */
function bootIdentity(): string {
  try {
    return fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return `booted-${Math.round((Date.now() - os.uptime() * 1000) / 60_000)}`;
  }
}
