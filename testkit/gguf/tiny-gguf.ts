/**
 * Deterministic tiny llama-architecture GGUF model + LoRA adapter for offline tests.
 *
 * Same options -> byte-identical output on every run (seeded mulberry32 PRNG, fixed vocabulary,
 * fixed metadata order). See README.md in this folder and /work/shared/reference/tiny-gguf.md.
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { encodeGguf, gv, type GgufTensor, type GgufValue, type TensorDtype } from "./gguf-writer.js";

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * ChatML with Qwen3-style thinking: the answer opens with `<think>\n`; `enable_thinking=false`
 * renders an empty thought instead, and past assistant turns keep their `reasoning_content`.
 * node-llama-cpp reads thought segments off this template.
 */
export const THINKING_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}" +
  "{% if message['role'] == 'assistant' and message['reasoning_content'] %}{{'<think>\\n' + message['reasoning_content'] + '\\n</think>\\n\\n'}}{% endif %}" +
  "{{ (message['content'] or '') + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}" +
  "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% else %}{{ '<think>\\n' }}{% endif %}{% endif %}";

/**
 * ChatML with Hermes/Qwen-style tools: a `<tools>` system block, calls as `<tool_call>` JSON and
 * results as `<tool_response>`. node-llama-cpp reads its tool-call syntax off this template.
 */
export const TOOLS_TEMPLATE =
  "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}{%- endif %}" +
  "{{- '\\n\\n# Tools\\n\\n<tools>' }}{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}" +
  "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}" +
  "{%- elif messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- endif %}" +
  "{%- for message in messages %}" +
  "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant' and not message.tool_calls) %}" +
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}" +
  "{%- elif message.role == 'assistant' %}{{- '<|im_start|>' + message.role }}{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}" +
  "{%- for tool_call in message.tool_calls %}{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}" +
  "{{- '\\n<tool_call>\\n{\"name\": \"' }}{{- tool_call.name }}{{- '\", \"arguments\": ' }}{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}{%- endfor %}{{- '<|im_end|>\\n' }}" +
  "{%- elif message.role == 'tool' %}{%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != 'tool') %}{{- '<|im_start|>user' }}{%- endif %}" +
  "{{- '\\n<tool_response>\\n' }}{{- message.content }}{{- '\\n</tool_response>' }}" +
  "{%- if loop.last or (messages[loop.index0 + 1].role != 'tool') %}{{- '<|im_end|>\\n' }}{%- endif %}{%- endif %}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** Token types as understood by llama.cpp (llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/* ------------------------------------------------------------------------------------------------
 * Vocabulary
 * ---------------------------------------------------------------------------------------------- */

const SPACE = "\u2581"; // "▁", SentencePiece space marker

const SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"] as const;

const WORDS = [
  "the", "and", "to", "of", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with",
  "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "hot", "word",
  "but", "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your",
  "how", "said", "an", "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many",
  "then", "them", "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him",
  "two", "has", "look", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most",
  "people", "my", "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been",
  "now", "find", "hello", "Hello", "world", "model", "test", "token", "stream", "user", "assistant",
  "system", "Paris", "France", "capital", "answer", "question", "yes", "Yes", "No", "The", "It", "This",
  "café", "naïve", "über", "señor", "日本", "日本語", "中文", "東京",
];

const SUBWORDS = ["ing", "ed", "er", "es", "ly", "tion", "ment", "est", "un", "re", "th", "he", "in", "an", "on", "at", "en", "or", "ou", "is"];

const SINGLE_CHARS = [
  ..."abcdefghijklmnopqrstuvwxyz",
  ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ",
  ..."0123456789",
  ...".,!?:;'\"-()[]{}/*+=_#@&%$",
  // multi-byte UTF-8 characters (2, 3 and 4 bytes), so streaming tests see multi-byte pieces
  "é", "è", "ü", "ö", "ä", "ß", "ñ", "ç", "€", "—", "…", "日", "本", "語", "中", "文", "東", "京", "😀", "🚀",
];

export interface TinyVocab {
  tokens: string[];
  scores: number[];
  types: number[];
}

let cachedVocab: TinyVocab | undefined;

/** The fixed vocabulary: specials, 256 byte tokens, then printable pieces (all prefixes included). */
export function tinyVocab(): TinyVocab {
  if (cachedVocab) return cachedVocab;
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const seen = new Set<string>();
  const add = (piece: string, type: number, score: number) => {
    if (seen.has(piece)) return;
    seen.add(piece);
    tokens.push(piece);
    scores.push(score);
    types.push(type);
  };

  for (const s of SPECIAL_TOKENS) add(s, s === "<unk>" ? TokenType.UNKNOWN : TokenType.CONTROL, 0);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, TokenType.BYTE, 0);

  // Normal pieces. Score = UTF-8 length, so the SPM tokenizer prefers longer merges; every prefix of
  // a multi-character piece is also in the vocabulary, so the bigram merges can reach it.
  const addNormal = (piece: string) => {
    const chars = [...piece];
    for (let i = 1; i <= chars.length; i++) {
      const prefix = chars.slice(0, i).join("");
      add(prefix, TokenType.NORMAL, Buffer.byteLength(prefix, "utf8"));
    }
  };
  addNormal(SPACE);
  for (const c of SINGLE_CHARS) addNormal(c);
  for (const c of SINGLE_CHARS) if (/[a-zA-Z0-9]/.test(c) || c.length > 1 || c.charCodeAt(0) > 127) addNormal(SPACE + c);
  for (const s of SUBWORDS) addNormal(s);
  for (const w of WORDS) {
    addNormal(SPACE + w);
    addNormal(w);
  }

  cachedVocab = { tokens, scores, types };
  return cachedVocab;
}

/* ------------------------------------------------------------------------------------------------
 * Model constants
 * ---------------------------------------------------------------------------------------------- */

export const TINY_MODEL = {
  architecture: "llama",
  name: "llmlb-tiny-llama",
  n_embd: 64,
  n_head: 4,
  n_head_kv: 4,
  head_dim: 16,
  n_ff: 128,
  n_layer: 2,
  context_length: 1024,
  rms_eps: 1e-5,
  alignment: 32,
  get n_vocab(): number {
    return tinyVocab().tokens.length;
  },
  bos_token_id: 1,
  /** `<|im_end|>`: the ChatML turn terminator doubles as EOS, so plain completions stop there too. */
  eos_token_id: 4,
  unk_token_id: 0,
  im_start_token_id: 3,
  im_end_token_id: 4,
  chat_template: CHATML_TEMPLATE,
  default_seed: 0x11ab1b,
} as const;

/* ------------------------------------------------------------------------------------------------
 * PRNG + hashing helpers
 * ---------------------------------------------------------------------------------------------- */

/** mulberry32: tiny, fast, deterministic 32-bit PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uniform(rand: () => number, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}

export function describeBytes(bytes: Uint8Array): { sha256: string; size: number } {
  return { sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.byteLength };
}

function writeBytes(path: string, bytes: Uint8Array): { path: string; sha256: string; size: number } {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return { path, ...describeBytes(bytes) };
}

/* ------------------------------------------------------------------------------------------------
 * Base model
 * ---------------------------------------------------------------------------------------------- */

export interface TinyModelOptions {
  /** PRNG seed for the weights (default TINY_MODEL.default_seed). */
  seed?: number;
  /** Metadata to replace or add (by key); `null` removes the key. Tensors stay as they are. */
  metadata?: Readonly<Record<string, GgufValue | null>>;
  /** Weight storage type; norms always stay F32. Default "f32". */
  dtype?: "f32" | "f16";
  /**
   * Mark the model as an embedding model: adds `llama.pooling_type` = 1 (mean) and names it
   * "...-embedding". node-llama-cpp's `createEmbeddingContext()` works without it too.
   */
  embedding?: boolean;
  /** `tokenizer.chat_template` (default ChatML, CHATML_TEMPLATE). */
  chatTemplate?: string;
  /** Trained context length written to `llama.context_length` (default TINY_MODEL.context_length). */
  contextLength?: number;
  /**
   * Make a reranker the way Qwen3-Reranker GGUFs are laid out, the layout llama.cpp ranks with a
   * causal model: architecture `qwen3` (per-head q/k norms), rank pooling, and a two-label
   * ("yes", "no") classification head `cls.output.weight` in place of `output.weight`.
   */
  reranker?: boolean;
}

/** Names and ggml dims ([ne0, ne1]) of the per-block weight matrices. */
export function blockWeightShapes(): Array<{ name: string; dims: [number, number] }> {
  const { n_embd: e, n_ff: f, n_layer } = TINY_MODEL;
  const out: Array<{ name: string; dims: [number, number] }> = [];
  for (let l = 0; l < n_layer; l++) {
    out.push(
      { name: `blk.${l}.attn_q.weight`, dims: [e, e] },
      { name: `blk.${l}.attn_k.weight`, dims: [e, e] },
      { name: `blk.${l}.attn_v.weight`, dims: [e, e] },
      { name: `blk.${l}.attn_output.weight`, dims: [e, e] },
      { name: `blk.${l}.ffn_gate.weight`, dims: [e, f] },
      { name: `blk.${l}.ffn_up.weight`, dims: [e, f] },
      { name: `blk.${l}.ffn_down.weight`, dims: [f, e] },
    );
  }
  return out;
}

export function tinyModelBytes(opts: TinyModelOptions = {}): Uint8Array {
  const seed = opts.seed ?? TINY_MODEL.default_seed;
  const dtype: TensorDtype = opts.dtype ?? "f32";
  const vocab = tinyVocab();
  const { n_embd: e, n_ff: f, n_layer } = TINY_MODEL;
  const nVocab = vocab.tokens.length;
  const rand = mulberry32(seed);

  const arch = opts.reranker ? "qwen3" : "llama";
  const metadata: Array<[string, GgufValue]> = [
    ["general.architecture", gv.str(arch)],
    ["general.name", gv.str(TINY_MODEL.name + (opts.embedding ? "-embedding" : opts.reranker ? "-reranker" : ""))],
    ["general.alignment", gv.u32(TINY_MODEL.alignment)],
    ["general.file_type", gv.u32(dtype === "f32" ? 0 : 1)],
    ["llama.context_length", gv.u32(opts.contextLength ?? TINY_MODEL.context_length)],
    ["llama.embedding_length", gv.u32(e)],
    ["llama.block_count", gv.u32(n_layer)],
    ["llama.feed_forward_length", gv.u32(f)],
    ["llama.attention.head_count", gv.u32(TINY_MODEL.n_head)],
    ["llama.attention.head_count_kv", gv.u32(TINY_MODEL.n_head_kv)],
    ["llama.rope.dimension_count", gv.u32(TINY_MODEL.head_dim)],
    ["llama.attention.layer_norm_rms_epsilon", gv.f32(TINY_MODEL.rms_eps)],
    ["llama.vocab_size", gv.u32(nVocab)],
    ...(opts.embedding ? ([["llama.pooling_type", gv.u32(1)]] as Array<[string, GgufValue]>) : []),
    ...(opts.reranker ? ([["llama.pooling_type", gv.u32(4)], ["llama.classifier.output_labels", gv.strings(["yes", "no"])]] as Array<[string, GgufValue]>) : []),
    ["tokenizer.ggml.model", gv.str("llama")],
    ["tokenizer.ggml.tokens", gv.strings(vocab.tokens)],
    ["tokenizer.ggml.scores", gv.f32s(vocab.scores)],
    ["tokenizer.ggml.token_type", gv.i32s(vocab.types)],
    ["tokenizer.ggml.bos_token_id", gv.u32(TINY_MODEL.bos_token_id)],
    ["tokenizer.ggml.eos_token_id", gv.u32(TINY_MODEL.eos_token_id)],
    ["tokenizer.ggml.unknown_token_id", gv.u32(TINY_MODEL.unk_token_id)],
    ["tokenizer.ggml.add_bos_token", gv.bool(true)],
    ["tokenizer.ggml.add_eos_token", gv.bool(false)],
    ["tokenizer.chat_template", gv.str(opts.chatTemplate ?? CHATML_TEMPLATE)],
  ];

  for (const entry of metadata) if (entry[0].startsWith("llama.")) entry[0] = `${arch}.${entry[0].slice("llama.".length)}`;

  for (const [key, value] of Object.entries(opts.metadata ?? {})) {
    const at = metadata.findIndex(([k]) => k === key);
    if (value === null) {
      if (at >= 0) metadata.splice(at, 1);
    } else if (at >= 0) metadata[at] = [key, value];
    else metadata.push([key, value]);
  }

  const ones = (n: number) => new Float32Array(n).fill(1);
  const tensors: GgufTensor[] = [];
  tensors.push({ name: "token_embd.weight", dims: [e, nVocab], dtype, data: uniform(rand, e * nVocab, 1) });
  for (let l = 0; l < n_layer; l++) {
    const w = (name: string, dims: [number, number]) =>
      tensors.push({ name: `blk.${l}.${name}`, dims, dtype, data: uniform(rand, dims[0] * dims[1], 1 / Math.sqrt(dims[0])) });
    tensors.push({ name: `blk.${l}.attn_norm.weight`, dims: [e], dtype: "f32", data: ones(e) });
    w("attn_q.weight", [e, e]);
    w("attn_k.weight", [e, e]);
    w("attn_v.weight", [e, e]);
    w("attn_output.weight", [e, e]);
    if (opts.reranker) {
      tensors.push({ name: `blk.${l}.attn_q_norm.weight`, dims: [TINY_MODEL.head_dim], dtype: "f32", data: ones(TINY_MODEL.head_dim) });
      tensors.push({ name: `blk.${l}.attn_k_norm.weight`, dims: [TINY_MODEL.head_dim], dtype: "f32", data: ones(TINY_MODEL.head_dim) });
    }
    tensors.push({ name: `blk.${l}.ffn_norm.weight`, dims: [e], dtype: "f32", data: ones(e) });
    w("ffn_gate.weight", [e, f]);
    w("ffn_up.weight", [e, f]);
    w("ffn_down.weight", [f, e]);
  }
  tensors.push({ name: "output_norm.weight", dims: [e], dtype: "f32", data: ones(e) });
  if (opts.reranker) tensors.push({ name: "cls.output.weight", dims: [e, 2], dtype, data: uniform(rand, e * 2, 1 / Math.sqrt(e)) });
  else tensors.push({ name: "output.weight", dims: [e, nVocab], dtype, data: uniform(rand, e * nVocab, 1 / Math.sqrt(e)) });

  return encodeGguf({ metadata, tensors, alignment: TINY_MODEL.alignment });
}

export function writeTinyModel(path: string, opts: TinyModelOptions = {}): { path: string; sha256: string; size: number } {
  return writeBytes(path, tinyModelBytes(opts));
}

/* ------------------------------------------------------------------------------------------------
 * LoRA adapter
 * ---------------------------------------------------------------------------------------------- */

export interface TinyLoraOptions {
  /** PRNG seed (default TINY_MODEL.default_seed + 1). */
  seed?: number;
  /** LoRA rank r (default 8). */
  rank?: number;
  /** adapter.lora.alpha (default = rank, i.e. alpha/rank = 1). */
  alpha?: number;
  /** Multiplier on the lora_b values (default 1). Larger = stronger effect. */
  scale?: number;
}

/** Base-model weights the adapter touches (every block matrix: attn_q/k/v/output, ffn_gate/up/down). */
export const TINY_LORA_TARGETS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] as const;

export function tinyLoraBytes(opts: TinyLoraOptions = {}): Uint8Array {
  const seed = opts.seed ?? TINY_MODEL.default_seed + 1;
  const rank = opts.rank ?? 8;
  const alpha = opts.alpha ?? rank;
  const scale = opts.scale ?? 1;
  if (!Number.isInteger(rank) || rank < 1) throw new Error(`rank must be a positive integer, got ${rank}`);
  const rand = mulberry32(seed);

  const metadata: Array<[string, GgufValue]> = [
    ["general.architecture", gv.str("llama")],
    ["general.type", gv.str("adapter")],
    ["general.name", gv.str(`${TINY_MODEL.name}-lora`)],
    ["general.alignment", gv.u32(TINY_MODEL.alignment)],
    ["adapter.type", gv.str("lora")],
    ["adapter.lora.alpha", gv.f32(alpha)],
  ];

  // For W with ggml dims [n_in, n_out]: lora_a [n_in, r], lora_b [r, n_out]; delta = (alpha/r) * B·A.
  const tensors: GgufTensor[] = [];
  for (const { name, dims } of blockWeightShapes()) {
    const [nIn, nOut] = dims;
    const base = name.replace(/\.weight$/, "");
    tensors.push({ name: `${base}.weight.lora_a`, dims: [nIn, rank], dtype: "f32", data: uniform(rand, nIn * rank, 1 / Math.sqrt(nIn)) });
    tensors.push({ name: `${base}.weight.lora_b`, dims: [rank, nOut], dtype: "f32", data: uniform(rand, rank * nOut, scale) });
  }
  return encodeGguf({ metadata, tensors, alignment: TINY_MODEL.alignment });
}

export function writeTinyLora(path: string, opts: TinyLoraOptions = {}): { path: string; sha256: string; size: number } {
  return writeBytes(path, tinyLoraBytes(opts));
}
