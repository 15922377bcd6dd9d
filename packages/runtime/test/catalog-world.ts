/**
 * The test world of the catalog tests: a Hugging Face stand-in holding tiny GGUF repos, a
 * supported-models file pointing at them, and nodes started against both (gRPC clients included).
 */
import fs from "node:fs";
import path from "node:path";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ModelCatalogService } from "../src/gen/llmlb/node/v1/catalog_pb.js";
import type { SupportedModelRecord } from "../src/catalog/supported-models.js";
import { afterAll, beforeAll } from "vitest";
import { startTestNode, tempDir, type TestNode } from "../../../testkit/node/index.js";
import { sizedModelBytes } from "../../../testkit/gguf/sized-gguf.js";
import { describeBytes, tinyModelBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { startHfStandin, type HfStandin } from "../../../testkit/standins/index.js";

export const CHAT_REPO = "llmlb-test/tiny-chat-GGUF";
export const SHARDED_REPO = "llmlb-test/tiny-sharded-GGUF";
export const EMBED_REPO = "llmlb-test/tiny-embed-GGUF";
export const GATED_REPO = "llmlb-test/tiny-gated-GGUF";
export const NO_GGUF_REPO = "llmlb-test/safetensors-only";

export const tiny = tinyModelBytes();
export const tinyInfo = describeBytes(tiny);
export const tinyQ8 = tinyModelBytes({ seed: 2 });
export const tinyF16 = tinyModelBytes({ dtype: "f16" });
/** Each part of a sharded GGUF is a GGUF file of its own. */
export const shardA = sizedModelBytes(500_000, 41);
export const shardB = sizedModelBytes(378_560, 42);

export async function startHubWithRepos(): Promise<HfStandin> {
  const hf = await startHfStandin();
  await hf.addRepo(CHAT_REPO, {
    files: { "tiny-chat-Q4_K_M.gguf": tiny, "tiny-chat-Q8_0.gguf": tinyQ8, "tiny-chat-F16.gguf": tinyF16, "README.md": new TextEncoder().encode("# tiny\n") },
    downloads: 1234,
    likes: 56,
  });
  await hf.addRepo(SHARDED_REPO, { files: { "tiny-Q4_K_M-00001-of-00002.gguf": shardA, "tiny-Q4_K_M-00002-of-00002.gguf": shardB } });
  await hf.addRepo(EMBED_REPO, { files: { "tiny-embed-Q8_0.gguf": tinyModelBytes({ embedding: true }) }, pipeline_tag: "feature-extraction" });
  await hf.addRepo(GATED_REPO, { files: { "tiny-gated-Q4_K_M.gguf": tiny }, gated: "manual" });
  await hf.addRepo(NO_GGUF_REPO, { files: { "model.safetensors": { data: new Uint8Array(64), lfs: true }, "config.json": new TextEncoder().encode("{}") } });
  return hf;
}

/** A supported model served by the stand-in (the tiny GGUF). */
export function tinySupported(overrides: Partial<SupportedModelRecord> = {}): SupportedModelRecord {
  return {
    id: "tiny-chat-q4_k_m",
    name: "Tiny chat",
    description: "The tiny test model",
    repo: CHAT_REPO,
    recommended_filename: "tiny-chat-Q4_K_M.gguf",
    size_bytes: tinyInfo.size,
    required_memory_bytes: 64 * 1024 * 1024,
    tags: ["chat", "small"],
    capabilities: ["text-generation"],
    quantization: "Q4_K_M",
    parameter_count: 200_000,
    format: "gguf",
    sha256: tinyInfo.sha256,
    ...overrides,
  };
}

/** Writes a supported-models file in a fresh directory; returns its path and the cleanup. */
export function writeSupportedFile(models: SupportedModelRecord[]): { file: string; cleanup: () => void } {
  const { dir, cleanup } = tempDir("llmlb-supported-");
  const file = path.join(dir, "supported_models.json");
  fs.writeFileSync(file, JSON.stringify({ $schema: "./supported_models.schema.json", models }, null, 2));
  return { file, cleanup };
}

export interface CatalogNode extends TestNode {
  catalog: Client<typeof ModelCatalogService>;
  /** The gRPC transport the catalog client uses (one HTTP/2 connection). */
  transport: Transport;
}

/** A node on a home of the caller's choosing (so a restart can reuse it), with a gRPC catalog client. */
export async function startCatalogNode(env: Record<string, string>): Promise<CatalogNode> {
  const node = await startTestNode(env);
  const transport = createGrpcTransport({ baseUrl: node.grpcUrl });
  return { ...node, transport, catalog: createClient(ModelCatalogService, transport) };
}

export interface CatalogWorld {
  hf: HfStandin;
  /** The supported-models file the node reads. */
  supportedFile: string;
  home: string;
  node: CatalogNode;
  /** Stops the node and starts another on the same home and files. */
  restart(): Promise<void>;
}

/**
 * Registers beforeAll/afterAll hooks that start the Hub stand-in and one node whose catalog holds
 * `models`; the returned object is filled in once they ran.
 */
export function useCatalogWorld(models: SupportedModelRecord[]): CatalogWorld {
  const world = {} as CatalogWorld;
  const cleanups: Array<() => void> = [];
  const start = () => startCatalogNode({ HF_ENDPOINT: world.hf.url, LLMLB_SUPPORTED_MODELS: world.supportedFile, LLMLB_HOME: world.home });
  beforeAll(async () => {
    world.hf = await startHubWithRepos();
    const supported = writeSupportedFile(models);
    const home = tempDir("llmlb-catalog-home-");
    cleanups.push(supported.cleanup, home.cleanup);
    world.supportedFile = supported.file;
    world.home = home.dir;
    world.node = await start();
    world.restart = async () => {
      await world.node.stop();
      world.node = await start();
    };
  });
  afterAll(async () => {
    await world.node?.stop();
    await world.hf?.close();
    cleanups.forEach((cleanup) => cleanup());
  });
  return world;
}
