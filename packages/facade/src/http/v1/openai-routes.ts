import type { FastifyInstance } from "fastify";
import { ModelState, type Model } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../../clients.js";
import { answerCompletion, type CompletionShape } from "./completion-stream.js";
import { samplingFields } from "./sampling.js";
import {
  chatCompletionBody, completionBody, embeddingBody,
  type ChatCompletionBody, type CompletionBody, type EmbeddingBody,
} from "./schemas.js";

const chatShape: CompletionShape = {
  idPrefix: "chatcmpl",
  object: "chat.completion",
  chunkObject: "chat.completion.chunk",
  chunkChoice: (text, first, finishReason) => ({
    index: 0,
    delta: first ? { role: "assistant", content: text } : text ? { content: text } : {},
    finish_reason: finishReason,
    logprobs: null,
  }),
  fullChoice: (text, finishReason) => ({
    index: 0,
    message: { role: "assistant", content: text, refusal: null },
    finish_reason: finishReason,
    logprobs: null,
  }),
};

const completionShape: CompletionShape = {
  idPrefix: "cmpl",
  object: "text_completion",
  chunkObject: "text_completion",
  chunkChoice: (text, _first, finishReason) => ({ index: 0, text, finish_reason: finishReason, logprobs: null }),
  fullChoice: (text, finishReason) => ({ index: 0, text, finish_reason: finishReason, logprobs: null }),
};

/** Only models that can answer now: on disk or in memory. */
const canAnswer = (m: Model) => m.state === ModelState.READY || m.state === ModelState.LOADED;

const openAiModel = (m: Model) => ({
  id: m.id,
  object: "model",
  created: Math.floor(Number(m.local?.downloadedAt?.seconds ?? 0n)),
  owned_by: m.repo.split("/")[0] || "llmlb",
});

/** /v1: the OpenAI-compatible API over the same services gRPC serves. */
export function registerOpenAiRoutes(app: FastifyInstance, clients: NodeClients): void {
  app.get("/v1/models", async () => {
    const models: Model[] = [];
    for (const state of [ModelState.LOADED, ModelState.READY]) {
      let pageToken = "";
      do {
        const page = await clients.catalog.listModels({ state, pageSize: 1000, pageToken });
        models.push(...page.models);
        pageToken = page.nextPageToken;
      } while (pageToken);
    }
    return { object: "list", data: models.filter(canAnswer).map(openAiModel) };
  });

  app.get<{ Params: { "*": string } }>("/v1/models/*", async (request, reply) => {
    const id = request.params["*"];
    const { model } = await clients.catalog.getModel({ modelId: id });
    if (!model || !canAnswer(model)) {
      return reply.code(404).send({
        error: { message: `model "${id}" is not on this node yet; pull it with POST /v0/models/${id}/pull`, type: "not_found_error", param: "model", code: "model_not_found" },
      });
    }
    return openAiModel(model);
  });

  app.post<{ Body: ChatCompletionBody }>("/v1/chat/completions", { schema: { body: chatCompletionBody } }, (request, reply) => {
    const body = request.body;
    const messages = body.messages.map((m) => ({
      role: m.role === "developer" ? "system" : m.role,
      content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join(""),
    }));
    return answerCompletion(
      request,
      reply,
      { model: body.model, stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true, shape: chatShape },
      (signal) => clients.inference.chat({ ...samplingFields(body), messages }, { signal }),
    );
  });

  app.post<{ Body: CompletionBody }>("/v1/completions", { schema: { body: completionBody } }, (request, reply) => {
    const body = request.body;
    const prompt = Array.isArray(body.prompt) ? body.prompt[0]! : body.prompt;
    return answerCompletion(
      request,
      reply,
      { model: body.model, stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true, shape: completionShape },
      (signal) => clients.inference.complete({ ...samplingFields(body), prompt }, { signal }),
    );
  });

  app.post<{ Body: EmbeddingBody }>("/v1/embeddings", { schema: { body: embeddingBody } }, async (request) => {
    const body = request.body;
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    const res = await clients.inference.embed({ modelId: body.model, inputs, noWait: body.wait_for_model === false });
    const base64 = body.encoding_format === "base64";
    return {
      object: "list",
      model: body.model,
      data: res.embeddings.map((e, index) => ({
        object: "embedding",
        index,
        embedding: base64 ? Buffer.from(new Float32Array(e.values).buffer).toString("base64") : e.values,
      })),
      usage: { prompt_tokens: res.usage?.promptTokens ?? 0, total_tokens: res.usage?.totalTokens ?? res.usage?.promptTokens ?? 0 },
    };
  });
}
