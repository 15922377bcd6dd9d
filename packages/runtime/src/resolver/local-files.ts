import fs from "node:fs/promises";
import path from "node:path";
import { LlmlbError } from "../errors/index.js";
import type { FileIdentity, Store } from "../store/store.js";
import { sha256OfFile } from "../transfer/hash-follower.js";

export interface CheckedLocalFiles {
  paths: string[];
  sizeBytes: number;
  /** sha256 of the first file, computed from its bytes. */
  sha256: string;
  /** Each file as it was when checked (what the store remembers facts about it by). */
  identities: FileIdentity[];
}

const HASHED = "sha256";

/**
 * Checks files a source found on this machine (used in place, never copied): they must exist as
 * regular files, and each is hashed before first use — never trusted by a name such as a Hugging
 * Face cache blob's — with the result remembered by inode, size and mtime, so an unchanged file is
 * read once. When the catalog knows a file's sha256 it must match.
 */
export async function checkLocalFiles(store: Store, files: readonly string[], expectedSha256s: ReadonlyArray<string | undefined>): Promise<CheckedLocalFiles> {
  return (await localFiles(store, files, expectedSha256s, true))!;
}

/** What checkLocalFiles found for these files before, while none has changed since; undefined when any must be read again. */
export function recalledLocalFiles(store: Store, files: readonly string[], expectedSha256s: ReadonlyArray<string | undefined>): Promise<CheckedLocalFiles | undefined> {
  return localFiles(store, files, expectedSha256s, false);
}

async function localFiles(store: Store, files: readonly string[], expectedSha256s: ReadonlyArray<string | undefined>, hash: boolean): Promise<CheckedLocalFiles | undefined> {
  const stats = await Promise.all(
    files.map(async (file) => {
      if (!path.isAbsolute(file)) throw new LlmlbError("FILE_NOT_FOUND", `${file} is not an absolute path`);
      const stat = await fs.stat(file).catch(() => undefined);
      if (!stat?.isFile()) throw new LlmlbError("FILE_NOT_FOUND", `${file} does not exist or is not a file`, { path: file });
      return stat;
    }),
  );
  const digests: string[] = [];
  for (const [i, file] of files.entries()) {
    const stat = stats[i]!;
    let sha256 = await store.recalled<string>(HASHED, file, stat);
    if (!sha256) {
      if (!hash) return undefined;
      sha256 = await sha256OfFile(file, stat.size);
      await store.remember(HASHED, file, stat, sha256);
    }
    const expected = expectedSha256s[i];
    if (expected && sha256 !== expected) {
      throw new LlmlbError("CHECKSUM_MISMATCH", `${file} has sha256 ${sha256}, the catalog expects ${expected}`, {
        path: file, expected_sha256: expected, actual_sha256: sha256,
      });
    }
    digests.push(sha256);
  }
  return { paths: [...files], sizeBytes: stats.reduce((n, s) => n + s.size, 0), sha256: digests[0]!, identities: stats };
}
