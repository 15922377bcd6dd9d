import fs from "node:fs/promises";
import { INSTALLED_SHA256, type CachedModel, type Store } from "../store/store.js";
import { sha256OfFile } from "../transfer/hash-follower.js";

/** A file of an installed model that no longer holds the bytes installed. */
export interface ChangedFile {
  path: string;
  sha256: string;
  installedSha256: string;
}

/** Checks running now, by file: concurrent first requests for a model hash a changed file once. */
const hashing = new Map<string, Promise<string>>();

/**
 * The first file of an installed model whose bytes are no longer those installed. Each file's
 * identity (inode, size, mtime) is remembered with its sha256 at install; a file whose identity
 * changed since (replaced, or rewritten in place) is hashed again, and remembered anew when it
 * still matches. A file installed by an earlier version has no record: it is taken as it is now.
 */
export async function changedSinceInstall(store: Store, model: CachedModel): Promise<ChangedFile | undefined> {
  for (const file of model.files) {
    const stat = await fs.stat(file.path);
    const known = await store.recall<string>(INSTALLED_SHA256, file.path, stat);
    if (known?.same && known.value === file.sha256) continue;
    if (known) {
      const sha256 = await hashOnce(file.path, stat.size);
      if (sha256 !== file.sha256) return { path: file.path, sha256, installedSha256: file.sha256 };
    }
    await store.remember(INSTALLED_SHA256, file.path, stat, file.sha256);
  }
  return undefined;
}

function hashOnce(file: string, size: number): Promise<string> {
  let running = hashing.get(file);
  if (!running) {
    running = sha256OfFile(file, size).finally(() => hashing.delete(file));
    hashing.set(file, running);
  }
  return running;
}
