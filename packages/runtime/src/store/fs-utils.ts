import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

export const randomSuffix = (): string => randomBytes(6).toString("hex");

/** The name of a temporary file this process writes next to `file` (the sweep at start recognises it by TMP_NAME). */
export const tmpNameFor = (file: string): string => `${file}.${process.pid}.${randomSuffix()}.tmp`;

/** A temporary file named by tmpNameFor: group 1 is the pid of the process that wrote it. */
export const TMP_NAME = /\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Writes a file so that readers see either the old or the new content, never a torn one. On any
 * failure (a full disk while writing, a failed rename) the temporary file is removed.
 */
export async function writeFileAtomic(file: string, data: string, options: { fsync?: boolean } = {}): Promise<void> {
  const tmp = tmpNameFor(file);
  try {
    const handle = await fs.open(tmp, "w");
    try {
      await handle.writeFile(data);
      if (options.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** fsync of a directory, so a rename inside it survives a power cut (a no-op where unsupported). */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, "r");
    await handle.sync();
  } catch {
    // Some platforms cannot open or sync directories; the rename itself is still atomic.
  } finally {
    await handle?.close();
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

export const isErrno = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException | undefined)?.code === code;

/**
 * `mkdir -p` one level at a time. Node's recursive mkdir loops forever where mkdir answers ENOENT
 * under a parent that exists (procfs: `--home /proc/x` hung every command); here that ENOENT is
 * the error.
 */
export async function makeDirectories(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    try {
      await fs.stat(current);
      break;
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw err;
      missing.push(current);
      if (path.dirname(current) === current) break;
    }
  }
  for (const next of missing.reverse()) {
    try {
      await fs.mkdir(next);
    } catch (err) {
      if (!isErrno(err, "EEXIST")) throw err;
    }
  }
}
