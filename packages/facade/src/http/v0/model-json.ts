import { CAPABILITY_TO_PROTO } from "@llmlb/runtime";
import { Capability, ModelOrigin, ModelState, type Model, type Progress } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { LoadedModel } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";

const enumName = (names: Record<number, string>, value: number, prefix: string) =>
  (names[value] ?? "UNSPECIFIED").replace(prefix, "").toLowerCase().replace(/_/g, "-");

const isoOf = (t: Timestamp | undefined) => (t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)).toISOString() : null);

export const stateName = (state: ModelState) => enumName(ModelState, state, "MODEL_STATE_");

export function progressJson(p: Progress | undefined) {
  if (!p) return null;
  return {
    fraction: p.fraction,
    completed_bytes: Number(p.completedBytes),
    total_bytes: Number(p.totalBytes),
    current_file: p.currentFile,
    bytes_per_second: p.bytesPerSecond,
    // Started over from the first byte (a server that cannot resume); completed_bytes went back.
    restarts: p.restarts,
    restart_reason: p.restartReason || null,
  };
}

/** The REST shape of a model (snake_case, enums as lower-case words), the same fields gRPC has. */
export function modelJson(m: Model) {
  return {
    id: m.id,
    display_name: m.displayName,
    description: m.description,
    repo: m.repo,
    filename: m.filename,
    files: m.files,
    size_bytes: Number(m.sizeBytes),
    required_memory_bytes: Number(m.requiredMemoryBytes),
    tags: m.tags,
    capabilities: m.capabilities.map((c) => enumName(Capability, c, "CAPABILITY_")),
    quantization: m.quantization || null,
    // As the catalog gave it: 490000000, or the router's "7B".
    parameter_count: m.parameterCount > 0n ? Number(m.parameterCount) : m.parameterCountText || null,
    format: m.format,
    engine: m.engine || null,
    platforms: m.platforms,
    unsupported_reason: m.unsupportedReason || null,
    context_length: m.contextLength || null,
    revision: m.revision,
    origin: enumName(ModelOrigin, m.origin, "MODEL_ORIGIN_"),
    state: stateName(m.state),
    progress: m.state === ModelState.DOWNLOADING ? progressJson(m.progress) : null,
    failure_reason: m.failureReason || null,
    hub_info: m.hubInfo ? { downloads: Number(m.hubInfo.downloads), likes: Number(m.hubInfo.likes), fetched_at: isoOf(m.hubInfo.fetchedAt) } : null,
    local: m.local
      ? {
          path: m.local.path,
          size_on_disk_bytes: Number(m.local.sizeOnDiskBytes),
          downloaded_at: isoOf(m.local.downloadedAt),
          revision: m.local.revision,
          source: m.local.source,
          verified: m.local.verified,
        }
      : null,
  };
}

const STATE_BY_NAME: Record<string, ModelState> = {
  available: ModelState.AVAILABLE,
  downloading: ModelState.DOWNLOADING,
  ready: ModelState.READY,
  downloaded: ModelState.READY,
  loaded: ModelState.LOADED,
  failed: ModelState.FAILED,
  unsupported: ModelState.UNSUPPORTED,
};

export const STATE_NAMES = Object.keys(STATE_BY_NAME);

export const stateFromName = (name: string): ModelState | undefined => STATE_BY_NAME[name.toLowerCase()];

/** Capabilities by the names the REST shape gives them (as in a model's `capabilities`). */
export const CAPABILITY_BY_NAME = CAPABILITY_TO_PROTO;

export const CAPABILITY_NAMES = Object.keys(CAPABILITY_BY_NAME) as Array<keyof typeof CAPABILITY_BY_NAME>;

/** The REST shape of a loaded model (ListLoadedModels / LoadModel). */
export function loadedModelJson(m: LoadedModel) {
  return {
    id: m.modelId,
    memory_bytes: Number(m.memoryBytes),
    context_length: m.contextLength,
    parallel_slots: m.parallelism,
    active_requests: m.activeRequests,
    queued_requests: m.queuedRequests,
    adapter_sets: m.adapterSets,
    gpu: m.gpu,
    loaded_at: isoOf(m.loadedAt),
    last_used_at: isoOf(m.lastUsedAt),
    expires_at: isoOf(m.expiresAt),
  };
}
