import { LlmlbError, isAbortError, modelNotSupported, modelUnsupported } from "../errors/index.js";
import type { ModelEntry, ModelDirectory } from "../catalog/model-entry.js";
import type { ModelEvents } from "../events/model-events.js";
import type { Logger } from "../logging/index.js";
import type { ArtifactKind } from "../store/artifact-kind.js";
import type { ArtifactSpec, LocateResult, RemoteFile } from "../plugin/contract.js";
import type { ArtifactArea, InstalledArtifact } from "../store/artifact-area.js";
import { validateModelId } from "../store/model-id.js";
import type { Store } from "../store/store.js";
import { DiskWriteError } from "../transfer/positional-writer.js";
import type { TransferEngine } from "../transfer/transfer-engine.js";
import { adapterIdFromRef } from "./adapter-ref.js";
import { combineFailures } from "./failures.js";
import { checkLocalFiles } from "./local-files.js";
import { modelFile, type ModelFile, type ModelFileOptions } from "./model-file.js";
import { SharedJob } from "./shared-job.js";
import { failureOf, type SourceChain, type SourceFailure } from "./source-chain.js";
import type { ResolveEvent, ResolveOptions, ResolveResult, ResolveTarget } from "./types.js";

export interface ResolverDeps {
  store: Store;
  sources: SourceChain;
  transfer: TransferEngine;
  /** Where model ids are looked up (the catalog). */
  models: ModelDirectory;
  events: ModelEvents;
  logger: Logger;
  lockWaitTimeoutSeconds: number;
}

interface Job {
  kind: ArtifactKind;
  id: string;
  /** Adapter reference as given. */
  ref?: string;
  /** The catalog entry, when the caller already looked it up. */
  entry?: ModelEntry;
  /** The caller just found it not installed; the install job looks again under the lock. */
  storeChecked?: boolean;
  shared: SharedJob<ResolveResult>;
}

/** Errors after which no other source is worth asking. */
function endsTheChain(err: unknown): boolean {
  if (isAbortError(err)) return true;
  if (err instanceof LlmlbError) return ["CANCELLED", "INSUFFICIENT_DISK", "LOCK_WAIT_TIMEOUT"].includes(err.reason);
  return err instanceof DiskWriteError;
}

/**
 * Turns a model id or an adapter reference into verified files on local disk: the store first,
 * then the source chain in priority order. One resolution per artifact in this process (callers
 * share it); the store's install job makes it one download per artifact across processes.
 */
export class Resolver {
  private readonly jobs = new Map<string, Job>();

  constructor(private readonly deps: ResolverDeps) {}

  /** Resolves, sharing the work with every other caller of the same artifact. */
  resolve(target: ResolveTarget, options: ResolveOptions = {}): Promise<ResolveResult> {
    try {
      if ("modelId" in target) return this.join({ kind: "model", id: validateModelId(target.modelId) }, options);
      return this.join({ kind: "adapter", id: adapterIdFromRef(target.adapterRef), ref: target.adapterRef }, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The file of a catalog model for the inference engine: catalog, then the store, then (unless
   * `localOnly`) the source chain — each asked once.
   */
  locateModel(modelId: string, options: ModelFileOptions = {}): Promise<ModelFile> {
    return modelFile(
      {
        directory: this.deps.models,
        installed: this.deps.store,
        obtain: (entry, signal) => this.join({ kind: "model", id: entry.id, entry, storeChecked: true }, signal ? { signal } : {}),
      },
      modelId,
      options,
    );
  }

  private join(target: Omit<Job, "shared">, options: ResolveOptions): Promise<ResolveResult> {
    const key = `${target.kind}:${target.id}`;
    let job = this.jobs.get(key);
    if (!job) {
      const created: Job = { ...target, shared: new SharedJob((shared) => this.run(created, shared)) };
      job = created;
      this.jobs.set(key, created);
      created.shared.done.then(
        () => this.forget(key, created),
        () => this.forget(key, created),
      );
    }
    return job.shared.join(options.signal, options.onEvent);
  }

  /** Ids with a resolution running in this process. */
  inFlight(): Array<{ kind: ArtifactKind; id: string }> {
    return [...this.jobs.values()].map(({ kind, id }) => ({ kind, id }));
  }

  /** Aborts every running resolution (node shutdown); partial downloads stay for a resume. */
  async close(): Promise<void> {
    const running = [...this.jobs.values()];
    for (const job of running) job.shared.abort(new LlmlbError("CANCELLED", "the node is shutting down"));
    await Promise.allSettled(running.map((job) => job.shared.done));
  }

  private forget(key: string, job: Job): void {
    if (this.jobs.get(key) === job) this.jobs.delete(key);
  }

  private area(kind: ArtifactKind): ArtifactArea {
    return kind === "model" ? this.deps.store.models : this.deps.store.adapters;
  }

  private async run(job: Job, shared: SharedJob<ResolveResult>): Promise<ResolveResult> {
    const area = this.area(job.kind);
    if (!job.storeChecked) {
      const installed = await area.get(job.id);
      if (installed) return this.fromInstalled(job.kind, installed, "local");
    }

    let entry = job.entry;
    if (job.kind === "model" && !entry) {
      entry = await this.deps.models.get(job.id);
      if (!entry) throw modelNotSupported(job.id);
    }
    if (entry?.unsupportedReason) throw modelUnsupported(job.id, entry.unsupportedReason);
    try {
      return await this.fromSources(job, shared, area, entry);
    } catch (err) {
      if (job.kind === "model") {
        const failed = err instanceof LlmlbError ? err : new LlmlbError("INTERNAL", (err as Error).message);
        this.deps.events.emit({ type: "transfer-failed", modelId: job.id, reason: failed.message, code: failed.reason });
      }
      throw err;
    }
  }

  private async fromSources(job: Job, shared: SharedJob<ResolveResult>, area: ArtifactArea, entry: ModelEntry | undefined): Promise<ResolveResult> {
    const pinnedRevision = await area.recordedRevision(job.id);
    const spec: ArtifactSpec = entry
      ? { kind: "model", id: job.id, model: entry, ...(pinnedRevision ? { pinnedRevision } : {}) }
      : { kind: "adapter", id: job.id, ref: job.ref! };
    const failures: SourceFailure[] = [];
    const fail = (failure: SourceFailure) => {
      failures.push(failure);
      shared.emit({ type: "source-failed", source: failure.source, reason: failure.reason, code: failure.code });
    };
    for (const source of this.deps.sources.for(job.kind)) {
      shared.emit({ type: "source-tried", source: source.name });
      let located: LocateResult;
      try {
        located = await this.deps.sources.locate(source, spec, shared.signal);
      } catch (err) {
        if (shared.signal.aborted) throw shared.signal.reason ?? err;
        fail(failureOf(source.name, err));
        continue;
      }
      if (located.type === "not-here") {
        fail({ source: source.name, code: located.code ?? "NOT_HERE", reason: `${source.name}: ${located.reason}`, notHere: true });
        continue;
      }
      try {
        if (located.type === "local") {
          const checked = await checkLocalFiles(this.deps.store, located.files, entry?.sha256, located.sha256);
          return {
            kind: job.kind, id: job.id, path: checked.paths[0]!, files: checked.paths, source: source.name,
            sizeBytes: checked.sizeBytes, sha256: checked.sha256, ...(located.revision ? { revision: located.revision } : {}),
          };
        }
        const files = this.expectedFiles(located.files, entry);
        return await this.download(job, shared, entry, source.name, files, located.revision);
      } catch (err) {
        if (endsTheChain(err) || shared.signal.aborted) throw err;
        fail(failureOf(source.name, err));
      }
    }
    throw combineFailures(`${job.kind} ${job.id}`, failures);
  }

  /** Applies what the catalog knows (sha256 of the first file) to what a source offers. */
  private expectedFiles(files: RemoteFile[], entry: ModelEntry | undefined): RemoteFile[] {
    const expected = entry?.sha256?.toLowerCase();
    const first = files[0]!;
    if (!expected || first.sha256 === expected) return files;
    if (first.sha256) {
      throw new LlmlbError("CHECKSUM_MISMATCH", `the source offers ${first.name} with sha256 ${first.sha256}, the catalog expects ${expected}`, {
        file: first.name, expected_sha256: expected, actual_sha256: first.sha256,
      });
    }
    return [{ ...first, sha256: expected }, ...files.slice(1)];
  }

  /** Has the store fetch and install the files (under the artifact's lock), reporting as it goes. */
  private async download(
    job: Job, shared: SharedJob<ResolveResult>, entry: ModelEntry | undefined,
    source: string, files: RemoteFile[], revision: string | undefined,
  ): Promise<ResolveResult> {
    const { events } = this.deps;
    const model = job.kind === "model";
    const label = `${job.kind} ${job.id}`;
    const { installed, fetched } = await this.deps.store.install(job.kind, {
      id: job.id,
      expected: files,
      signal: shared.signal,
      lockWaitTimeoutSeconds: this.deps.lockWaitTimeoutSeconds,
      metadata: {
        source,
        downloaded_at: new Date().toISOString(),
        ...(entry ? { display_name: entry.displayName, repo: entry.repo } : {}),
        ...(job.ref ? { ref: job.ref } : {}),
        ...(revision ? { revision } : {}),
      },
      fetch: (partialDir, signal, onProgress) =>
        this.deps.transfer.download({ label, files, partialDir, ...(revision ? { revision } : {}), signal, onProgress }),
      onLockWait: (holder) => {
        shared.emit({ type: "lock-wait", pid: holder.pid, host: holder.host });
        if (model) events.emit({ type: "transfer-started", modelId: job.id, source, external: true });
      },
      onHolderProgress: (progress) => {
        shared.emit({ type: "progress", progress });
        if (model) events.emit({ type: "transfer-progress", modelId: job.id, progress, external: true });
      },
      onFetchStart: () => {
        if (model) events.emit({ type: "transfer-started", modelId: job.id, source });
      },
      onProgress: (progress) => {
        shared.emit({ type: "progress", progress } satisfies ResolveEvent);
        if (model) events.emit({ type: "transfer-progress", modelId: job.id, progress });
      },
      onInstalled: (done) => {
        this.deps.logger.info({ id: job.id, source, path: done.paths[0] }, `${label} is ready`);
        if (model) events.emit({ type: "transfer-finished", modelId: job.id, source, path: done.paths[0]! });
      },
    });
    return this.fromInstalled(job.kind, installed, fetched ? source : installed.metadata.source);
  }

  private fromInstalled(kind: ArtifactKind, a: InstalledArtifact, source: string): ResolveResult {
    const m = a.metadata;
    return {
      kind, id: m.id, path: a.paths[0]!, files: a.paths, source, sizeBytes: m.size_bytes, sha256: m.files[0]!.sha256,
      ...(m.revision ? { revision: m.revision } : {}),
    };
  }
}
