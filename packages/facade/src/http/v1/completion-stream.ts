import { randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { httpErrorOf } from "../error-mapping.js";
import { sendOpenAiError } from "../openai-error.js";
import { openSse } from "../sse.js";

/** One message of our streamed Chat/Complete responses. */
export interface Delta {
  delta: string;
  finishReason: string;
  usage?: { promptTokens: number; completionTokens: number; totalTokens: number } | undefined;
}

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export const toOpenAiUsage = (usage: Delta["usage"]): OpenAiUsage => ({
  prompt_tokens: usage?.promptTokens ?? 0,
  completion_tokens: usage?.completionTokens ?? 0,
  total_tokens: usage?.totalTokens ?? (usage ? usage.promptTokens + usage.completionTokens : 0),
});

export interface CompletionShape {
  /** "chatcmpl" or "cmpl". */
  idPrefix: string;
  object: string;
  chunkObject: string;
  /** A streamed choice carrying this text (the first one may add the role). */
  chunkChoice(text: string, first: boolean, finishReason: string | null): Record<string, unknown>;
  /** The whole choice of a non-streamed answer. */
  fullChoice(text: string, finishReason: string): Record<string, unknown>;
}

/**
 * Runs a streamed Chat/Complete call and answers in OpenAI's shape: one JSON body, or SSE chunks
 * with the same id and created on each, usage on request, `[DONE]` last. The call is aborted when
 * the HTTP client goes away, so no tokens are generated for nobody.
 */
export async function answerCompletion(
  request: FastifyRequest,
  reply: FastifyReply,
  options: { model: string; stream: boolean; includeUsage: boolean; shape: CompletionShape },
  call: (signal: AbortSignal) => AsyncIterable<Delta>,
): Promise<void> {
  const { shape, model } = options;
  const id = `${shape.idPrefix}-${randomUUID().replace(/-/g, "")}`;
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: shape.chunkObject, created, model, system_fingerprint: null };

  if (!options.stream) {
    const controller = new AbortController();
    // The response closing before it finished means the client went away (the request's own
    // "close" only says its body was read).
    const onClose = () => {
      if (!reply.raw.writableFinished) controller.abort();
    };
    reply.raw.once("close", onClose);
    let text = "";
    let finishReason = "stop";
    let usage: Delta["usage"];
    try {
      for await (const part of call(controller.signal)) {
        text += part.delta;
        if (part.finishReason) finishReason = part.finishReason;
        if (part.usage) usage = part.usage;
      }
    } finally {
      reply.raw.off("close", onClose);
    }
    await reply.send({ id, object: shape.object, created, model, system_fingerprint: null, choices: [shape.fullChoice(text, finishReason)], usage: toOpenAiUsage(usage) });
    return;
  }

  // Start the call before committing to a 200, so early errors (unknown model, bad field, queue full)
  // still get their own HTTP status.
  const controller = new AbortController();
  const iterator = call(controller.signal)[Symbol.asyncIterator]();
  let first: IteratorResult<Delta>;
  try {
    first = await iterator.next();
  } catch (err) {
    const mapped = httpErrorOf(err);
    await sendOpenAiError(reply, mapped.status, mapped.body, mapped.headers);
    return;
  }
  const sse = openSse(reply);
  sse.signal.addEventListener("abort", () => controller.abort());
  const usageField = options.includeUsage ? { usage: null } : {};
  let isFirst = true;
  let usage: Delta["usage"];
  try {
    for (let step = first; !step.done; step = await iterator.next()) {
      const part = step.value;
      if (part.usage) usage = part.usage;
      if (part.delta || part.finishReason || isFirst) {
        await sse.send({ ...base, choices: [shape.chunkChoice(part.delta, isFirst, part.finishReason || null)], ...usageField });
        isFirst = false;
      }
    }
    if (options.includeUsage) await sse.send({ ...base, choices: [], usage: toOpenAiUsage(usage) });
    await sse.send("[DONE]");
  } catch (err) {
    if (!sse.signal.aborted) await sse.send({ error: httpErrorOf(err).body });
  } finally {
    controller.abort();
    sse.end();
  }
}
