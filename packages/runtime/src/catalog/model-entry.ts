import { capabilityMissing } from "../errors/index.js";

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
  /** Expected sha256 of every file, parallel to files, when the hub listed them all (registrations). */
  fileSha256s?: string[];
  /** Total size of all files when known. */
  sizeBytes?: number;
  requiredMemoryBytes?: number;
  tags: string[];
  capabilities: Array<"text-generation" | "embeddings" | "rerank">;
  quantization?: string;
  parameterCount?: number;
  /** The parameter count as the catalog file gave it ("7B", "30B A3B", "490000000"). */
  parameterCountText?: string;
  /** File format: "gguf" runs here; anything else (e.g. "safetensors") is listed as unsupported. */
  format: string;
  /** Engine the entry was written for ("llama_cpp" runs here). */
  engine?: string;
  /** Router platforms the entry names (informational). */
  platforms?: string[];
  /** Why this node cannot run it; such an entry is listed (UNSUPPORTED) but never downloaded or served. */
  unsupportedReason?: string;
  origin: "supported" | "registered";
  /** Jinja chat template overriding the GGUF's own. */
  chatTemplate?: string;
  /** Tokens per request (sequence); unset means the node's LLMLB_CONTEXT_SIZE. */
  contextLength?: number;
}

/** Whether two entries say the same, whatever the order of their fields (a stored one and one planned again). */
export function sameEntry(a: ModelEntry, b: ModelEntry): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : v,
  );

/** Refuses (CAPABILITY_MISSING) a request for `capability` to a model whose entry does not list it. */
export function requireCapability(entry: ModelEntry, capability: ModelEntry["capabilities"][number] | undefined): void {
  if (capability && !entry.capabilities.includes(capability)) throw capabilityMissing(entry.id, capability, entry.capabilities);
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
