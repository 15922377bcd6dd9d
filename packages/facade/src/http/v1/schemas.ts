import { REQUEST_LIMITS } from "@llmlb/runtime";

/**
 * Request shapes of /v1. Counts and sizes (messages, inputs, adapters, stop strings, prompt bytes)
 * are REQUEST_LIMITS, checked by the engine's one validation for gRPC and HTTP alike.
 */
const samplingProperties = {
  model: { type: "string", minLength: 1, maxLength: 200 },
  max_tokens: { type: ["integer", "null"], minimum: 1, maximum: REQUEST_LIMITS.maxTokens },
  temperature: { type: ["number", "null"], minimum: 0, maximum: 2 },
  top_p: { type: ["number", "null"], minimum: 0, maximum: 1 },
  top_k: { type: ["integer", "null"], minimum: 0 },
  seed: { type: ["integer", "null"] },
  stop: {
    anyOf: [
      { type: "string", minLength: 1 },
      { type: "array", items: { type: "string", minLength: 1 } },
      { type: "null" },
    ],
  },
  n: { type: ["integer", "null"], minimum: 1, maximum: 1 },
  stream: { type: ["boolean", "null"] },
  stream_options: {
    type: ["object", "null"],
    properties: { include_usage: { type: "boolean" } },
  },
  presence_penalty: { type: ["number", "null"], minimum: -2, maximum: 2 },
  frequency_penalty: { type: ["number", "null"], minimum: -2, maximum: 2 },
  user: { type: "string" },
  /** Extension: LoRA adapter ids on this node. */
  adapters: { type: "array", items: { type: "string", minLength: 1 } },
  /** Extension: fail with 503 instead of downloading a model that is not on disk yet. */
  wait_for_model: { type: "boolean" },
} as const;

const textPart = {
  type: "object",
  required: ["type", "text"],
  properties: { type: { const: "text" }, text: { type: "string" } },
} as const;

export const chatCompletionBody = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    ...samplingProperties,
    max_completion_tokens: { type: ["integer", "null"], minimum: 1, maximum: REQUEST_LIMITS.maxTokens },
    messages: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        required: ["role", "content"],
        properties: {
          role: { enum: ["system", "developer", "user", "assistant"] },
          content: { anyOf: [{ type: "string" }, { type: "array", items: textPart }] },
          name: { type: "string" },
        },
      },
    },
  },
} as const;

export const completionBody = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    ...samplingProperties,
    prompt: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, minItems: 1, maxItems: 1 }] },
    echo: { type: "boolean", const: false },
  },
} as const;

export const embeddingBody = {
  type: "object",
  required: ["model", "input"],
  properties: {
    model: { type: "string", minLength: 1, maxLength: 200 },
    input: {
      anyOf: [
        { type: "string" },
        { type: "array", items: { type: "string" }, minItems: 1 },
      ],
    },
    encoding_format: { enum: ["float", "base64"] },
    dimensions: { type: "integer", minimum: 1 },
    user: { type: "string" },
    wait_for_model: { type: "boolean" },
  },
} as const;

type TextPart = { type: "text"; text: string };

export interface SamplingBody {
  model: string;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  adapters?: string[];
  wait_for_model?: boolean;
}

export interface ChatCompletionBody extends SamplingBody {
  messages: Array<{ role: string; content: string | TextPart[] }>;
}

export interface CompletionBody extends SamplingBody {
  prompt: string | string[];
}

export interface EmbeddingBody {
  model: string;
  input: string | string[];
  encoding_format?: "float" | "base64";
  dimensions?: number;
  wait_for_model?: boolean;
}
