import type {
  ChatHistoryItem,
  ChatWrapper,
  LlamaContextSequence,
  LlamaModel,
} from "node-llama-cpp";
import { llamaCpp } from "./llama-cpp.js";
import { LlmlbError } from "../errors/index.js";
import { samplingOptions } from "./sampling.js";
import { refuseBeyondContext } from "./bounded-tokens.js";
import type { ChatInput, CompletionInput, FinishReason, SamplingParams, TokenUsage } from "./types.js";

/** Where a generation reports as it goes. */
export interface GenerationSink {
  /** Text since the last call; node-llama-cpp never splits a UTF-8 character across calls. */
  text(chunk: string): void;
  /** Tokens produced (for counters). */
  tokens(count: number): void;
}

export interface GenerationOutcome {
  finishReason: FinishReason;
  usage: TokenUsage;
}

export interface GenerationTarget {
  sequence: LlamaContextSequence;
  sink: GenerationSink;
  signal: AbortSignal;
}

/**
 * A chat turn on one sequence. The history is exactly the request's messages (no default system
 * prompt), rendered by the model's chat wrapper; a new assistant turn is generated.
 */
export async function generateChat(
  target: GenerationTarget & { chatWrapper: ChatWrapper },
  input: ChatInput,
): Promise<GenerationOutcome> {
  const { sequence, chatWrapper, sink, signal } = target;
  // Rendering and tokenizing the whole chat is one synchronous call: only for text that can fit.
  await refuseBeyondContext(sequence.model, input.messages.map((m) => m.content), sequence.contextSize, "messages", signal);
  const history: ChatHistoryItem[] = input.messages.map((m) =>
    m.role === "assistant" ? { type: "model", response: [m.content] } : { type: m.role, text: m.content },
  );
  history.push({ type: "model", response: [] });
  const prompt = chatWrapper.generateContextState({ chatHistory: history }).contextText;
  const promptTokens = prompt.tokenize(sequence.model.tokenizer).length;
  const maxTokens = generationBudget(sequence, promptTokens, input, "messages");

  const chat = new (llamaCpp().LlamaChat)({ contextSequence: sequence, chatWrapper, autoDisposeSequence: false });
  const before = sequence.tokenMeter.getState();
  try {
    const result = await chat.generateResponse(history, {
      ...samplingOptions(input, maxTokens),
      signal,
      stopOnAbortSignal: false,
      onTextChunk: (text) => sink.text(text),
      onToken: (tokens) => sink.tokens(tokens.length),
    });
    return outcome(result.metadata.stopReason, promptTokens, sequence.tokenMeter.diff(before).usedOutputTokens);
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

/** Raw text completion of a prompt on one sequence. */
export async function generateCompletion(target: GenerationTarget, input: CompletionInput): Promise<GenerationOutcome> {
  const { sequence, sink, signal } = target;
  const model = sequence.model;
  await refuseBeyondContext(model, [input.prompt], sequence.contextSize, "prompt", signal);
  const withBos = model.tokens.shouldPrependBosToken && model.tokens.bos !== null;
  // Tokenized here (as LlamaCompletion would) so usage is exact and a too-long prompt is refused,
  // not silently cut; LlamaCompletion prepends the BOS token itself.
  const tokens = model.tokenize(input.prompt, false, withBos ? "trimLeadingSpace" : undefined);
  const promptTokens = tokens.length + (withBos ? 1 : 0);
  const maxTokens = generationBudget(sequence, promptTokens, input, "prompt");

  const completion = new (llamaCpp().LlamaCompletion)({ contextSequence: sequence, autoDisposeSequence: false });
  const before = sequence.tokenMeter.getState();
  try {
    const result = await completion.generateCompletionWithMeta(tokens, {
      ...samplingOptions(input, maxTokens),
      signal,
      stopOnAbortSignal: false,
      disableContextShift: true,
      contextShiftSize: 0,
      onTextChunk: (text) => sink.text(text),
      onToken: (generated) => sink.tokens(generated.length),
    });
    return outcome(result.metadata.stopReason, promptTokens, sequence.tokenMeter.diff(before).usedOutputTokens);
  } finally {
    completion.dispose({ disposeSequence: false });
  }
}

/** Tokens left for the answer: max_tokens, capped by what the context holds after the prompt (never beyond it). */
function generationBudget(sequence: LlamaContextSequence, promptTokens: number, params: SamplingParams, field: string): number {
  const room = sequence.contextSize - promptTokens;
  if (room < 1) {
    throw new LlmlbError(
      "INVALID_ARGUMENT",
      `${field}: the prompt takes ${promptTokens} tokens and the model's context holds ${sequence.contextSize}; shorten it`,
      { field },
    );
  }
  return Math.min(params.maxTokens ?? room, room);
}

function outcome(stopReason: string, promptTokens: number, completionTokens: number): GenerationOutcome {
  return {
    finishReason: stopReason === "maxTokens" ? "length" : "stop",
    usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
  };
}

/** Token count of texts (embedding usage). */
export function countTokens(model: LlamaModel, texts: readonly string[]): number {
  return texts.reduce((sum, text) => sum + model.tokenize(text).length, 0);
}
