/**
 * A structurally valid model GGUF of an exact size, filled with seeded pseudo-random bytes: what
 * transfer tests download when the bytes must pass the node's GGUF validation but are never loaded.
 * The llama hyperparameters are minimal; the data is one I8 tensor named "payload".
 */
import { encodeGguf, gv, type GgufValue } from "./gguf-writer.js";
import { mulberry32 } from "./tiny-gguf.js";

const I8 = 24;
const ALIGNMENT = 32;

/** The header (metadata and tensor info, padded) of a sized GGUF of `size` bytes; the data follows it. */
export function sizedModelHeader(size: number): Uint8Array {
  return header(size - header(1).length);
}

function header(dataLength: number): Uint8Array {
  const metadata: Array<[string, GgufValue]> = [
    ["general.architecture", gv.str("llama")],
    ["llama.context_length", gv.u32(256)],
    ["llama.embedding_length", gv.u32(64)],
    ["llama.block_count", gv.u32(1)],
    ["llama.feed_forward_length", gv.u32(128)],
    ["llama.attention.head_count", gv.u32(4)],
    ["tokenizer.ggml.model", gv.str("llama")],
  ];
  const length = Math.max(1, dataLength);
  const payload = { name: "payload", dims: [length], dtype: "f32" as const, data: new Float32Array(0), declared: { ggmlType: I8, bytes: length } };
  return encodeGguf({ metadata, tensors: [payload], alignment: ALIGNMENT, headerOnly: true });
}

/** Smallest size sizedModelBytes can make. */
export const MIN_SIZED_MODEL_BYTES = header(1).length + 1;

/** A valid GGUF of exactly `size` bytes whose tensor data is seeded pseudo-random (incompressible). */
export function sizedModelBytes(size: number, seed = 1): Uint8Array {
  const head = sizedModelHeader(size);
  if (size < head.length + 1) throw new Error(`a sized GGUF needs at least ${MIN_SIZED_MODEL_BYTES} bytes`);
  const out = new Uint8Array(size);
  out.set(head);
  const next = mulberry32(seed);
  for (let i = head.length; i < size; i += 4) {
    const v = Math.floor(next() * 2 ** 32);
    out[i] = v & 0xff;
    if (i + 1 < size) out[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < size) out[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < size) out[i + 3] = (v >>> 24) & 0xff;
  }
  return out;
}
