import type { FastifyInstance, FastifyReply } from "fastify";
import { ModelState, type Model } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../../clients.js";
import { chatRequest } from "./chat-request.js";
import { streamWithFieldsAsSent, withFieldAsSent } from "./field-as-sent.js";
import { answerCompletion, clientLeftSignal, openAiLogprob, type ChoiceCall, type CompletionShape, type Delta, type StreamedLogprob } from "./completion-stream.js";
import { choiceSampling, keepAliveField, samplingFields } from "./sampling.js";
import { modelFacts } from "../../router/node-facts.js";
import {
  chatCompletionBody, completionBody, detokenizeBody, embeddingBody, rerankBody, tokenizeBody,
  type ChatCompletionBody, type CompletionBody, type DetokenizeBody, type EmbeddingBody, type RerankBody, type TokenizeBody,
} from "./schemas.js";

const streamedToolCalls = (part: Delta) =>
  part.toolCalls!.map((piece) =>
    piece.id
      ? { index: piece.index, id: piece.id, type: "function", function: { name: piece.name, arguments: piece.argumentsJson } }
      : { index: piece.index, function: { arguments: piece.argumentsJson } },
  );

const chatShape = (withLogprobs: boolean): CompletionShape => ({
  idPrefix: "chatcmpl",
  object: "chat.completion",
  chunkObject: "chat.completion.chunk",
  chunkChoice: (index, part, first) => ({
    index,
    delta: {
      ...(first ? { role: "assistant" } : {}),
      ...(part.delta || (first && !part.toolCalls?.length) ? { content: part.delta } : {}),
      ...(part.reasoning ? { reasoning_content: part.reasoning } : {}),
      ...(part.toolCalls?.length ? { tool_calls: streamedToolCalls(part) } : {}),
    },
    finish_reason: part.finishReason || null,
    logprobs: withLogprobs && part.logprobs?.length ? { content: part.logprobs.map(openAiLogprob), refusal: null } : null,
  }),
  fullChoice: (result) => ({
    index: result.index,
    message: {
      role: "assistant",
      content: result.toolCalls.length > 0 && result.text === "" ? null : result.text,
      ...(result.reasoning ? { reasoning_content: result.reasoning } : {}),
      ...(result.toolCalls.length > 0
        ? { tool_calls: result.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) }
        : {}),
      refusal: null,
    },
    finish_reason: result.finishReason,
    logprobs: withLogprobs ? { content: result.logprobs.map(openAiLogprob), refusal: null } : null,
  }),
});

/** Completions' legacy logprobs shape: parallel arrays, top alternatives as token -> logprob maps. */
function completionLogprobs(entries: StreamedLogprob[], offset: number) {
  let at = offset;
  const textOffset = entries.map((e) => {
    const start = at;
    at += e.token.length;
    return start;
  });
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.topLogprobs.map((t) => [t.token, t.logprob]))),
    text_offset: textOffset,
  };
}

function completionShape(withLogprobs: boolean, echoed: (index: number) => string): CompletionShape {
  // Where each streamed choice's next text starts, counted from the start of its whole text (echo included).
  const textLengths = new Map<number, number>();
  return {
    idPrefix: "cmpl",
    object: "text_completion",
    chunkObject: "text_completion",
    chunkChoice: (index, part, first) => {
      const echo = first ? echoed(index) : "";
      const sent = textLengths.get(index) ?? 0;
      textLengths.set(index, sent + echo.length + part.delta.length);
      return {
        index,
        text: echo + part.delta,
        finish_reason: part.finishReason || null,
        logprobs: withLogprobs ? completionLogprobs(part.logprobs ?? [], sent + echo.length) : null,
      };
    },
    fullChoice: (result) => ({
      index: result.index,
      text: echoed(result.index) + result.text,
      finish_reason: result.finishReason,
      logprobs: withLogprobs ? completionLogprobs(result.logprobs, echoed(result.index).length) : null,
    }),
  };
}

/** Only models that can answer now: on disk or in memory. */
const canAnswer = (m: Model) => m.state === ModelState.READY || m.state === ModelState.LOADED;

const openAiModel = (m: Model) => ({
  id: m.id,
  object: "model",
  created: Math.floor(Number(m.local?.downloadedAt?.seconds ?? 0n)),
  owned_by: m.repo.split("/")[0] || "llmlb",
});

/** Tokens per request: the loaded context when in memory, else the catalog's, else null (decided at load). */
export async function contextLengthOf(clients: NodeClients, model: Model): Promise<number | null> {
  const { models: loaded } = await clients.inference.listLoadedModels({});
  return loaded.find((m) => m.modelId === model.id)?.contextLength || model.contextLength || null;
}

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
    // llmlb routers read these two next to data[].id: [ready, total] and whether models are still coming.
    const facts = await modelFacts(clients);
    return { object: "list", data: models.filter(canAnswer).map(openAiModel), ready_models: facts.readyModels, initializing: facts.initializing };
  });

  app.get<{ Params: { "*": string } }>("/v1/models/*", async (request, reply) => {
    const id = request.params["*"];
    const { model } = await clients.catalog.getModel({ modelId: id });
    if (!model || !canAnswer(model)) {
      return reply.code(404).send({
        error: { message: `model "${id}" is not on this node yet; pull it with POST /v0/models/${id}/pull`, type: "not_found_error", param: "model", code: "model_not_found" },
      });
    }
    return { ...openAiModel(model), context_length: await contextLengthOf(clients, model) };
  });

  app.post<{ Body: ChatCompletionBody }>("/v1/chat/completions", { schema: { body: chatCompletionBody } }, (request, reply) => {
    const body = request.body;
    const req = chatRequest(body);
    const calls: ChoiceCall[] = Array.from({ length: body.n ?? 1 }, (_, i) => ({
      countsPrompt: i === 0,
      run: (signal) => clients.inference.chat(choiceSampling(req, i), { signal }),
    }));
    return answerCompletion(
      request,
      reply,
      { model: body.model, stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true, shape: chatShape(body.logprobs === true) },
      calls,
    );
  });

  app.post<{ Body: CompletionBody }>("/v1/completions", { schema: { body: completionBody } }, (request, reply) => {
    const body = request.body;
    const prompts = Array.isArray(body.prompt) ? body.prompt : [body.prompt];
    const n = body.n ?? 1;
    const withLogprobs = body.logprobs != null;
    const fields = { ...samplingFields(body), logprobs: withLogprobs, ...(withLogprobs ? { topLogprobs: body.logprobs! } : {}) };
    // Choices are ordered prompt by prompt, n per prompt (as OpenAI numbers them).
    const calls: ChoiceCall[] = prompts.flatMap((prompt, p) =>
      Array.from({ length: n }, (_, i) => ({
        countsPrompt: i === 0,
        run: (signal: AbortSignal) => {
          const stream = clients.inference.complete({ ...choiceSampling(fields, p * n + i), prompt }, { signal });
          // An error about one of several prompts names it as sent.
          return prompts.length > 1 ? streamWithFieldsAsSent(stream, (field) => (field === "prompt" ? `prompt[${p}]` : undefined)) : stream;
        },
      })),
    );
    const echoed = (index: number) => (body.echo ? prompts[Math.floor(index / n)]! : "");
    return answerCompletion(
      request,
      reply,
      { model: body.model, stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true, shape: completionShape(withLogprobs, echoed) },
      calls,
    );
  });

  app.post<{ Body: EmbeddingBody }>("/v1/embeddings", { schema: { body: embeddingBody } }, async (request, reply) => {
    const body = request.body;
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    const res = await clients.inference
      .embed(
        {
          modelId: body.model,
          inputs,
          noWait: body.wait_for_model === false,
          ...(body.dimensions !== undefined ? { dimensions: body.dimensions } : {}),
          ...keepAliveField(body.keep_alive),
        },
        { signal: clientLeftSignal(reply) },
      )
      .catch((err: unknown) => {
        // EmbedRequest's field is `inputs`; the client sent `input`, a string or a list.
        throw withFieldAsSent(err, (field) => (!field.startsWith("inputs[") ? undefined : typeof body.input === "string" ? "input" : field.replace(/^inputs/, "input")));
      });
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

  const rerank = async (request: { body: RerankBody }, reply: FastifyReply) => {
    const body = request.body;
    const documents = body.documents.map((d) => (typeof d === "string" ? d : d.text));
    const res = await clients.inference.rerank(
      {
        modelId: body.model,
        query: body.query,
        documents,
        noWait: body.wait_for_model === false,
        ...(body.top_n !== undefined ? { topN: body.top_n } : {}),
        ...keepAliveField(body.keep_alive),
      },
      { signal: clientLeftSignal(reply) },
    );
    return {
      object: "list",
      model: body.model,
      results: res.results.map((r) => ({
        index: r.index,
        relevance_score: r.relevanceScore,
        ...(body.return_documents ? { document: { text: documents[r.index] } } : {}),
      })),
      usage: { prompt_tokens: res.usage?.promptTokens ?? 0, total_tokens: res.usage?.totalTokens ?? 0 },
    };
  };
  app.post<{ Body: RerankBody }>("/v1/rerank", { schema: { body: rerankBody } }, rerank);
  app.post<{ Body: RerankBody }>("/rerank", { schema: { body: rerankBody } }, rerank);

  app.post<{ Body: TokenizeBody }>("/tokenize", { schema: { body: tokenizeBody } }, async (request, reply) => {
    const body = request.body;
    const { tokens } = await clients.inference.tokenize({ modelId: body.model, content: body.content, addSpecial: body.add_special === true }, { signal: clientLeftSignal(reply) });
    return { tokens };
  });

  app.post<{ Body: DetokenizeBody }>("/detokenize", { schema: { body: detokenizeBody } }, async (request, reply) => {
    const { content } = await clients.inference.detokenize({ modelId: request.body.model, tokens: request.body.tokens }, { signal: clientLeftSignal(reply) });
    return { content };
  });
}
