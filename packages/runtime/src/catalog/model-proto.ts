import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  Capability,
  HubInfoSchema,
  LocalCopySchema,
  ModelOrigin,
  ModelSchema,
  ModelState,
  ProgressSchema,
  type Model,
} from "../gen/llmlb/node/v1/model_pb.js";
import type { ModelEntry } from "./model-entry.js";
import type { HubStats } from "./hub-info-cache.js";
import type { ModelStateName, ModelStatus } from "./model-states.js";

export const STATE_TO_PROTO: Record<ModelStateName, ModelState> = {
  available: ModelState.AVAILABLE,
  downloading: ModelState.DOWNLOADING,
  ready: ModelState.READY,
  loaded: ModelState.LOADED,
  failed: ModelState.FAILED,
  unsupported: ModelState.UNSUPPORTED,
};

/** A catalog capability (as the REST shapes and the CLI also name it) on the wire. */
export const CAPABILITY_TO_PROTO: Readonly<Record<ModelEntry["capabilities"][number], Capability>> = {
  "text-generation": Capability.TEXT_GENERATION,
  embeddings: Capability.EMBEDDINGS,
  rerank: Capability.RERANK,
};

/** A capability as sent on the wire, in the catalog's words (undefined for UNSPECIFIED or a value this node does not know). */
export function capabilityFromProto(capability: Capability): ModelEntry["capabilities"][number] | undefined {
  return (Object.keys(CAPABILITY_TO_PROTO) as Array<ModelEntry["capabilities"][number]>).find((name) => CAPABILITY_TO_PROTO[name] === capability);
}

const big = (n: number | undefined): bigint => (n === undefined ? 0n : BigInt(Math.max(0, Math.round(n))));

/** The wire form of a catalog entry in its current state. */
export function toModelProto(entry: ModelEntry, status: ModelStatus, hub: HubStats | undefined): Model {
  const progress = status.state === "downloading" ? status.progress : undefined;
  const local = status.local && (status.state === "ready" || status.state === "loaded" || status.state === "failed") ? status.local : undefined;
  return create(ModelSchema, {
    id: entry.id,
    displayName: entry.displayName,
    description: entry.description,
    repo: entry.repo,
    filename: entry.files[0] ?? "",
    files: entry.files,
    sizeBytes: big(entry.sizeBytes),
    requiredMemoryBytes: big(entry.requiredMemoryBytes),
    tags: entry.tags,
    capabilities: entry.capabilities.map((c) => CAPABILITY_TO_PROTO[c]),
    quantization: entry.quantization ?? "",
    parameterCount: big(entry.parameterCount),
    origin: entry.origin === "supported" ? ModelOrigin.SUPPORTED : ModelOrigin.REGISTERED,
    state: STATE_TO_PROTO[status.state],
    failureReason: status.state === "failed" ? (status.failureReason ?? "") : "",
    revision: entry.revision ?? "",
    sha256: entry.sha256 ?? "",
    chatTemplate: entry.chatTemplate ?? "",
    format: entry.format,
    parameterCountText: entry.parameterCountText ?? (entry.parameterCount !== undefined ? String(entry.parameterCount) : ""),
    engine: entry.engine ?? "",
    unsupportedReason: entry.unsupportedReason ?? "",
    platforms: entry.platforms ?? [],
    contextLength: entry.contextLength ?? 0,
    ...(progress
      ? {
          progress: create(ProgressSchema, {
            fraction: progress.fraction,
            completedBytes: big(progress.completedBytes),
            totalBytes: big(progress.totalBytes),
            currentFile: progress.currentFile,
            bytesPerSecond: progress.bytesPerSecond,
            restarts: progress.restarts ?? 0,
            restartReason: progress.restartReason ?? "",
          }),
        }
      : {}),
    ...(hub
      ? { hubInfo: create(HubInfoSchema, { downloads: big(hub.downloads), likes: big(hub.likes), fetchedAt: timestampFromMs(hub.fetchedAt) }) }
      : {}),
    ...(local
      ? {
          local: create(LocalCopySchema, {
            path: local.path,
            sizeOnDiskBytes: big(local.sizeOnDiskBytes),
            revision: local.revision ?? "",
            source: local.source ?? "",
            verified: local.verified ?? false,
            ...(local.downloadedAt !== undefined ? { downloadedAt: timestampFromMs(local.downloadedAt) } : {}),
          }),
        }
      : {}),
  });
}
