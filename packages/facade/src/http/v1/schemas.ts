import { REQUEST_LIMITS } from "@llmlb/runtime";

/**
 * Request bodies of /v1. Every object is closed (`additionalProperties: false`): a field this node
 * does not implement is a 400 whose `param` names it, never silently dropped. Extensions beyond
 * OpenAI's API are marked; README lists them. Counts and sizes (messages, inputs, adapters, stop
 * strings, prompt bytes) are REQUEST_LIMITS, checked by the engine's one validation for gRPC and
 * HTTP alike.
 */

/** The most choices (`n`) one request may ask for. */
export const MAX_CHOICES = 4;
function keepAliveSchema() {
  return { anyOf: [{ type: "string", minLength: 1, maxLength: 32 }, { type: "number" }] } as const;
}

export const samplingProperties = {
  model: { type: "string", minLength: 1, maxLength: 200 },
  max_tokens: { type: ["integer", "null"], minimum: 1, maximum: REQUEST_LIMITS.maxTokens },
  temperature: { type: ["number", "null"], minimum: 0, maximum: 2 },
  top_p: { type: ["number", "null"], minimum: 0, maximum: 1 },
  /** Extension (llama-server, vLLM). */
  top_k: { type: ["integer", "null"], minimum: 0 },
  seed: { type: ["integer", "null"] },
  stop: {
    anyOf: [
      { type: "string", minLength: 1 },
      { type: "array", items: { type: "string", minLength: 1 } },
      { type: "null" },
    ],
  },
  n: { type: ["integer", "null"], minimum: 1, maximum: MAX_CHOICES },
  stream: { type: ["boolean", "null"] },
  stream_options: {
    type: ["object", "null"],
    properties: { include_usage: { type: "boolean" } },
    additionalProperties: false,
  },
  presence_penalty: { type: ["number", "null"], minimum: -2, maximum: 2 },
  frequency_penalty: { type: ["number", "null"], minimum: -2, maximum: 2 },
  /** Token id -> bias; -100 bans the token. */
  logit_bias: {
    type: ["object", "null"],
    propertyNames: { pattern: "^[0-9]{1,9}$" },
    additionalProperties: { type: "number", minimum: -100, maximum: 100 },
    maxProperties: 1024,
  },
  user: { type: ["string", "null"] },
  /** Extension: LoRA adapter ids on this node. */
  adapters: { type: "array", items: { type: "string", minLength: 1 } },
  /** Extension: fail with 503 instead of downloading a model that is not on disk yet. */
  wait_for_model: { type: "boolean" },
  /** Extension (as Ollama): how long the model stays loaded once idle, "5m" / seconds; 0 unloads, -1 keeps. */
  keep_alive: keepAliveSchema(),
} as const;

/** A text part, or (on an assistant turn, as OpenAI's API allows) a refusal part. */
const contentPart = {
  type: "object",
  required: ["type"],
  properties: { type: { enum: ["text", "refusal"] }, text: { type: "string" }, refusal: { type: "string" } },
  additionalProperties: false,
  if: { properties: { type: { const: "refusal" } } },
  then: { required: ["refusal"], properties: { text: false } },
  else: { required: ["text"], properties: { refusal: false } },
} as const;

const content = { anyOf: [{ type: "string" }, { type: "array", items: contentPart }, { type: "null" }] } as const;

const toolCall = {
  type: "object",
  required: ["id", "type", "function"],
  properties: {
    id: { type: "string", minLength: 1, maxLength: 200 },
    type: { const: "function" },
    function: {
      type: "object",
      required: ["name", "arguments"],
      properties: {
        name: { type: "string" },
        arguments: { type: "string" },
        /** The openai SDK's own parse of the arguments, left on calls it sends back (ignored). */
        parsed_arguments: {},
      },
      additionalProperties: false,
    },
    /** Left by SDKs that reassembled a streamed call (ignored). */
    index: { type: "integer" },
  },
  additionalProperties: false,
} as const;

const message = {
  type: "object",
  required: ["role"],
  properties: {
    role: { enum: ["system", "developer", "user", "assistant", "tool"] },
    content,
    name: { type: "string" },
    tool_calls: { anyOf: [{ type: "array", items: toolCall, maxItems: 128 }, { type: "null" }] },
    tool_call_id: { type: "string", minLength: 1 },
    /** Extension (llama-server, vLLM, DeepSeek): an assistant turn's thinking, sent back. */
    reasoning_content: { type: ["string", "null"] },
    /**
     * An assistant turn's refusal: OpenAI's answers carry one instead of content, and agents send
     * the message back as it came. It is the turn's text when the turn has no content.
     */
    refusal: { type: ["string", "null"] },
    annotations: { type: "array", maxItems: 0 },
    /** The openai SDK's own parse of a structured answer, left on messages it sends back (ignored). */
    parsed: {},
  },
  additionalProperties: false,
  // Only an assistant turn (one that made tool calls, or refused) may come without content, and only it carries a refusal.
  if: { properties: { role: { enum: ["system", "developer", "user", "tool"] } } },
  then: {
    required: ["content"],
    properties: { content: { anyOf: [{ type: "string" }, { type: "array", items: { type: "object", properties: { type: { const: "text" } } } }] }, refusal: { type: "null" } },
  },
} as const;

const tool = {
  type: "object",
  required: ["type", "function"],
  properties: {
    type: { const: "function" },
    function: {
      type: "object",
      required: ["name"],
      properties: {
        name: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" },
        description: { type: ["string", "null"] },
        parameters: { type: ["object", "null"] },
        /** Always honoured: the arguments are sampled from a grammar built from `parameters`. */
        strict: { type: ["boolean", "null"] },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const;

const toolChoice = {
  anyOf: [
    { enum: ["none", "auto", "required"] },
    {
      type: "object",
      required: ["type", "function"],
      properties: {
        type: { const: "function" },
        function: { type: "object", required: ["name"], properties: { name: { type: "string" } }, additionalProperties: false },
      },
      additionalProperties: false,
    },
    { type: "null" },
  ],
} as const;

/** A JSON schema output format's own fields: nested under `json_schema` in Chat Completions, beside `type` in the Responses API. */
export const jsonSchemaFormatProperties = {
  name: { type: "string", maxLength: 64 },
  description: { type: "string" },
  schema: { type: "object" },
  /** Always honoured: the output is sampled from a grammar built from `schema`. */
  strict: { type: ["boolean", "null"] },
} as const;

/** One object with `type` first, so a wrong type is answered with the three that exist. */
const responseFormat = {
  type: ["object", "null"],
  required: ["type"],
  properties: {
    type: { enum: ["text", "json_object", "json_schema"] },
    json_schema: {
      type: "object",
      required: ["name"],
      properties: jsonSchemaFormatProperties,
      additionalProperties: false,
    },
  },
  additionalProperties: false,
  if: { properties: { type: { const: "json_schema" } } },
  then: { required: ["json_schema"] },
} as const;

/** OpenAI's developer tags on a request (16 keys, values up to 512 characters): accepted and echoed or ignored, never stored. */
export const metadataSchema = { type: ["object", "null"], additionalProperties: { type: "string", maxLength: 512 }, maxProperties: 16 } as const;

/** Accepted: prompt-cache reuse is automatic (the longest cached prefix), a key adds nothing. */
export const promptCacheKeySchema = { type: "string" } as const;

export const chatCompletionBody = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    ...samplingProperties,
    max_completion_tokens: { type: ["integer", "null"], minimum: 1, maximum: REQUEST_LIMITS.maxTokens },
    messages: { type: "array", minItems: 1, items: message },
    tools: { type: ["array", "null"], items: tool, maxItems: 128 },
    tool_choice: toolChoice,
    parallel_tool_calls: { type: ["boolean", "null"] },
    response_format: responseFormat,
    reasoning_effort: { enum: ["none", "minimal", "low", "medium", "high", null] },
    /** Extension (vLLM, llama-server): only `enable_thinking` is understood. */
    chat_template_kwargs: { type: "object", properties: { enable_thinking: { type: "boolean" } }, additionalProperties: false },
    logprobs: { type: ["boolean", "null"] },
    top_logprobs: { type: ["integer", "null"], minimum: 0, maximum: 20 },
    /** Nothing is stored here, so only `false` is taken: a client asking to store is told so, not ignored. */
    store: { enum: [false, null] },
    metadata: metadataSchema,
    prompt_cache_key: promptCacheKeySchema,
  },
  additionalProperties: false,
} as const;

/** The most prompts one /v1/completions request may carry. */
export const MAX_PROMPTS = 16;

export const completionBody = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    ...samplingProperties,
    prompt: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, minItems: 1, maxItems: MAX_PROMPTS }] },
    echo: { type: ["boolean", "null"] },
    /** Completions' logprobs: how many alternatives per token (0-5). */
    logprobs: { type: ["integer", "null"], minimum: 0, maximum: 5 },
  },
  additionalProperties: false,
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
    encoding_format: { enum: ["float", "base64", null] },
    dimensions: { type: "integer", minimum: 1 },
    user: { type: ["string", "null"] },
    wait_for_model: { type: "boolean" },
    keep_alive: keepAliveSchema(),
  },
  additionalProperties: false,
} as const;

type ContentPart = { type: "text"; text: string } | { type: "refusal"; refusal: string };

export interface SamplingBody {
  model: string;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  adapters?: string[];
  wait_for_model?: boolean;
  keep_alive?: string | number;
}

export interface ToolCallBody {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface ChatMessageBody {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content?: string | ContentPart[] | null;
  tool_calls?: ToolCallBody[] | null;
  tool_call_id?: string;
  reasoning_content?: string | null;
  refusal?: string | null;
}

export interface ChatCompletionBody extends SamplingBody {
  messages: ChatMessageBody[];
  tools?: Array<{ type: "function"; function: { name: string; description?: string | null; parameters?: Record<string, unknown> | null } }> | null;
  tool_choice?: "none" | "auto" | "required" | { type: "function"; function: { name: string } } | null;
  parallel_tool_calls?: boolean | null;
  response_format?: { type: "text" | "json_object" } | { type: "json_schema"; json_schema: { name: string; schema?: Record<string, unknown> } } | null;
  reasoning_effort?: "none" | "minimal" | "low" | "medium" | "high" | null;
  chat_template_kwargs?: { enable_thinking?: boolean };
  logprobs?: boolean | null;
  top_logprobs?: number | null;
}

export interface CompletionBody extends SamplingBody {
  prompt: string | string[];
  echo?: boolean | null;
  logprobs?: number | null;
}

export interface EmbeddingBody {
  model: string;
  input: string | string[];
  encoding_format?: "float" | "base64" | null;
  dimensions?: number;
  wait_for_model?: boolean;
  keep_alive?: string | number;
}

export const rerankBody = {
  type: "object",
  required: ["model", "query", "documents"],
  properties: {
    model: { type: "string", minLength: 1, maxLength: 200 },
    query: { type: "string", minLength: 1 },
    documents: {
      type: "array",
      minItems: 1,
      maxItems: 1000,
      // Jina/Cohere clients may send {"text": ...} objects.
      items: { anyOf: [{ type: "string" }, { type: "object", required: ["text"], properties: { text: { type: "string" } } }] },
    },
    top_n: { type: "integer", minimum: 1 },
    return_documents: { type: "boolean" },
    wait_for_model: { type: "boolean" },
    keep_alive: keepAliveSchema(),
  },
  additionalProperties: false,
} as const;

export interface RerankBody {
  model: string;
  query: string;
  documents: Array<string | { text: string }>;
  top_n?: number;
  return_documents?: boolean;
  wait_for_model?: boolean;
  keep_alive?: string | number;
}

export const tokenizeBody = {
  type: "object",
  required: ["model", "content"],
  properties: {
    model: { type: "string", minLength: 1, maxLength: 200 },
    content: { type: "string" },
    add_special: { type: "boolean" },
  },
  additionalProperties: false,
} as const;

export interface TokenizeBody {
  model: string;
  content: string;
  add_special?: boolean;
}

export const detokenizeBody = {
  type: "object",
  required: ["model", "tokens"],
  properties: {
    model: { type: "string", minLength: 1, maxLength: 200 },
    tokens: { type: "array", items: { type: "integer", minimum: 0, maximum: 4294967295 }, maxItems: 1_000_000 },
  },
  additionalProperties: false,
} as const;

export interface DetokenizeBody {
  model: string;
  tokens: number[];
}
