import { MAX_CONTEXT_LENGTH } from "../config/parse.js";
import { GgufFormatError, VOCABULARY_KEY, type GgufMetaValue, type GgufScalar } from "./gguf-structure.js";
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
  const headsKv = perLayer(meta, `${arch}.attention.head_count_kv`, layers);
  if (!RECURRENT_ARCHITECTURES.has(arch)) {
    // A missing or all-zero value here fails a GGML_ASSERT while the graph is built.
    if (!heads?.some((n) => n > 0)) fail(`${arch}.attention.head_count`, heads?.join(",") ?? "missing", "must be positive");
    if (!feedForward?.some((n) => n > 0)) fail(`${arch}.feed_forward_length`, feedForward?.join(",") ?? "missing", "must be positive");
    // Absent, llama.cpp takes head_count; all zero aborts the load (a tensor with a zero dimension).
    if (headsKv && !headsKv.some((n) => n > 0)) fail(`${arch}.attention.head_count_kv`, headsKv.join(","), "must be positive");
  }
  checkFloatHyperparameters(meta, arch);
  const rope = stringKey(meta, `${arch}.rope.scaling.type`);
  if (rope !== undefined && !ROPE_SCALING_TYPES.has(rope)) fail(`${arch}.rope.scaling.type`, JSON.stringify(rope), `must be one of ${[...ROPE_SCALING_TYPES].join(", ")}`);
  checkVocabulary(meta);
}

/**
 * No hyperparameter is NaN or infinite, and no epsilon is negative: ggml asserts eps >= 0 in
 * every normalisation, so a NaN epsilon loads and then aborts the process at the first token.
 */
function checkFloatHyperparameters(meta: Metadata, arch: string): void {
  for (const [key, v] of meta) {
    if (!key.startsWith(`${arch}.`) || v.kind !== "scalar" || typeof v.value !== "number" || (v.type !== 6 && v.type !== 12)) continue;
    if (!Number.isFinite(v.value)) fail(key, v.value, "must be a finite number");
    if (key.endsWith("epsilon") && v.value < 0) fail(key, v.value, "must not be negative");
  }
}

/** SentencePiece-style vocabularies ("llama"): text without a piece falls back to one token per byte. */
const BYTE_FALLBACK_TOKENIZERS = new Set(["llama"]);
const NO_VOCABULARY = new Set(["none", "no_vocab"]);

/**
 * The vocabulary as llama.cpp indexes it: two tokens with one text abort the load, an empty one
 * aborts it too, and a SentencePiece vocabulary missing a byte's token aborts the first request
 * whose text falls back to that byte.
 */
function checkVocabulary(meta: Metadata): void {
  const model = stringKey(meta, "tokenizer.ggml.model");
  if (model === undefined) fail("tokenizer.ggml.model", "missing", "is required");
  if (NO_VOCABULARY.has(model)) return;
  const tokens = meta.get(VOCABULARY_KEY);
  if (tokens === undefined) return; // llama.cpp refuses it with an error of its own
  if (tokens.kind !== "array" || !tokens.vocabulary) fail(VOCABULARY_KEY, tokens.kind === "array" ? "an array of numbers" : tokens.value, "must be an array of strings");
  if (tokens.length === 0) fail(VOCABULARY_KEY, "an empty array", "must hold the model's tokens");
  const { duplicate, bytesWithoutToken } = tokens.vocabulary;
  if (duplicate) fail(`${VOCABULARY_KEY}[${duplicate.index}]`, JSON.stringify(duplicate.text.slice(0, 80)), "repeats the text of an earlier token; llama.cpp needs every token's text to be unique");
  if (BYTE_FALLBACK_TOKENIZERS.has(model) && bytesWithoutToken.length > 0) {
    const hex = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
    const missing = bytesWithoutToken.slice(0, 8).map(hex).join(", ") + (bytesWithoutToken.length > 8 ? ", …" : "");
    fail(VOCABULARY_KEY, `${bytesWithoutToken.length} bytes without a token`, `has no token for ${bytesWithoutToken.length} of the 256 bytes (${missing}), which a "llama" (SentencePiece) tokenizer falls back to for text it has no piece for`);
  }
}

/** A LoRA adapter: general.type "adapter" and an architecture llama.cpp knows. */
export function checkAdapterHeader(meta: Metadata): void {
  const type = stringKey(meta, "general.type");
  if (type !== "adapter") fail("general.type", JSON.stringify(type ?? "missing"), 'must be "adapter" for a LoRA adapter');
  architectureOf(meta);
}
