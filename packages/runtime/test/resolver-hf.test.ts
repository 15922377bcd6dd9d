import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHfStandin, type HfStandin } from "../../../testkit/standins/index.js";
import { TINY, TINY_INFO, entry, openStack, recorder } from "./resolver-world.js";

describe("resolving from the Hugging Face stand-in", () => {
  let hf: HfStandin;
  beforeAll(async () => {
    hf = await startHfStandin();
    await hf.addRepo("org/tiny-GGUF", { files: { "tiny-Q4_K_M.gguf": TINY } });
  });
  afterAll(async () => hf?.close());

  it("downloads, verifies and installs a model, then answers from the store", async () => {
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models: [entry("tiny", "org/tiny-GGUF", "tiny-Q4_K_M.gguf")] });
    try {
      const rec = recorder();
      const result = await stack.resolver.resolve({ modelId: "tiny" }, { onEvent: rec.onEvent });
      expect(result).toMatchObject({ id: "tiny", source: "huggingface", sizeBytes: TINY_INFO.size, sha256: TINY_INFO.sha256 });
      expect(result.path).toBe(path.join(stack.home, "models", "tiny", "tiny-Q4_K_M.gguf"));
      expect(fs.readFileSync(result.path)).toEqual(Buffer.from(TINY));
      expect(rec.events.map((e) => e.type)).toContain("progress");
      const again = await stack.resolver.resolve({ modelId: "tiny" });
      expect(again).toMatchObject({ source: "local", path: result.path });
    } finally {
      await stack.dispose();
    }
  });
});
