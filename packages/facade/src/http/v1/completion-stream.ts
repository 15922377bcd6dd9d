import { randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { httpErrorOf } from "../error-mapping.js";
import { sendOpenAiError } from "../openai-error.js";
import { openSse, type SseStream } from "../sse.js";
import { MAX_CHOICES } from "./schemas.js";

export interface StreamedLogprob {
  token: string;
  logprob: number;
  bytes: Uint8Array;
  topLogprobs: Array<{ token: string; logprob: number; bytes: Uint8Array }>;
}

/** One message of our streamed Chat/Complete responses (CompleteResponse has no reasoning or tool calls). */
export interface Delta {
  delta: string;
  finishReason: string;
  usage?: { promptTokens: number; completionTokens: number; totalTokens: number; cachedPromptTokens: number } | undefined;
  reasoning?: string;
  toolCalls?: Array<{ index: number; id: string; name: string; argumentsJson: string }>;
  logprobs?: StreamedLogprob[];
}

/** Everything one choice produced, for a non-streamed answer. */
export interface ChoiceResult {
  index: number;
  text: string;
  reasoning: string;
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  logprobs: StreamedLogprob[];
  finishReason: string;
}

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export interface CompletionShape {
  /** "chatcmpl" or "cmpl". */
  idPrefix: string;
  object: string;
  chunkObject: string;
  /** A streamed choice for this message (`first`: the choice's first chunk). */
  chunkChoice(index: number, part: Delta, first: boolean): Record<string, unknown>;
  /** A non-streamed choice. */
  fullChoice(result: ChoiceResult): Record<string, unknown>;
}

/** One generation of a request: `n` of them per prompt. */
export interface ChoiceCall {
  /** Counted in prompt_tokens (once per prompt, not once per choice). */
  countsPrompt: boolean;
  run(signal: AbortSignal): AsyncIterable<Delta>;
}

/**
 * Calls of one request that run at once: a chat's n choices (at most MAX_CHOICES) share the
 * model's parallel slots instead of each waiting its turn in the queue; a completion's further
 * prompts start one by one as earlier ones end, so one request cannot fill the queue.
 */
const CALLS_AT_ONCE = MAX_CHOICES;

/**
 * Runs the Chat/Complete calls of a request (CALLS_AT_ONCE at a time, the next starting as soon as
 * one ends, so the request never waits on its slowest call and never leaves the model idle in
 * between, where it could be unloaded or evicted) and answers in OpenAI's
 * shape: one JSON body, or SSE chunks with the same id and created on each (the chunks of choices
 * running at once interleaved, each naming its index), usage on request, `[DONE]` last. The calls
 * are aborted when the HTTP client goes away or one of them fails, so no tokens are generated for
 * nobody.
 */
export async function answerCompletion(
  request: FastifyRequest,
  reply: FastifyReply,
  options: { model: string; stream: boolean; includeUsage: boolean; shape: CompletionShape },
  calls: readonly ChoiceCall[],
): Promise<void> {
  const { shape, model } = options;
  const id = `${shape.idPrefix}-${randomUUID().replace(/-/g, "")}`;
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: shape.chunkObject, created, model, system_fingerprint: null };
  const usage = new UsageSum();
  const controller = new AbortController();
  /** Runs every call, CALLS_AT_ONCE at a time; the first failure aborts the others. */
  const eachCall = <T>(run: (call: ChoiceCall, index: number) => Promise<T>): Promise<T[]> => {
    const results: T[] = [];
    let next = 0;
    const worker = async () => {
      for (let index = next++; index < calls.length; index = next++) {
        controller.signal.throwIfAborted();
        results[index] = await run(calls[index]!, index);
      }
    };
    return Promise.all(Array.from({ length: Math.min(CALLS_AT_ONCE, calls.length) }, () => worker().catch((err: unknown) => {
      controller.abort();
      throw err;
    }))).then(() => results);
  };

  if (!options.stream) {
    const stopWatching = abortWhenClientLeaves(reply, controller);
    let results: ChoiceResult[];
    try {
      results = await eachCall(async (call, index) => {
        const result = emptyResult(index);
        for await (const part of call.run(controller.signal)) {
          accumulate(result, part);
          usage.add(part, call.countsPrompt);
        }
        return result;
      });
    } finally {
      stopWatching();
    }
    await reply.send({ id, object: shape.object, created, model, system_fingerprint: null, choices: results.map(shape.fullChoice), usage: usage.openAi() });
    return;
  }

  const start = (call: ChoiceCall) => call.run(controller.signal)[Symbol.asyncIterator]();
  const firstCalls = calls.slice(0, CALLS_AT_ONCE).map(start);
  const opened = await openStreamAfterFirst(reply, controller, firstCalls);
  if (!opened) return;
  const { sse } = opened;
  const usageField = options.includeUsage ? { usage: null } : {};
  try {
    await eachCall(async (call, index) => {
      const running = firstCalls[index] ?? start(call);
      let isFirst = true;
      for (let step = opened.firsts[index] ?? (await running.next()); !step.done; step = await running.next()) {
        const part = step.value;
        usage.add(part, call.countsPrompt);
        if (hasContent(part) || part.finishReason || isFirst) {
          await sse.send({ ...base, choices: [shape.chunkChoice(index, part, isFirst)], ...usageField });
          isFirst = false;
        }
      }
    });
    if (options.includeUsage) await sse.send({ ...base, choices: [], usage: usage.openAi() });
    await sse.send("[DONE]");
  } catch (err) {
    if (!sse.signal.aborted) await sse.send({ error: httpErrorOf(err).body });
  } finally {
    controller.abort();
    sse.end();
  }
}

/** A choice before its first message. */
export const emptyResult = (index: number): ChoiceResult => ({ index, text: "", reasoning: "", toolCalls: [], logprobs: [], finishReason: "stop" });

/** For an answer sent whole: a signal that aborts when the client goes away before it is sent (a download it started then stops when nobody else waits). */
export function clientLeftSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  abortWhenClientLeaves(reply, controller);
  return controller.signal;
}

/**
 * Aborts `controller` when the client goes away before the answer is sent: the response closing
 * before it finished (the request's own "close" only says its body was read). Returns the
 * function that stops watching.
 */
export function abortWhenClientLeaves(reply: FastifyReply, controller: AbortController): () => void {
  const onClose = () => {
    if (!reply.raw.writableFinished) controller.abort();
  };
  reply.raw.once("close", onClose);
  return () => reply.raw.off("close", onClose);
}

/**
 * Takes the first message of each of a streamed answer's calls before committing to a 200, so
 * early errors (unknown model, bad field, queue full for any choice) still get their own HTTP
 * status and abort the other calls; then opens the SSE stream. The client going away aborts
 * `controller` all along: while the calls wait in the queue or for a load, and once streaming.
 * Undefined when the error was answered or the client left.
 */
export async function openStreamAfterFirst(
  reply: FastifyReply,
  controller: AbortController,
  iterators: ReadonlyArray<AsyncIterator<Delta>>,
): Promise<{ sse: SseStream; firsts: Array<IteratorResult<Delta>> } | undefined> {
  const stopWatching = abortWhenClientLeaves(reply, controller);
  let firsts: Array<IteratorResult<Delta>>;
  try {
    firsts = await Promise.all(iterators.map((iterator) => iterator.next()));
  } catch (err) {
    controller.abort();
    if (reply.raw.destroyed) return undefined;
    const mapped = httpErrorOf(err);
    await sendOpenAiError(reply, mapped.status, mapped.body, mapped.headers);
    return undefined;
  } finally {
    stopWatching();
  }
  if (reply.raw.destroyed) {
    controller.abort();
    return undefined;
  }
  const sse = openSse(reply);
  sse.signal.addEventListener("abort", () => controller.abort());
  return { sse, firsts };
}

const hasContent = (part: Delta) => Boolean(part.delta || part.reasoning || part.toolCalls?.length || part.logprobs?.length);

export function accumulate(result: ChoiceResult, part: Delta): void {
  result.text += part.delta;
  result.reasoning += part.reasoning ?? "";
  result.logprobs.push(...(part.logprobs ?? []));
  for (const piece of part.toolCalls ?? []) {
    const call = (result.toolCalls[piece.index] ??= { id: "", name: "", arguments: "" });
    if (piece.id) call.id = piece.id;
    if (piece.name) call.name = piece.name;
    call.arguments += piece.argumentsJson;
  }
  if (part.finishReason) result.finishReason = part.finishReason;
}

class UsageSum {
  private prompt = 0;
  private completion = 0;
  private cached = 0;

  add(part: Delta, countsPrompt: boolean): void {
    if (!part.usage) return;
    if (countsPrompt) {
      this.prompt += part.usage.promptTokens;
      this.cached += part.usage.cachedPromptTokens;
    }
    this.completion += part.usage.completionTokens;
  }

  openAi(): OpenAiUsage {
    return {
      prompt_tokens: this.prompt,
      completion_tokens: this.completion,
      total_tokens: this.prompt + this.completion,
      prompt_tokens_details: { cached_tokens: this.cached },
    };
  }
}

/** OpenAI's chat logprob entry (`choices[].logprobs.content[]`). */
export function openAiLogprob(entry: StreamedLogprob) {
  return {
    token: entry.token,
    logprob: entry.logprob,
    bytes: [...entry.bytes],
    top_logprobs: entry.topLogprobs.map((top) => ({ token: top.token, logprob: top.logprob, bytes: [...top.bytes] })),
  };
}
