import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import { Keyv } from "keyv";
import { homeNotWritable, nodeDbNotWritable } from "../errors/index.js";
import type { Logger } from "../logging/index.js";
import { makeDirectories } from "../store/fs-utils.js";

/** `<home>/node.db`. */
export const nodeDbPath = (home: string): string => path.join(home, "node.db");

/**
 * Opens one keyv namespace in `<home>/node.db`, the node's single SQLite file (store index,
 * registrations, hub-info cache). Components share the file, each in its own namespace.
 * Start-up calls prepareNodeDb first, so a corrupt or unwritable file is dealt with before this.
 */
export function openNodeDb<T>(home: string, namespace: string, options: { table?: string; throwOnErrors?: boolean } = {}): Keyv<T> {
  fs.mkdirSync(home, { recursive: true });
  const store = new KeyvSqlite({ uri: `sqlite://${nodeDbPath(home)}`, busyTimeout: 10_000, ...(options.table ? { table: options.table } : {}) });
  // @keyv/sqlite connects eagerly and re-throws a failed connection from a promise nothing awaits
  // until the first operation: without a handler here a bad file became an unhandled rejection that
  // killed the process. Failures still reach every operation and the "error" event.
  store.query("SELECT 1").catch(() => undefined);
  return new Keyv<T>({ store, namespace, ...(options.throwOnErrors ? { throwOnErrors: true } : {}) });
}

const IDENTITY_KEY = "llmlb:node-db-id";

/**
 * The id of `<home>/node.db`: a random one written into the file the first time it is asked for, so a
 * rebuilt, replaced or emptied file has another one. (Not its inode: ext4 gives a file created right
 * after a deletion the inode of the one deleted.) The first process to write it wins.
 */
export async function nodeDbIdentity(home: string): Promise<string> {
  const store = new KeyvSqlite({ uri: `sqlite://${nodeDbPath(home)}`, busyTimeout: 10_000 });
  store.on("error", () => undefined);
  try {
    await store.query("INSERT OR IGNORE INTO keyv (key, value) VALUES (?, ?)", IDENTITY_KEY, randomUUID());
    const rows = (await store.query("SELECT value FROM keyv WHERE key = ?", IDENTITY_KEY)) as Array<{ value: string }>;
    return rows[0]!.value;
  } finally {
    await store.close().catch(() => undefined);
  }
}

/** SQLite's answers for a file that is not (or no longer) a usable database: such a file is moved aside. */
const CORRUPT_CODES = new Set(["SQLITE_NOTADB", "SQLITE_CORRUPT"]);

/** Checks running now, by home: callers starting together share one. */
const checking = new Map<string, Promise<void>>();

/**
 * Makes `<home>/node.db` usable before anything opens it: creates the home, and checks that the file
 * is a healthy SQLite database this process can write. A corrupt file is moved aside (kept for
 * inspection as `node.db.corrupt-<time>`) with one warn line, and a new one is created: the store's
 * index is rebuilt from the metadata.json files, registrations come back from registrations.json
 * (see RegistrationBackup), caches start empty.
 * A home or database that cannot be written throws INVALID_CONFIG naming the path and LLMLB_HOME.
 */
export function prepareNodeDb(home: string, logger: Logger): Promise<void> {
  const key = path.resolve(home);
  let done = checking.get(key);
  if (!done) {
    done = checkNodeDb(key, logger).finally(() => checking.delete(key));
    checking.set(key, done);
  }
  return done;
}

async function checkNodeDb(home: string, logger: Logger, attempt = 0): Promise<void> {
  try {
    await makeDirectories(home);
  } catch (err) {
    throw homeNotWritable(home, err as Error);
  }
  const file = nodeDbPath(home);
  const before = await fs.promises.stat(file).catch(() => undefined);
  if (before?.isDirectory()) throw nodeDbNotWritable(home, file, Object.assign(new Error("it is a directory, not a file"), { code: "EISDIR" }));
  const problem = await probe(file);
  if (!problem) return;
  if (!CORRUPT_CODES.has(problem.code ?? "")) throw nodeDbNotWritable(home, file, problem);
  // Another process may have moved the file aside (and created a new one) while this one looked at it.
  const now = await fs.promises.stat(file).catch(() => undefined);
  if (before && now && now.ino !== before.ino && attempt === 0) return checkNodeDb(home, logger, 1);
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  try {
    await fs.promises.rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && attempt === 0) return checkNodeDb(home, logger, 1);
    throw nodeDbNotWritable(home, file, err as Error);
  }
  // SQLite's side files belong to the old database; a new one must not replay them.
  for (const side of ["-wal", "-shm", "-journal"]) await fs.promises.rename(`${file}${side}`, `${aside}${side}`).catch(() => undefined);
  logger.warn(
    { path: file, moved_to: aside, err: problem.message },
    `node.db is corrupt (${problem.code}): moved aside to ${aside} and rebuilt; models are re-indexed from their metadata.json files and registrations restored from registrations.json`,
  );
  const again = await probe(file);
  if (again) throw nodeDbNotWritable(home, file, again);
}

/** Opens the file, checks its structure and takes a write lock; undefined when all is well. */
async function probe(file: string): Promise<(Error & { code?: string }) | undefined> {
  const store = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 10_000 });
  store.on("error", () => undefined);
  try {
    const rows = (await store.query("PRAGMA quick_check")) as Array<Record<string, unknown>>;
    const verdict = rows.map((r) => String(Object.values(r)[0])).join("; ");
    if (verdict !== "ok") return Object.assign(new Error(`quick_check: ${verdict.slice(0, 300)}`), { code: "SQLITE_CORRUPT" });
    // A statement that writes: a read-only file or directory fails here (SQLITE_READONLY), not later.
    await store.query("DELETE FROM keyv WHERE key = ?", "llmlb:write-probe");
    return undefined;
  } catch (err) {
    return err as Error & { code?: string };
  } finally {
    await store.close().catch(() => undefined);
  }
}
