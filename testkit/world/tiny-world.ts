import fs from "node:fs";
import path from "node:path";
import { describeBytes, tinyLoraBytes, tinyModelBytes } from "../gguf/tiny-gguf.js";
import { tempDir } from "../node/test-node.js";
import { startHfStandin, type HfStandin } from "../standins/index.js";

export const TINY_CHAT_ID = "tiny-chat";
export const TINY_EMBED_ID = "tiny-embed";
export const TINY_REPO = "llmlb-test/tiny-GGUF";
export const TINY_CHAT_FILE = "tiny-chat-F32.gguf";
export const TINY_EMBED_FILE = "tiny-embed-F32.gguf";
export const TINY_LORA_FILE = "tiny-lora.gguf";

export const tinyChat = tinyModelBytes();
export const tinyEmbed = tinyModelBytes({ embedding: true });
export const tinyLora = tinyLoraBytes();
/** The files of TINY_REPO: two models and a LoRA adapter. */
export const TINY_REPO_FILES = { [TINY_CHAT_FILE]: tinyChat, [TINY_EMBED_FILE]: tinyEmbed, [TINY_LORA_FILE]: tinyLora };

/** A supported_models.json entry for a file of the tiny repo. */
export function tinyEntry(id: string, file: string, bytes: Uint8Array, capabilities: string[], extra: Record<string, unknown> = {}) {
  const info = describeBytes(bytes);
  return {
    id,
    name: `Tiny ${id}`,
    description: "A deterministic two-block llama generated for tests",
    repo: TINY_REPO,
    recommended_filename: file,
    size_bytes: info.size,
    required_memory_bytes: 64 * 1024 * 1024,
    tags: ["tiny", "test", ...capabilities],
    capabilities,
    quantization: "F32",
    parameter_count: 220_000,
    format: "gguf",
    sha256: info.sha256,
    ...extra,
  };
}

export interface TinyWorld {
  hf: HfStandin;
  /** A supported_models.json listing tiny-chat and tiny-embed (and any extra entries). */
  supportedFile: string;
  /** Environment for startTestNode: the stand-in as HF endpoint, the supported file, CPU, 1 thread. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** The Hugging Face stand-in serving the tiny chat and embedding models, plus a catalog file for them. */
export async function startTinyWorld(options: { extraModels?: Array<Record<string, unknown>> } = {}): Promise<TinyWorld> {
  const hf = await startHfStandin();
  await hf.addRepo(TINY_REPO, {
    files: TINY_REPO_FILES,
    downloads: 4242,
    likes: 42,
  });
  const { dir, cleanup } = tempDir("llmlb-world-");
  const supportedFile = path.join(dir, "supported_models.json");
  fs.writeFileSync(
    supportedFile,
    JSON.stringify({
      models: [
        tinyEntry(TINY_CHAT_ID, TINY_CHAT_FILE, tinyChat, ["text-generation"]),
        tinyEntry(TINY_EMBED_ID, TINY_EMBED_FILE, tinyEmbed, ["embeddings"]),
        ...(options.extraModels ?? []),
      ],
    }),
  );
  return {
    hf,
    supportedFile,
    env: { HF_ENDPOINT: hf.url, LLMLB_SUPPORTED_MODELS: supportedFile, LLMLB_GPU: "cpu", LLMLB_THREADS: "1" },
    async close() {
      await hf.close();
      cleanup();
    },
  };
}
