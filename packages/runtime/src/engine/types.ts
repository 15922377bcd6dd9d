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
  /** Tokens per sequence; defaults to the model's training context, at most 8192. */
  contextSize?: number;
}

/** Where a model's file is, resolving (downloading) it first when the node does not have it. */
export interface ModelLocator {
  /**
   * Throws NOT_FOUND / MODEL_NOT_SUPPORTED for an id the catalog does not know, and with
   * `localOnly` UNAVAILABLE / MODEL_NOT_READY when the file is not on disk yet.
   */
  locate(modelId: string, options: { signal: AbortSignal; localOnly: boolean }): Promise<LocatedModel>;
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

export type ChatRole = "system" | "user" | "assistant";

export interface ChatInput extends ModelTarget, SamplingParams {
  messages: ReadonlyArray<{ role: ChatRole; content: string }>;
}

export interface CompletionInput extends ModelTarget, SamplingParams {
  prompt: string;
}

export interface EmbedInput extends ModelTarget {
  inputs: readonly string[];
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export type FinishReason = "stop" | "length";

/** A streamed generation: text deltas (never splitting a character), then one end. */
export type GenerationEvent =
  | { type: "delta"; text: string }
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
}
