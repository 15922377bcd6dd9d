import { LlmlbError } from "../errors/index.js";
import type { ChatInput, ChatRole, CompletionInput, EmbedInput, ModelTarget, SamplingParams } from "./types.js";

const ROLES: readonly ChatRole[] = ["system", "user", "assistant"];

/**
 * The limits of every inference request, on gRPC and HTTP alike (the HTTP schemas leave these to
 * this module so both answer with the same message). Prompt bytes are checked before tokenizing,
 * which bounds how long one (synchronous) tokenizer call can hold the event loop.
 */
export const REQUEST_LIMITS = {
  maxMessages: 4096,
  /** UTF-8 bytes of all messages, the prompt, or all embedding inputs together. */
  maxPromptBytes: 1024 * 1024,
  maxEmbeddingInputs: 2048,
  maxAdapters: 8,
  maxStopStrings: 16,
  maxStopStringBytes: 1024,
  maxTokens: 1_000_000,
} as const;

/** INVALID_ARGUMENT naming the offending field by its proto name. */
function invalid(field: string, problem: string): LlmlbError {
  return new LlmlbError("INVALID_ARGUMENT", `${field} ${problem}`, { field });
}

/** A chat request whose roles are still plain strings (as they come off the wire). */
export type UncheckedChatInput = Omit<ChatInput, "messages"> & {
  messages: ReadonlyArray<{ role: string; content: string }>;
};

export function validateChatInput(input: UncheckedChatInput): ChatInput {
  validateTarget(input);
  validateSampling(input);
  if (input.messages.length === 0) throw invalid("messages", "must hold at least one message");
  if (input.messages.length > REQUEST_LIMITS.maxMessages) {
    throw invalid("messages", `holds ${input.messages.length} messages; at most ${REQUEST_LIMITS.maxMessages}`);
  }
  checkPromptBytes("messages", input.messages.map((m) => m.content));
  const messages = input.messages.map((message, i) => {
    const role = message.role as ChatRole;
    if (!ROLES.includes(role)) {
      throw invalid(`messages[${i}].role`, `must be "system", "user" or "assistant" (got ${JSON.stringify(message.role)})`);
    }
    return { role, content: message.content };
  });
  return { ...input, messages };
}

export function validateCompletionInput(input: CompletionInput): CompletionInput {
  validateTarget(input);
  validateSampling(input);
  checkPromptBytes("prompt", [input.prompt]);
  return input;
}

export function validateEmbedInput(input: EmbedInput): EmbedInput {
  validateTarget(input);
  if (input.inputs.length === 0) throw invalid("inputs", "must hold at least one text");
  if (input.inputs.length > REQUEST_LIMITS.maxEmbeddingInputs) {
    throw invalid("inputs", `holds ${input.inputs.length} texts; at most ${REQUEST_LIMITS.maxEmbeddingInputs} per request`);
  }
  checkPromptBytes("inputs", input.inputs);
  input.inputs.forEach((text, i) => {
    if (text.length === 0) throw invalid(`inputs[${i}]`, "is empty");
  });
  return input;
}

export function validateTarget(target: ModelTarget): void {
  if (!target.modelId) throw invalid("model_id", "is required");
  const adapters = target.adapterIds?.length ?? 0;
  if (adapters > REQUEST_LIMITS.maxAdapters) throw invalid("adapter_ids", `names ${adapters} adapters; at most ${REQUEST_LIMITS.maxAdapters}`);
  target.adapterIds?.forEach((id, i) => {
    if (!id) throw invalid(`adapter_ids[${i}]`, "is empty");
  });
}

function validateSampling(params: SamplingParams): void {
  const { maxTokens, temperature, topP, topK, presencePenalty, frequencyPenalty, stop } = params;
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 1 && maxTokens <= REQUEST_LIMITS.maxTokens)) {
    throw invalid("max_tokens", `must be an integer from 1 to ${REQUEST_LIMITS.maxTokens} (got ${maxTokens})`);
  }
  inRange("temperature", temperature, 0, 2);
  inRange("top_p", topP, 0, 1);
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 0)) {
    throw invalid("top_k", `must be an integer of at least 0 (got ${topK})`);
  }
  inRange("presence_penalty", presencePenalty, -2, 2);
  inRange("frequency_penalty", frequencyPenalty, -2, 2);
  if (stop && stop.length > REQUEST_LIMITS.maxStopStrings) throw invalid("stop", `holds ${stop.length} strings; at most ${REQUEST_LIMITS.maxStopStrings}`);
  stop?.forEach((s, i) => {
    if (s.length === 0) throw invalid(`stop[${i}]`, "is empty");
    if (Buffer.byteLength(s) > REQUEST_LIMITS.maxStopStringBytes) throw invalid(`stop[${i}]`, `is longer than ${REQUEST_LIMITS.maxStopStringBytes} bytes`);
  });
}

function checkPromptBytes(field: string, texts: readonly string[]): void {
  let bytes = 0;
  for (const text of texts) bytes += Buffer.byteLength(text);
  if (bytes > REQUEST_LIMITS.maxPromptBytes) {
    throw invalid(field, `holds ${bytes} bytes of text; at most ${REQUEST_LIMITS.maxPromptBytes} (1 MiB) per request`);
  }
}

function inRange(field: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!(Number.isFinite(value) && value >= min && value <= max)) {
    throw invalid(field, `must be between ${min} and ${max} (got ${value})`);
  }
}
