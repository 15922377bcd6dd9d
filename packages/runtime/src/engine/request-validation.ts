import { invalidField } from "../errors/index.js";
import { MAX_TOP_LOGPROBS } from "./token-logprobs.js";
import type {
  ChatInput, ChatMessage, ChatRole, CompletionInput, DetokenizeInput, EmbedInput, ModelTarget, OutputParams, ReasoningOptions, RerankInput,
  SamplingParams, TokenizeInput, ToolChoice, ToolDefinition,
} from "./types.js";

const ROLES: readonly ChatRole[] = ["system", "user", "assistant", "tool"];
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_TOOLS = 128;
const EFFORTS = ["low", "medium", "high"];

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

/** A chat request whose roles are still plain strings (as they come off the wire). */
export type UncheckedChatInput = Omit<ChatInput, "messages"> & {
  messages: ReadonlyArray<Omit<ChatMessage, "role"> & { role: string }>;
};

export function validateChatInput(input: UncheckedChatInput): ChatInput {
  validateTarget(input);
  validateSampling(input);
  validateOutput(input);
  if (input.messages.length === 0) throw invalidField("messages", "must hold at least one message");
  if (input.messages.length > REQUEST_LIMITS.maxMessages) {
    throw invalidField("messages", `holds ${input.messages.length} messages; at most ${REQUEST_LIMITS.maxMessages}`);
  }
  checkPromptBytes("messages", promptTexts(input.messages));
  const messages = input.messages.map((message, i): ChatMessage => {
    const role = message.role as ChatRole;
    if (!ROLES.includes(role)) {
      throw invalidField(`messages[${i}].role`, `must be "system", "user", "assistant" or "tool" (got ${JSON.stringify(message.role)})`);
    }
    message.toolCalls?.forEach((call, j) => {
      if (role !== "assistant") throw invalidField(`messages[${i}].tool_calls`, "is only allowed on assistant messages");
      if (!call.id) throw invalidField(`messages[${i}].tool_calls[${j}].id`, "is required");
      if (!TOOL_NAME.test(call.name)) throw invalidField(`messages[${i}].tool_calls[${j}].function.name`, "must be 1-64 letters, digits, _ or -");
    });
    return { ...message, role };
  });
  validateTools(input.tools, input.toolChoice);
  validateReasoning(input.reasoning);
  return { ...input, messages };
}

export function validateCompletionInput(input: CompletionInput): CompletionInput {
  validateTarget(input);
  validateSampling(input);
  validateOutput(input);
  checkPromptBytes("prompt", [input.prompt]);
  return input;
}

/** Every text of a chat that reaches the prompt: contents, past thinking, tool-call arguments. */
export function promptTexts(messages: ReadonlyArray<Pick<ChatMessage, "content" | "reasoning" | "toolCalls">>): string[] {
  return messages.flatMap((m) => [m.content, m.reasoning ?? "", ...(m.toolCalls ?? []).map((call) => call.arguments)]);
}

export function validateEmbedInput(input: EmbedInput): EmbedInput {
  validateTarget(input);
  if (input.dimensions !== undefined && !(Number.isInteger(input.dimensions) && input.dimensions >= 1)) {
    throw invalidField("dimensions", `must be an integer of at least 1 (got ${input.dimensions})`);
  }
  if (input.inputs.length === 0) throw invalidField("inputs", "must hold at least one text");
  if (input.inputs.length > REQUEST_LIMITS.maxEmbeddingInputs) {
    throw invalidField("inputs", `holds ${input.inputs.length} texts; at most ${REQUEST_LIMITS.maxEmbeddingInputs} per request`);
  }
  checkPromptBytes("inputs", input.inputs);
  input.inputs.forEach((text, i) => {
    if (text.length === 0) throw invalidField(`inputs[${i}]`, "is empty");
  });
  return input;
}

export function validateRerankInput(input: RerankInput): RerankInput {
  validateTarget(input);
  if (input.query.length === 0) throw invalidField("query", "is empty");
  if (input.documents.length === 0) throw invalidField("documents", "must hold at least one document");
  checkPromptBytes("documents", [input.query, ...input.documents]);
  if (input.topN !== undefined && !(Number.isInteger(input.topN) && input.topN >= 1)) {
    throw invalidField("top_n", `must be an integer of at least 1 (got ${input.topN})`);
  }
  return input;
}

export function validateTokenizeInput(input: TokenizeInput): TokenizeInput {
  validateTarget(input);
  checkPromptBytes("content", [input.content]);
  return input;
}

export function validateDetokenizeInput(input: DetokenizeInput): DetokenizeInput {
  validateTarget(input);
  input.tokens.forEach((token, i) => {
    if (!(Number.isInteger(token) && token >= 0)) throw invalidField(`tokens[${i}]`, `must be a token id, a whole number of at least 0 (got ${token})`);
  });
  return input;
}

export function validateTarget(target: ModelTarget): void {
  if (!target.modelId) throw invalidField("model_id", "is required");
  const adapters = target.adapterIds?.length ?? 0;
  if (adapters > REQUEST_LIMITS.maxAdapters) throw invalidField("adapter_ids", `names ${adapters} adapters; at most ${REQUEST_LIMITS.maxAdapters}`);
  const keepAlive = target.keepAliveMs;
  if (keepAlive !== undefined && !(Number.isInteger(keepAlive) && keepAlive >= -1)) {
    throw invalidField("keep_alive", `must be a duration of at least 0, or -1 to keep the model loaded (got ${keepAlive} ms)`);
  }
  target.adapterIds?.forEach((id, i) => {
    if (!id) throw invalidField(`adapter_ids[${i}]`, "is empty");
  });
}

function validateSampling(params: SamplingParams): void {
  const { maxTokens, temperature, topP, topK, presencePenalty, frequencyPenalty, stop } = params;
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 1 && maxTokens <= REQUEST_LIMITS.maxTokens)) {
    throw invalidField("max_tokens", `must be an integer from 1 to ${REQUEST_LIMITS.maxTokens} (got ${maxTokens})`);
  }
  inRange("temperature", temperature, 0, 2);
  inRange("top_p", topP, 0, 1);
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 0)) {
    throw invalidField("top_k", `must be an integer of at least 0 (got ${topK})`);
  }
  inRange("presence_penalty", presencePenalty, -2, 2);
  inRange("frequency_penalty", frequencyPenalty, -2, 2);
  if (stop && stop.length > REQUEST_LIMITS.maxStopStrings) throw invalidField("stop", `holds ${stop.length} strings; at most ${REQUEST_LIMITS.maxStopStrings}`);
  stop?.forEach((s, i) => {
    if (s.length === 0) throw invalidField(`stop[${i}]`, "is empty");
    if (Buffer.byteLength(s) > REQUEST_LIMITS.maxStopStringBytes) throw invalidField(`stop[${i}]`, `is longer than ${REQUEST_LIMITS.maxStopStringBytes} bytes`);
  });
}

function checkPromptBytes(field: string, texts: readonly string[]): void {
  let bytes = 0;
  for (const text of texts) bytes += Buffer.byteLength(text);
  if (bytes > REQUEST_LIMITS.maxPromptBytes) {
    throw invalidField(field, `holds ${bytes} bytes of text; at most ${REQUEST_LIMITS.maxPromptBytes} (1 MiB) per request`);
  }
}

function validateTools(tools: readonly ToolDefinition[] | undefined, choice: ToolChoice | undefined): void {
  const names = new Set<string>();
  if (tools && tools.length > MAX_TOOLS) throw invalidField("tools", `holds ${tools.length} tools; at most ${MAX_TOOLS}`);
  tools?.forEach((tool, i) => {
    if (!TOOL_NAME.test(tool.name)) throw invalidField(`tools[${i}].function.name`, `must be 1-64 letters, digits, _ or - (got ${JSON.stringify(tool.name)})`);
    if (names.has(tool.name)) throw invalidField(`tools[${i}].function.name`, `"${tool.name}" is defined twice`);
    names.add(tool.name);
    checkToolParameters(tool.parameters, `tools[${i}].function.parameters`);
  });
  if (choice === undefined || choice === "auto" || choice === "none") return;
  if (names.size === 0) throw invalidField("tool_choice", "asks for a tool call but no tools are given");
  if (typeof choice === "object" && !names.has(choice.function)) {
    throw invalidField("tool_choice", `names the function "${choice.function}", which is not in tools`);
  }
}

/** Keywords that let a schema's root be something other than an object. */
const ROOT_ALTERNATIVES = ["anyOf", "oneOf", "allOf", "$ref", "enum", "const"];

/**
 * A function's arguments are a JSON object of named parameters (what OpenAI's API requires, and what
 * agents parse them into). A schema without "type" is read as an object (chatFunctions adds it), so
 * it may not offer other root alternatives.
 */
function checkToolParameters(params: unknown, field: string): void {
  if (params === undefined) return;
  if (typeof params !== "object" || params === null || Array.isArray(params)) throw invalidField(field, "must be a JSON Schema object");
  const { type } = params as Record<string, unknown>;
  const example = `{"type":"object","properties":{"value":<your schema>},"required":["value"]}`;
  if (type !== undefined && type !== "object") {
    throw invalidField(field, `must describe an object (its "type" is ${JSON.stringify(type)}): a function's arguments are named parameters; put the value in one, e.g. ${example}`);
  }
  const alternative = type === undefined ? ROOT_ALTERNATIVES.find((keyword) => keyword in params) : undefined;
  if (alternative) {
    throw invalidField(field, `must describe an object: add "type": "object" at its root, or move "${alternative}" into a property, e.g. ${example}`);
  }
}

function validateReasoning(reasoning: ReasoningOptions | undefined): void {
  if (!reasoning) return;
  if (reasoning.effort !== undefined && !EFFORTS.includes(reasoning.effort)) {
    throw invalidField("reasoning_effort", `must be "low", "medium" or "high" (got ${JSON.stringify(reasoning.effort)})`);
  }
  const budget = reasoning.budgetTokens;
  if (budget !== undefined && !(Number.isInteger(budget) && budget >= 0)) throw invalidField("reasoning.budget_tokens", `must be an integer of at least 0 (got ${budget})`);
}

function validateOutput(params: OutputParams): void {
  const { topLogprobs, logitBias, responseFormat } = params;
  if (topLogprobs !== undefined) {
    if (!(Number.isInteger(topLogprobs) && topLogprobs >= 0 && topLogprobs <= MAX_TOP_LOGPROBS)) {
      throw invalidField("top_logprobs", `must be an integer from 0 to ${MAX_TOP_LOGPROBS} (got ${topLogprobs})`);
    }
    if (!params.logprobs && topLogprobs > 0) throw invalidField("top_logprobs", "needs logprobs: true");
  }
  for (const [token, bias] of Object.entries(logitBias ?? {})) {
    if (!/^\d+$/.test(token)) throw invalidField("logit_bias", `keys must be token ids (got ${JSON.stringify(token)})`);
    inRange(`logit_bias.${token}`, bias, -100, 100);
  }
  if (responseFormat?.type === "json_schema") {
    const schema: unknown = responseFormat.schema;
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
      throw invalidField("response_format.json_schema.schema", "must be a JSON Schema object");
    }
  }
}

function inRange(field: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!(Number.isFinite(value) && value >= min && value <= max)) {
    throw invalidField(field, `must be between ${min} and ${max} (got ${value})`);
  }
}
