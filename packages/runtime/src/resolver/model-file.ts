import { requireCapability, type ModelDirectory, type ModelEntry } from "../catalog/model-entry.js";
import { modelNotReady, modelNotSupported } from "../errors/index.js";

/** Installed models by id (the store's `getModel`). */
export interface InstalledModels {
  getModel(id: string): Promise<{ path: string } | undefined>;
}

export interface ModelFileOptions {
  signal?: AbortSignal;
  /** Only a copy already on disk will do (wait_for_model: false): MODEL_NOT_READY otherwise. */
  localOnly?: boolean;
  /** What the request needs the model to do: CAPABILITY_MISSING (before any download) when its entry does not list it. */
  capability?: ModelEntry["capabilities"][number];
}

export interface ModelFile {
  path: string;
  entry: ModelEntry;
}

export interface ModelFileDeps {
  /** The catalog. */
  directory: ModelDirectory;
  installed: InstalledModels;
  /** Brings a catalog model that is not installed onto disk (the resolver's source chain). */
  obtain?: (entry: ModelEntry, signal: AbortSignal | undefined) => Promise<{ path: string }>;
}

/**
 * The one path from a model id to its file: the catalog (an unknown id is MODEL_NOT_SUPPORTED, a
 * model without the capability asked for CAPABILITY_MISSING), then the installed copy, then —
 * unless `localOnly` — the source chain, whose download shows through Resolve and WatchModels.
 */
export async function modelFile(deps: ModelFileDeps, modelId: string, options: ModelFileOptions = {}): Promise<ModelFile> {
  const entry = await deps.directory.get(modelId);
  if (!entry) throw modelNotSupported(modelId);
  requireCapability(entry, options.capability);
  const installed = await deps.installed.getModel(modelId);
  if (installed) return { path: installed.path, entry };
  if (options.localOnly) throw modelNotReady(modelId, "no-wait");
  if (!deps.obtain) throw modelNotReady(modelId, "no-resolver");
  return { path: (await deps.obtain(entry, options.signal)).path, entry };
}
