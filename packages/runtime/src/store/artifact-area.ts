import fs from "node:fs/promises";
import path from "node:path";
import { idToFileName, fileNameToId } from "./model-id.js";
import { exists, fsyncDir, isErrno, randomSuffix } from "./fs-utils.js";
import { readMetadata, writeMetadata, type ArtifactMetadata, type StoredFile } from "./metadata.js";
import type { StoreIndex } from "./store-index.js";
import type { ArtifactKind } from "./artifact-kind.js";
import { readPartialState } from "./partial-state.js";

/** An artifact on disk whose metadata.json is valid and whose files are all present with their sizes. */
export interface InstalledArtifact {
  metadata: ArtifactMetadata;
  dir: string;
  /** Absolute paths, in metadata order. */
  paths: string[];
}

/** A verified file ready to be moved into the store. */
export interface FileToInstall extends StoredFile {
  /** Where it is now (inside this area's partial directory). */
  from: string;
}

/**
 * One directory of installed artifacts (`<home>/models` or `<home>/adapters`): `<name>/` holds the
 * files and metadata.json; `.staging/` and `.trash/` make installs and deletes atomic;
 * `.partial/<name>/` holds resumable downloads.
 */
export class ArtifactArea {
  constructor(
    readonly root: string,
    readonly kind: ArtifactKind,
    private readonly index: StoreIndex,
    private readonly validateId: (id: string) => string,
  ) {}

  dir(id: string): string {
    return path.join(this.root, idToFileName(this.validateId(id)));
  }

  partialDir(id: string): string {
    return path.join(this.root, ".partial", idToFileName(this.validateId(id)));
  }

  private indexKey(id: string): string {
    return `${this.kind}:${id}`;
  }

  async get(id: string): Promise<InstalledArtifact | undefined> {
    const dir = this.dir(id);
    const metadata = await readMetadata(dir);
    if (!metadata || metadata.id !== id || metadata.kind !== this.kind) return undefined;
    const paths = metadata.files.map((f) => path.join(dir, f.name));
    const sizes = await Promise.all(paths.map((p) => fs.stat(p).then((s) => (s.isFile() ? s.size : -1), () => -1)));
    if (sizes.some((size, i) => size !== metadata.files[i]!.size)) return undefined;
    return { metadata, dir, paths };
  }

  /** Ids with a directory here (installed, or being replaced), without reading any metadata. */
  async ids(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.root);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return [];
      throw err;
    }
    return names.filter((n) => !n.startsWith(".")).map(fileNameToId).filter((id): id is string => id !== undefined);
  }

  /** Scans the directory (the truth) and brings the index in line with it. */
  async list(): Promise<InstalledArtifact[]> {
    const ids = await this.ids();
    const found = (await Promise.all(ids.map((id) => this.get(id).catch(() => undefined)))).filter(
      (a): a is InstalledArtifact => a !== undefined,
    );
    this.index.syncInBackground(`${this.kind}:`, new Map(found.map((a) => [this.indexKey(a.metadata.id), a.metadata])));
    return found.sort((a, b) => (a.metadata.id < b.metadata.id ? -1 : 1));
  }

  /**
   * Moves verified files into a staging directory with their metadata.json, then renames the
   * whole directory into place: a reader sees the old artifact or the complete new one.
   */
  async install(id: string, files: FileToInstall[], metadata: Omit<ArtifactMetadata, "files" | "size_bytes" | "schema" | "id" | "kind">): Promise<InstalledArtifact> {
    const target = this.dir(id);
    const stagingRoot = path.join(this.root, ".staging");
    const staging = path.join(stagingRoot, `${idToFileName(id)}-${randomSuffix()}`);
    await fs.mkdir(staging, { recursive: true });
    const moved: FileToInstall[] = [];
    try {
      for (const f of files) {
        await fs.rename(f.from, path.join(staging, f.name));
        moved.push(f);
      }
      const full: ArtifactMetadata = {
        schema: 1,
        id,
        kind: this.kind,
        ...metadata,
        size_bytes: files.reduce((n, f) => n + f.size, 0),
        files: files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
      };
      await writeMetadata(staging, full);
      await fsyncDir(staging);
      const trash = await this.moveToTrash(target);
      await fs.rename(staging, target);
      await fsyncDir(this.root);
      if (trash) await fs.rm(trash, { recursive: true, force: true });
      await fs.rm(this.partialDir(id), { recursive: true, force: true });
      await this.index.put(this.indexKey(id), full);
      return { metadata: full, dir: target, paths: files.map((f) => path.join(target, f.name)) };
    } catch (err) {
      // The verified files go back where they were (a rename needs no free space), so a retry
      // once the disk has room, or is writable again, installs them without downloading again.
      for (const f of moved) await fs.rename(path.join(staging, f.name), f.from).catch(() => undefined);
      await fs.rm(staging, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * The commit an earlier install or an interrupted download of this artifact came from, so a
   * repair or a resume fetches the same revision even if the repository moved on.
   */
  async recordedRevision(id: string): Promise<string | undefined> {
    const installed = await readMetadata(this.dir(id));
    if (installed?.id === id && installed.revision) return installed.revision;
    const partial = this.partialDir(id);
    const names = await fs.readdir(partial).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith(".part.json"))) {
      const state = await readPartialState(path.join(partial, name));
      if (state?.revision) return state.revision;
    }
    return undefined;
  }

  /** Disk space an interrupted download of an artifact holds (its partial directory); 0 when there is none. */
  async partialBytes(id: string): Promise<number> {
    const dir = this.partialDir(id);
    const names = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
    const sizes = await Promise.all(
      names.map(async (name) => {
        const stat = await fs.stat(path.join(dir, name)).catch(() => undefined);
        // Blocks, not the size: a file written in ranges may still have holes.
        return stat?.isFile() ? Math.min(stat.size, stat.blocks > 0 ? stat.blocks * 512 : stat.size) : 0;
      }),
    );
    return sizes.reduce((sum, n) => sum + n, 0);
  }

  /** Removes an artifact (files, metadata, partial download); false when there was nothing. */
  async remove(id: string): Promise<boolean> {
    const trash = await this.moveToTrash(this.dir(id));
    const partial = this.partialDir(id);
    const hadPartial = await exists(partial);
    await fs.rm(partial, { recursive: true, force: true });
    if (trash) await fs.rm(trash, { recursive: true, force: true });
    await this.index.delete(this.indexKey(id));
    return trash !== undefined || hadPartial;
  }

  /** Leftovers of an install that crashed between staging and rename (call while holding the lock). */
  async removeStaleStaging(id: string): Promise<void> {
    const stagingRoot = path.join(this.root, ".staging");
    const prefix = `${idToFileName(id)}-`;
    const names = await fs.readdir(stagingRoot).catch(() => [] as string[]);
    await Promise.all(
      names.filter((n) => n.startsWith(prefix) && /^[0-9a-f]{12}$/.test(n.slice(prefix.length)))
        .map((n) => fs.rm(path.join(stagingRoot, n), { recursive: true, force: true })),
    );
  }

  private async moveToTrash(dir: string): Promise<string | undefined> {
    const trashRoot = path.join(this.root, ".trash");
    await fs.mkdir(trashRoot, { recursive: true });
    const trash = path.join(trashRoot, `${path.basename(dir)}-${randomSuffix()}`);
    try {
      await fs.rename(dir, trash);
      return trash;
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
  }
}
