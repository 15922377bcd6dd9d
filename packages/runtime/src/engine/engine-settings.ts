import type { NodeConfig } from "../config/index.js";
import type { EngineSettings } from "./types.js";

/** The engine's part of the node configuration. */
export function engineSettingsFrom(config: NodeConfig): EngineSettings {
  return {
    gpu: config.gpu,
    threads: config.threads,
    memoryBudget: config.memoryBudget,
    parallelism: config.parallelism,
    queueSize: config.queueSize,
    contextSize: config.contextSize,
    keepAliveMs: config.keepAlive,
    streamIntervalMs: config.streamIntervalMs,
  };
}
