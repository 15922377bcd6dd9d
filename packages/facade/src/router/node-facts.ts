import { HealthCheckResponse_ServingStatus } from "@llmlb/runtime/gen/grpc/health/v1/health_pb";
import type { GetHostStatusResponse } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import { Capability, ModelState, type Model } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../clients.js";

/** The models side of what a router asks about. */
export interface ModelFacts {
  /**
   * [on disk or loaded, that plus downloads in flight], each at most 255: an llmlb router reads
   * a (u8, u8) pair and routes to a node only once ready >= total, so an idle node reports [n, n].
   */
  readyModels: [number, number];
  /** Loaded models by what they do. */
  loadedChat: string[];
  loadedEmbedding: string[];
  /** Models downloading now, with their progress. */
  downloading: Model[];
  /** Still fetching models (what routers call `initializing`). */
  initializing: boolean;
}

export interface GpuSummary {
  deviceCount: number;
  totalBytes: number;
  usedBytes: number;
  /** GiB of GPU memory, rounded (0 without a GPU): llmlb ranks nodes by it. */
  capabilityScore: number;
}

const U8_MAX = 255;

/** Every catalog model, all pages. */
export async function allModels(clients: NodeClients): Promise<Model[]> {
  const models: Model[] = [];
  let pageToken = "";
  do {
    const page = await clients.catalog.listModels({ pageSize: 1000, pageToken });
    models.push(...page.models);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return models;
}

export async function modelFacts(clients: NodeClients): Promise<ModelFacts> {
  const [models, loaded] = await Promise.all([allModels(clients), clients.inference.listLoadedModels({})]);
  const downloading = models.filter((m) => m.state === ModelState.DOWNLOADING);
  const byId = new Map(models.map((m) => [m.id, m]));
  const runnable = models.filter((m) => m.state !== ModelState.UNSUPPORTED);
  const ready = runnable.filter((m) => m.state === ModelState.READY || m.state === ModelState.LOADED).length;
  const loadedIds = loaded.models.map((m) => m.modelId);
  const isEmbedding = (id: string) => byId.get(id)?.capabilities.includes(Capability.EMBEDDINGS) === true;
  const isChat = (id: string) => byId.get(id)?.capabilities.includes(Capability.TEXT_GENERATION) === true;
  return {
    readyModels: [Math.min(ready, U8_MAX), Math.min(ready + downloading.length, U8_MAX)],
    loadedChat: loadedIds.filter(isChat),
    loadedEmbedding: loadedIds.filter(isEmbedding),
    downloading,
    initializing: downloading.length > 0,
  };
}

/**
 * The host's facts. `probeGpu: false` (health checks, heartbeats) never starts the inference
 * runner or loads llama.cpp: the GPU part is then only what a runner already up knows.
 */
export function hostStatus(clients: NodeClients, options: { probeGpu: boolean }): Promise<GetHostStatusResponse> {
  return clients.inference.getHostStatus({ withoutGpuProbe: !options.probeGpu });
}

export function gpuSummary(host: GetHostStatusResponse): GpuSummary {
  const totalBytes = Number(host.gpuMemoryTotalBytes);
  return {
    deviceCount: host.gpuDevices.length,
    totalBytes,
    usedBytes: Number(host.gpuMemoryUsedBytes),
    capabilityScore: Math.round(totalBytes / 2 ** 30),
  };
}

/** The Health service's answer: serving, or draining / not ready yet. */
export async function isServing(clients: NodeClients): Promise<boolean> {
  const { status } = await clients.health.check({ service: "" });
  return status === HealthCheckResponse_ServingStatus.SERVING;
}
