/** What the catalog knows about one model (from supported_models.json or a registration). */
export interface ModelEntry {
  id: string;
  displayName: string;
  description: string;
  /** Hugging Face repository, e.g. "Qwen/Qwen2.5-0.5B-Instruct-GGUF". */
  repo: string;
  /** Every file of the model in order (the parts of a sharded GGUF); the first is the one to load. */
  files: string[];
  /** Branch or commit to fetch; undefined means "main". */
  revision?: string;
  /** Expected sha256 of files[0] when known (lower-case hex). */
  sha256?: string;
  /** Total size of all files when known. */
  sizeBytes?: number;
  requiredMemoryBytes?: number;
  tags: string[];
  capabilities: Array<"text-generation" | "embeddings">;
  quantization?: string;
  parameterCount?: number;
  format: "gguf";
  origin: "supported" | "registered";
  /** Jinja chat template overriding the GGUF's own. */
  chatTemplate?: string;
}

/** Looks up catalog entries by id. The resolver and engine depend on this, not on the catalog's storage. */
export interface ModelDirectory {
  get(id: string): Promise<ModelEntry | undefined>;
}

/** A fixed directory over a list of entries (embedding, tests, tools). */
export function staticModelDirectory(entries: readonly ModelEntry[]): ModelDirectory {
  const byId = new Map(entries.map((e) => [e.id, e]));
  return { get: async (id) => byId.get(id) };
}
