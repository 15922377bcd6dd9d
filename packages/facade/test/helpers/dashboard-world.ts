import fs from "node:fs";
import path from "node:path";
import { describeBytes, tinyModelBytes } from "../../../../testkit/gguf/tiny-gguf.js";
import { startTestNode, tempDir, type TestNode } from "../../../../testkit/node/index.js";
import { startHfStandin, type HfStandin } from "../../../../testkit/standins/index.js";

export const API_KEY = "dashboard-test-key";
export const TINY_ID = "tiny-chat-f32";
export const TINY_NAME = "Tiny Chat (F32)";
export const TINY_REPO = "llmlb-test/tiny-chat-GGUF";
export const TINY_FILE = "tiny-chat.F32.gguf";
/** A second repo on the stand-in, only for registration. */
export const EXTRA_REPO = "someone/tiny-extra-GGUF";
export const EXTRA_FILE = "tiny-extra.F16.gguf";

const MiB = 1024 * 1024;
/**
 * The tiny GGUF padded with zeros to 4 MiB. The runtime reports progress as ~1 MiB blocks reach the
 * file, so a file under 1 MiB would jump from 0 to 100%; this one shows a few steps in between.
 * (It is never loaded here, only downloaded, so the padding does not matter.)
 */
const tiny = (() => {
  const bytes = new Uint8Array(4 * MiB);
  bytes.set(tinyModelBytes());
  return bytes;
})();
const tinyInfo = describeBytes(tiny);
export const TINY_SIZE_TEXT = "4.00 MiB";

/** Five curated models: one the stand-in serves, four that only need to be listed (one of them unsupported here). */
export const SUPPORTED_MODELS = [
  {
    id: TINY_ID,
    name: TINY_NAME,
    description: "A deterministic two-block llama built for tests: tiny, instant to download, random output.",
    repo: TINY_REPO,
    recommended_filename: TINY_FILE,
    size_bytes: tinyInfo.size,
    required_memory_bytes: 64 * MiB,
    tags: ["chat", "tiny", "test"],
    capabilities: ["text-generation"],
    quantization: "F32",
    parameter_count: 220_000,
    format: "gguf",
    sha256: tinyInfo.sha256,
  },
  {
    id: "qwen2.5-7b-instruct-q4_k_m",
    name: "Qwen2.5 7B Instruct (Q4_K_M)",
    description: "Strong general chat model with tool use and long context; needs a GPU or a patient CPU.",
    repo: "bartowski/Qwen2.5-7B-Instruct-GGUF",
    recommended_filename: "Qwen2.5-7B-Instruct-Q4_K_M.gguf",
    size_bytes: 4_683_073_888,
    required_memory_bytes: 5_771_362_304,
    tags: ["chat", "qwen", "multilingual", "tools"],
    capabilities: ["text-generation"],
    quantization: "Q4_K_M",
    parameter_count: 7_620_000_000,
    format: "gguf",
  },
  {
    id: "llama-3.2-3b-instruct-q4_k_m",
    name: "Llama 3.2 3B Instruct (Q4_K_M)",
    description: "Meta's small Llama 3.2 chat model; 128K context, good at summaries and rewriting.",
    repo: "bartowski/Llama-3.2-3B-Instruct-GGUF",
    recommended_filename: "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
    size_bytes: 2_019_377_696,
    required_memory_bytes: 2_818_572_288,
    tags: ["chat", "llama", "small"],
    capabilities: ["text-generation"],
    quantization: "Q4_K_M",
    parameter_count: 3_210_000_000,
    format: "gguf",
  },
  {
    id: "nomic-embed-text-v1.5-q8_0",
    name: "Nomic Embed Text v1.5 (Q8_0)",
    description: "Text embeddings for search and retrieval (768 dimensions, 8K context).",
    repo: "nomic-ai/nomic-embed-text-v1.5-GGUF",
    recommended_filename: "nomic-embed-text-v1.5.Q8_0.gguf",
    size_bytes: 146_146_432,
    required_memory_bytes: 469_762_048,
    tags: ["embedding", "retrieval"],
    capabilities: ["embeddings"],
    quantization: "Q8_0",
    parameter_count: 137_000_000,
    format: "gguf",
  },
  {
    // As an llmlb router lists it: this node cannot run it, so it is shown greyed out with the reason.
    id: "gpt-oss-20b",
    name: "GPT-OSS 20B",
    description: "OpenAI's open-weight 20B model (Metal optimized).",
    repo: "openai/gpt-oss-20b",
    recommended_filename: "model.safetensors.index.json",
    size_bytes: 13_761_316_904,
    required_memory_bytes: 20_641_975_356,
    tags: ["openai", "gpt-oss"],
    capabilities: ["TextGeneration"],
    quantization: null,
    parameter_count: "20B",
    format: "safetensors",
    engine: "gptoss_cpp",
    platforms: ["macos-metal"],
  },
];
export const UNSUPPORTED_ID = "gpt-oss-20b";

export interface DashboardWorld {
  hf: HfStandin;
  node: TestNode;
  close(): Promise<void>;
}

/**
 * A real node (in this process, random loopback ports, API key on) whose Hugging Face is the
 * stand-in. The stand-in paces file bodies at `bytesPerSecond`, so a pull of the tiny model takes
 * long enough (~1.6 s) for the page to show progress.
 */
export async function startDashboardWorld(bytesPerSecond = 2.5 * MiB): Promise<DashboardWorld> {
  const hf = await startHfStandin();
  const supported = tempDir("llmlb-dashboard-");
  let node: TestNode | undefined;
  try {
    await hf.addRepo(TINY_REPO, { files: { [TINY_FILE]: tiny }, downloads: 48_213, likes: 312 });
    await hf.addRepo(EXTRA_REPO, { files: { [EXTRA_FILE]: tinyModelBytes({ dtype: "f16" }) }, downloads: 7, likes: 1 });
    hf.throttle(bytesPerSecond);
    const file = path.join(supported.dir, "supported_models.json");
    fs.writeFileSync(file, JSON.stringify({ models: SUPPORTED_MODELS }, null, 2));
    node = await startTestNode({
      HF_ENDPOINT: hf.url,
      LLMLB_SUPPORTED_MODELS: file,
      LLMLB_API_KEY: API_KEY,
      LLMLB_DOWNLOAD_CONNECTIONS: "1",
    });
  } catch (err) {
    await hf.close();
    supported.cleanup();
    throw err;
  }
  const running = node;
  return {
    hf,
    node: running,
    async close() {
      await running.stop();
      await hf.close();
      supported.cleanup();
    },
  };
}
