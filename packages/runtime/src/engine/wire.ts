import type { NodeConfig } from "../config/index.js";
import type { NodeRuntime } from "../node-runtime.js";
import { createInferenceService } from "../services/inference-service.js";
import { InferenceEngine } from "./engine.js";
import { catalogModelLocator, storeAdapterLocator } from "./locators.js";
import type { EngineSettings } from "./types.js";

export function engineSettingsFrom(config: NodeConfig): EngineSettings {
  return {
    gpu: config.gpu,
    threads: config.threads,
    memoryBudget: config.memoryBudget,
    parallelism: config.parallelism,
    queueSize: config.queueSize,
  };
}

/**
 * Wires the inference engine into a runtime (after the store, resolver and catalog): sets
 * runtime.engine and runtime.services.inference, and unloads everything at close. llama.cpp
 * itself loads on the first request.
 */
export async function wireEngine(runtime: NodeRuntime): Promise<InferenceEngine> {
  const { config, store, resolver } = runtime;
  const engine = new InferenceEngine({
    settings: engineSettingsFrom(config),
    // runtime.models is read per request: the catalog may replace it after wiring.
    models: catalogModelLocator({ directory: { get: (id) => runtime.models.get(id) }, installed: store, resolver }),
    adapters: storeAdapterLocator(config.home, store),
    events: runtime.events,
    logger: runtime.logger.child({ component: "engine" }),
  });
  runtime.engine = engine;
  runtime.services.inference = createInferenceService(engine);
  runtime.onClose(() => engine.close());
  return engine;
}
