import fs from "node:fs/promises";
import path from "node:path";
import { idToFileName } from "@llmlb/runtime/plugin";

export interface LocalHit {
  files: string[];
  revision?: string;
  /** From a Hugging Face cache blob name (the blob of an LFS file is named by its sha256). */
  sha256?: string;
}

const COMMIT = /^[0-9a-f]{40}$/;

async function allFiles(paths: string[]): Promise<boolean> {
  const stats = await Promise.all(paths.map((p) => fs.stat(p).catch(() => undefined)));
  return stats.every((s) => s?.isFile() === true);
}

/** A Hugging Face hub cache (`models--org--name/snapshots/<commit>/…`), at dir or dir/hub. */
async function inHfCache(dir: string, repo: string, files: string[], revision: string | undefined): Promise<LocalHit | undefined> {
  const repoDir = `models--${repo.split("/").join("--")}`;
  for (const root of [path.join(dir, repoDir), path.join(dir, "hub", repoDir)]) {
    const snapshots = path.join(root, "snapshots");
    let commits: string[];
    if (revision && COMMIT.test(revision)) commits = [revision];
    else if (revision) {
      const ref = await fs.readFile(path.join(root, "refs", revision), "utf8").catch(() => "");
      commits = ref.trim() ? [ref.trim()] : [];
    } else {
      const names = await fs.readdir(snapshots).catch(() => [] as string[]);
      const dated = await Promise.all(names.map(async (n) => ({ n, t: (await fs.stat(path.join(snapshots, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
      commits = dated.sort((a, b) => b.t - a.t).map((d) => d.n);
    }
    for (const commit of commits) {
      const paths = files.map((f) => path.join(snapshots, commit, ...f.split("/")));
      if (!(await allFiles(paths))) continue;
      const blob = path.basename(await fs.realpath(paths[0]!).catch(() => paths[0]!));
      return { files: paths, ...(COMMIT.test(commit) ? { revision: commit } : {}), ...(/^[0-9a-f]{64}$/.test(blob) ? { sha256: blob } : {}) };
    }
  }
  return undefined;
}

/**
 * Looks for a model's files in one read-only directory laid out as a Hugging Face cache, as
 * `<dir>/<id>/`, `<dir>/<org>/<repo>/`, or flat (`<dir>/<file>`).
 */
export async function findInDir(dir: string, model: { id: string; repo: string; files: string[]; revision?: string }): Promise<LocalHit | undefined> {
  if (model.repo) {
    const cached = await inHfCache(dir, model.repo, model.files, model.revision);
    if (cached) return cached;
  }
  const names = model.files.map((f) => f.split("/").pop()!);
  const layouts = [path.join(dir, idToFileName(model.id)), ...(model.repo ? [path.join(dir, ...model.repo.split("/"))] : []), dir];
  for (const base of layouts) {
    const paths = names.map((n) => path.join(base, n));
    if (await allFiles(paths)) return { files: paths };
  }
  return undefined;
}
