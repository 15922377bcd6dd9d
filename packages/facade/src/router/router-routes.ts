import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { LogRing } from "@llmlb/runtime";
import { ModelState } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../clients.js";
import { assertPullable, type PullRegistry } from "../http/v0/pull-registry.js";
import { sendOpenAiError } from "../http/openai-error.js";
import { contextLengthOf } from "../http/v1/openai-routes.js";
import { DownloadTasks } from "./download-tasks.js";
import { matchRouterModel, type RouterModelName } from "./model-match.js";
import { allModels, gpuSummary, hostStatus, isServing } from "./node-facts.js";

export interface RouterRoutesDeps {
  pulls: PullRegistry;
  logs: LogRing | undefined;
  /** Runs on each model a router pushes (start-up sync again, when enabled). */
  onPush?: (modelId: string) => void;
  /** The entry (repo, file) a router lists under a name, when a pushed name needs it. */
  routerModel?: (name: string) => Promise<RouterModelName | undefined>;
  version: string;
}

const TAIL_DEFAULT = 200;

const logsQuery = {
  type: "object",
  properties: { tail: { type: "string", pattern: "^[0-9]{1,6}$" } },
  additionalProperties: false,
} as const;

/**
 * How long /api/system waits for the first GPU probe (starting the inference runner, loading
 * llama.cpp and its GPU backend, seconds on a busy or CUDA machine): llmlb gives its detection
 * request 5 s, and a node answering later is taken for another kind of server (an OpenAI-compatible
 * one, by its /v1/models) for good.
 */
const SYSTEM_PROBE_WAIT_MS = 3_000;

/** The host as probed, or, when the first probe takes longer than SYSTEM_PROBE_WAIT_MS, as known without it (the probe goes on). */
async function hostWithinDetection(clients: NodeClients) {
  const probe = hostStatus(clients, { probeGpu: true });
  probe.catch(() => undefined); // still running when the answer goes without it
  const waited = new AbortController();
  const late = sleep(SYSTEM_PROBE_WAIT_MS, undefined, { signal: waited.signal }).then(() => hostStatus(clients, { probeGpu: false }));
  late.catch(() => undefined);
  try {
    return await Promise.race([probe, late]);
  } finally {
    waited.abort();
  }
}

/** The answer of GET /api/system and /v0/system: the version key llmlb detects, and the devices. */
async function systemBody(clients: NodeClients, version: string) {
  const host = await hostWithinDetection(clients);
  return {
    // llmlb ≥ 3.0 recognises a node of this family by this key.
    xllm_version: version,
    runtime: "llmlb-node",
    version,
    device: {
      device_type: host.gpuDevices.length > 0 ? "gpu" : "cpu",
      gpu_backend: host.gpuBackend || null,
      gpu_devices: host.gpuDevices.map((d) => ({ name: d.name, total_memory_bytes: Number(d.totalMemoryBytes), used_memory_bytes: Number(d.usedMemoryBytes) })),
      memory_total_bytes: Number(host.memoryTotalBytes),
      // false: the first GPU probe is still running (as in /api/health's gpu.probed); the next answer has it.
      gpu_probed: host.gpuProbed,
    },
  };
}

const NOT_PROBED = "not probed yet: the inference runner loads llama.cpp with the first inference request (GET /api/system probes it)";

/** The body of /api/health and /v0/health, and whether the node serves (503 otherwise). */
export async function healthBody(clients: NodeClients): Promise<{ serving: boolean; body: Record<string, unknown> }> {
  // A health check never starts the inference runner: the GPU is reported once a runner has probed it.
  const [serving, host] = await Promise.all([isServing(clients), hostStatus(clients, { probeGpu: false })]);
  const gpu = gpuSummary(host);
  return {
    serving,
    body: {
      status: serving ? "ok" : "unavailable",
      gpu: {
        probed: host.gpuProbed,
        ...(host.gpuProbed ? {} : { detail: NOT_PROBED }),
        device_count: gpu.deviceCount,
        total_memory_bytes: gpu.totalBytes,
        used_memory_bytes: gpu.usedBytes,
        capability_score: gpu.capabilityScore,
      },
      load: { active_requests: host.activeRequests, cpu_usage: host.cpuUsagePercent, memory_usage: host.memoryUsagePercent },
    },
  };
}

/**
 * What an llmlb router calls on a node: pull era (≥ 3.0: /api/system, /api/health,
 * /api/models/{id}/info, /api/models/download, /api/download/progress, /api/logs) and push era
 * (≤ 2.x: /v0/system, POST /api/models/pull, /v0/logs). Behind the API key when one is set.
 */
export function registerRouterRoutes(app: FastifyInstance, clients: NodeClients, deps: RouterRoutesDeps): void {
  const downloads = new DownloadTasks(clients, deps.pulls);

  for (const path of ["/api/system", "/v0/system"]) app.get(path, async () => systemBody(clients, deps.version));

  app.get("/api/health", async (_request, reply) => {
    const { serving, body } = await healthBody(clients);
    return reply.code(serving ? 200 : 503).send(body);
  });

  app.get<{ Params: { "*": string } }>("/api/models/*", async (request, reply) => {
    const rest = request.params["*"];
    if (!rest.endsWith("/info")) return notFound(reply, `no route GET /api/models/${rest}`);
    const id = rest.slice(0, -"/info".length);
    const { model } = await clients.catalog.getModel({ modelId: id }).catch(() => ({ model: undefined }));
    if (!model || model.state === ModelState.UNSUPPORTED) return notFound(reply, `model "${id}" is not offered by this node`);
    return {
      model: model.id,
      context_length: await contextLengthOf(clients, model),
      size_bytes: Number(model.sizeBytes),
      quantization: model.quantization || null,
      family: null,
      parameter_size: model.parameterCountText || null,
      state: ModelState[model.state].toLowerCase(),
    };
  });

  app.post<{ Body: { model: string } }>(
    "/api/models/pull",
    { schema: { body: { type: "object", required: ["model"], properties: { model: { type: "string", minLength: 1, maxLength: 256 } } } } },
    async (request, reply) => {
      const name = request.body.model;
      const catalog = await allModels(clients);
      // A push-era router sends its own name (the lower-cased repo); its model list tells which file it means.
      let model = matchRouterModel(catalog, { name });
      if (!model) {
        const listed = await deps.routerModel?.(name).catch(() => undefined);
        if (listed) model = matchRouterModel(catalog, listed);
      }
      if (!model) return notFound(reply, `model "${name}" is not in this node's catalog (by id, or by Hugging Face repo and file)`);
      assertPullable(model);
      deps.pulls.start(model.id);
      deps.onPush?.(model.id);
      return { status: "ok" };
    },
  );

  app.post<{ Body: { repo: string; filename?: string } }>(
    "/api/models/download",
    {
      schema: {
        body: {
          type: "object",
          required: ["repo"],
          properties: { repo: { type: "string", minLength: 1, maxLength: 500 }, filename: { type: "string", minLength: 1, maxLength: 500 } },
        },
      },
    },
    async (request, reply) => {
      const { taskId, model } = await downloads.start(request.body.repo, request.body.filename);
      return reply.code(202).send({ task_id: taskId, model, status: "pending" });
    },
  );

  app.get<{ Querystring: { task_id?: string } }>(
    "/api/download/progress",
    { schema: { querystring: { type: "object", required: ["task_id"], properties: { task_id: { type: "string", maxLength: 100 } } } } },
    async (request, reply) => {
      const progress = await downloads.progress(request.query.task_id!);
      return progress ?? notFound(reply, `no download task "${request.query.task_id}"`);
    },
  );

  for (const path of ["/api/logs", "/v0/logs"]) {
    app.get<{ Querystring: { tail?: string } }>(path, { schema: { querystring: logsQuery } }, async (request) => {
      const tail = request.query.tail === undefined ? TAIL_DEFAULT : Number(request.query.tail);
      return { entries: deps.logs?.tail(tail) ?? [], path: null };
    });
  }
}

function notFound(reply: FastifyReply, message: string) {
  return sendOpenAiError(reply, 404, { message, type: "not_found_error", code: "model_not_found" });
}
