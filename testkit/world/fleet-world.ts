import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "../node/test-node.js";
import { startHfStandin, type HfStandin } from "../standins/index.js";
import { sizedModelBytes } from "../gguf/sized-gguf.js";
import { startRedis, type RedisServer } from "../services/index.js";

export const FLEET_REPO = "llmlb-test/fleet-GGUF";
export const FLEET_FILE = "fleet-Q8_0.gguf";
export const FLEET_MODEL_ID = "fleet-model";


export interface FleetWorld {
  hf: HfStandin;
  redis: RedisServer;
  bytes: Uint8Array;
  sha256: string;
  /** Environment of a fleet node: the stand-in as hub, the catalog file, the shared Redis. */
  env: Record<string, string>;
  /** Body bytes of the model the hub's CDN has sent so far. */
  hubBytes(): number;
  close(): Promise<void>;
}

/** A hub stand-in serving one model file of `size` bytes, its catalog entry, and one Redis. */
export async function startFleetWorld(size: number): Promise<FleetWorld> {
  // A valid GGUF (installs pass GGUF validation), downloaded and verified, never loaded.
  const bytes = sizedModelBytes(size);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const hf = await startHfStandin();
  await hf.addRepo(FLEET_REPO, { files: { [FLEET_FILE]: bytes } });
  const redis = await startRedis();
  const { dir, cleanup } = tempDir("llmlb-fleet-");
  const supportedFile = path.join(dir, "supported_models.json");
  fs.writeFileSync(
    supportedFile,
    JSON.stringify({
      models: [
        {
          id: FLEET_MODEL_ID,
          name: "Fleet test model",
          description: "Random bytes the fleet tests download and verify",
          repo: FLEET_REPO,
          recommended_filename: FLEET_FILE,
          size_bytes: size,
          required_memory_bytes: 64 * 1024 * 1024,
          tags: ["test"],
          capabilities: ["text-generation"],
          quantization: "Q8_0",
          parameter_count: 1_000_000,
          format: "gguf",
          sha256,
        },
      ],
    }),
  );
  return {
    hf,
    redis,
    bytes,
    sha256,
    env: { HF_ENDPOINT: hf.url, LLMLB_SUPPORTED_MODELS: supportedFile, LLMLB_STATE_URL: redis.url, LLMLB_STALL_TIMEOUT: "10" },
    hubBytes: () => hf.bytesServed(FLEET_REPO, FLEET_FILE),
    async close() {
      await redis.close();
      await hf.close();
      cleanup();
    },
  };
}
