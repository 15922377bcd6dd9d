import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Engine } from "../engine/runner/protocol.js";
import { HostLoad } from "../host/host-load.js";
import { silentLogger, type Logger } from "../logging/index.js";
import { parseDuration } from "../config/parse.js";
import { LlmlbError, invalidField, isLlmlbError, modelNotSupported, parseJsonField } from "../errors/index.js";
import type { ModelDirectory } from "../catalog/model-entry.js";
import { validateModelId } from "../store/model-id.js";
import type {
  FinishReason,
  GenerationEvent,
  JsonSchema,
  LoadedModelInfo,
  OutputParams,
  ReasoningEffort,
  ReasoningOptions,
  SamplingParams,
  TokenLogprob,
  ToolChoice,
  TokenUsage,
} from "../engine/types.js";
import {
  InferenceService,
  type ChatRequest,
  type CompleteRequest,
  type LoadedModelSchema,
  type TokenLogprobSchema,
  type ToolCallDeltaSchema,
} from "../gen/llmlb/node/v1/inference_pb.js";

/** A ChatResponse or CompleteResponse as a plain init object. */
type StreamedMessage =
  | { delta: string; reasoning?: string; toolCalls?: Array<MessageInitShape<typeof ToolCallDeltaSchema>>; logprobs?: Array<MessageInitShape<typeof TokenLogprobSchema>> }
  | { finishReason: FinishReason; usage: TokenUsage };

/**
 * InferenceService over the engine. The engine validates every request (INVALID_ARGUMENT naming
 * the proto field) and does the work; this maps messages, and checks UnloadModel's id against the
 * catalog (the engine only knows what it has loaded). The handler's signal fires when the client
 * cancels or its deadline passes, which stops generation.
 */
export function createInferenceService(
  engine: Engine & { readonly memoryBudget: number },
  /** The catalog: UnloadModel answers NOT_FOUND for an id outside it, as LoadModel does. */
  models: ModelDirectory,
  host = new HostLoad(),
  logger: Logger = silentLogger(),
): ServiceImpl<typeof InferenceService> {
  let acceleratorWarned = false;
  return {
    async *chat(req, ctx) {
      const events = engine.chat(
        {
          modelId: req.modelId,
          messages: req.messages.map((m) => ({
            role: m.role,
            content: m.content,
            ...(m.toolCalls.length > 0 ? { toolCalls: m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.argumentsJson })) } : {}),
            ...(m.toolCallId ? { toolCallId: m.toolCallId } : {}),
            ...(m.reasoning ? { reasoning: m.reasoning } : {}),
          })),
          adapterIds: req.adapterIds,
          noWait: req.noWait,
          ...keepAlive(req.keepAlive),
          ...sampling(req),
          ...output(req),
          ...tools(req),
          ...(req.reasoning ? { reasoning: reasoning(req.reasoning) } : {}),
        },
        { signal: ctx.signal },
      );
      yield* toMessages(events);
    },

    async *complete(req, ctx) {
      const events = engine.complete(
        { modelId: req.modelId, prompt: req.prompt, adapterIds: req.adapterIds, noWait: req.noWait, ...keepAlive(req.keepAlive), ...sampling(req), ...output(req) },
        { signal: ctx.signal },
      );
      yield* toMessages(events);
    },

    async embed(req, ctx) {
      const result = await engine.embed(
        { modelId: req.modelId, inputs: req.inputs, noWait: req.noWait, ...(req.dimensions !== undefined ? { dimensions: req.dimensions } : {}), ...keepAlive(req.keepAlive) },
        { signal: ctx.signal },
      );
      return {
        embeddings: result.embeddings.map((values) => ({ values })),
        dimensions: result.dimensions,
        usage: result.usage,
      };
    },

    async loadModel(req, ctx) {
      const info = await engine.load({ modelId: checkedModelId(req.modelId), adapterIds: req.adapterIds, ...keepAlive(req.keepAlive) }, { signal: ctx.signal });
      return { model: loadedModelMessage(info) };
    },

    async unloadModel(req) {
      const id = checkedModelId(req.modelId);
      if (await engine.unload(id)) return { unloaded: true };
      // Asked after the engine: a model the catalog dropped while it was loaded can still be unloaded.
      if (!(await models.get(id))) throw modelNotSupported(id);
      return { unloaded: false };
    },

    async listLoadedModels() {
      return { models: (await engine.list()).map(loadedModelMessage), memoryBudgetBytes: BigInt(engine.memoryBudget) };
    },

    async rerank(req, ctx) {
      const result = await engine.rerank(
        {
          modelId: req.modelId,
          query: req.query,
          documents: req.documents,
          noWait: req.noWait,
          ...(req.topN !== undefined ? { topN: req.topN } : {}),
          ...keepAlive(req.keepAlive),
        },
        { signal: ctx.signal },
      );
      return { results: result.results, usage: result.usage };
    },

    async tokenize(req, ctx) {
      const tokens = await engine.tokenize(
        { modelId: req.modelId, content: req.content, addSpecial: req.addSpecial, noWait: req.noWait },
        { signal: ctx.signal },
      );
      return { tokens };
    },

    async detokenize(req, ctx) {
      return { content: await engine.detokenize({ modelId: req.modelId, tokens: req.tokens, noWait: req.noWait }, { signal: ctx.signal }) };
    },

    async getHostStatus(req) {
      const accelerator = await (req.withoutGpuProbe ? engine.loadedAccelerator() : engine.accelerator()).catch((err: unknown) => {
        // A node whose llama.cpp cannot load still reports its host load; the GPU part stays empty.
        if (!acceleratorWarned) logger.warn({ err }, "cannot read GPU devices: llama.cpp did not load");
        acceleratorWarned = true;
        return undefined;
      });
      const memory = host.memory();
      return {
        gpuBackend: accelerator?.backend ?? "",
        gpuDevices: (accelerator?.devices ?? []).map((d) => ({ name: d.name, totalMemoryBytes: BigInt(d.totalBytes), usedMemoryBytes: BigInt(d.usedBytes) })),
        gpuMemoryTotalBytes: BigInt(accelerator?.totalBytes ?? 0),
        gpuMemoryUsedBytes: BigInt(accelerator?.usedBytes ?? 0),
        cpuUsagePercent: host.cpuUsagePercent(),
        memoryUsagePercent: memory.usagePercent,
        memoryTotalBytes: BigInt(memory.totalBytes),
        activeRequests: await engine.activeRequestCount(),
        gpuProbed: accelerator !== undefined,
      };
    },
  };
}

/** The model_id of LoadModel and UnloadModel: required and a valid id (INVALID_ARGUMENT naming the field otherwise). */
function checkedModelId(id: string): string {
  if (!id) throw invalidField("model_id", "is required");
  try {
    return validateModelId(id);
  } catch (err) {
    if (!isLlmlbError(err, "INVALID_MODEL_ID")) throw err;
    throw new LlmlbError("INVALID_MODEL_ID", `model_id: ${err.message}`, { ...err.metadata, field: "model_id" });
  }
}

/** ChatRequest and CompleteRequest share their sampling fields (same names, same numbers). */
function sampling(req: Pick<CompleteRequest, "maxTokens" | "temperature" | "topP" | "topK" | "seed" | "stop" | "presencePenalty" | "frequencyPenalty">): SamplingParams {
  return {
    maxTokens: req.maxTokens,
    temperature: req.temperature,
    topP: req.topP,
    topK: req.topK,
    seed: req.seed,
    stop: req.stop,
    presencePenalty: req.presencePenalty,
    frequencyPenalty: req.frequencyPenalty,
  };
}

/** ChatRequest and CompleteRequest share their output fields. */
function output(req: Pick<CompleteRequest, "responseFormat" | "logprobs" | "topLogprobs" | "logitBias">): OutputParams {
  const format = req.responseFormat;
  const params: OutputParams = { logprobs: req.logprobs, logitBias: req.logitBias };
  if (req.topLogprobs !== undefined) params.topLogprobs = req.topLogprobs;
  if (!format || format.type === "" || format.type === "text") return params;
  if (format.type === "json_object") return { ...params, responseFormat: { type: "json_object" } };
  if (format.type === "json_schema") {
    const schema = parseJsonField(format.schemaJson, "response_format.schema_json") as JsonSchema;
    return { ...params, responseFormat: { type: "json_schema", schema, ...(format.name ? { name: format.name } : {}) } };
  }
  throw invalidField("response_format.type", `must be "text", "json_object" or "json_schema" (got ${JSON.stringify(format.type)})`);
}

function tools(req: ChatRequest): { tools?: NonNullable<Parameters<Engine["chat"]>[0]["tools"]>; toolChoice?: ToolChoice; parallelToolCalls?: boolean } {
  const out: ReturnType<typeof tools> = {};
  if (req.tools.length > 0) {
    out.tools = req.tools.map((t, i) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      ...(t.parametersJson ? { parameters: parseJsonField(t.parametersJson, `tools[${i}].parameters_json`) as JsonSchema } : {}),
    }));
  }
  const choice = req.toolChoice;
  if (choice && choice.mode) {
    if (choice.mode === "function") out.toolChoice = { function: choice.functionName };
    else if (choice.mode === "auto" || choice.mode === "none" || choice.mode === "required") out.toolChoice = choice.mode;
    else throw invalidField("tool_choice.mode", `must be "auto", "none", "required" or "function" (got ${JSON.stringify(choice.mode)})`);
  }
  if (req.parallelToolCalls !== undefined) out.parallelToolCalls = req.parallelToolCalls;
  return out;
}

function reasoning(req: NonNullable<ChatRequest["reasoning"]>): ReasoningOptions {
  return {
    ...(req.effort ? { effort: req.effort as ReasoningEffort } : {}),
    ...(req.enabled !== undefined ? { enabled: req.enabled } : {}),
    ...(req.budgetTokens !== undefined ? { budgetTokens: req.budgetTokens } : {}),
  };
}


/** A request's keep_alive ("5m", "0", "-1", seconds) as milliseconds; unset leaves the node default. */
function keepAlive(raw: string | undefined): { keepAliveMs?: number } {
  if (raw === undefined) return {};
  try {
    return { keepAliveMs: parseDuration(raw) };
  } catch (err) {
    throw new LlmlbError("INVALID_ARGUMENT", `keep_alive ${JSON.stringify(raw)}: ${(err as Error).message}`, { field: "keep_alive" });
  }
}

async function* toMessages(events: AsyncIterable<GenerationEvent>): AsyncGenerator<StreamedMessage> {
  for await (const event of events) {
    if (event.type === "end") {
      yield { finishReason: event.finishReason, usage: { ...event.usage, cachedPromptTokens: event.usage.cachedPromptTokens ?? 0 } };
      continue;
    }
    yield {
      delta: event.text,
      ...(event.reasoning ? { reasoning: event.reasoning } : {}),
      ...(event.toolCalls ? { toolCalls: event.toolCalls.map((p) => ({ index: p.index, id: p.id ?? "", name: p.name ?? "", argumentsJson: p.arguments })) } : {}),
      ...(event.logprobs ? { logprobs: event.logprobs.map(logprobMessage) } : {}),
    };
  }
}

function logprobMessage(entry: TokenLogprob): MessageInitShape<typeof TokenLogprobSchema> {
  return {
    token: entry.token,
    logprob: entry.logprob,
    bytes: Uint8Array.from(entry.bytes),
    topLogprobs: entry.topLogprobs.map((top) => ({ token: top.token, logprob: top.logprob, bytes: Uint8Array.from(top.bytes) })),
  };
}

function loadedModelMessage(info: LoadedModelInfo): MessageInitShape<typeof LoadedModelSchema> {
  return {
    modelId: info.modelId,
    memoryBytes: BigInt(Math.round(info.memoryBytes)),
    loadedAt: timestampFromDate(info.loadedAt),
    lastUsedAt: timestampFromDate(info.lastUsedAt),
    activeRequests: info.activeRequests,
    queuedRequests: info.queuedRequests,
    parallelism: info.parallelism,
    adapterSets: info.adapterSets,
    gpu: info.gpu,
    contextLength: info.contextSize,
    ...(info.expiresAt ? { expiresAt: timestampFromDate(info.expiresAt) } : {}),
  };
}
