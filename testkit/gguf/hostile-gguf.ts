/**
 * Crafted GGUF files that crash an unguarded llama.cpp / GGUF reader (issue 14). Each is small and
 * deterministic; the node must refuse every one of them before native code sees it.
 */
import { encodeGguf, gv, GgufType } from "./gguf-writer.js";
import { tinyModelBytes } from "./tiny-gguf.js";

export type HostileKind = "huge-array-count" | "too-many-layers" | "experts-without-count" | "template-bomb";

/** A `{% for %}` loop far beyond any render budget (blocks a naive renderer for seconds or aborts it). */
export const TEMPLATE_BOMB = "{% for i in range(100000000) %}x{% endfor %}";

/** A ~100-byte file whose token array claims 2^40 elements: a naive reader allocates until it dies. */
export function hugeArrayCountBytes(): Uint8Array {
  return encodeGguf({
    metadata: [
      ["general.architecture", gv.str("llama")],
      ["tokenizer.ggml.tokens", { type: GgufType.ARRAY, itemType: GgufType.STRING, values: [], declaredLength: 1n << 40n }],
    ],
    tensors: [],
  });
}

export function hostileGgufBytes(kind: HostileKind): Uint8Array {
  switch (kind) {
    case "huge-array-count":
      return hugeArrayCountBytes();
    case "too-many-layers":
      // llama.cpp: GGML_ASSERT(hparams.n_layer_all > 0 && hparams.n_layer_all <= LLAMA_MAX_LAYERS)
      return tinyModelBytes({ metadata: { "llama.block_count": gv.u32(100_000) } });
    case "experts-without-count":
      // llama.cpp: GGML_ASSERT(n_expert_used_max <= hparams.n_expert)
      return tinyModelBytes({ metadata: { "llama.expert_used_count": gv.u32(2) } });
    case "template-bomb":
      return tinyModelBytes({ metadata: { "tokenizer.chat_template": gv.str(TEMPLATE_BOMB) } });
  }
}

export const HOSTILE_KINDS: readonly HostileKind[] = ["huge-array-count", "too-many-layers", "experts-without-count", "template-bomb"];
