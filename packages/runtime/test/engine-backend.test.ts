import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkGgufFile, llamaOptionsFor, loadLlama, resolveThreads, silentLogger } from "../src/index.js";
import { writeTinyLora, writeTinyModel } from "../../../testkit/gguf/tiny-gguf.js";
import { modelWithoutKey, reasonOf, truncatedModel } from "./fixtures/engine-fixtures.js";

describe("GPU choice and threads", () => {
  it("maps each LLMLB_GPU value onto node-llama-cpp's gpu option, never building from source", () => {
    expect(llamaOptionsFor("auto", 2)).toMatchObject({ gpu: "auto", build: "never", maxThreads: 2 });
    expect(llamaOptionsFor("cpu", 2)).toMatchObject({ gpu: false });
    expect(llamaOptionsFor("cuda", 2)).toMatchObject({ gpu: "cuda" });
    expect(llamaOptionsFor("metal", 2)).toMatchObject({ gpu: "metal" });
    expect(llamaOptionsFor("vulkan", 2)).toMatchObject({ gpu: "vulkan" });
  });

  it("takes LLMLB_THREADS as given, and 0 as one less than the cores (at least 1)", () => {
    expect(resolveThreads(3)).toBe(3);
    expect(resolveThreads(0)).toBe(Math.max(1, os.availableParallelism() - 1));
    expect(llamaOptionsFor("cpu", 0).maxThreads).toBe(resolveThreads(0));
  });

  it("runs on the CPU with LLMLB_GPU=cpu and the configured thread cap", async () => {
    const llama = await loadLlama("cpu", 1, silentLogger());
    try {
      expect(llama.gpu).toBe(false);
      expect(llama.maxThreads).toBe(1);
    } finally {
      await llama.dispose();
    }
  });

  // This machine has no GPU: node-llama-cpp has no working CUDA/Vulkan binary here, and Metal
  // (macOS only) falls back to the CPU, which must not pass silently either.
  it.each(["cuda", "vulkan", "metal"] as const)("fails clearly, naming LLMLB_GPU, when %s cannot be used", async (gpu) => {
    const failure = await reasonOf(loadLlama(gpu, 1, silentLogger()));
    expect(failure.reason).toBe("INVALID_CONFIG");
    expect(failure.message).toContain(`LLMLB_GPU=${gpu}`);
    expect(failure.message).toMatch(/LLMLB_GPU=auto or LLMLB_GPU=cpu/);
    expect(failure.metadata).toEqual({ setting: "LLMLB_GPU", value: gpu });
  });
});

describe("GGUF check before loading", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-gguf-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const good = writeTinyModel(path.join(dir, "files", "tiny.gguf"));

  it("accepts the tiny model and adapter", async () => {
    const info = await checkGgufFile(good.path);
    expect(info.metadata.general.architecture).toBe("llama");
    await checkGgufFile(writeTinyLora(path.join(dir, "files", "lora.gguf")).path, "adapter");
  });

  it.each([
    ["the tensor data", good.size - 100_000],
    ["the last byte", good.size - 1],
    ["the header", 5_000],
  ])("refuses a file truncated in %s", async (_where, bytes) => {
    const failure = await reasonOf(checkGgufFile(truncatedModel(dir, bytes)));
    expect(failure.reason).toBe("INVALID_MODEL_FILE");
    expect(failure.message).toMatch(/truncated/);
  });

  // Without these two keys llama.cpp fails a GGML_ASSERT and aborts the whole process.
  it.each(["llama.feed_forward_length", "llama.attention.head_count", "llama.block_count", "tokenizer.ggml.model"])(
    "refuses a model without %s",
    async (key) => {
      const failure = await reasonOf(checkGgufFile(modelWithoutKey(dir, key)));
      expect(failure.reason).toBe("INVALID_MODEL_FILE");
      expect(failure.message).toContain(key);
    },
  );

  it("refuses what is not GGUF at all, and a model passed as an adapter", async () => {
    const junk = path.join(dir, "junk.gguf");
    fs.writeFileSync(junk, "<html>not a model</html>");
    const failure = await reasonOf(checkGgufFile(junk));
    expect(failure.metadata).toMatchObject({ field: "magic", value: '"<htm"' });
    expect(failure.message).toMatch(/does not start with "GGUF"/);
    expect((await reasonOf(checkGgufFile(good.path, "adapter"))).message).toMatch(/general.type/);
  });
});
