import os from "node:os";
import type { Llama, LlamaLogLevel, LlamaOptions } from "node-llama-cpp";
import { importLlamaCpp } from "./llama-cpp.js";
import type { GpuChoice } from "../config/index.js";
import { LlmlbError } from "../errors/index.js";
import type { Logger } from "../logging/index.js";

/** "cpu", "cuda", "metal" or "vulkan": what the loaded llama.cpp binary computes on. */
export type GpuBackend = "cpu" | "cuda" | "metal" | "vulkan";

/** 0 means one less than the number of cores (leaving one for the event loop), at least 1. */
export function resolveThreads(threads: number): number {
  return threads > 0 ? threads : Math.max(1, os.availableParallelism() - 1);
}

/**
 * The node-llama-cpp options for a GPU choice (LLMLB_GPU) and thread count (LLMLB_THREADS).
 * `build: "never"`: a request must never trigger a multi-minute compile of llama.cpp; a local build
 * made with `npx node-llama-cpp source build` is still picked up.
 */
export function llamaOptionsFor(gpu: GpuChoice, threads: number): LlamaOptions {
  return {
    gpu: gpu === "cpu" ? false : gpu,
    build: "never",
    maxThreads: resolveThreads(threads),
    progressLogs: false,
  };
}

export function backendOf(llama: Llama): GpuBackend {
  return llama.gpu === false ? "cpu" : llama.gpu;
}

/**
 * Loads llama.cpp for the configured GPU choice. An explicit backend that cannot be used fails
 * with a message naming LLMLB_GPU: node-llama-cpp either finds no binary for it, or (Metal off
 * macOS) silently falls back to the CPU, which we refuse so a misconfiguration is never hidden.
 */
export async function loadLlama(gpu: GpuChoice, threads: number, logger: Logger): Promise<Llama> {
  const options: LlamaOptions = {
    ...llamaOptionsFor(gpu, threads),
    logLevel: "warn" as LlamaLogLevel,
    logger: (level, message) => logLlamaCpp(logger, level, message),
  };
  let llama: Llama;
  try {
    llama = await (await importLlamaCpp()).getLlama(options);
  } catch (err) {
    throw unusableGpu(gpu, err instanceof Error ? `${err.name}: ${err.message}` : String(err), err);
  }
  const backend = backendOf(llama);
  if (gpu !== "auto" && gpu !== backend) {
    await llama.dispose();
    throw unusableGpu(gpu, `node-llama-cpp loaded the ${backend} backend instead`);
  }
  logger.info({ gpu: backend, maxThreads: llama.maxThreads }, "llama.cpp loaded");
  return llama;
}

function unusableGpu(gpu: GpuChoice, detail: string, cause?: unknown): LlmlbError {
  const fix = gpu === "auto" || gpu === "cpu" ? "check the node-llama-cpp installation" : "set LLMLB_GPU=auto or LLMLB_GPU=cpu";
  return new LlmlbError(
    "INVALID_CONFIG",
    `LLMLB_GPU=${gpu}: llama.cpp cannot run with this GPU choice on this machine (${detail}); ${fix}`,
    { setting: "LLMLB_GPU", value: gpu },
    { cause },
  );
}

function logLlamaCpp(logger: Logger, level: LlamaLogLevel, message: string): void {
  const text = message.trimEnd();
  if (!text) return;
  if (level === "error" || level === "fatal") logger.error({ component: "llama.cpp" }, text);
  else if (level === "warn") logger.warn({ component: "llama.cpp" }, text);
  else logger.debug({ component: "llama.cpp" }, text);
}
