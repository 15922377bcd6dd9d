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
 * What the catalog needs from the model store. wire.ts adapts the runtime's store to it; the
 * catalog never touches model files itself.
 */
export interface CatalogStorePort {
  /** Every model on disk (start-up scan). */
  listModels(): Promise<Array<{ id: string; local: LocalCopyInfo }>>;
  /** One model's copy on disk, or undefined. */
  getModel(id: string): Promise<LocalCopyInfo | undefined>;
  /** Removes a model's files; MODEL_IN_USE while it is loaded or downloading. */
  deleteModel(id: string): Promise<{ freedBytes: number }>;
  listAdapters(): Promise<AdapterInfo[]>;
  /** ADAPTER_NOT_FOUND when there is no such adapter. */
  deleteAdapter(id: string): Promise<{ freedBytes: number }>;
}
