import { MAX_CONTEXT_LENGTH } from "../config/parse.js";
import { GgufFormatError, type GgufMetaValue, type GgufScalar } from "./gguf-structure.js";
import { LLAMA_ARCHITECTURES } from "./llama-architectures.js";

/**
 * Hyperparameter rules of the bundled llama.cpp (llama_model_base::load_hparams). Breaking one of
 * them there is a GGML_ASSERT, which aborts the whole process, so every one is checked here first.
 */
export const LLAMA_MAX_LAYERS = 512;
export const LLAMA_MAX_EXPERTS = 1024;
const ROPE_SCALING_TYPES = new Set(["none", "linear", "yarn", "longrope"]);
/** Architectures without attention/feed-forward hyperparameters (state-space and RWKV models). */
const RECURRENT_ARCHITECTURES = new Set(["mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"]);

type Metadata = ReadonlyMap<string, GgufMetaValue>;

function fail(field: string, value: unknown, why: string): never {
  throw new GgufFormatError(field, String(value), `${field} = ${String(value)}: ${why}`);
}

function isInteger(v: GgufScalar): v is number | bigint {
  return typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v));
}

/** An unsigned integer key, or undefined when absent. */
function uint(meta: Metadata, key: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (v.kind !== "scalar" || !isInteger(v.value) || v.value < 0) fail(key, v.kind === "scalar" ? v.value : "an array", "must be a non-negative integer");
  if (v.value > 0xffffffff) fail(key, v.value, "is larger than llama.cpp reads (uint32)");
  return Number(v.value);
}

/** A key that may be one integer or one integer per layer (llama.cpp's get_key_or_arr). */
function perLayer(meta: Metadata, key: string, layers: number): number[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (v.kind === "scalar") return [uint(meta, key)!];
  if (v.length !== layers) fail(key, `an array of ${v.length}`, `must have one value per layer (${layers})`);
  if (!v.values?.every((x) => isInteger(x) && x >= 0 && x <= 0xffffffff)) fail(key, "an array", "must hold non-negative integers");
  return v.values.map(Number);
}

function stringKey(meta: Metadata, key: string): string | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (v.kind !== "scalar" || typeof v.value !== "string") fail(key, v.kind === "scalar" ? v.value : "an array", "must be a string");
  return v.value;
}

function architectureOf(meta: Metadata): string {
  const arch = stringKey(meta, "general.architecture");
  if (!arch) fail("general.architecture", arch ?? "missing", "is required");
  if (!LLAMA_ARCHITECTURES.has(arch)) fail("general.architecture", JSON.stringify(arch), "is not an architecture the bundled llama.cpp knows");
  return arch;
}

function checkExperts(meta: Metadata, arch: string, layers: number): void {
  const experts = uint(meta, `${arch}.expert_count`) ?? 0;
  if (experts > LLAMA_MAX_EXPERTS) fail(`${arch}.expert_count`, experts, `must be at most ${LLAMA_MAX_EXPERTS}`);
  const used = Math.max(0, ...(perLayer(meta, `${arch}.expert_used_count`, layers) ?? [0]));
  const groups = uint(meta, `${arch}.expert_group_count`) ?? 0;
  const groupsUsed = uint(meta, `${arch}.expert_group_used_count`) ?? 0;
  if (experts === 0) {
    if (used > 0) fail(`${arch}.expert_used_count`, used, `requires ${arch}.expert_count, which is ${meta.has(`${arch}.expert_count`) ? 0 : "missing"}`);
    if (groups > 0) fail(`${arch}.expert_group_count`, groups, `requires ${arch}.expert_count`);
    return;
  }
  if (used === 0) fail(`${arch}.expert_used_count`, used, `must be positive when ${arch}.expert_count is ${experts}`);
  if (used > experts) fail(`${arch}.expert_used_count`, used, `must be at most ${arch}.expert_count (${experts})`);
  if (groups >= experts) fail(`${arch}.expert_group_count`, groups, `must be less than ${arch}.expert_count (${experts})`);
  if (groups > 1) {
    if (experts % groups !== 0) fail(`${arch}.expert_group_count`, groups, `must divide ${arch}.expert_count (${experts})`);
    if (groupsUsed === 0 || groupsUsed >= groups) fail(`${arch}.expert_group_used_count`, groupsUsed, `must be between 1 and ${groups - 1}`);
  }
}

/** Checks a model's hyperparameters against what the bundled llama.cpp accepts without aborting. */
export function checkModelHyperparameters(meta: Metadata): void {
  const arch = architectureOf(meta);
  const context = uint(meta, `${arch}.context_length`);
  if (!context) fail(`${arch}.context_length`, context ?? "missing", "must be positive");
  if (context > MAX_CONTEXT_LENGTH) fail(`${arch}.context_length`, context, `must be at most ${MAX_CONTEXT_LENGTH}`);
  const embedding = uint(meta, `${arch}.embedding_length`);
  if (!embedding) fail(`${arch}.embedding_length`, embedding ?? "missing", "must be positive");
  const layers = uint(meta, `${arch}.block_count`);
  if (!layers || layers > LLAMA_MAX_LAYERS) fail(`${arch}.block_count`, layers ?? "missing", `must be between 1 and ${LLAMA_MAX_LAYERS} (LLAMA_MAX_LAYERS)`);
  const nextn = uint(meta, `${arch}.nextn_predict_layers`) ?? 0;
  if (nextn > layers) fail(`${arch}.nextn_predict_layers`, nextn, `must be at most ${arch}.block_count (${layers})`);
  checkExperts(meta, arch, layers);

  const heads = perLayer(meta, `${arch}.attention.head_count`, layers);
  const feedForward = perLayer(meta, `${arch}.feed_forward_length`, layers);
  perLayer(meta, `${arch}.attention.head_count_kv`, layers);
  if (!RECURRENT_ARCHITECTURES.has(arch)) {
    // A missing or all-zero value here fails a GGML_ASSERT while the graph is built.
    if (!heads?.some((n) => n > 0)) fail(`${arch}.attention.head_count`, heads?.join(",") ?? "missing", "must be positive");
    if (!feedForward?.some((n) => n > 0)) fail(`${arch}.feed_forward_length`, feedForward?.join(",") ?? "missing", "must be positive");
  }
  const rope = stringKey(meta, `${arch}.rope.scaling.type`);
  if (rope !== undefined && !ROPE_SCALING_TYPES.has(rope)) fail(`${arch}.rope.scaling.type`, JSON.stringify(rope), `must be one of ${[...ROPE_SCALING_TYPES].join(", ")}`);
  if (stringKey(meta, "tokenizer.ggml.model") === undefined) fail("tokenizer.ggml.model", "missing", "is required");
}

/** A LoRA adapter: general.type "adapter" and an architecture llama.cpp knows. */
export function checkAdapterHeader(meta: Metadata): void {
  const type = stringKey(meta, "general.type");
  if (type !== "adapter") fail("general.type", JSON.stringify(type ?? "missing"), 'must be "adapter" for a LoRA adapter');
  architectureOf(meta);
}
