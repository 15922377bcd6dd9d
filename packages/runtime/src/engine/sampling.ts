import { randomInt } from "node:crypto";
import type { LLamaChatGenerateResponseOptions, LlamaCompletionGenerationOptions } from "node-llama-cpp";
import type { SamplingParams } from "./types.js";

/** Temperature when a request sets none (the proto's documented default). */
export const DEFAULT_TEMPERATURE = 0.7;

type SharedOptions = Pick<
  LLamaChatGenerateResponseOptions & LlamaCompletionGenerationOptions,
  "maxTokens" | "temperature" | "topP" | "topK" | "seed" | "customStopTriggers" | "repeatPenalty"
>;

/**
 * node-llama-cpp generation options for our sampling parameters. node-llama-cpp's own repeat
 * penalty (1.1 over the last 64 tokens) is off unless presence/frequency penalties are asked for,
 * as in the OpenAI API these parameters come from.
 * Without a seed, each request samples with a random one: node-llama-cpp's own default is the
 * current second, which gave every request of the same second the same answer.
 */
export function samplingOptions(params: SamplingParams, maxTokens: number): SharedOptions {
  const penalized = Boolean(params.presencePenalty) || Boolean(params.frequencyPenalty);
  return {
    maxTokens,
    temperature: params.temperature ?? DEFAULT_TEMPERATURE,
    ...(params.topP !== undefined ? { topP: params.topP } : {}),
    ...(params.topK !== undefined ? { topK: params.topK } : {}),
    seed: params.seed ?? randomInt(2 ** 32),
    ...(params.stop && params.stop.length > 0 ? { customStopTriggers: [...params.stop] } : {}),
    repeatPenalty: penalized
      ? { penalty: 1, presencePenalty: params.presencePenalty ?? 0, frequencyPenalty: params.frequencyPenalty ?? 0 }
      : false,
  };
}
