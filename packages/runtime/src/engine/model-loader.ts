import type { GgufInsights, Llama, LlamaModel } from "node-llama-cpp";
import { importLlamaCpp, loadedLlamaCpp } from "./llama-cpp.js";
import { LlmlbError, isLlmlbError } from "../errors/index.js";
import { checkGgufFile } from "./gguf-check.js";

/** Per-sequence context when the settings name none: the training context, at most this. */
export const DEFAULT_MAX_CONTEXT = 8192;

export interface ModelPlan {
  insights: GgufInsights;
  /** Weights in memory (RAM + VRAM), by node-llama-cpp's estimate. */
  weightBytes: number;
  /** Tokens per sequence. */
  contextSize: number;
  /** One context of `sequences` sequences. */
  contextBytes: number;
}

/** Checks the file (see checkGgufFile) and estimates what loading it will take. */
export async function planModel(
  llama: Llama,
  path: string,
  options: { contextSize?: number; sequences: number },
): Promise<ModelPlan> {
  const info = await checkGgufFile(path, "model");
  const insights = await (await importLlamaCpp()).GgufInsights.from(info, llama);
  const trained = insights.trainContextSize ?? DEFAULT_MAX_CONTEXT;
  const contextSize = Math.min(options.contextSize ?? DEFAULT_MAX_CONTEXT, trained);
  const gpuLayers = llama.gpu === false ? 0 : insights.totalLayers;
  const weights = await insights.estimateModelResourceRequirementsV2({ gpuLayers });
  const context = await insights.estimateContextResourceRequirementsV2({
    contextSize,
    sequences: options.sequences,
    modelGpuLayers: gpuLayers,
  });
  return {
    insights,
    weightBytes: weights.cpuRam + weights.gpuVram,
    contextSize,
    contextBytes: context.cpuRam + context.gpuVram,
  };
}

export async function openModel(llama: Llama, path: string, signal?: AbortSignal): Promise<LlamaModel> {
  try {
    return await llama.loadModel({ modelPath: path, loadSignal: signal });
  } catch (err) {
    throw asEngineError(err, `llama.cpp could not load ${path}`);
  }
}

/** Maps node-llama-cpp failures to our reasons; anything unrecognised means the file is unusable. */
export function asEngineError(err: unknown, what: string): unknown {
  if (isLlmlbError(err) || (err instanceof Error && err.name === "AbortError")) return err;
  const detail = err instanceof Error ? err.message : String(err);
  const insufficientMemory = loadedLlamaCpp()?.InsufficientMemoryError;
  if (insufficientMemory && err instanceof insufficientMemory) {
    return new LlmlbError("INSUFFICIENT_MEMORY", `${what}: not enough memory on this machine (${detail})`, {}, { cause: err });
  }
  return new LlmlbError("INVALID_MODEL_FILE", `${what}: ${detail}`, {}, { cause: err });
}
