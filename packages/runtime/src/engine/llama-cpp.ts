import type * as NodeLlamaCpp from "node-llama-cpp";

type LlamaCppModule = typeof NodeLlamaCpp;

let loaded: LlamaCppModule | undefined;
let loading: Promise<LlamaCppModule> | undefined;

/**
 * Imports node-llama-cpp on first use. Importing it costs ~45 MB and seconds of start-up, which
 * a process that never runs a model (the CLI's ls, a download, a plugin test) should not pay.
 */
export function importLlamaCpp(): Promise<LlamaCppModule> {
  loading ??= import("node-llama-cpp").then((module) => (loaded = module));
  return loading;
}

/** The module, for code that only runs once a model is loaded (so the import has happened). */
export function llamaCpp(): LlamaCppModule {
  if (!loaded) throw new Error("node-llama-cpp was used before importLlamaCpp() finished");
  return loaded;
}

/** The module if it was imported already, else undefined (for code that may run before any load). */
export function loadedLlamaCpp(): LlamaCppModule | undefined {
  return loaded;
}
