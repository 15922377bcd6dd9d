import { LlmlbError } from "../errors/index.js";
import type { ChatInput, ChatRole, CompletionInput, EmbedInput, ModelTarget, SamplingParams } from "./types.js";

const ROLES: readonly ChatRole[] = ["system", "user", "assistant"];
const MAX_STOP_STRINGS = 16;

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
  return input;
}

export function validateEmbedInput(input: EmbedInput): EmbedInput {
  validateTarget(input);
  if (input.inputs.length === 0) throw invalid("inputs", "must hold at least one text");
  input.inputs.forEach((text, i) => {
    if (text.length === 0) throw invalid(`inputs[${i}]`, "is empty");
  });
  return input;
}

export function validateTarget(target: ModelTarget): void {
  if (!target.modelId) throw invalid("model_id", "is required");
  target.adapterIds?.forEach((id, i) => {
    if (!id) throw invalid(`adapter_ids[${i}]`, "is empty");
  });
}

function validateSampling(params: SamplingParams): void {
  const { maxTokens, temperature, topP, topK, presencePenalty, frequencyPenalty, stop } = params;
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 1)) {
    throw invalid("max_tokens", `must be an integer of at least 1 (got ${maxTokens})`);
  }
  inRange("temperature", temperature, 0, 2);
  inRange("top_p", topP, 0, 1);
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 0)) {
    throw invalid("top_k", `must be an integer of at least 0 (got ${topK})`);
  }
  inRange("presence_penalty", presencePenalty, -2, 2);
  inRange("frequency_penalty", frequencyPenalty, -2, 2);
  if (stop && stop.length > MAX_STOP_STRINGS) throw invalid("stop", `holds ${stop.length} strings; at most ${MAX_STOP_STRINGS}`);
  stop?.forEach((s, i) => {
    if (s.length === 0) throw invalid(`stop[${i}]`, "is empty");
  });
}

function inRange(field: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!(Number.isFinite(value) && value >= min && value <= max)) {
    throw invalid(field, `must be between ${min} and ${max} (got ${value})`);
  }
}
