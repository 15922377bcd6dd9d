import { setTimeout as sleep } from "node:timers/promises";
import { LlmlbError, isAbortError, isLlmlbError, localDiskError, modelNotSupported, modelUnsupported } from "../errors/index.js";
import type { ModelEntry, ModelDirectory } from "../catalog/model-entry.js";
import type { ModelEvents } from "../events/model-events.js";
import type { Logger } from "../logging/index.js";
import type { ArtifactKind } from "../store/artifact-kind.js";
import type { ArtifactSpec, LocateResult, RemoteFile } from "../plugin/contract.js";
import type { ArtifactArea, InstalledArtifact } from "../store/artifact-area.js";
import { validateModelId } from "../store/model-id.js";
import type { CachedModel, Store } from "../store/store.js";
import { DiskWriteError } from "../transfer/positional-writer.js";
import type { TransferEngine } from "../transfer/transfer-engine.js";
import type { FleetDownloads } from "../fleet/fleet.js";
import { adapterIdFromRef } from "./adapter-ref.js";
import { combineFailures } from "./failures.js";
import { changedSinceInstall } from "./installed-digest.js";
import type { FileChecks } from "./file-checks.js";
import { checkLocalFiles, recalledLocalFiles, type CheckedLocalFiles } from "./local-files.js";
import { modelFile, type ModelFile, type ModelFileOptions } from "./model-file.js";
import { mapBounded } from "../plugin/bounded.js";
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
  /** The fleet (LLMLB_STATE_URL): one hub download per cluster. */
  fleet?: FleetDownloads;
  /** GGUF validation: nothing becomes READY (or is used in place) without passing it. */
  checks: FileChecks;
  /** Bound of a file whose size neither the source nor the catalog knows (LLMLB_MAX_DOWNLOAD_SIZE). */
  maxDownloadBytes: number;
}

/** The source that fetches from other nodes of the fleet (@llmlb/plugins/peer). */
export const PEER_SOURCE = "peer";
/** The built-in source of files already on this machine (@llmlb/plugins/local): it reads directories only. */
const LOCAL_SOURCE = "local";
/** Passes over the source chain when a fleet hands a download from node to node (lease taken, holder died). */
const FLEET_ROUNDS = 6;
/** How often a transfer from a peer checks that the peer still serves the model. */
const PEER_CHECK_MS = 1_000;

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

/** The peer a failed transfer blames: the host the error names (one of several peers of the file), else the first file's. */
function peerOf(url: string, err: unknown): string {
  const first = new URL(url);
  const host = err instanceof LlmlbError ? err.metadata.host : undefined;
  return host ? `${first.protocol}//${host}` : first.origin;
}

/** The sha256 the catalog expects for file `i` of a model (a sharded model's first file may carry the model's sha256). */
function expectedSha256(entry: ModelEntry | undefined, i: number): string | undefined {
  return (entry?.fileSha256s?.[i] ?? (i === 0 ? entry?.sha256 : undefined))?.toLowerCase();
}

/** Errors after which no other source is worth asking. */
function endsTheChain(err: unknown): boolean {
  if (isAbortError(err)) return true;
  if (err instanceof LlmlbError) return ["CANCELLED", "INSUFFICIENT_DISK", "NOT_WRITABLE", "LOCK_WAIT_TIMEOUT"].includes(err.reason);
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
        installed: { getModel: (id) => this.intactInstalledModel(id) },
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

  /**
   * Models whose files were found on this machine before (an extra model directory) and have not
   * changed since they passed their checks: READY at start, with their path, without reading them
   * again. Only the built-in local source is asked; it reads directories, never the network. A file
   * never checked, or changed since, stays AVAILABLE until its first use checks it.
   */
  async recallLocalModels(entries: readonly ModelEntry[], signal: AbortSignal): Promise<void> {
    const local = this.deps.sources.for("model").find((source) => source.name === LOCAL_SOURCE);
    if (!local) return;
    // A catalog of hundreds of entries over a slow (network) directory: a few lookups at a time.
    await mapBounded(entries, async (entry) => {
      if (entry.unsupportedReason || signal.aborted) return;
      try {
        // The source first: without extra directories it answers at once, and only a hit needs the store.
        const located = await this.deps.sources.locate(local, { kind: "model", id: entry.id, model: entry }, signal);
        if (located.type !== "local" || (await this.deps.store.models.get(entry.id))) return;
        const expected = located.files.map((_, i) => expectedSha256(entry, i));
        const checked = await recalledLocalFiles(this.deps.store, located.files, expected);
        if (checked && (await this.deps.checks.passedBefore(checked.paths, checked.identities))) this.foundLocal(entry.id, local.name, checked, expected);
      } catch (err) {
        // A file that changed or vanished is checked again (and reported) when the model is used.
        this.deps.logger.debug({ err, modelId: entry.id }, "a model in an extra directory is checked again on its first use");
      }
    });
  }

  /** Files found on this machine, checked: the model is there, used in place; verified when the catalog's sha256 vouched for every file. */
  private foundLocal(modelId: string, source: string, checked: CheckedLocalFiles, expected: ReadonlyArray<string | undefined>): void {
    this.deps.events.emit({
      type: "found-local", modelId, source, path: checked.paths[0]!, sizeBytes: checked.sizeBytes,
      verified: expected.every((sha256) => sha256 !== undefined),
    });
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
    const entry = job.kind === "model" ? (job.entry ?? (await this.deps.models.get(job.id))) : job.entry;
    if (!job.storeChecked) {
      // A copy on disk answers even for an id the catalog no longer lists.
      const installed = await area.get(job.id);
      if (installed && !(await this.replacedInCatalog(job, area, installed, entry)) && (await this.stillUsable(job, area, installed))) {
        return this.fromInstalled(job.kind, installed, "local");
      }
    }
    if (job.kind === "model" && !entry) throw modelNotSupported(job.id);
    if (entry?.unsupportedReason) throw modelUnsupported(job.id, entry.unsupportedReason);
    try {
      return await this.fromSources(job, shared, area, entry);
    } catch (err) {
      if (job.kind === "model") {
        const failed = err instanceof LlmlbError ? err : new LlmlbError("INTERNAL", (err as Error).message);
        if (failed.reason === "CANCELLED") this.deps.events.emit({ type: "transfer-cancelled", modelId: job.id });
        else this.deps.events.emit({ type: "transfer-failed", modelId: job.id, reason: failed.message, code: failed.reason });
      }
      if (!isAbortError(err) && !isLlmlbError(err, "CANCELLED")) {
        this.deps.logger.warn({ id: job.id, kind: job.kind, err }, `${job.kind} ${job.id} could not be fetched: ${(err as Error).message}`);
      }
      throw err;
    }
  }

  /**
   * The source chain, once; in a fleet again while the download moves between nodes: another
   * node took the hub lease first (the next pass follows it from the peer source), or the peer
   * being followed died or served bad bytes (the next pass takes the lease, or another peer).
   */
  private async fromSources(job: Job, shared: SharedJob<ResolveResult>, area: ArtifactArea, entry: ModelEntry | undefined): Promise<ResolveResult> {
    const started = Date.now();
    for (let round = 1; ; round++) {
      const failures: SourceFailure[] = [];
      const result = await this.chainOnce(job, shared, area, entry, failures);
      if (result) return result;
      const handOver = this.deps.fleet && failures.some((f) => f.code === "DOWNLOADING_ON_PEER" || (f.source === PEER_SOURCE && !f.notHere));
      // Another node holds the lease but could not be followed (it died): wait until its lease expires and take it over.
      const leaseHeld = failures.some((f) => f.code === "DOWNLOADING_ON_PEER") && Date.now() - started < 2 * (this.deps.fleet?.leaseTtlMs ?? 0);
      if (!handOver || (round >= FLEET_ROUNDS && !leaseHeld)) throw combineFailures(`${job.kind} ${job.id}`, failures);
      await sleep(Math.min(200 * round, 1_000), undefined, { signal: shared.signal });
    }
  }

  private async chainOnce(
    job: Job, shared: SharedJob<ResolveResult>, area: ArtifactArea, entry: ModelEntry | undefined, failures: SourceFailure[],
  ): Promise<ResolveResult | undefined> {
    const pinnedRevision = await area.recordedRevision(job.id);
    const spec: ArtifactSpec = entry
      ? { kind: "model", id: job.id, model: entry, ...(pinnedRevision ? { pinnedRevision } : {}) }
      : { kind: "adapter", id: job.id, ref: job.ref! };
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
        fail({ source: source.name, code: located.code ?? "NOT_HERE", reason: located.reason, notHere: true });
        continue;
      }
      try {
        if (located.type === "local") {
          const expected = located.files.map((_, i) => expectedSha256(entry, i));
          const checked = await checkLocalFiles(this.deps.store, located.files, expected);
          await this.deps.checks.checkRemembered(checked.paths, job.kind);
          if (job.kind === "model") this.foundLocal(job.id, source.name, checked, expected);
          return {
            kind: job.kind, id: job.id, path: checked.paths[0]!, files: checked.paths, source: source.name,
            sizeBytes: checked.sizeBytes, sha256: checked.sha256, ...(located.revision ? { revision: located.revision } : {}),
          };
        }
        const files = this.expectedFiles(located.files, entry);
        return await this.download(job, shared, entry, source.name, files, located.revision);
      } catch (err) {
        // The node's own disk failing (its lock, its records, the install) is no source's fault.
        const ownDisk = localDiskError(err, [this.deps.store.home]);
        if (ownDisk) throw ownDisk;
        if (endsTheChain(err) || shared.signal.aborted) throw err;
        fail(failureOf(source.name, err));
        if (source.name === PEER_SOURCE && located.type === "remote" && this.deps.fleet) {
          // The next pass asks the other peers (or takes the lease) instead of going to the hub now.
          const peer = peerOf(located.files[0]!.url, err);
          if (isLlmlbError(err, "CHECKSUM_MISMATCH")) this.deps.fleet.reportBadPeer(peer);
          else this.deps.fleet.avoidPeer(peer);
          return undefined;
        }
      }
    }
    return undefined;
  }

  /**
   * Applies what the catalog knows (the sha256 of each file, the total size) to what a source
   * offers. A file needs a sha256 or a known size: without both nothing could tell a wrong answer
   * from the right one.
   */
  private expectedFiles(files: RemoteFile[], entry: ModelEntry | undefined): RemoteFile[] {
    return files.map((file, i) => {
      const expected = expectedSha256(entry, i);
      if (expected && file.sha256 && file.sha256 !== expected) {
        const host = new URL(file.url).host;
        throw new LlmlbError("CHECKSUM_MISMATCH", `${host} offers ${file.name} with sha256 ${file.sha256}, the catalog expects ${expected}`, {
          file: file.name, expected_sha256: expected, actual_sha256: file.sha256, host,
        });
      }
      const size = file.size ?? (files.length === 1 ? entry?.sizeBytes : undefined);
      const sha256 = file.sha256 ?? expected;
      if (!sha256 && size === undefined) {
        throw new LlmlbError(
          "UNVERIFIABLE_FILE",
          `the source offers ${file.name} with neither a sha256 nor a size, so its bytes could not be checked; register the model with its sha256 or use a source that sends one`,
          { file: file.name },
        );
      }
      return { ...file, ...(sha256 ? { sha256 } : {}), ...(size !== undefined ? { size } : {}) };
    });
  }

  /** Has the store fetch and install the files (under the artifact's lock), reporting as it goes. */
  private async download(
    job: Job, shared: SharedJob<ResolveResult>, entry: ModelEntry | undefined,
    source: string, files: RemoteFile[], revision: string | undefined,
  ): Promise<ResolveResult> {
    const { events } = this.deps;
    const model = job.kind === "model";
    const label = `${job.kind} ${job.id}`;
    let leased = false;
    try {
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
          verified: files.every((f) => f.sha256 !== undefined),
        },
        fetch: async (partialDir, signal, onProgress) => {
          leased = model && (await this.claimHubDownload(job.id, source));
          // Files shared by several peers need no watch: the transfer drops a peer that stops answering.
          const peerGone = source === PEER_SOURCE && !files[0]!.mirrors?.length ? this.watchPeer(job.id, files[0]!.url) : undefined;
          try {
            return await this.deps.transfer.download({
              label, files, partialDir, ...(revision ? { revision } : {}), onProgress,
              signal: peerGone ? AbortSignal.any([signal, peerGone.signal]) : signal,
              maxUnknownSizeBytes: entry?.sizeBytes ?? this.deps.maxDownloadBytes,
            });
          } catch (err) {
            if (peerGone?.signal.aborted && !signal.aborted) throw peerGone.signal.reason;
            throw err;
          } finally {
            peerGone?.stop();
          }
        },
        validate: (paths) => this.deps.checks.validate(paths, job.kind),
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
          if (model) {
            events.emit({
              type: "transfer-finished", modelId: job.id, source, path: done.paths[0]!, sizeBytes: done.metadata.size_bytes, verified: done.metadata.verified === true,
              ...(done.metadata.revision ? { revision: done.metadata.revision } : {}),
              ...(done.metadata.downloaded_at ? { downloadedAt: Date.parse(done.metadata.downloaded_at) } : {}),
            });
          }
        },
      });
      return this.fromInstalled(job.kind, installed, fetched ? source : installed.metadata.source);
    } finally {
      // After the install (and its directory entry): a node arriving now finds the model READY here.
      if (leased) await this.deps.fleet?.releaseDownload(job.id);
    }
  }

  /**
   * In a fleet, a download from any source but a peer takes the cluster's lease first: true when
   * held; when another node holds it, DOWNLOADING_ON_PEER (the next pass follows that node).
   */
  private async claimHubDownload(id: string, source: string): Promise<boolean> {
    if (!this.deps.fleet || source === PEER_SOURCE) return false;
    const lease = await this.deps.fleet.claimDownload(id);
    if (typeof lease === "object") {
      throw new LlmlbError("DOWNLOADING_ON_PEER", `${lease.holder} of this fleet is downloading ${id} from the hub; following it`, {
        peer: lease.holder, model_id: id,
      });
    }
    return lease === "held";
  }

  /**
   * Aborts a transfer from a peer that stopped serving the model: it died (its lease or directory
   * entry expired) or gave the download up, so the next pass takes over (resuming these bytes).
   */
  private watchPeer(id: string, url: string): { signal: AbortSignal; stop(): void } {
    const controller = new AbortController();
    const origin = new URL(url).origin;
    let misses = 0;
    const timer = setInterval(() => {
      void this.deps.fleet?.peerServes(origin, id).then((serves) => {
        // Twice in a row: a peer that just finished moves from the lease to the directory.
        misses = serves ? 0 : misses + 1;
        if (misses >= 2) {
          controller.abort(new LlmlbError("SOURCE_UNAVAILABLE", `${origin} stopped serving ${id} (it left the fleet or gave the download up)`, { peer: origin }));
        }
      });
    }, PEER_CHECK_MS);
    timer.unref();
    return { signal: controller.signal, stop: () => clearInterval(timer) };
  }

  /**
   * The catalog now gives another sha256 for a file than the installed copy has (the file was
   * replaced upstream, or the entry now names another file): an explicit resolution removes the
   * old copy and fetches the catalog's, instead of answering "ready" with bytes the catalog no
   * longer vouches for. Requests keep using the copy on disk until then.
   */
  private async replacedInCatalog(job: Job, area: ArtifactArea, installed: InstalledArtifact, entry: ModelEntry | undefined): Promise<boolean> {
    if (job.kind !== "model" || !entry) return false;
    const changed = installed.metadata.files.find((file, i) => {
      const expected = expectedSha256(entry, i);
      return expected !== undefined && file.sha256 !== "" && expected !== file.sha256.toLowerCase();
    });
    if (!changed) return false;
    this.deps.logger.warn({ id: job.id, file: changed.name, installed: changed.sha256 }, "the catalog now lists another file for this model; the installed copy is removed and the catalog's fetched");
    await area.remove(job.id);
    this.deps.events.emit({ type: "deleted", modelId: job.id });
    return true;
  }

  /**
   * An explicit resolution (a pull) checks the installed files again, not from memory: a copy
   * whose bytes changed since the install (see changedSinceInstall), or damaged in place so that it
   * no longer validates, is moved out and fetched again, instead of being reported ready and verified.
   */
  private async stillUsable(job: Job, area: ArtifactArea, installed: InstalledArtifact): Promise<boolean> {
    if (job.kind === "model" && !(await this.intactInstalledModel(job.id))) return false;
    try {
      await this.deps.checks.validate(installed.paths, job.kind);
      return true;
    } catch (err) {
      if (!isLlmlbError(err, "INVALID_MODEL_FILE")) throw err;
      await this.discardDamaged(job.kind, job.id, area, { err: err.message });
      return false;
    }
  }

  /**
   * An installed model whose files still hold the bytes installed (see changedSinceInstall); a
   * copy changed on disk since is removed, so the caller fetches it again (and a peer is never
   * served bytes under a digest they no longer have).
   */
  async intactInstalledModel(id: string): Promise<CachedModel | undefined> {
    const installed = await this.deps.store.getModel(id);
    const changed = installed && (await changedSinceInstall(this.deps.store, installed));
    if (!changed) return installed;
    await this.discardDamaged("model", id, this.deps.store.models, { file: changed.path, sha256: changed.sha256, installed_sha256: changed.installedSha256 });
    return undefined;
  }

  private async discardDamaged(kind: ArtifactKind, id: string, area: ArtifactArea, details: Record<string, string>): Promise<void> {
    this.deps.logger.warn({ id, ...details }, "the installed copy is damaged; it is removed and fetched again");
    await area.remove(id);
    if (kind === "model") this.deps.events.emit({ type: "deleted", modelId: id });
  }

  private fromInstalled(kind: ArtifactKind, a: InstalledArtifact, source: string): ResolveResult {
    const m = a.metadata;
    return {
      kind, id: m.id, path: a.paths[0]!, files: a.paths, source, sizeBytes: m.size_bytes, sha256: m.files[0]!.sha256,
      ...(m.revision ? { revision: m.revision } : {}),
    };
  }
}
