import { adapterNotFound } from "../errors/index.js";
import type { CachedModel, Store } from "../store/store.js";
import type { LocalCopyInfo } from "./model-states.js";

/** A LoRA adapter on disk, as the catalog lists it. */
export interface AdapterInfo {
  id: string;
  ref: string;
  path: string;
  sizeBytes: number;
  sha256?: string;
  source?: string;
  /** Epoch milliseconds. */
  downloadedAt?: number;
}

/**
 * What the catalog needs from the model store. storePort() adapts the store to it; the
 * catalog never touches model files itself.
 */
export interface CatalogStorePort {
  /** Every model on disk (start-up scan). */
  listModels(): Promise<Array<{ id: string; local: LocalCopyInfo }>>;
  /** One model's copy on disk, or undefined. */
  getModel(id: string): Promise<LocalCopyInfo | undefined>;
  /** Ids of the models with a directory in the store (one readdir). */
  modelIdsOnDisk(): Promise<string[]>;
  /** Removes a model's files; MODEL_IN_USE while it is loaded or downloading. */
  deleteModel(id: string): Promise<{ freedBytes: number }>;
  listAdapters(): Promise<AdapterInfo[]>;
  /** ADAPTER_NOT_FOUND when there is no such adapter. */
  deleteAdapter(id: string): Promise<{ freedBytes: number }>;
}

/** The store methods the catalog uses. */
export type CatalogStore = Pick<Store, "listModels" | "getModel" | "deleteModel" | "listAdapters" | "getAdapter" | "deleteAdapter" | "models">;

function localOf(m: CachedModel): LocalCopyInfo {
  return {
    path: m.path,
    sizeOnDiskBytes: m.sizeBytes,
    downloadedAt: m.downloadedAt.getTime(),
    source: m.source,
    verified: m.verified,
    ...(m.revision ? { revision: m.revision } : {}),
  };
}

/** The store seen through the catalog's port (freed bytes, ADAPTER_NOT_FOUND, epoch times). */
export function storePort(store: CatalogStore): CatalogStorePort {
  return {
    listModels: async () => (await store.listModels()).map((m) => ({ id: m.id, local: localOf(m) })),
    getModel: async (id) => {
      const m = await store.getModel(id);
      return m && localOf(m);
    },
    modelIdsOnDisk: () => store.models.ids(),
    deleteModel: async (id) => {
      const before = await store.getModel(id);
      // An interrupted download is deleted too: its bytes are freed as well.
      const partial = await store.models.partialBytes(id);
      const removed = await store.deleteModel(id);
      return { freedBytes: removed ? (before?.sizeBytes ?? 0) + partial : 0 };
    },
    listAdapters: async () =>
      (await store.listAdapters()).map((a) => ({
        id: a.id,
        ref: a.ref,
        path: a.path,
        sizeBytes: a.sizeBytes,
        sha256: a.sha256,
        source: a.source,
        downloadedAt: a.downloadedAt.getTime(),
      })),
    deleteAdapter: async (id) => {
      const before = await store.getAdapter(id);
      if (!(await store.deleteAdapter(id))) {
        throw adapterNotFound(id);
      }
      return { freedBytes: before?.sizeBytes ?? 0 };
    },
  };
}
