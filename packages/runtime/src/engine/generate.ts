import type {
  ChatModelFunctions,
  ChatWrapper,
  LLamaChatGenerateResponseOptions,
  LlamaChatResponseChunk,
  LlamaChatResponseFunctionCall,
  LlamaChatResponseFunctionCallParamsChunk,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
  Token,
} from "node-llama-cpp";
import { llamaCpp } from "./llama-cpp.js";
import { partialCharacterTokens } from "./partial-character-tokens.js";
import { LlmlbError, invalidModelOutput } from "../errors/index.js";
import { chatHistory } from "./chat-history.js";
import { CompletionOutput } from "./completion-output.js";
import { valueAt } from "./gguf-check.js";
import { grammarCache } from "./grammar-cache.js";
import { mentionsMaxLength } from "./json-schema.js";
import { openingDoesNotFit, promptTooLong, refuseBeyondContext } from "./bounded-tokens.js";
import { promptTexts } from "./request-validation.js";
import { renderPromptOnce } from "./rendered-prompt.js";
import { samplingOptions } from "./sampling.js";
import { TokenLogprobs } from "./token-logprobs.js";
import { ToolCallPieces, chatFunctions, forcedCallWrapper, forcesCall, requireToolSupport } from "./tool-calls.js";
import type { ChatInput, CompletionInput, DeltaParts, FinishReason, OutputParams, ReasoningOptions, SamplingParams, TokenUsage } from "./types.js";

/** Where a generation reports as it goes. */
export interface GenerationSink {
  /** What was generated since the last call; node-llama-cpp never splits a UTF-8 character across calls. */
  emit(parts: Partial<DeltaParts>): void;
  /** Tokens produced (for counters). */
  tokens(count: number): void;
}

export interface GenerationOutcome {
  finishReason: FinishReason;
  usage: TokenUsage;
}

export interface GenerationTarget {
  model: LlamaModel;
  /** Tokens per sequence. */
  contextSize: number;
  /** The sequence to run on, picked for the prompt, and how many prompt tokens it already holds. */
  sequenceFor(prompt: readonly Token[]): { sequence: LlamaContextSequence; cachedTokens: number };
  sink: GenerationSink;
  signal: AbortSignal;
  /** The model's id (for error messages). */
  modelId: string;
}

/**
 * Tokens a chat prompt leaves free: LlamaChat keeps a rendered history whole only while one token
 * stays free after it, and otherwise silently drops the start of the conversation to make room.
 */
const CHAT_KEPT_TOKENS = 2;

/**
 * A chat turn on one sequence. The history is exactly the request's messages (no default system
 * prompt), rendered by the model's chat wrapper; a new assistant turn is generated. Tools are the
 * wrapper's function calling; a response format and forced calls are grammars.
 */
export async function generateChat(
  target: GenerationTarget & { chatWrapper: ChatWrapper },
  input: ChatInput,
): Promise<GenerationOutcome> {
  const { sink, signal, modelId } = target;
  // Rendering and tokenizing the whole chat is one synchronous call: only for text that can fit.
  await refuseBeyondContext(target.model, promptTexts(input.messages), { contextSize: target.contextSize, kept: CHAT_KEPT_TOKENS, field: "messages" }, signal);
  const history = chatHistory(input.messages);
  // Thinking off: the answer starts after an empty, closed thought (the budget alone would let
  // the first thought token through before closing the segment).
  if (input.reasoning?.enabled === false) history[history.length - 1] = { type: "model", response: [{ type: "segment", segmentType: "thought", text: "", ended: true }] };
  const functions = chatFunctions(input.tools, input.toolChoice);
  if (functions && input.responseFormat && input.responseFormat.type !== "text") {
    throw new LlmlbError("INVALID_ARGUMENT", 'response_format cannot be combined with tools; send tool_choice "none" or drop one of them', { field: "response_format" });
  }
  if (functions) requireToolSupport(target.chatWrapper, modelId);
  const chatWrapper = functions && forcesCall(input.toolChoice) ? forcedCallWrapper(target.chatWrapper) : target.chatWrapper;
  const grammar = await responseGrammar(target.model, input);

  const rendered = renderPromptOnce(chatWrapper, target.model, { chatHistory: history, availableFunctions: functions, documentFunctionParams: true });
  const prompt = rendered.tokens;
  const promptTokens = prompt.length;
  const maxTokens = generationBudget(target.contextSize, promptTokens, input, "messages", CHAT_KEPT_TOKENS);
  const taken = target.sequenceFor(prompt);
  const logprobs = input.logprobs ? new TokenLogprobs(taken.sequence, input.topLogprobs ?? 0) : undefined;
  const sequence = logprobs?.sequence ?? taken.sequence;
  const pieces = new ToolCallPieces((piece) => sink.emit({ toolCalls: [piece] }));
  const banned = bannedTokens(target.model, input, functions);
  const options = {
    ...samplingOptions(input, maxTokens),
    ...outputOptions(sequence.model, input, banned),
    ...(input.reasoning ? { budgets: { thoughtTokens: thoughtBudget(input.reasoning, maxTokens) } } : {}),
    signal,
    stopOnAbortSignal: false,
    onResponseChunk: (chunk: LlamaChatResponseChunk) => {
      if (chunk.type === undefined) sink.emit({ text: chunk.text, ...(logprobs ? { logprobs: logprobs.take(chunk.tokens) } : {}) });
      else if (chunk.segmentType === "thought") sink.emit({ reasoning: chunk.text });
      sink.tokens(chunk.tokens.length);
    },
    ...(grammar ? { grammar } : {}),
    ...(functions
      ? {
          functions,
          documentFunctionParams: true,
          ...(input.parallelToolCalls === false ? { maxParallelFunctionCalls: 1 } : {}),
          onFunctionCallParamsChunk: (chunk: LlamaChatResponseFunctionCallParamsChunk) => pieces.paramsChunk(chunk),
          onFunctionCall: (call: LlamaChatResponseFunctionCall<ChatModelFunctions>) => pieces.called(call.functionName, call.params),
        }
      : {}),
  } as LLamaChatGenerateResponseOptions<ChatModelFunctions>;

  const chat = new (llamaCpp().LlamaChat)({ contextSequence: sequence, chatWrapper: rendered.chatWrapper, autoDisposeSequence: false });
  const before = sequence.tokenMeter.getState();
  try {
    const result = await chat.generateResponse(history, options);
    const completionTokens = sequence.tokenMeter.diff(before).usedOutputTokens;
    // A call cut off by max_tokens is reported as such ("length"), not as a finished call.
    if (pieces.count > 0 && result.metadata.stopReason !== "maxTokens") {
      return { finishReason: "tool_calls", usage: usage(promptTokens, completionTokens, taken.cachedTokens) };
    }
    return outcome(result.metadata.stopReason, promptTokens, completionTokens, taken.cachedTokens);
  } catch (err) {
    if (err instanceof llamaCpp().LlamaJsonSchemaValidationError) throw invalidModelOutput(err.message);
    if (signal.aborted) throw err;
    const spent = sequence.tokenMeter.diff(before);
    // The budget counts sampled tokens only: a tool call's syntax, which LlamaChat writes itself, can
    // fill the context first. LlamaChat then tries to shift the context, which a prompt that was
    // kept whole cannot survive: the answer was cut off by the context, as max_tokens cuts one off.
    // (The sequence's length alone does not say so: it may still hold an earlier request's tokens.)
    if (spent.usedInputTokens + spent.usedOutputTokens > 0 && sequence.nextTokenIndex >= target.contextSize - 1) {
      return outcome("maxTokens", promptTokens, spent.usedOutputTokens, taken.cachedTokens);
    }
    // Before evaluating anything: the prompt with the opening LlamaChat writes ahead of the answer
    // (a forced tool call's syntax) does not fit.
    if (spent.usedInputTokens === 0 && /fits? the context size/.test(String((err as Error).message))) {
      throw openingDoesNotFit(promptTokens, target.contextSize, functions ? "the tool call the model must make" : "the answer");
    }
    throw err;
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

/** Raw text completion of a prompt on one sequence. */
export async function generateCompletion(target: GenerationTarget, input: CompletionInput): Promise<GenerationOutcome> {
  const { sink, signal } = target;
  const model = target.model;
  await refuseBeyondContext(model, [input.prompt], { contextSize: target.contextSize, kept: 1, field: "prompt" }, signal);
  const bos = model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
  // Tokenized here (as LlamaCompletion would) so usage is exact and a too-long prompt is refused,
  // not silently cut; LlamaCompletion prepends the BOS token itself.
  const tokens = model.tokenize(input.prompt, false, bos !== null ? "trimLeadingSpace" : undefined);
  const promptTokens = tokens.length + (bos !== null ? 1 : 0);
  const maxTokens = generationBudget(target.contextSize, promptTokens, input, "prompt", 1);
  const taken = target.sequenceFor(bos !== null ? [bos, ...tokens] : tokens);
  const logprobs = input.logprobs ? new TokenLogprobs(taken.sequence, input.topLogprobs ?? 0) : undefined;
  const sequence = logprobs?.sequence ?? taken.sequence;
  const grammar = await responseGrammar(model, input);

  const completion = new (llamaCpp().LlamaCompletion)({ contextSequence: sequence, autoDisposeSequence: false });
  const before = sequence.tokenMeter.getState();
  const output = new CompletionOutput((parts) => sink.emit(parts), input.stop);
  // A stop string ends the generation through this signal; the client's own abort still throws.
  const stopped = new AbortController();
  try {
    const result = await completion.generateCompletionWithMeta(tokens, {
      ...samplingOptions({ ...input, stop: [] }, maxTokens),
      ...outputOptions(model, input, bannedTokens(model, input)),
      ...(grammar ? { grammar } : {}),
      signal: AbortSignal.any([signal, stopped.signal]),
      stopOnAbortSignal: true,
      disableContextShift: true,
      contextShiftSize: 0,
      onTextChunk: (text) => {
        output.text(text);
        if (output.stopped) stopped.abort();
      },
      onToken: (generated: Token[]) => {
        if (logprobs) output.logprobs(logprobs.take(generated));
        sink.tokens(generated.length);
      },
    });
    signal.throwIfAborted();
    output.end();
    const stopReason = output.stopped ? "customStopTrigger" : result.metadata.stopReason;
    return outcome(stopReason, promptTokens, sequence.tokenMeter.diff(before).usedOutputTokens, taken.cachedTokens);
  } finally {
    completion.dispose({ disposeSequence: false });
  }
}

/**
 * Tokens never sampled: with a string length bound (a tool's arguments, a response schema), the
 * text is written in whole characters of the BMP only. node-llama-cpp rejects a finished call
 * whose string counts more UTF-16 units than its maxLength, and llama.cpp's grammar counts bytes
 * that form no character (four U+FFFD once decoded) as one.
 */
function bannedTokens(model: LlamaModel, params: OutputParams, functions?: ChatModelFunctions): readonly Token[] {
  const format = params.responseFormat;
  const bounded = Object.values(functions ?? {}).some((fn) => mentionsMaxLength(fn.params)) || (format?.type === "json_schema" && mentionsMaxLength(format.schema));
  return bounded ? partialCharacterTokens(model) : [];
}

/** The grammar of a response format: any JSON object, or JSON valid against a schema. */
async function responseGrammar(model: LlamaModel, params: OutputParams): Promise<LlamaGrammar | undefined> {
  const format = params.responseFormat;
  if (!format || format.type === "text") return undefined;
  // Any object, from the same JSON grammar as a schema's (llama.cpp's json.gbnf lets numbers overflow to Infinity: 1e999).
  if (format.type === "json_object") return grammarCache(model.llama).forSchema({ type: "object", additionalProperties: true }, "response_format");
  return grammarCache(model.llama).forSchema(format.schema, "response_format.json_schema.schema");
}

/** Token bias for logit_bias (-100 bans a token, other values shift its logit) and for `banned` tokens, which logit_bias cannot bring back. */
function outputOptions(model: LlamaModel, params: OutputParams, banned: readonly Token[] = []): { tokenBias?: InstanceType<ReturnType<typeof llamaCpp>["TokenBias"]> } {
  const entries = Object.entries(params.logitBias ?? {});
  if (entries.length === 0 && banned.length === 0) return {};
  const vocabulary = vocabularySize(model);
  const bias = new (llamaCpp().TokenBias)(model.tokenizer);
  for (const [token, value] of entries) {
    // llama.cpp indexes its logits with these ids: one outside the vocabulary must never reach it.
    if (!(Number(token) < vocabulary)) {
      throw new LlmlbError("INVALID_ARGUMENT", `logit_bias.${token} is not a token id of this model (its vocabulary has ${vocabulary} tokens)`, { field: `logit_bias.${token}` });
    }
    bias.set(Number(token) as Token, value <= -100 ? "never" : { logit: value });
  }
  for (const token of banned) bias.set(token, "never");
  return { tokenBias: bias };
}

/** Tokens in the model's vocabulary, from its GGUF metadata (0 when it does not say). */
function vocabularySize(model: LlamaModel): number {
  const tokens = valueAt(model.fileInfo.metadata, "tokenizer.ggml.tokens");
  return Array.isArray(tokens) ? tokens.length : 0;
}

/** Thought tokens allowed: none when disabled, an explicit budget, or a share of the answer by effort. */
function thoughtBudget(reasoning: ReasoningOptions, maxTokens: number): number | undefined {
  if (reasoning.enabled === false) return 0;
  if (reasoning.budgetTokens !== undefined) return reasoning.budgetTokens;
  switch (reasoning.effort) {
    case "low":
      return Math.floor(maxTokens / 4);
    case "medium":
      return Math.floor(maxTokens / 2);
    case "high":
      return Infinity;
    default:
      return undefined;
  }
}

/**
 * Tokens left for the answer: max_tokens, capped by what the context holds after the prompt. The
 * prompt must leave `kept` tokens free.
 */
function generationBudget(contextSize: number, promptTokens: number, params: SamplingParams, field: string, kept: 1 | 2): number {
  const room = contextSize - promptTokens;
  if (room < kept) throw promptTooLong(field, String(promptTokens), contextSize, kept);
  return Math.min(params.maxTokens ?? room, room);
}

function outcome(stopReason: string, promptTokens: number, completionTokens: number, cachedPromptTokens: number): GenerationOutcome {
  return { finishReason: stopReason === "maxTokens" ? "length" : "stop", usage: usage(promptTokens, completionTokens, cachedPromptTokens) };
}

function usage(promptTokens: number, completionTokens: number, cachedPromptTokens: number): TokenUsage {
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedPromptTokens };
}

/** Token count of texts (embedding usage). */
export function countTokens(model: LlamaModel, texts: readonly string[]): number {
  return texts.reduce((sum, text) => sum + model.tokenize(text).length, 0);
}
