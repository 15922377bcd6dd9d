import { readdir } from "node:fs/promises";
import path from "node:path";
import type { ModelDirectory } from "../catalog/model-entry.js";
import { LlmlbError } from "../errors/index.js";
import type { AdapterLocator, ModelLocator } from "./types.js";

/** Installed models by id (the store's `getModel`). */
export interface InstalledModels {
  getModel(id: string): Promise<{ path: string } | undefined>;
}

/** Installed adapters by id (the store's `getAdapter`). */
export interface InstalledAdapters {
  getAdapter(id: string): Promise<{ path: string } | undefined>;
}

/** Obtains a model that is not installed: local sources, then remote ones (the resolver). */
export interface ModelResolver {
  resolve(spec: { modelId: string }, options: { signal: AbortSignal }): Promise<{ path: string }>;
}

/**
 * Catalog first (an unknown id is NOT_FOUND / MODEL_NOT_SUPPORTED), then the installed copy,
 * then the resolver, which downloads it with progress visible through Resolve and WatchModels.
 * With `noWait` a model that is not installed is UNAVAILABLE / MODEL_NOT_READY.
 */
export function catalogModelLocator(deps: {
  directory: ModelDirectory;
  installed?: InstalledModels;
  resolver?: ModelResolver;
}): ModelLocator {
  return {
    async locate(modelId, { signal, noWait }) {
      const entry = await deps.directory.get(modelId);
      if (!entry) {
        throw new LlmlbError(
          "MODEL_NOT_SUPPORTED",
          `model "${modelId}" is not in this node's catalog; list models with ListModels or register it with RegisterModel`,
          { model_id: modelId },
        );
      }
      const installed = await deps.installed?.getModel(modelId);
      if (installed) return { path: installed.path, entry };
      if (noWait || !deps.resolver) {
        throw new LlmlbError(
          "MODEL_NOT_READY",
          noWait
            ? `model "${modelId}" is not on this node yet and no_wait was set; pull it first or retry without no_wait`
            : `model "${modelId}" is not on this node and no resolver is configured to download it`,
          { model_id: modelId },
        );
      }
      const resolved = await deps.resolver.resolve({ modelId }, { signal });
      return { path: resolved.path, entry };
    },
  };
}

/** Adapters from the store when it has them, else the single .gguf in `<home>/adapters/<id>/`. */
export function storeAdapterLocator(home: string, installed?: InstalledAdapters): AdapterLocator {
  return {
    async locate(adapterId) {
      if (adapterId.includes("/") || adapterId.includes("\\") || adapterId.startsWith(".")) {
        throw new LlmlbError("INVALID_ADAPTER_REF", `adapter id "${adapterId}" is not an id; list adapters with ListAdapters`, {
          adapter_id: adapterId,
        });
      }
      const stored = await installed?.getAdapter(adapterId);
      if (stored) return stored.path;
      const dir = path.join(home, "adapters", adapterId);
      const ggufs = (await readdir(dir).catch(() => [])).filter((name) => name.endsWith(".gguf")).sort();
      const [first] = ggufs;
      if (!first) {
        throw new LlmlbError("ADAPTER_NOT_FOUND", `no adapter "${adapterId}" on this node; list adapters with ListAdapters`, {
          adapter_id: adapterId,
        });
      }
      return path.join(dir, first);
    },
  };
}
