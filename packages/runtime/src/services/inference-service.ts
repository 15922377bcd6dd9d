import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Engine } from "../engine/runner/protocol.js";
import type { FinishReason, GenerationEvent, LoadedModelInfo, SamplingParams, TokenUsage } from "../engine/types.js";
import {
  InferenceService,
  type CompleteRequest,
  type LoadedModelSchema,
} from "../gen/llmlb/node/v1/inference_pb.js";

/** A ChatResponse or CompleteResponse (same fields) as a plain init object. */
type StreamedMessage = { delta: string } | { finishReason: FinishReason; usage: TokenUsage };

/**
 * InferenceService over the engine. The engine validates every request (INVALID_ARGUMENT naming
 * the proto field) and does the work; this only maps messages. The handler's signal fires when
 * the client cancels or its deadline passes, which stops generation.
 */
export function createInferenceService(engine: Engine): ServiceImpl<typeof InferenceService> {
  return {
    async *chat(req, ctx) {
      const events = engine.chat(
        {
          modelId: req.modelId,
          messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
          adapterIds: req.adapterIds,
          noWait: req.noWait,
          ...sampling(req),
        },
        { signal: ctx.signal },
      );
      yield* toMessages(events);
    },

    async *complete(req, ctx) {
      const events = engine.complete(
        { modelId: req.modelId, prompt: req.prompt, adapterIds: req.adapterIds, noWait: req.noWait, ...sampling(req) },
        { signal: ctx.signal },
      );
      yield* toMessages(events);
    },

    async embed(req, ctx) {
      const result = await engine.embed({ modelId: req.modelId, inputs: req.inputs, noWait: req.noWait }, { signal: ctx.signal });
      return {
        embeddings: result.embeddings.map((values) => ({ values })),
        dimensions: result.dimensions,
        usage: result.usage,
      };
    },

    async loadModel(req, ctx) {
      const info = await engine.load({ modelId: req.modelId, adapterIds: req.adapterIds }, { signal: ctx.signal });
      return { model: loadedModelMessage(info) };
    },

    async unloadModel(req) {
      return { unloaded: await engine.unload(req.modelId) };
    },

    async listLoadedModels() {
      return { models: (await engine.list()).map(loadedModelMessage) };
    },
  };
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

async function* toMessages(events: AsyncIterable<GenerationEvent>): AsyncGenerator<StreamedMessage> {
  for await (const event of events) {
    yield event.type === "delta" ? { delta: event.text } : { finishReason: event.finishReason, usage: event.usage };
  }
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
  };
}
