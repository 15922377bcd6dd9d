import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaChatSession, readGgufFileInfo, type Llama, type LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { f32ToF16Bits } from "./gguf-writer.js";
import {
  describeBytes,
  TINY_MODEL,
  tinyLoraBytes,
  tinyModelBytes,
  tinyVocab,
  writeTinyLora,
  writeTinyModel,
} from "./tiny-gguf.js";

// Golden hashes: if these change, every consumer of the tiny model sees different output.
// Update deliberately (and mention it in the commit), never casually.
const GOLDEN = {
  f32: { sha256: "644574613f6350749f7d615713ae66325bb50a11c6e209bf867a9758eb99787b", size: 878560 },
  f16: { size: 451808 },
  lora: { sha256: "478bcbfa5f34a116663d89e68d606e6f97e8607203250ec5c1194b9049993cd2", size: 71808 },
};

const CTX = { contextSize: 1024, threads: 1 } as const;
const PROMPT = "Hello, who are you?";

describe("tiny GGUF bytes", () => {
  it("are identical across generations and match the golden sha256", () => {
    const a = tinyModelBytes();
    const b = tinyModelBytes();
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(describeBytes(a)).toEqual(GOLDEN.f32);
    expect(describeBytes(tinyLoraBytes())).toEqual(GOLDEN.lora);
    expect(describeBytes(tinyLoraBytes())).toEqual(describeBytes(tinyLoraBytes()));
    expect(tinyModelBytes({ dtype: "f16" }).byteLength).toBe(GOLDEN.f16.size);
    expect(describeBytes(tinyModelBytes({ seed: 7 })).sha256).not.toBe(GOLDEN.f32.sha256);
    // header: magic + version 3
    expect(Buffer.from(a.subarray(0, 4)).toString("latin1")).toBe("GGUF");
    expect(new DataView(a.buffer, a.byteOffset).getUint32(4, true)).toBe(3);
  });

  it("f16 conversion rounds correctly", () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(0.1)).toBe(0x2e66);
  });

  it("vocabulary has the documented layout", () => {
    const v = tinyVocab();
    expect(v.tokens.slice(0, 5)).toEqual(["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]);
    expect(v.types.slice(0, 5)).toEqual([2, 3, 3, 3, 3]);
    expect(v.tokens[5]).toBe("<0x00>");
    expect(v.tokens[260]).toBe("<0xFF>");
    expect(v.types.slice(5, 261).every((t) => t === 6)).toBe(true);
    expect(new Set(v.tokens).size).toBe(v.tokens.length);
    expect(v.tokens).toEqual(expect.arrayContaining(["é", "ü", "日本", "😀", "\u2581the"]));
    expect(v.tokens.length).toBe(TINY_MODEL.n_vocab);
  });
});

describe("tiny GGUF with node-llama-cpp (CPU)", () => {
  let dir: string;
  let llama: Llama;
  let model: LlamaModel;
  let modelPath: string;
  let loraPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tiny-gguf-"));
    modelPath = writeTinyModel(join(dir, "tiny.gguf")).path;
    loraPath = writeTinyLora(join(dir, "tiny-lora.gguf")).path;
    llama = await getLlama({ gpu: false });
    model = await llama.loadModel({ modelPath });
  });

  afterAll(async () => {
    await model?.dispose();
    await llama?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function greedy(lora?: string): Promise<{ text: string; wrapper: string }> {
    const ctx = await model.createContext({
      ...CTX,
      ...(lora ? { lora: { adapters: [{ filePath: lora, scale: 1 }] } } : {}),
    });
    try {
      const session = new LlamaChatSession({ contextSequence: ctx.getSequence() });
      const text = await session.prompt(PROMPT, { temperature: 0, maxTokens: 16 });
      return { text, wrapper: session.chatWrapper.constructor.name };
    } finally {
      await ctx.dispose();
    }
  }

  it("header reads back with the expected metadata", async () => {
    const info = await readGgufFileInfo(modelPath, { logWarnings: false });
    expect(info.version).toBe(3);
    expect(info.metadata.general.architecture).toBe("llama");
    expect(info.metadata.general.alignment).toBe(32);
    const arch = info.architectureMetadata as Record<string, unknown>;
    expect(arch.embedding_length).toBe(TINY_MODEL.n_embd);
    expect(arch.block_count).toBe(TINY_MODEL.n_layer);
    expect(arch.context_length).toBe(TINY_MODEL.context_length);
    expect(info.tensorInfo?.length).toBe(3 + 9 * TINY_MODEL.n_layer);
    expect(info.metadata.tokenizer.chat_template).toBe(TINY_MODEL.chat_template);
  });

  it("loads; tokenizer round-trips multi-byte text", () => {
    expect(model.trainContextSize).toBe(1024);
    expect(model.embeddingVectorSize).toBe(64);
    expect(model.tokens.bos).toBe(TINY_MODEL.bos_token_id);
    expect(model.tokens.eos).toBe(TINY_MODEL.eos_token_id);
    const text = "Hello world café 日本語 😀 ü";
    expect(model.detokenize(model.tokenize(text))).toBe(text);
    expect(model.tokenize("é")).toHaveLength(1);
  });

  it("greedy chat output is non-empty and identical across runs; ChatML wrapper is picked", async () => {
    const a = await greedy();
    const b = await greedy();
    expect(a.text.length).toBeGreaterThan(0);
    expect(b.text).toBe(a.text);
    expect(a.wrapper).toBe("ChatMLChatWrapper");
  });

  it("the LoRA adapter changes greedy output (deterministically)", async () => {
    const base = await greedy();
    const withLora = await greedy(loraPath);
    const again = await greedy(loraPath);
    expect(withLora.text.length).toBeGreaterThan(0);
    expect(withLora.text).not.toBe(base.text);
    expect(again.text).toBe(withLora.text);
  });

  it("embedding context returns 64-dim vectors (last-token and mean-pooled variants)", async () => {
    const ec = await model.createEmbeddingContext(CTX);
    try {
      const e = await ec.getEmbeddingFor("Hello world");
      expect(e.vector).toHaveLength(TINY_MODEL.n_embd);
      expect(e.vector.every((x) => Number.isFinite(x))).toBe(true);
    } finally {
      await ec.dispose();
    }

    const pooledPath = writeTinyModel(join(dir, "tiny-embed.gguf"), { embedding: true }).path;
    const pooled = await llama.loadModel({ modelPath: pooledPath });
    try {
      const pec = await pooled.createEmbeddingContext(CTX);
      const e = await pec.getEmbeddingFor("Hello world");
      expect(e.vector).toHaveLength(TINY_MODEL.n_embd);
      await pec.dispose();
    } finally {
      await pooled.dispose();
    }
  });

  it("f16 variant loads and generates", async () => {
    const f16Path = writeTinyModel(join(dir, "tiny-f16.gguf"), { dtype: "f16" }).path;
    const m = await llama.loadModel({ modelPath: f16Path });
    try {
      const ctx = await m.createContext(CTX);
      const session = new LlamaChatSession({ contextSequence: ctx.getSequence() });
      const text = await session.prompt(PROMPT, { temperature: 0, maxTokens: 8 });
      expect(text.length).toBeGreaterThan(0);
      await ctx.dispose();
    } finally {
      await m.dispose();
    }
  });
});
