import { errorText } from "./home-errors.js";
import { LlmlbError } from "./llmlb-error.js";

/** Another live process has held the disk reservations' mutex for longer than any update takes. */
export function reservationsLockTimeout(mutex: string, holder: { pid: number; host: string }): LlmlbError {
  return new LlmlbError(
    "LOCK_WAIT_TIMEOUT",
    `gave up waiting for the disk reservations lock ${mutex}: process ${holder.pid} on ${holder.host} holds it; ` +
      "if that process is stuck, stop it (a dead holder's lock is taken over), then try again",
    { holder_pid: String(holder.pid), holder_host: holder.host },
  );
}

const DISK_FULL_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);
/** Only a write gets these (EROFS), or only the node's own database (SQLite's). */
const NOT_WRITABLE_CODES = new Set(["EROFS", "SQLITE_READONLY", "SQLITE_CANTOPEN"]);
/** Permission errors that mean "cannot be written" only from calls that change the file system. */
const PERMISSION_CODES = new Set(["EACCES", "EPERM"]);
const WRITING_CALLS = new Set(["mkdir", "rename", "unlink", "rmdir", "link", "symlink", "write", "writev", "ftruncate", "chmod", "chown", "utime", "copyfile", "fsync", "fdatasync"]);

type FsError = Error & { code?: unknown; path?: unknown; syscall?: unknown };

/**
 * A failure of the node's own disk (its models directory, its records, node.db) as the error a
 * client gets: the disk is full (INSUFFICIENT_DISK) or a file cannot be written (NOT_WRITABLE);
 * undefined for any other error. Never the fault of a source: trying another cannot help. A
 * permission error of an `open` (reading or writing) counts only for a path inside `ownDirs`
 * (the node's home): the same error reading a file of an extra model directory is that source's.
 */
export function localDiskError(err: unknown, ownDirs: readonly string[] = []): LlmlbError | undefined {
  if (err instanceof LlmlbError || !(err instanceof Error)) return undefined;
  const { code, syscall, path } = err as FsError;
  if (typeof code !== "string") return undefined;
  if (DISK_FULL_CODES.has(code)) return diskFull(err);
  if (NOT_WRITABLE_CODES.has(code)) return notWritable(err);
  // Node's recursive mkdir reports ENOENT when a directory it must create is on a read-only file system.
  if (code === "ENOENT" && syscall === "mkdir") return notWritable(err);
  if (!PERMISSION_CODES.has(code) || typeof syscall !== "string") return undefined;
  const own = typeof path === "string" && ownDirs.some((dir) => path.startsWith(dir.endsWith("/") ? dir : `${dir}/`));
  return WRITING_CALLS.has(syscall) || (syscall === "open" && own) ? notWritable(err) : undefined;
}

/** A write of the node's own failed with ENOSPC or EDQUOT (or SQLite's "database or disk is full"). */
export function diskFull(err: Error): LlmlbError {
  const { path } = err as FsError;
  const where = typeof path === "string" ? ` writing ${path}` : "";
  return new LlmlbError(
    "INSUFFICIENT_DISK",
    `the disk is full (${errorText(err)}${where}): free space on it (llmlb-node ls lists the models, llmlb-node rm <id> deletes one) ` +
      "or lower LLMLB_DISK_RESERVE, then try again",
    fsMetadata(err),
    { cause: err },
  );
}

/** A file or directory of the node's own cannot be written: a read-only file system, or permissions. */
export function notWritable(err: Error): LlmlbError {
  const { path } = err as FsError;
  const what = typeof path === "string" ? path : "the node's database (node.db in its home)";
  return new LlmlbError(
    "NOT_WRITABLE",
    `${what} cannot be written (${errorText(err)}): make the node's home (LLMLB_HOME) and everything in it ` +
      "writable by the user running the node, or point LLMLB_HOME at a writable directory, then try again",
    fsMetadata(err),
    { cause: err },
  );
}

function fsMetadata(err: Error): Record<string, string> {
  const { code, path } = err as FsError;
  return { errno: String(code), ...(typeof path === "string" ? { path } : {}) };
}
