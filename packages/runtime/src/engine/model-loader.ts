import type { GgufInsights, Llama, LlamaModel } from "node-llama-cpp";
import { importLlamaCpp, loadedLlamaCpp } from "./llama-cpp.js";
import { LlmlbError, isLlmlbError } from "../errors/index.js";
import { checkGgufFile } from "./gguf-check.js";

/** Trained context assumed for a GGUF that does not state one. */
const UNSTATED_TRAINED_CONTEXT = 4096;

export interface ModelPlan {
  insights: GgufInsights;
  /** Weights in memory (RAM + VRAM), by node-llama-cpp's estimate. */
  weightBytes: number;
  /** Tokens per sequence. */
  contextSize: number;
  /** One context of `sequences` sequences. */
  contextBytes: number;
}

/**
 * Checks the file (see checkGgufFile) and estimates what loading it will take. `contextSize` is
 * tokens per sequence, at most the trained length; 0 is the largest that fits the memory budget
 * next to the weights (node-llama-cpp's own fitting, with the budget as the memory it may use).
 */
export async function planModel(
  llama: Llama,
  path: string,
  options: { contextSize: number; sequences: number; budget: number },
): Promise<ModelPlan> {
  const info = await checkGgufFile(path, "model");
  const insights = await (await importLlamaCpp()).GgufInsights.from(info, llama);
  const trained = insights.trainContextSize ?? UNSTATED_TRAINED_CONTEXT;
  const gpuLayers = llama.gpu === false ? 0 : insights.totalLayers;
  const weights = await insights.estimateModelResourceRequirementsV2({ gpuLayers });
  const weightBytes = weights.cpuRam + weights.gpuVram;
  const contextSize =
    options.contextSize > 0
      ? Math.min(options.contextSize, trained)
      : await fitContextSize(insights, { trained, gpuLayers, sequences: options.sequences, room: options.budget - weightBytes, gpu: llama.gpu !== false });
  const context = await insights.estimateContextResourceRequirementsV2({
    contextSize,
    sequences: options.sequences,
    modelGpuLayers: gpuLayers,
  });
  return {
    insights,
    weightBytes,
    contextSize,
    contextBytes: context.cpuRam + context.gpuVram,
  };
}

/** The largest context up to the trained length whose sequences fit in `room` bytes (at least the smallest node-llama-cpp allows). */
async function fitContextSize(
  insights: GgufInsights,
  options: { trained: number; gpuLayers: number; sequences: number; room: number; gpu: boolean },
): Promise<number> {
  const free = Math.max(0, options.room);
  try {
    return await insights.configurationResolver.resolveContextContextSize("auto", {
      modelGpuLayers: options.gpuLayers,
      modelTrainContextSize: options.trained,
      sequences: options.sequences,
      getRamState: async () => ({ total: free, free }),
      getVramState: async () => (options.gpu ? { total: free, free, unifiedSize: 0 } : { total: 0, free: 0, unifiedSize: 0 }),
      getSwapState: async () => ({ total: 0, free: 0 }),
    });
  } catch {
    // Nothing fits: plan the smallest context and let the budget check explain what is missing.
    return Math.min(options.trained, MIN_FITTED_CONTEXT);
  }
}

const MIN_FITTED_CONTEXT = 256;

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
