import { describe, expect, it } from "vitest";
import { groupGgufFiles, pickDefault, quantizationOf, shardParts } from "../src/catalog/gguf-files.js";
import { deriveModelId } from "../src/catalog/register-model.js";
import { parseRepoRef } from "../src/catalog/repo-ref.js";
import { isLlmlbError } from "../src/errors/index.js";

describe("GGUF file names", () => {
  it("reads quantizations the way repositories name them", () => {
    expect(quantizationOf("Qwen2.5-0.5B-Instruct-Q4_K_M.gguf")).toBe("Q4_K_M");
    expect(quantizationOf("qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf")).toBe("Q4_K_M");
    expect(quantizationOf("nomic-embed-text-v1.5.Q8_0.gguf")).toBe("Q8_0");
    expect(quantizationOf("gemma-2-9b-it-Q4_K_M-fp16.gguf")).toBe("Q4_K_M");
    expect(quantizationOf("Llama-3.2-1B-Instruct-IQ3_XS.gguf")).toBe("IQ3_XS");
    expect(quantizationOf("model-f16.gguf")).toBe("F16");
    expect(quantizationOf("Qwen3-4B-UD-Q4_K_XL.gguf")).toBe("UD-Q4_K_XL");
    expect(quantizationOf("model.gguf")).toBeUndefined();
  });

  it("recognises shard parts", () => {
    expect(shardParts("dir/m-00002-of-00003.gguf")).toEqual({ base: "dir/m", index: 2, count: 3 });
    expect(shardParts("m-00004-of-00003.gguf")).toBeUndefined();
    expect(shardParts("m.gguf")).toBeUndefined();
  });

  it("groups shards, and picks Q4_K_M, then Q4_K_S, Q5_K_M, Q8_0, else the smallest", () => {
    const listing = [
      { path: "README.md", size: 10 },
      { path: "m-Q8_0.gguf", size: 800 },
      { path: "m-Q4_K_M-00002-of-00002.gguf", size: 100 },
      { path: "m-Q4_K_M-00001-of-00002.gguf", size: 300, sha256: "a".repeat(64) },
      { path: "mmproj-m-f16.gguf", size: 5 },
      { path: "m-Q2_K.gguf", size: 200 },
    ];
    const groups = groupGgufFiles(listing);
    const q4 = groups.find((g) => g.quantization === "Q4_K_M");
    expect(q4).toEqual({ files: ["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf"], sizeBytes: 400, sha256: "a".repeat(64), quantization: "Q4_K_M", complete: true });
    expect(pickDefault(groups)).toBe(q4);
    expect(pickDefault(groups.filter((g) => g !== q4))?.quantization).toBe("Q8_0");
    // Neither preferred: the smallest, never a vision projector.
    expect(pickDefault(groupGgufFiles(listing.filter((f) => !/Q4_K_M|Q8_0/.test(f.path))))?.files).toEqual(["m-Q2_K.gguf"]);
    // An incomplete shard set is never picked.
    expect(pickDefault(groupGgufFiles([{ path: "x-Q4_K_M-00001-of-00003.gguf", size: 1 }]))).toBeUndefined();
  });

  it("never picks a LoRA adapter (a \"lora\" word part in its name)", () => {
    const listing = [
      { path: "m-F16-LoRA.gguf", size: 1 },
      { path: "lora_m-Q4_K_M.gguf", size: 2 },
      { path: "sub/m-lora-Q8_0.gguf", size: 3 },
      { path: "Flora-Q2_K.gguf", size: 400 },
    ];
    expect(pickDefault(groupGgufFiles(listing))?.files).toEqual(["Flora-Q2_K.gguf"]);
    expect(pickDefault(groupGgufFiles(listing.slice(0, 3)))).toBeUndefined();
  });

  it("derives ids from file names", () => {
    expect(deriveModelId("Qwen2.5-0.5B-Instruct-Q4_K_M.gguf")).toBe("qwen2.5-0.5b-instruct-q4_k_m");
    expect(deriveModelId("sub/dir/qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf")).toBe("qwen2.5-7b-instruct-q4_k_m");
    expect(deriveModelId("Weird Name (v2)..Q8_0.gguf")).toBe("weird-name-v2-.q8_0");
  });
});

describe("repo references", () => {
  const endpoint = "https://huggingface.co";

  it("accepts a repo id and every huggingface.co URL form", () => {
    expect(parseRepoRef("Qwen/Qwen2.5-0.5B-Instruct-GGUF", endpoint)).toEqual({ repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF" });
    expect(parseRepoRef("https://huggingface.co/org/repo", endpoint)).toEqual({ repo: "org/repo" });
    expect(parseRepoRef("https://huggingface.co/org/repo/", endpoint)).toEqual({ repo: "org/repo" });
    expect(parseRepoRef("https://hf.co/org/repo/tree/dev", endpoint)).toEqual({ repo: "org/repo", revision: "dev" });
    expect(parseRepoRef("https://huggingface.co/org/repo/blob/main/m-Q4_K_M.gguf", endpoint)).toEqual({ repo: "org/repo", revision: "main", filename: "m-Q4_K_M.gguf" });
    expect(parseRepoRef("https://huggingface.co/org/repo/resolve/refs%2Fpr%2F1/sub/m.gguf?download=true", endpoint)).toEqual({
      repo: "org/repo",
      revision: "refs/pr/1",
      filename: "sub/m.gguf",
    });
  });

  it("honours the configured endpoint's host and path prefix", () => {
    expect(parseRepoRef("http://127.0.0.1:8123/org/repo/resolve/main/m.gguf", "http://127.0.0.1:8123")).toEqual({ repo: "org/repo", revision: "main", filename: "m.gguf" });
    expect(parseRepoRef("https://mirror.example/hf/org/repo", "https://mirror.example/hf")).toEqual({ repo: "org/repo" });
  });

  it("refuses anything else with INVALID_REPO naming the accepted forms", () => {
    for (const bad of ["not a repo", "https://example.com/org/repo", "https://huggingface.co/org", "https://huggingface.co/org/repo/commits/main", "../../etc", "org/repo/../x"]) {
      try {
        parseRepoRef(bad, endpoint);
        throw new Error(`accepted ${bad}`);
      } catch (err) {
        expect(isLlmlbError(err, "INVALID_REPO")).toBe(true);
        expect((err as Error).message).toContain("expected");
      }
    }
  });
});
