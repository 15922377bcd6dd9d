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
/** A sharded model (startFleetWorld's `shards`): its catalog entry lists the parts and knows the sha256 of the first only. */
export const FLEET_SHARDED_ID = "fleet-sharded";
/** A model whose catalog entry has no sha256 and whose repository is not on the hub (startFleetWorld's `undigested`): a router serves it. */
export const FLEET_UNDIGESTED_ID = "fleet-undigested";
export const fleetShardName = (i: number, count: number) => `fleet-sharded-${String(i + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`;


export interface FleetWorld {
  hf: HfStandin;
  redis: RedisServer;
  bytes: Uint8Array;
  sha256: string;
  /** The parts of FLEET_SHARDED_ID, in order (empty without `shards`). */
  shards: Array<{ name: string; bytes: Uint8Array; sha256: string }>;
  /** The bytes of FLEET_UNDIGESTED_ID (empty without `undigested`). */
  undigested: Uint8Array;
  /** Environment of a fleet node: the stand-in as hub, the catalog file, the shared Redis. */
  env: Record<string, string>;
  /** Body bytes of the model the hub's CDN has sent so far. */
  hubBytes(): number;
  close(): Promise<void>;
}

/**
 * A hub stand-in serving one model file of `size` bytes, its catalog entry, and one Redis; with
 * `shards`, also a model of that many parts (`shardBytes` each); with `undigested`, a model of that
 * many bytes the catalog knows no sha256 of and the hub does not have (serve it from a router).
 */
/** A catalog entry of a fleet test model: random bytes in a valid GGUF, downloaded and verified, never loaded. */
function fleetEntry(fields: { id: string; name: string; description: string; recommended_filename: string | string[]; size_bytes: number; sha256?: string; repo?: string }) {
  return {
    repo: FLEET_REPO,
    required_memory_bytes: 64 * 1024 * 1024,
    tags: ["test"],
    capabilities: ["text-generation"],
    quantization: "Q8_0",
    parameter_count: 1_000_000,
    format: "gguf",
    ...fields,
  };
}

export async function startFleetWorld(size: number, options: { shards?: number; shardBytes?: number; undigested?: number } = {}): Promise<FleetWorld> {
  // A valid GGUF (installs pass GGUF validation), downloaded and verified, never loaded.
  const bytes = sizedModelBytes(size);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const count = options.shards ?? 0;
  const shards = Array.from({ length: count }, (_, i) => {
    const part = sizedModelBytes(options.shardBytes ?? 4 << 20, 100 + i);
    return { name: fleetShardName(i, count), bytes: part, sha256: createHash("sha256").update(part).digest("hex") };
  });
  const undigested = options.undigested ? sizedModelBytes(options.undigested, 300) : new Uint8Array(0);
  const hf = await startHfStandin();
  await hf.addRepo(FLEET_REPO, { files: { [FLEET_FILE]: bytes, ...Object.fromEntries(shards.map((s) => [s.name, s.bytes])) } });
  const redis = await startRedis();
  const { dir, cleanup } = tempDir("llmlb-fleet-");
  const supportedFile = path.join(dir, "supported_models.json");
  fs.writeFileSync(
    supportedFile,
    JSON.stringify({
      models: [
        fleetEntry({ id: FLEET_MODEL_ID, name: "Fleet test model", description: "Random bytes the fleet tests download and verify", recommended_filename: FLEET_FILE, size_bytes: size, sha256 }),
        ...(count > 0
          ? [
              fleetEntry({
                id: FLEET_SHARDED_ID,
                name: "Fleet sharded test model",
                description: "Random parts the fleet tests download and verify",
                recommended_filename: shards.map((s) => s.name),
                size_bytes: shards.reduce((n, s) => n + s.bytes.length, 0),
                sha256: shards[0]!.sha256,
              }),
            ]
          : []),
        ...(options.undigested
          ? [
              fleetEntry({
                id: FLEET_UNDIGESTED_ID,
                name: "Fleet model without a digest",
                description: "Random bytes only a router serves, with no sha256 anywhere",
                repo: "llmlb-test/not-on-the-hub-GGUF",
                recommended_filename: "undigested-Q8_0.gguf",
                size_bytes: undigested.length,
              }),
            ]
          : []),
      ],
    }),
  );
  return {
    hf,
    redis,
    bytes,
    sha256,
    shards,
    undigested,
    env: { HF_ENDPOINT: hf.url, LLMLB_SUPPORTED_MODELS: supportedFile, LLMLB_STATE_URL: redis.url, LLMLB_STALL_TIMEOUT: "10" },
    hubBytes: () => hf.bytesServed(FLEET_REPO, FLEET_FILE),
    async close() {
      await redis.close();
      await hf.close();
      cleanup();
    },
  };
}
