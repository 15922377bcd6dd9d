import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";

export const randomSuffix = (): string => randomBytes(6).toString("hex");

/** Writes a file so that readers see either the old or the new content, never a torn one. */
export async function writeFileAtomic(file: string, data: string, options: { fsync?: boolean } = {}): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomSuffix()}.tmp`;
  const handle = await fs.open(tmp, "w");
  try {
    await handle.writeFile(data);
    if (options.fsync) await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
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
