import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { LlmlbError, adapterNotFound } from "../errors/index.js";
import type { ModelEvents } from "../events/model-events.js";
import { silentLogger, type Logger } from "../logging/index.js";
import { readDownloadLock } from "./download-lock.js";
import type { ArtifactKind } from "./artifact-kind.js";
import { ArtifactArea, type FileToInstall, type InstalledArtifact } from "./artifact-area.js";
import type { ArtifactMetadata, StoredFile } from "./metadata.js";
import { validateAdapterId, validateModelId } from "./model-id.js";
import { StoreIndex } from "./store-index.js";
import { prepareNodeDb } from "../db/node-db.js";
import { runInstallJob, type InstallJob, type InstallOutcome } from "./install-job.js";

/** What identifies one version of a file on disk. */
export interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
}

/** The fact (see Store.remember) of an installed file's sha256, remembered with the file's identity at install. */
export const INSTALLED_SHA256 = "installed-sha256";

export interface CachedFile extends StoredFile {
  path: string;
}

/** A model installed in the store: verified at install, all files present. */
export interface CachedModel {
  id: string;
  displayName: string;
  sizeBytes: number;
  downloadedAt: Date;
  /** The file to load (first part of a sharded model). */
  path: string;
  dir: string;
  revision?: string;
  source: string;
  repo?: string;
  files: CachedFile[];
  /** Every file matched a digest known before it was downloaded (see ArtifactMetadata.verified). */
  verified: boolean;
}

export interface CachedAdapter {
  id: string;
  ref: string;
  path: string;
  dir: string;
  sizeBytes: number;
  sha256: string;
  source: string;
  downloadedAt: Date;
  revision?: string;
  files: CachedFile[];
}

export interface ByteRange {
  start: number;
  /** Inclusive; defaults to the last byte. */
  end?: number;
}

/** An open read of one file of a READY model (what `/v0/models/blob/:id` streams). */
export interface ModelFileRead {
  id: string;
  name: string;
  /** Size of the whole file. */
  size: number;
  sha256: string;
  lastModified: Date;
  start: number;
  /** Inclusive. */
  end: number;
  stream: Readable;
}

export interface StoreOptions {
  home: string;
  logger?: Logger;
  /** Where `deleted` events go. */
  events?: ModelEvents;
}

export type InstallMetadata = Omit<ArtifactMetadata, "files" | "size_bytes" | "schema" | "id" | "kind">;

function toFiles(a: InstalledArtifact): CachedFile[] {
  return a.metadata.files.map((f, i) => ({ ...f, path: a.paths[i]! }));
}

function toCachedModel(a: InstalledArtifact): CachedModel {
  const m = a.metadata;
  return {
    id: m.id,
    displayName: m.display_name ?? m.id,
    sizeBytes: m.size_bytes,
    downloadedAt: new Date(m.downloaded_at),
    path: a.paths[0]!,
    dir: a.dir,
    ...(m.revision ? { revision: m.revision } : {}),
    source: m.source,
    ...(m.repo ? { repo: m.repo } : {}),
    files: toFiles(a),
    verified: m.verified === true,
  };
}

function toCachedAdapter(a: InstalledArtifact): CachedAdapter {
  const m = a.metadata;
  return {
    id: m.id,
    ref: m.ref ?? m.id,
    path: a.paths[0]!,
    dir: a.dir,
    sizeBytes: m.size_bytes,
    sha256: m.files[0]!.sha256,
    source: m.source,
    downloadedAt: new Date(m.downloaded_at),
    ...(m.revision ? { revision: m.revision } : {}),
    files: toFiles(a),
  };
}

/**
 * The model store under `<home>`: `models/<id>/` and `adapters/<id>/` (files + metadata.json),
 * `.locks/`, and the index in `node.db`. Only verified files are ever installed, so whatever is
 * listed here is READY.
 */
export class Store {
  readonly home: string;
  readonly models: ArtifactArea;
  readonly adapters: ArtifactArea;
  private readonly index: StoreIndex;
  private readonly events: ModelEvents | undefined;

  private constructor(options: StoreOptions, index: StoreIndex) {
    this.home = options.home;
    this.index = index;
    this.events = options.events;
    this.models = new ArtifactArea(path.join(this.home, "models"), "model", index, validateModelId);
    this.adapters = new ArtifactArea(path.join(this.home, "adapters"), "adapter", index, validateAdapterId);
  }

  static async open(options: StoreOptions): Promise<Store> {
    const logger = options.logger ?? silentLogger();
    // A corrupt node.db is moved aside and rebuilt; an unwritable home stops here with one clear error.
    await prepareNodeDb(options.home, logger);
    const index = new StoreIndex(options.home, logger);
    const store = new Store(options, index);
    // metadata.json files are the truth: bring the index in line with them at start.
    await Promise.all([store.models.list(), store.adapters.list()]);
    return store;
  }

  /** Directory of a model (whether or not it is installed). Validates the id. */
  modelDir(id: string): string {
    return this.models.dir(id);
  }

  adapterDir(id: string): string {
    return this.adapters.dir(id);
  }

  async listModels(): Promise<CachedModel[]> {
    return (await this.models.list()).map(toCachedModel);
  }

  async getModel(id: string): Promise<CachedModel | undefined> {
    const installed = await this.models.get(id);
    return installed && toCachedModel(installed);
  }

  async isCached(id: string): Promise<boolean> {
    return (await this.models.get(id)) !== undefined;
  }

  /** Bytes of every installed model and adapter. */
  async totalSize(): Promise<number> {
    const [models, adapters] = await Promise.all([this.models.list(), this.adapters.list()]);
    return [...models, ...adapters].reduce((n, a) => n + a.metadata.size_bytes, 0);
  }

  /** Removes a model's files (and any partial download). Refuses while a download of it runs. */
  async deleteModel(id: string): Promise<boolean> {
    await this.refuseWhileDownloading("model", id);
    const removed = await this.models.remove(id);
    if (removed) this.events?.emit({ type: "deleted", modelId: id });
    return removed;
  }

  async listAdapters(): Promise<CachedAdapter[]> {
    return (await this.adapters.list()).map(toCachedAdapter);
  }

  async getAdapter(id: string): Promise<CachedAdapter | undefined> {
    const installed = await this.adapters.get(id);
    return installed && toCachedAdapter(installed);
  }

  /**
   * The GGUF file of an adapter the inference engine applies: the installed adapter, else the
   * single .gguf a user copied into `<home>/adapters/<id>/` (the first by name if several).
   */
  async adapterFile(id: string): Promise<string> {
    if (id.includes("/") || id.includes("\\") || id.startsWith(".")) {
      throw new LlmlbError("INVALID_ADAPTER_REF", `adapter id "${id}" is not an id; list adapters with ListAdapters`, { adapter_id: id });
    }
    const installed = await this.adapters.get(id);
    if (installed) return installed.paths[0]!;
    const dir = this.adapters.dir(id);
    const [first] = (await fs.readdir(dir).catch(() => [] as string[])).filter((name) => name.endsWith(".gguf")).sort();
    if (!first) throw adapterNotFound(id);
    return path.join(dir, first);
  }

  async deleteAdapter(id: string): Promise<boolean> {
    await this.refuseWhileDownloading("adapter", id);
    return this.adapters.remove(id);
  }

  /** Deletes every model and adapter that is not being downloaded. */
  async clear(): Promise<{ deleted: string[]; skipped: string[] }> {
    const deleted: string[] = [];
    const skipped: string[] = [];
    const jobs = [
      ...(await this.models.list()).map((a) => ({ id: a.metadata.id, del: () => this.deleteModel(a.metadata.id) })),
      ...(await this.adapters.list()).map((a) => ({ id: a.metadata.id, del: () => this.deleteAdapter(a.metadata.id) })),
    ];
    for (const job of jobs) {
      try {
        await job.del();
        deleted.push(job.id);
      } catch (err) {
        if (err instanceof LlmlbError && err.reason === "MODEL_IN_USE") skipped.push(job.id);
        else throw err;
      }
    }
    return { deleted, skipped };
  }

  /**
   * Opens one file of a READY model for reading. The file is looked up by name in metadata.json,
   * so nothing a client sends is ever joined into a path.
   */
  async openModelFile(id: string, options: { file?: string; range?: ByteRange } = {}): Promise<ModelFileRead> {
    const installed = await this.models.get(validateModelId(id));
    if (!installed) throw new LlmlbError("MODEL_NOT_READY", `model ${id} is not on this node's disk`, { id });
    const index = options.file === undefined ? 0 : installed.metadata.files.findIndex((f) => f.name === options.file);
    const file = installed.metadata.files[index];
    if (!file) throw new LlmlbError("FILE_NOT_FOUND", `model ${id} has no file named ${JSON.stringify(options.file)}`, { id });
    const filePath = installed.paths[index]!;
    const start = options.range?.start ?? 0;
    const end = Math.min(options.range?.end ?? file.size - 1, file.size - 1);
    if (!Number.isSafeInteger(start) || start < 0 || (file.size > 0 && start > end) || (file.size === 0 && start > 0)) {
      throw new LlmlbError("INVALID_ARGUMENT", `range ${start}-${options.range?.end ?? ""} is outside ${file.name} (${file.size} bytes)`, {
        id, size: String(file.size),
      });
    }
    const stat = await fs.stat(filePath);
    const stream = file.size === 0 ? Readable.from([]) : createReadStream(filePath, { start, end, highWaterMark: 1 << 20 });
    return { id, name: file.name, size: file.size, sha256: file.sha256, lastModified: stat.mtime, start, end, stream };
  }

  /**
   * The install transaction of a model or adapter: lock, look again, fetch, verify, install
   * atomically (see install-job.ts). One download per artifact across processes.
   */
  async install(kind: ArtifactKind, job: InstallJob): Promise<InstallOutcome> {
    const outcome = await runInstallJob(this.home, kind === "model" ? this.models : this.adapters, job);
    if (kind === "model" && outcome.fetched) await this.rememberInstalled(outcome.installed);
    return outcome;
  }

  /** Installs verified files as a model (the caller holds the model's lock). */
  async installModel(id: string, files: FileToInstall[], metadata: InstallMetadata): Promise<CachedModel> {
    const installed = await this.models.install(id, files, metadata);
    await this.rememberInstalled(installed);
    return toCachedModel(installed);
  }

  /** Each installed file's identity with the sha256 it holds, so a file changed on disk later is noticed (changedSinceInstall). */
  private async rememberInstalled(installed: InstalledArtifact): Promise<void> {
    for (const [i, file] of installed.paths.entries()) await this.remember(INSTALLED_SHA256, file, await fs.stat(file), installed.metadata.files[i]!.sha256);
  }

  async installAdapter(id: string, files: FileToInstall[], metadata: InstallMetadata): Promise<CachedAdapter> {
    return toCachedAdapter(await this.adapters.install(id, files, metadata));
  }

  /** A remembered fact about a file (e.g. "passed validation"), valid while its inode, size and mtime stay the same. */
  async recalled<T>(kind: string, file: string, stat: FileIdentity): Promise<T | undefined> {
    const hit = await this.recall<T>(kind, file, stat);
    return hit?.same ? hit.value : undefined;
  }

  /** The fact remembered about a file, and whether the file is still as it was then (`same`); undefined when none was. */
  async recall<T>(kind: string, file: string, stat: FileIdentity): Promise<{ value: T; same: boolean } | undefined> {
    const hit = await this.index.get<FileIdentity & { value: T }>(`${kind}:${file}`);
    return hit && { value: hit.value, same: hit.ino === stat.ino && hit.size === stat.size && hit.mtimeMs === stat.mtimeMs };
  }

  async remember(kind: string, file: string, stat: FileIdentity, value: unknown): Promise<void> {
    await this.index.put(`${kind}:${file}`, { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, value });
  }

  async close(): Promise<void> {
    await this.index.close();
  }

  /**
   * A live download lock refuses a delete, unless the artifact is installed: a job holds its lock
   * for a moment after installing (and announcing READY), and an installed artifact is never
   * downloaded again, so the lock only guards bytes that are already final.
   */
  private async refuseWhileDownloading(kind: ArtifactKind, id: string): Promise<void> {
    const lock = await readDownloadLock(this.home, kind === "model" ? validateModelId(id) : validateAdapterId(id), kind);
    if (lock && !lock.stale && !(await (kind === "model" ? this.models : this.adapters).get(id))) {
      throw new LlmlbError(
        "MODEL_IN_USE",
        `${id} is being downloaded by process ${lock.pid} on ${lock.host}; cancel that download or wait for it, then delete`,
        { id, holder_pid: String(lock.pid), holder_host: lock.host },
      );
    }
  }
}
