import type { ModelEntry } from "../catalog/model-entry.js";
import type { GpuChoice } from "../config/index.js";
import type { GpuBackend } from "./llama-backend.js";

/** What the engine needs from the configuration. */
export interface EngineSettings {
  gpu: GpuChoice;
  /** CPU threads per context; 0 picks one less than the number of cores. */
  threads: number;
  /** Bytes for loaded models and their contexts; 0 means 80% of the free memory at start. */
  memoryBudget: number;
  /** Requests one model serves at once (context sequences per context). */
  parallelism: number;
  /** Requests that may wait per model before QUEUE_FULL. */
  queueSize: number;
  /** Tokens per sequence for models whose catalog entry names none; 0 fits the memory budget (up to the trained length). */
  contextSize: number;
  /** Milliseconds an idle model stays loaded when a request does not say; 0 unloads at once, -1 never. */
  keepAliveMs: number;
  /** Shortest time between two deltas of one stream (faster text is joined); 0 sends every token. */
  streamIntervalMs: number;
}

/** Where a model's file is, resolving (downloading) it first when the node does not have it. */
export interface ModelLocator {
  /**
   * Throws NOT_FOUND / MODEL_NOT_SUPPORTED for an id the catalog does not know, CAPABILITY_MISSING
   * for a model without `capability` (before downloading it), and with `localOnly` UNAVAILABLE /
   * MODEL_NOT_READY when the file is not on disk yet.
   */
  locate(modelId: string, options: { signal: AbortSignal; localOnly: boolean; capability?: ModelEntry["capabilities"][number] }): Promise<LocatedModel>;
}

export interface LocatedModel {
  path: string;
  entry: ModelEntry;
}

/** Where an adapter's GGUF file is; throws NOT_FOUND / ADAPTER_NOT_FOUND for an unknown id. */
export interface AdapterLocator {
  locate(adapterId: string, options: { signal: AbortSignal }): Promise<string>;
}

export interface ModelTarget {
  modelId: string;
  /** Adapters applied on top of the model; order does not matter. */
  adapterIds?: readonly string[];
  /** Fail with MODEL_NOT_READY instead of resolving a model that is not on disk. */
  noWait?: boolean;
  /** Milliseconds the model stays loaded once idle after this request (0 at once, -1 forever); unset: the node's default. */
  keepAliveMs?: number;
}

export interface SamplingParams {
  /** Upper bound of generated tokens; unset means until the end of the context. */
  maxTokens?: number;
  /** 0 is greedy; unset means 0.7. */
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  /** Generation stops before any of these strings. */
  stop?: readonly string[];
  presencePenalty?: number;
  frequencyPenalty?: number;
}

export type ChatRole = "system" | "user" | "assistant" | "tool";

/** A tool call of an assistant message (arguments as JSON text). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** Assistant messages: the calls they made. */
  toolCalls?: readonly ToolCall[];
  /** Tool messages: the call whose result `content` is. */
  toolCallId?: string;
  /** Assistant messages: their thinking. */
  reasoning?: string;
}

/** JSON Schema as plain data (it crosses process boundaries by structured clone). */
export type JsonSchema = { readonly [keyword: string]: unknown };

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments; unset means none. */
  parameters?: JsonSchema;
}

export type ToolChoice = "auto" | "none" | "required" | { function: string };

export type ResponseFormat = { type: "text" } | { type: "json_object" } | { type: "json_schema"; schema: JsonSchema; name?: string };

export type ReasoningEffort = "low" | "medium" | "high";

export interface ReasoningOptions {
  effort?: ReasoningEffort;
  /** false: no thinking; unset: as the template does. */
  enabled?: boolean;
  /** Upper bound of thought tokens; wins over effort. */
  budgetTokens?: number;
}

/** Output controls shared by chat and completion. */
export interface OutputParams {
  responseFormat?: ResponseFormat;
  /** Log probability of each generated token. */
  logprobs?: boolean;
  /** With logprobs: this many most likely alternatives per token (0-20). */
  topLogprobs?: number;
  /** Token id -> bias (-100..100) added to its logit; -100 bans it. */
  logitBias?: Readonly<Record<number, number>>;
}

export interface ChatInput extends ModelTarget, SamplingParams, OutputParams {
  messages: readonly ChatMessage[];
  tools?: readonly ToolDefinition[];
  /** Default "auto" when tools are given. */
  toolChoice?: ToolChoice;
  /** false: at most one call per answer. */
  parallelToolCalls?: boolean;
  reasoning?: ReasoningOptions;
}

export interface CompletionInput extends ModelTarget, SamplingParams, OutputParams {
  prompt: string;
}

export interface EmbedInput extends ModelTarget {
  inputs: readonly string[];
  /** Truncate each vector to this many values and renormalise it. */
  dimensions?: number;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Prompt tokens reused from the sequence's cache (a shared prefix), not evaluated again. */
  cachedPromptTokens?: number;
}

export interface RerankInput extends ModelTarget {
  query: string;
  documents: readonly string[];
  /** Only the best this many; unset means all. */
  topN?: number;
}

export interface RerankResult {
  /** Best first; `index` is the document's position in the request. */
  results: Array<{ index: number; relevanceScore: number }>;
  usage: TokenUsage;
}

export interface TokenizeInput extends ModelTarget {
  content: string;
  /** Add the special tokens (BOS) a prompt would start with. */
  addSpecial?: boolean;
}

export interface DetokenizeInput extends ModelTarget {
  tokens: readonly number[];
}

export type FinishReason = "stop" | "length" | "tool_calls";

/** A piece of a tool call: the first of a call has id and name, later ones more arguments text. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  arguments: string;
}

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface TokenLogprob extends TopLogprob {
  topLogprobs: TopLogprob[];
}

/** What a generation produced since the last delta; empty parts are omitted. */
export interface DeltaParts {
  text: string;
  reasoning?: string;
  toolCalls?: ToolCallDelta[];
  logprobs?: TokenLogprob[];
}

/** A streamed generation: deltas (text never splits a character), then one end. */
export type GenerationEvent =
  | ({ type: "delta" } & DeltaParts)
  | { type: "end"; finishReason: FinishReason; usage: TokenUsage };

export interface EmbedResult {
  embeddings: number[][];
  dimensions: number;
  usage: TokenUsage;
}

export interface RequestOptions {
  /** Cancels the request: queued, loading or generating. */
  signal?: AbortSignal;
}

export interface LoadedModelInfo {
  modelId: string;
  /** Estimated memory of weights and live contexts. */
  memoryBytes: number;
  loadedAt: Date;
  lastUsedAt: Date;
  activeRequests: number;
  queuedRequests: number;
  parallelism: number;
  /** Adapter sets with a live context, each as its sorted adapter ids joined by ","; "" is the bare model. */
  adapterSets: string[];
  gpu: GpuBackend;
  /** Tokens generated since the model was loaded (all requests). */
  generatedTokens: number;
  /** Tokens per request (sequence). */
  contextSize: number;
  /** When the idle model unloads; undefined while it serves requests or when kept loaded. */
  expiresAt?: Date;
}
