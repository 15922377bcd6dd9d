import type { ArtifactKind } from "../store/artifact-kind.js";
import type { TransferProgress } from "../events/model-events.js";

/** What to resolve: a catalog model id, or a LoRA adapter reference. */
export type ResolveTarget = { modelId: string } | { adapterRef: string };

/** What a caller sees while an artifact is resolved (the ResolverService.Resolve stream, minus done). */
export type ResolveEvent =
  | { type: "source-tried"; source: string }
  | { type: "source-failed"; source: string; reason: string; code: string }
  | { type: "progress"; progress: TransferProgress }
  /** Another process holds the download; its progress follows as progress events. */
  | { type: "lock-wait"; pid: number; host: string };

export interface ResolveOptions {
  /** Stops this caller's waiting (the transfer goes on while another caller waits). */
  signal?: AbortSignal;
  onEvent?: (event: ResolveEvent) => void;
}

/** A verified artifact on local disk. */
export interface ResolveResult {
  kind: ArtifactKind;
  id: string;
  /** The file to load (first part of a sharded model). */
  path: string;
  /** Every file, in order. */
  files: string[];
  /** "local" when it was already on disk. */
  source: string;
  sizeBytes: number;
  /** sha256 of the file at `path` ("" when unknown, e.g. an unverified read-only file). */
  sha256: string;
  revision?: string;
}
