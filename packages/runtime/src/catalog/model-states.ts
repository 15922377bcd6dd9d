import type { ModelEvent, TransferProgress } from "../events/model-events.js";

export type ModelStateName = "available" | "downloading" | "ready" | "loaded" | "failed" | "unsupported";

/** A model's files on this node's disk. */
export interface LocalCopyInfo {
  path: string;
  sizeOnDiskBytes?: number;
  /** Epoch milliseconds. */
  downloadedAt?: number;
  revision?: string;
  source?: string;
  /** See LocalCopy.verified. */
  verified?: boolean;
}

export interface ModelStatus {
  state: ModelStateName;
  /** While downloading. */
  progress?: TransferProgress;
  /** The transfer runs in another process (seen through its lock file). */
  external?: boolean;
  /** While failed: why the last attempt failed. */
  failureReason?: string;
  failureCode?: string;
  /** When the files are on disk. */
  local?: LocalCopyInfo;
}

/** `progressOnly` changes may be coalesced; any other change is a state change. */
export type StatusListener = (id: string, progressOnly: boolean) => void;

const AVAILABLE: ModelStatus = Object.freeze({ state: "available" });
const ZERO_PROGRESS: TransferProgress = Object.freeze({ fraction: 0, completedBytes: 0, totalBytes: 0, currentFile: "", bytesPerSecond: 0 });

/**
 * The in-memory state table: one status per model id, derived from lifecycle events, store scans
 * and other processes' download locks. Reads are Map lookups; nothing here does I/O.
 */
export class ModelStates {
  private readonly statuses = new Map<string, ModelStatus>();
  /** Models this process is transferring (so our own lock files are not mistaken for another process's). */
  private readonly ownTransfers = new Set<string>();
  /** Models the engine is loading now (their state stays READY until they are LOADED). */
  private readonly loading = new Set<string>();
  private readonly listeners = new Set<StatusListener>();

  get(id: string): ModelStatus {
    return this.statuses.get(id) ?? AVAILABLE;
  }

  isTransferringHere(id: string): boolean {
    return this.ownTransfers.has(id);
  }

  isLoading(id: string): boolean {
    return this.loading.has(id);
  }

  onChange(listener: StatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(event: ModelEvent): void {
    if (event.type === "tokens-processed") return;
    const id = event.modelId;
    const current = this.get(id);
    switch (event.type) {
      case "transfer-started":
        if (event.external) return this.setExternal(id, ZERO_PROGRESS);
        this.ownTransfers.add(id);
        return this.set(id, { state: "downloading", progress: ZERO_PROGRESS, ...keepLocal(current) });
      case "transfer-progress":
        if (event.external && !this.ownTransfers.has(id)) return this.setExternal(id, event.progress);
        if (current.state === "downloading" && !current.external) {
          return this.set(id, { ...current, progress: event.progress }, true);
        }
        return this.set(id, { state: "downloading", progress: event.progress, ...keepLocal(current) });
      case "transfer-finished":
        this.ownTransfers.delete(id);
        // Complete at once: a client that sees READY also sees the copy's size (the store's read fills in the rest).
        return this.set(id, {
          state: "ready",
          local: {
            ...current.local, path: event.path, source: event.source, sizeOnDiskBytes: event.sizeBytes, verified: event.verified,
            ...(event.revision ? { revision: event.revision } : {}),
            ...(event.downloadedAt ? { downloadedAt: event.downloadedAt } : {}),
          },
        });
      case "transfer-cancelled":
        this.ownTransfers.delete(id);
        return this.set(id, current.local ? { state: "ready", local: current.local } : { state: "available" });
      case "transfer-failed":
        this.ownTransfers.delete(id);
        return this.set(id, { state: "failed", failureReason: event.reason, failureCode: event.code, ...keepLocal(current) });
      case "found-local": {
        const local = { path: event.path, source: event.source, sizeOnDiskBytes: event.sizeBytes, verified: event.verified };
        if (current.state === "loaded" || current.state === "downloading") return this.set(id, { ...current, local });
        return this.set(id, { state: "ready", local });
      }
      case "deleted":
        this.ownTransfers.delete(id);
        return this.set(id, { state: "available" });
      case "load-started":
        this.loading.add(id);
        return;
      case "loaded":
        this.loading.delete(id);
        return this.set(id, { state: "loaded", ...keepLocal(current) });
      case "unloaded":
        return this.set(id, current.local ? { state: "ready", local: current.local } : { state: "available" });
      case "load-failed":
        this.loading.delete(id);
        return this.set(id, { state: "failed", failureReason: event.reason, failureCode: event.code, ...keepLocal(current) });
    }
  }

  /** What a store scan found: on disk (READY unless busy) or not (AVAILABLE unless busy). */
  setLocal(id: string, local: LocalCopyInfo | undefined): void {
    const current = this.get(id);
    if (current.state === "downloading" || current.state === "loaded" || current.state === "failed") {
      if (local) this.set(id, { ...current, local });
      return;
    }
    this.set(id, local ? { state: "ready", local } : { state: "available" });
  }

  /** Another process is downloading the model (its lock file is live). Ignored while we transfer it ourselves. */
  setExternal(id: string, progress: TransferProgress): void {
    if (this.ownTransfers.has(id)) return;
    const current = this.get(id);
    if (current.state === "downloading" && current.external) {
      if (!sameProgress(current.progress, progress)) this.set(id, { ...current, progress }, true);
      return;
    }
    this.set(id, { state: "downloading", progress, external: true, ...keepLocal(current) });
  }

  /** The other process's lock is gone; `local` says what it left on disk. */
  clearExternal(id: string, local: LocalCopyInfo | undefined): void {
    if (!this.get(id).external) return;
    this.set(id, local ? { state: "ready", local } : { state: "available" });
  }

  /** Ids whose download another process runs. */
  externalIds(): string[] {
    return [...this.statuses].filter(([, s]) => s.external).map(([id]) => id);
  }

  forget(id: string): void {
    this.statuses.delete(id);
    this.ownTransfers.delete(id);
  }

  private set(id: string, status: ModelStatus, progressOnly = false): void {
    if (sameStatus(this.get(id), status)) return;
    this.statuses.set(id, status);
    for (const listener of this.listeners) listener(id, progressOnly);
  }
}

function keepLocal(status: ModelStatus): { local?: LocalCopyInfo } {
  return status.local ? { local: status.local } : {};
}

function sameProgress(a: TransferProgress | undefined, b: TransferProgress): boolean {
  return a !== undefined && a.completedBytes === b.completedBytes && a.totalBytes === b.totalBytes && a.currentFile === b.currentFile;
}

function sameStatus(a: ModelStatus, b: ModelStatus): boolean {
  return (
    a.state === b.state &&
    a.external === b.external &&
    a.failureReason === b.failureReason &&
    a.local?.path === b.local?.path &&
    a.local?.sizeOnDiskBytes === b.local?.sizeOnDiskBytes &&
    a.local?.downloadedAt === b.local?.downloadedAt &&
    a.local?.revision === b.local?.revision &&
    a.local?.source === b.local?.source &&
    a.local?.verified === b.local?.verified &&
    (a.progress === b.progress || (b.progress !== undefined && sameProgress(a.progress, b.progress) && a.progress?.bytesPerSecond === b.progress.bytesPerSecond))
  );
}
