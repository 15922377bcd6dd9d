import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkGgufFile, validateGgufFiles } from "../src/engine/gguf-check.js";
import { encodeGguf, GgufType, gv, type GgufValue } from "../../../testkit/gguf/gguf-writer.js";
import { hostileGgufBytes, hugeArrayCountBytes } from "../../../testkit/gguf/hostile-gguf.js";
import { tinyModelBytes, tinyVocab } from "../../../testkit/gguf/tiny-gguf.js";
import { reasonOf } from "./fixtures/engine-fixtures.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-gguf-validate-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let n = 0;
function write(bytes: Uint8Array, name = `f${n++}.gguf`): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

async function refusal(bytes: Uint8Array) {
  const failure = await reasonOf(validateGgufFiles([write(bytes)]));
  expect(failure.reason).toBe("INVALID_MODEL_FILE");
  return failure;
}

const withMeta = (metadata: Record<string, GgufValue | null>) => tinyModelBytes({ metadata });

describe("GGUF validation: the three crash classes", () => {
  it("refuses a 2^40-element array in a ~100-byte file without allocating for it", async () => {
    const bytes = hugeArrayCountBytes();
    expect(bytes.length).toBeLessThan(200);
    const heapBefore = process.memoryUsage().heapUsed;
    const failure = await refusal(bytes);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    expect(failure.metadata).toMatchObject({ field: "tokenizer.ggml.tokens array length", value: String(1n << 40n) });
    expect(failure.message).toContain("tokenizer.ggml.tokens array length is 1099511627776");
  });

  it("refuses block_count above LLAMA_MAX_LAYERS (512) and zero", async () => {
    const failure = await refusal(hostileGgufBytes("too-many-layers"));
    expect(failure.metadata).toMatchObject({ field: "llama.block_count", value: "100000" });
    expect(failure.message).toMatch(/llama.block_count = 100000: must be between 1 and 512/);
    expect((await refusal(withMeta({ "llama.block_count": gv.u32(0) }))).metadata.field).toBe("llama.block_count");
  });

  it("refuses expert_used_count without expert_count, and above it", async () => {
    const failure = await refusal(hostileGgufBytes("experts-without-count"));
    expect(failure.metadata).toMatchObject({ field: "llama.expert_used_count", value: "2" });
    expect(failure.message).toMatch(/requires llama.expert_count, which is missing/);
    const above = await refusal(withMeta({ "llama.expert_count": gv.u32(4), "llama.expert_used_count": gv.u32(8) }));
    expect(above.message).toMatch(/llama.expert_used_count = 8: must be at most llama.expert_count \(4\)/);
    const tooMany = await refusal(withMeta({ "llama.expert_count": gv.u32(5000), "llama.expert_used_count": gv.u32(2) }));
    expect(tooMany.metadata).toMatchObject({ field: "llama.expert_count", value: "5000" });
  });
});

describe("GGUF validation: files that load and then abort llama.cpp (found by fuzzing the validator)", () => {
  const tokens = tinyVocab().tokens;
  const withTokens = (list: readonly string[]) => withMeta({ "tokenizer.ggml.tokens": gv.strings(list) });

  it("refuses a NaN, infinite or negative epsilon, which aborts the runner at the first token", async () => {
    const nan = await refusal(withMeta({ "llama.attention.layer_norm_rms_epsilon": gv.f32(NaN) }));
    expect(nan.metadata).toMatchObject({ field: "llama.attention.layer_norm_rms_epsilon", value: "NaN" });
    expect(nan.message).toMatch(/must be a finite number/);
    expect((await refusal(withMeta({ "llama.rope.freq_base": gv.f32(Infinity) }))).metadata.field).toBe("llama.rope.freq_base");
    expect((await refusal(withMeta({ "llama.attention.layer_norm_rms_epsilon": gv.f32(-1e-5) }))).message).toMatch(/must not be negative/);
  });

  it("refuses zero KV heads", async () => {
    expect((await refusal(withMeta({ "llama.attention.head_count_kv": gv.u32(0) }))).metadata).toMatchObject({ field: "llama.attention.head_count_kv", value: "0" });
  });

  it("refuses a vocabulary with a repeated text (also up to a NUL byte, as llama.cpp reads it), an empty one, and a SentencePiece one missing a byte token", async () => {
    const repeated = [...tokens];
    repeated[300] = repeated[299]!;
    const twice = await refusal(withTokens(repeated));
    expect(twice.metadata).toMatchObject({ field: "tokenizer.ggml.tokens[300]" });
    expect(twice.message).toMatch(/repeats the text of an earlier token/);
    const nul = [...tokens, "zz-unique", "zz-unique\u0000tail"];
    expect((await refusal(withTokens(nul))).metadata.field).toBe(`tokenizer.ggml.tokens[${tokens.length + 1}]`);
    expect((await refusal(withTokens([]))).message).toMatch(/must hold the model's tokens/);
    const renamed = tokens.map((t) => (t === "<0x01>" ? "zz-not-a-byte" : t));
    expect((await refusal(withTokens(renamed))).message).toMatch(/has no token for 1 of the 256 bytes \(<0x01>\)/);
    // Another tokenizer does not fall back to byte tokens: the same vocabulary is not refused for them.
    await validateGgufFiles([write(withMeta({ "tokenizer.ggml.tokens": gv.strings(renamed), "tokenizer.ggml.model": gv.str("gpt2") }))]);
  });
});

describe("GGUF validation: structure", () => {
  it("accepts the tiny model, and an f16 one, unchanged", async () => {
    await validateGgufFiles([write(tinyModelBytes())]);
    await validateGgufFiles([write(tinyModelBytes({ dtype: "f16" }))]);
    const info = await checkGgufFile(write(tinyModelBytes()));
    expect(info.metadata.general.architecture).toBe("llama");
  });

  it("refuses a wrong magic and an unsupported version", async () => {
    const bytes = Buffer.from(tinyModelBytes());
    bytes.write("GGUX", 0);
    expect((await refusal(bytes)).metadata).toMatchObject({ field: "magic" });
    const v1 = Buffer.from(tinyModelBytes());
    v1.writeUInt32LE(1, 4);
    expect((await refusal(v1)).metadata).toMatchObject({ field: "version", value: "1" });
  });

  it("refuses tensor and key counts larger than the file could hold", async () => {
    const tensors = Buffer.from(tinyModelBytes());
    tensors.writeBigUInt64LE(1n << 50n, 8);
    expect((await refusal(tensors)).metadata).toMatchObject({ field: "tensor_count", value: String(1n << 50n) });
    const keys = Buffer.from(tinyModelBytes());
    keys.writeBigUInt64LE(10_000_000n, 16);
    expect((await refusal(keys)).metadata).toMatchObject({ field: "metadata_kv_count" });
  });

  it("refuses a string longer than the rest of the file", async () => {
    const bytes = encodeGguf({ metadata: [["general.architecture", gv.str("llama")]], tensors: [] });
    const buf = Buffer.from(bytes);
    // The first key's length prefix sits right after the 24-byte header.
    buf.writeBigUInt64LE(1n << 60n, 24);
    const failure = await refusal(buf);
    expect(failure.metadata.field).toBe("metadata key 0");
    expect(failure.message).toMatch(/claims 1152921504606846976 bytes/);
  });

  it("refuses an unknown architecture, an unknown tensor type, misaligned or overlapping tensors", async () => {
    expect((await refusal(withMeta({ "general.architecture": gv.str("skynet") }))).message).toMatch(/"skynet": is not an architecture the bundled llama.cpp knows/);

    const bytes = Buffer.from(tinyModelBytes());
    const name = Buffer.from("token_embd.weight");
    const at = bytes.indexOf(name) + name.length; // n_dims u32, 2 dims u64, type u32, offset u64
    const typed = Buffer.from(bytes);
    typed.writeUInt32LE(31, at + 4 + 16);
    expect((await refusal(typed)).metadata).toMatchObject({ field: "tensor token_embd.weight type", value: "31" });

    const nextName = Buffer.from("blk.0.attn_norm.weight");
    const nextOffset = bytes.indexOf(nextName) + nextName.length + 4 + 8 + 4;
    const shifted = Buffer.from(bytes);
    shifted.writeBigUInt64LE(shifted.readBigUInt64LE(nextOffset) - 32n, nextOffset);
    expect((await refusal(shifted)).message).toMatch(/tensor blk.0.attn_norm.weight starts at data offset .* must not overlap/);
    const odd = Buffer.from(bytes);
    odd.writeBigUInt64LE(odd.readBigUInt64LE(nextOffset) + 4n, nextOffset);
    expect((await refusal(odd)).metadata.field).toBe("tensor blk.0.attn_norm.weight offset");
  });

  it("refuses a tensor whose data runs past the end of the file", async () => {
    const bytes = tinyModelBytes();
    const failure = await refusal(bytes.subarray(0, bytes.length - 64));
    expect(failure.message).toMatch(/the file is truncated: tensor output.weight ends at byte/);
  });

  it("refuses per-layer arrays of the wrong length and an unknown rope scaling", async () => {
    const heads = await refusal(withMeta({ "llama.attention.head_count": gv.i32s([4, 4, 4]) }));
    expect(heads.message).toMatch(/llama.attention.head_count = an array of 3: must have one value per layer \(2\)/);
    await validateGgufFiles([write(withMeta({ "llama.attention.head_count": { type: GgufType.ARRAY, itemType: GgufType.UINT32, values: [4, 4] } }))]);
    const rope = await refusal(withMeta({ "llama.rope.scaling.type": gv.str("warp") }));
    expect(rope.metadata).toMatchObject({ field: "llama.rope.scaling.type", value: '"warp"' });
  });

  it("validates every part of a sharded model, not only the first", async () => {
    const first = write(tinyModelBytes(), "split-00001-of-00002.gguf");
    write(hugeArrayCountBytes(), "split-00002-of-00002.gguf");
    const failure = await reasonOf(checkGgufFile(first));
    expect(failure.reason).toBe("INVALID_MODEL_FILE");
    expect(failure.metadata.path).toBe(path.join(dir, "split-00002-of-00002.gguf"));
  });
});

describe("a damaged installed copy", () => {
  it("is fetched again by the next pull (resolve) instead of being reported ready, even damaged in place with its size and mtime kept", async () => {
    const { openStack, entry, TINY } = await import("./resolver-world.js");
    const { startHfStandin } = await import("../../../testkit/standins/index.js");
    const hf = await startHfStandin();
    await hf.addRepo("org/one", { files: { "one.gguf": TINY } });
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models: [entry("one", "org/one", "one.gguf")] });
    try {
      const first = await stack.resolver.resolve({ modelId: "one" });
      const stat = fs.statSync(first.path);
      fs.writeFileSync(first.path, Buffer.alloc(stat.size, 7));
      fs.utimesSync(first.path, stat.atime, stat.mtime);
      const again = await stack.resolver.resolve({ modelId: "one" });
      expect(again.source).toBe("huggingface");
      expect(Buffer.from(fs.readFileSync(again.path)).equals(Buffer.from(TINY))).toBe(true);
      // A sound copy is answered from the store.
      expect((await stack.resolver.resolve({ modelId: "one" })).source).toBe("local");
    } finally {
      await stack.dispose();
      await hf.close();
    }
  });
});

describe("an installed model file changed on disk", () => {
  it("is hashed again before it is loaded or pulled: other bytes of the same size are fetched again, the same bytes touched are kept", async () => {
    const { openStack, entry, TINY } = await import("./resolver-world.js");
    const { startHfStandin } = await import("../../../testkit/standins/index.js");
    const hf = await startHfStandin();
    // Another valid GGUF of exactly the same size (other weights): the structure check cannot tell them apart.
    const other = tinyModelBytes({ seed: 9 });
    expect(other.length).toBe(TINY.length);
    await hf.addRepo("org/one", { files: { "one.gguf": TINY } });
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models: [entry("one", "org/one", "one.gguf")] });
    const served = () => hf.requests.filter((r) => r.method === "GET" && r.path.endsWith("one.gguf")).length;
    try {
      const installed = await stack.resolver.resolve({ modelId: "one" });
      expect(served()).toBe(1);

      // Replaced in place right after the download, before any load: same size, valid, other bytes.
      await new Promise((r) => setTimeout(r, 20));
      fs.writeFileSync(installed.path, other);
      // Before, these bytes were loaded as the verified model.
      const located = await stack.resolver.locateModel("one");
      expect(served()).toBe(2);
      expect(Buffer.from(fs.readFileSync(located.path)).equals(Buffer.from(TINY))).toBe(true);

      const later = new Date(Date.now() + 5_000);
      fs.utimesSync(located.path, later, later); // touched, same bytes: hashed, kept
      expect((await stack.resolver.locateModel("one")).path).toBe(located.path);
      expect(served()).toBe(2);

      // A pull checks the same: other valid bytes are not reported ready and verified.
      await new Promise((r) => setTimeout(r, 20));
      fs.writeFileSync(located.path, other);
      const pulled = await stack.resolver.resolve({ modelId: "one" });
      expect(pulled.source).toBe("huggingface");
      expect(Buffer.from(fs.readFileSync(pulled.path)).equals(Buffer.from(TINY))).toBe(true);
      expect(served()).toBe(3);
    } finally {
      await stack.dispose();
      await hf.close();
    }
  });
});

describe("models installed before validation existed", () => {
  it("are validated once at start: a bad one becomes FAILED naming the field, a good one stays; passes are remembered", async () => {
    const { openStack, entry, TINY } = await import("./resolver-world.js");
    const { startHfStandin } = await import("../../../testkit/standins/index.js");
    const { ModelEvents, silentLogger } = await import("../src/index.js");
    const hf = await startHfStandin();
    await hf.addRepo("org/pair", { files: { "good.gguf": TINY, "bad.gguf": tinyModelBytes({ seed: 5 }) } });
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models: [entry("good", "org/pair", "good.gguf"), entry("bad", "org/pair", "bad.gguf")] });
    try {
      await stack.resolver.resolve({ modelId: "good" });
      const bad = await stack.resolver.resolve({ modelId: "bad" });
      // Written by an older node, or changed on disk since: same size, a crashing layer count.
      fs.writeFileSync(bad.path, hostileGgufBytes("too-many-layers"));
      const events = new ModelEvents();
      const seen: unknown[] = [];
      events.on((e) => seen.push(e));
      expect(await stack.checks.checkInstalledModels(events, silentLogger())).toEqual(["bad"]);
      expect(seen).toEqual([expect.objectContaining({ type: "transfer-failed", modelId: "bad", code: "INVALID_MODEL_FILE", reason: expect.stringMatching(/llama.block_count = 100000/) })]);
      // The good file passed and is remembered by inode, size and mtime: replacing it in place is noticed.
      const good = (await stack.store.getModel("good"))!.path;
      fs.writeFileSync(good, withMeta({ "llama.block_count": gv.u32(600) }));
      expect((await stack.checks.checkInstalledModels(events, silentLogger())).sort()).toEqual(["bad", "good"]);
    } finally {
      await stack.dispose();
      await hf.close();
    }
  });
});
