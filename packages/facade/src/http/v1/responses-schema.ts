import { REQUEST_LIMITS } from "@llmlb/runtime";
import { jsonSchemaFormatProperties, metadataSchema, promptCacheKeySchema, samplingProperties } from "./schemas.js";

/**
 * The body of POST /v1/responses (OpenAI's Responses API, stateless): the parts that map onto a
 * Chat call. Closed like every /v1 body: a field the node does not implement is a 400 naming it.
 */

/** Content parts of an input message: text only (an image, file or audio part is refused by name, see error-handler.ts). */
const contentPart = {
  type: "object",
  required: ["type"],
  properties: {
    type: { enum: ["input_text", "output_text", "refusal", "reasoning_text"] },
    text: { type: "string" },
    refusal: { type: "string" },
    /** What this node's own output_text parts carry, so an answer can be sent back as it came. */
    annotations: { type: "array", maxItems: 0 },
    logprobs: { type: "array" },
    /** The openai SDK's own parse of an output_text part, left on items it sends back (ignored). */
    parsed: {},
  },
  additionalProperties: false,
} as const;

const inputItem = {
  type: "object",
  properties: {
    type: { enum: ["message", "function_call", "function_call_output", "reasoning"] },
    /** Ids and statuses of items this node (or OpenAI) returned, sent back as they came; not used. */
    id: { type: "string" },
    status: { type: "string" },
    role: { enum: ["user", "assistant", "system", "developer"] },
    content: { anyOf: [{ type: "string" }, { type: "array", items: contentPart }] },
    call_id: { type: "string", minLength: 1, maxLength: 200 },
    name: { type: "string" },
    arguments: { type: "string" },
    /** The openai SDK's own parse of a call's arguments, left on items it sends back (ignored). */
    parsed_arguments: {},
    /** A function's result: text, or text parts (joined). */
    output: { anyOf: [{ type: "string" }, { type: "array", items: contentPart }] },
    summary: { type: "array", items: { type: "object", properties: { type: { const: "summary_text" }, text: { type: "string" } }, additionalProperties: false } },
    encrypted_content: { type: ["string", "null"] },
  },
  additionalProperties: false,
} as const;

/** Only function tools; the type is checked before the name, so a hosted tool (web_search…) is refused as such. */
const functionTool = {
  type: "object",
  required: ["type"],
  if: { properties: { type: { const: "function" } } },
  then: { required: ["name"] },
  properties: {
    type: { const: "function" },
    name: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" },
    description: { type: ["string", "null"] },
    parameters: { type: ["object", "null"] },
    /** Always honoured: the arguments are sampled from a grammar built from `parameters`. */
    strict: { type: ["boolean", "null"] },
  },
  additionalProperties: false,
} as const;

const textFormat = {
  type: "object",
  required: ["type"],
  properties: { type: { enum: ["text", "json_object", "json_schema"] }, ...jsonSchemaFormatProperties },
  additionalProperties: false,
} as const;

export const responsesBody = {
  type: "object",
  required: ["model", "input"],
  properties: {
    model: samplingProperties.model,
    input: { anyOf: [{ type: "string" }, { type: "array", minItems: 1, items: inputItem }] },
    instructions: { type: ["string", "null"] },
    max_output_tokens: { type: ["integer", "null"], minimum: 1, maximum: REQUEST_LIMITS.maxTokens },
    temperature: samplingProperties.temperature,
    top_p: samplingProperties.top_p,
    stream: { type: ["boolean", "null"] },
    tools: { type: "array", items: functionTool, maxItems: 128 },
    tool_choice: {
      anyOf: [
        { enum: ["none", "auto", "required"] },
        { type: "object", required: ["type", "name"], properties: { type: { const: "function" }, name: { type: "string" } }, additionalProperties: false },
      ],
    },
    parallel_tool_calls: { type: ["boolean", "null"] },
    text: { type: "object", properties: { format: textFormat }, additionalProperties: false },
    reasoning: {
      type: ["object", "null"],
      properties: {
        effort: { enum: ["none", "minimal", "low", "medium", "high", null] },
        /** Accepted; the node returns the model's whole reasoning text, not a summary. */
        summary: { enum: ["auto", "concise", "detailed", null] },
      },
      additionalProperties: false,
    },
    /** Nothing is ever stored; `previous_response_id` is therefore refused. */
    store: { type: ["boolean", "null"] },
    /** Accepted, echoed back; not used. */
    metadata: metadataSchema,
    user: samplingProperties.user,
    prompt_cache_key: promptCacheKeySchema,
    /** Accepted; nothing listed is produced (no encrypted reasoning, no logprobs here). */
    include: { type: ["array", "null"], items: { type: "string" } },
    truncation: { enum: ["disabled", null] },
    /** Extensions, as on /v1/chat/completions. */
    adapters: samplingProperties.adapters,
    wait_for_model: samplingProperties.wait_for_model,
    keep_alive: samplingProperties.keep_alive,
  },
  additionalProperties: false,
} as const;

export interface ResponsesContentPart {
  type: "input_text" | "output_text" | "refusal" | "reasoning_text";
  text?: string;
  refusal?: string;
}

export interface ResponsesInputItem {
  type?: "message" | "function_call" | "function_call_output" | "reasoning";
  role?: "user" | "assistant" | "system" | "developer";
  content?: string | ResponsesContentPart[];
  call_id?: string;
  name?: string;
  arguments?: string;
  output?: string | ResponsesContentPart[];
  summary?: Array<{ text?: string }>;
}

export interface ResponsesBody {
  model: string;
  input: string | ResponsesInputItem[];
  instructions?: string | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  stream?: boolean | null;
  tools?: Array<{ type: "function"; name: string; description?: string | null; parameters?: Record<string, unknown> | null; strict?: boolean | null }>;
  tool_choice?: "none" | "auto" | "required" | { type: "function"; name: string };
  parallel_tool_calls?: boolean | null;
  text?: { format?: { type: "text" | "json_object" | "json_schema"; name?: string; schema?: Record<string, unknown>; strict?: boolean | null } };
  reasoning?: { effort?: "none" | "minimal" | "low" | "medium" | "high" | null; summary?: string | null } | null;
  store?: boolean | null;
  metadata?: Record<string, string> | null;
  adapters?: string[];
  wait_for_model?: boolean;
  keep_alive?: string | number;
}
