import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadSupportedModels, parseSupportedModels, type SupportedModelRecord } from "../src/catalog/supported-models.js";
import { isLlmlbError } from "../src/errors/index.js";
import { startTestNode, tempDir } from "../../../testkit/node/index.js";

const root = path.resolve(import.meta.dirname, "../../..");
const shipped = path.join(root, "supported_models.json");

const good = (overrides: Partial<SupportedModelRecord> = {}): SupportedModelRecord => ({
  id: "tiny-q4_k_m",
  name: "Tiny",
  description: "A test model",
  repo: "llmlb-test/tiny-GGUF",
  recommended_filename: "tiny-Q4_K_M.gguf",
  size_bytes: 1000,
  required_memory_bytes: 2000,
  tags: ["chat"],
  capabilities: ["text-generation"],
  quantization: "Q4_K_M",
  parameter_count: 1000,
  format: "gguf",
  ...overrides,
});

/** The message of the INVALID_CONFIG error parseSupportedModels throws for these models. */
function problem(models: unknown[], file = "/etc/models.json"): string {
  try {
    parseSupportedModels({ models }, file);
  } catch (err) {
    expect(isLlmlbError(err, "INVALID_CONFIG")).toBe(true);
    return (err as Error).message;
  }
  throw new Error("expected the file to be rejected");
}

describe("supported_models.json", () => {
  const dirs: Array<() => void> = [];
  afterEach(() => dirs.splice(0).forEach((cleanup) => cleanup()));

  it("ships a valid file of at least 8 real GGUF models, chat and embedding, small and large, one sharded", () => {
    const models = loadSupportedModels(shipped);
    expect(models.length).toBeGreaterThanOrEqual(8);
    expect(new Set(models.map((m) => m.id)).size).toBe(models.length);
    expect(models.some((m) => m.capabilities.includes("embeddings"))).toBe(true);
    expect(models.some((m) => m.capabilities.includes("text-generation"))).toBe(true);
    expect(models.some((m) => m.files.length > 1)).toBe(true);
    expect(Math.min(...models.map((m) => m.sizeBytes!))).toBeLessThan(1e9);
    expect(Math.max(...models.map((m) => m.sizeBytes!))).toBeGreaterThan(4e9);
    for (const m of models) {
      expect(m.origin).toBe("supported");
      expect(m.requiredMemoryBytes).toBeGreaterThan(m.sizeBytes!);
      expect(m.files.every((f) => f.endsWith(".gguf"))).toBe(true);
    }
    // The editor schema is referenced relative to the file.
    expect(JSON.parse(fs.readFileSync(shipped, "utf8")).$schema).toBe("./supported_models.schema.json");
  });

  it("names the file, the entry index and id, the field and what was expected", () => {
    const message = problem([good(), good({ id: "second", size_bytes: "big" as unknown as number })]);
    expect(message).toContain("/etc/models.json");
    expect(message).toContain('entry #1 (id "second")');
    expect(message).toContain('field "size_bytes" is "big"');
    expect(message).toContain("expected a positive integer");
  });

  it("reports missing and unknown fields, and bad ids by index", () => {
    const { repo: _repo, ...noRepo } = good();
    expect(problem([noRepo])).toMatch(/entry #0 \(id "tiny-q4_k_m"\): field "repo" is missing; expected a Hugging Face repository/);
    expect(problem([{ ...good(), colour: "blue" }])).toContain('entry #0 (id "tiny-q4_k_m"): unknown field "colour"');
    expect(problem([good({ id: "Bad Id" })])).toMatch(/entry #0 \(id "Bad Id"\): field "id" is "Bad Id"; expected lower-case letters/);
    expect(problem([good({ capabilities: ["chat"] })])).toMatch(/field "capabilities" .* expected a list of "text-generation", "embeddings" and\/or "rerank" \(or the router's "TextGeneration"/);
    expect(problem([good({ recommended_filename: "model.bin" })])).toMatch(/field "recommended_filename" is "model.bin"; expected a .gguf file name/);
  });

  it("rejects duplicate ids", () => {
    expect(problem([good(), good({ repo: "other/repo-GGUF" })])).toContain('entry #1 (id "tiny-q4_k_m"): field "id" duplicates entry #0');
  });

  it("checks that a sharded model lists every part in order", () => {
    expect(problem([good({ recommended_filename: "m-00001-of-00002.gguf" })])).toContain("names part 1 of 2 of a sharded GGUF");
    expect(problem([good({ recommended_filename: ["m-00002-of-00002.gguf", "m-00001-of-00002.gguf"] })])).toContain('part 1 is "m-00002-of-00002.gguf"');
    expect(problem([good({ recommended_filename: ["m-00001-of-00003.gguf", "m-00002-of-00003.gguf"] })])).toContain("lists 2 parts but the names say 3");
    const ok = parseSupportedModels({ models: [good({ recommended_filename: ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"] })] }, "x");
    expect(ok[0]!.files).toEqual(["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]);
  });

  it("names the file when it is not JSON, and treats only the default path as optional", () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const broken = path.join(dir, "broken.json");
    fs.writeFileSync(broken, "{ nope");
    expect(() => loadSupportedModels(broken)).toThrow(`supported models file ${broken} is not valid JSON`);
    expect(loadSupportedModels(path.join(dir, "missing.json"), { optional: true })).toEqual([]);
    expect(() => loadSupportedModels(path.join(dir, "missing.json"))).toThrow(/cannot read supported models file .*missing\.json/);
  });

  it("stops a node's start-up with that one message", async () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const file = path.join(dir, "models.json");
    fs.writeFileSync(file, JSON.stringify({ models: [good(), good({ id: "x", required_memory_bytes: -4 })] }));
    await expect(startTestNode({ LLMLB_SUPPORTED_MODELS: file })).rejects.toThrow(
      new RegExp(`invalid supported models file ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: entry #1 \\(id "x"\\): field "required_memory_bytes" is -4; expected a positive integer`),
    );
  });
});

/** An entry exactly as the llmlb router writes it (PascalCase capabilities, text parameter counts). */
function routerEntry(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    name: `Router ${id}`,
    description: `${id} as listed by an llmlb router`,
    repo: `bartowski/${id}-GGUF`,
    recommended_filename: `${id}-Q4_K_M.gguf`,
    size_bytes: 4_920_000_000,
    required_memory_bytes: 7_380_000_000,
    tags: ["chat", "multilingual"],
    capabilities: ["TextGeneration"],
    quantization: "Q4_K_M",
    parameter_count: "7B",
    format: "gguf",
    engine: "llama_cpp",
    platforms: ["macos-metal", "windows-directml", "linux-cuda"],
    ...extra,
  };
}

describe("the llmlb router's supported_models.json", () => {
  const dirs: Array<() => void> = [];
  afterEach(() => dirs.splice(0).forEach((cleanup) => cleanup()));

  const routerFile = (): unknown[] => [
    ...Array.from({ length: 18 }, (_, i) => routerEntry(`router-model-${i}`, i === 3 ? { parameter_count: "30B A3B" } : {})),
    routerEntry("granite-embed", { capabilities: ["Embedding"], parameter_count: "0.3B" }),
    // The router's older sample file: only the required fields.
    {
      id: "qwen/qwen2.5-0.5b-instruct-gguf", name: "Qwen2.5 0.5B Instruct", description: "sample", repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
      recommended_filename: "qwen2.5-0.5b-instruct-q4_k_m.gguf", size_bytes: 1_000_000_000, required_memory_bytes: 1_500_000_000,
      tags: ["gguf", "chat"], capabilities: ["TextGeneration"],
    },
    routerEntry("gpt-oss-20b", {
      repo: "openai/gpt-oss-20b", recommended_filename: "model.safetensors.index.json", quantization: null, parameter_count: "20B",
      format: "safetensors", engine: "gptoss_cpp", platforms: ["macos-metal"], tags: ["chat", "safetensors"],
    }),
    routerEntry("gpt-oss-120b", {
      repo: "openai/gpt-oss-120b", recommended_filename: "model.safetensors.index.json", quantization: null, parameter_count: "120B",
      format: "safetensors", engine: "gptoss_cpp", platforms: ["macos-metal"],
    }),
    routerEntry("nemotron-gguf", { engine: "nemotron_cpp" }),
    routerEntry("whisper", { capabilities: ["SpeechToText"] }),
  ];

  it("loads a bare array of 20+ router entries without edits, values shown as given", () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const file = path.join(dir, "supported_models.json");
    fs.writeFileSync(file, JSON.stringify(routerFile(), null, 2));
    const models = loadSupportedModels(file);
    expect(models).toHaveLength(24);
    const byId = new Map(models.map((m) => [m.id, m]));
    expect(byId.get("router-model-3")).toMatchObject({ parameterCountText: "30B A3B", quantization: "Q4_K_M", capabilities: ["text-generation"], format: "gguf", engine: "llama_cpp" });
    expect(byId.get("router-model-3")!.parameterCount).toBeUndefined();
    expect(byId.get("granite-embed")!.capabilities).toEqual(["embeddings"]);
    const sample = byId.get("qwen/qwen2.5-0.5b-instruct-gguf")!;
    expect(sample).toMatchObject({ format: "gguf", capabilities: ["text-generation"] });
    expect(sample.quantization).toBeUndefined();
    expect(sample.unsupportedReason).toBeUndefined();
    expect(models.filter((m) => m.unsupportedReason === undefined)).toHaveLength(20);
  });

  it("keeps entries this node cannot run, each with the reason", () => {
    const models = parseSupportedModels(routerFile(), "router.json");
    const reasons = Object.fromEntries(models.filter((m) => m.unsupportedReason).map((m) => [m.id, m.unsupportedReason]));
    expect(reasons).toEqual({
      "gpt-oss-20b": expect.stringContaining('format "safetensors" is not supported'),
      "gpt-oss-120b": expect.stringContaining('format "safetensors" is not supported'),
      "nemotron-gguf": expect.stringContaining('engine "nemotron_cpp" is not supported'),
      whisper: expect.stringContaining("capabilities SpeechToText are not served"),
    });
    expect(models.find((m) => m.id === "gpt-oss-20b")).toMatchObject({ files: ["model.safetensors.index.json"], parameterCountText: "20B", platforms: ["macos-metal"] });
  });

  it("accepts numbers for quantization and parameter_count, and an empty capability list as text generation", () => {
    const [m] = parseSupportedModels([routerEntry("n", { quantization: 8, parameter_count: 7_000_000_000, capabilities: [] })], "x");
    expect(m).toMatchObject({ quantization: "8", parameterCount: 7_000_000_000, parameterCountText: "7000000000", capabilities: ["text-generation"] });
  });

  it("names entries of a bare array by index and id, and still wants .gguf for runnable entries", () => {
    const problemOf = (data: unknown) => {
      try {
        parseSupportedModels(data, "/r.json");
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error("expected a rejection");
    };
    expect(problemOf([routerEntry("a"), routerEntry("b", { size_bytes: "4GB" })])).toContain('entry #1 (id "b"): field "size_bytes" is "4GB"; expected a positive integer');
    expect(problemOf([routerEntry("a", { recommended_filename: "model.bin" })])).toContain('entry #0 (id "a"): field "recommended_filename" is "model.bin"; expected a .gguf file name');
    expect(problemOf([routerEntry("a", { capabilities: ["Telepathy"] })])).toContain('entry #0 (id "a"): field "capabilities"');
    expect(problemOf("models")).toContain("(top level): is \"models\"; expected");
  });
});
