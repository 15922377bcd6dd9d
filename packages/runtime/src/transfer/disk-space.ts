import fs from "node:fs/promises";
import path from "node:path";
import { LlmlbError } from "../errors/index.js";
import { formatBytes } from "../config/index.js";

async function existingAncestor(dir: string): Promise<string> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    try {
      await fs.access(current);
      return current;
    } catch {
      if (path.dirname(current) === current) return current;
    }
  }
}

/** Free bytes for an unprivileged writer on the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const stats = await fs.statfs(await existingAncestor(dir));
  return stats.bavail * stats.bsize;
}

/**
 * Room for what a download writes besides its bytes (its lock, partial-download records and
 * metadata.json, a few pages each): without it a download that fit to the page failed at its very
 * end, with every byte verified.
 */
const RECORDS_BYTES = 1 << 20;

/**
 * Fails with INSUFFICIENT_DISK unless `needed` bytes (and its records) fit while leaving `reserve`
 * bytes free, after the bytes other running downloads have reserved but not yet written.
 */
export async function ensureDiskSpace(dir: string, needed: number, reserve: number, what: string, reservedByOthers = 0): Promise<void> {
  if (needed <= 0) return;
  const free = await freeBytes(dir);
  const short = reserve + reservedByOthers + needed + RECORDS_BYTES - free;
  if (short <= 0) return;
  const others = reservedByOthers > 0 ? `, ${formatBytes(reservedByOthers)} of it promised to other downloads running now` : "";
  throw new LlmlbError(
    "INSUFFICIENT_DISK",
    `not enough disk space for ${what}: it needs ${formatBytes(needed)} (and ${formatBytes(RECORDS_BYTES)} for its records) and ` +
      `${formatBytes(reserve)} must stay free (LLMLB_DISK_RESERVE), but only ${formatBytes(free)} is free on the disk of ${dir}${others}: ` +
      `free ${formatBytes(short)} more (llmlb-node ls lists the models, llmlb-node rm <id> deletes one) or lower LLMLB_DISK_RESERVE`,
    { needed_bytes: String(needed), free_bytes: String(free), reserve_bytes: String(reserve), reserved_bytes: String(reservedByOthers) },
  );
}
