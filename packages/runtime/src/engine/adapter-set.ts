/** A set of LoRA adapters applied together; contexts are keyed by it. */
export interface AdapterSet {
  /** Sorted adapter ids joined by ","; "" for the bare model. */
  key: string;
  adapters: ReadonlyArray<{ id: string; path: string }>;
}

export const NO_ADAPTERS: AdapterSet = { key: "", adapters: [] };

/** Sorted, de-duplicated ids: the same adapters in any order share one context. */
export function adapterSetKey(ids: readonly string[]): string {
  return [...new Set(ids)].sort().join(",");
}
