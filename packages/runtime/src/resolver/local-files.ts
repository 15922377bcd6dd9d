import fs from "node:fs/promises";
import path from "node:path";
import { LlmlbError } from "../errors/index.js";
import type { Store } from "../store/store.js";
import { sha256OfFile } from "../transfer/hash-follower.js";

export interface CheckedLocalFiles {
  paths: string[];
  sizeBytes: number;
  /** sha256 of the first file, when known or required. */
  sha256: string;
}

/**
 * Checks files a source found on this machine (used in place, never copied): they must exist as
 * regular files, and when the catalog knows the sha256 of the first one it must match. Hashes of
 * read-only files are remembered in the store index by path, size and mtime.
 */
export async function checkLocalFiles(store: Store, files: readonly string[], expectedSha256: string | undefined, claimedSha256: string | undefined): Promise<CheckedLocalFiles> {
  const stats = await Promise.all(
    files.map(async (file) => {
      if (!path.isAbsolute(file)) throw new LlmlbError("FILE_NOT_FOUND", `${file} is not an absolute path`);
      const stat = await fs.stat(file).catch(() => undefined);
      if (!stat?.isFile()) throw new LlmlbError("FILE_NOT_FOUND", `${file} does not exist or is not a file`, { path: file });
      return stat;
    }),
  );
  const first = files[0]!;
  const firstStat = stats[0]!;
  let sha256 = claimedSha256 ?? (await store.cachedSha256(first, firstStat.size, firstStat.mtimeMs)) ?? "";
  if (expectedSha256 && sha256 !== expectedSha256) {
    if (!claimedSha256) {
      sha256 = await sha256OfFile(first, firstStat.size);
      await store.rememberSha256(first, firstStat.size, firstStat.mtimeMs, sha256);
    }
    if (sha256 !== expectedSha256) {
      throw new LlmlbError("CHECKSUM_MISMATCH", `${first} has sha256 ${sha256}, the catalog expects ${expectedSha256}`, {
        path: first, expected_sha256: expectedSha256, actual_sha256: sha256,
      });
    }
  }
  return { paths: [...files], sizeBytes: stats.reduce((n, s) => n + s.size, 0), sha256 };
}
