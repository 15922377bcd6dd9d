/**
 * ListModels under load while Hugging Face hangs: 500 catalog entries (250 supported + 250
 * registered), every Hub request hanging, 2,000 ListModels calls over gRPC from 20 concurrent
 * clients (each its own HTTP/2 connection). The node runs in a child process
 * (catalog-bench-node.ts). Prints p50 and p99 latency, the same for clients that do not accept
 * gzip, and a baseline measured in the same run: grpc.health.v1.Health/Check, the cheapest call
 * the node serves, over the same stack and concurrency.
 *
 *   node --conditions=source --import tsx bench/catalog.bench.ts
 *
 * Target: p99 < 20 ms (the seed's limit is 500 ms).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { createInterface } from "node:readline";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { openCatalogDb } from "../packages/runtime/src/catalog/catalog-db.js";
import { openStateStore } from "../packages/runtime/src/state/state-store.js";
import { RegistrationStore } from "../packages/runtime/src/catalog/registration-store.js";
import type { SupportedModelRecord } from "../packages/runtime/src/catalog/supported-models.js";
import { Health } from "../packages/runtime/src/gen/grpc/health/v1/health_pb.js";
import { ModelCatalogService } from "../packages/runtime/src/gen/llmlb/node/v1/catalog_pb.js";
import { silentLogger } from "../packages/runtime/src/logging/index.js";
import { tempDir } from "../testkit/node/index.js";
import { startHfStandin } from "../testkit/standins/index.js";
import { percentile } from "./stats.js";

const SUPPORTED = 250;
const REGISTERED = 250;
const CLIENTS = 20;
const CALLS = 2000;
const WARMUP_PER_CLIENT = 5;

function supportedModel(i: number): SupportedModelRecord {
  return {
    id: `bench-supported-${i}`,
    name: `Bench supported model ${i}`,
    description: `Supported model number ${i} for the catalog benchmark`,
    repo: `bench-org/supported-${i}-GGUF`,
    recommended_filename: `supported-${i}-Q4_K_M.gguf`,
    size_bytes: 1_000_000 + i,
    required_memory_bytes: 2_000_000 + i,
    tags: i % 2 === 0 ? ["chat", "bench"] : ["embedding", "bench"],
    capabilities: i % 2 === 0 ? ["text-generation"] : ["embeddings"],
    quantization: "Q4_K_M",
    parameter_count: 1_000_000,
    format: "gguf",
  };
}

async function seedRegistrations(home: string): Promise<void> {
  const state = await openStateStore({ home, stateUrl: "" }, silentLogger());
  const db = openCatalogDb(state);
  const store = new RegistrationStore(db.registrations, silentLogger());
  for (let i = 0; i < REGISTERED; i++) {
    await store.add({
      registeredAt: Date.now() + i,
      entry: {
        id: `bench-registered-${i}`,
        displayName: `Bench registered model ${i}`,
        description: `Registered model number ${i}`,
        repo: `bench-org/registered-${i}-GGUF`,
        files: [`registered-${i}-Q8_0.gguf`],
        tags: ["bench"],
        capabilities: ["text-generation"],
        quantization: "Q8_0",
        format: "gguf",
        origin: "registered",
      },
    });
  }
  await state.close();
}

/** Starts the node in a child process (same flags as this one: tsx, source conditions) and waits until it serves. */
async function spawnNode(env: Record<string, string>): Promise<{ child: ChildProcess; grpcUrl: string }> {
  const script = new URL("./catalog-bench-node.ts", import.meta.url).pathname;
  const child = spawn(process.execPath, [...process.execArgv, script], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit", "ipc"] });
  const lines = createInterface({ input: child.stdout! });
  const grpcUrl = await new Promise<string>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the benchmark node exited with ${code}`)));
    lines.once("line", (line) => resolve((JSON.parse(line) as { grpcUrl: string }).grpcUrl));
  });
  return { child, grpcUrl };
}

/** CPU time the node process has used so far, in microseconds. */
function nodeCpuMicros(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once("message", (m) => resolve((m as { cpuMicros: number }).cpuMicros));
    child.send("cpu");
  });
}

async function stopNode(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

async function main(): Promise<void> {
  const hf = await startHfStandin();
  await hf.down({ mode: "hang" });
  const { dir, cleanup } = tempDir("llmlb-bench-catalog-");
  const home = path.join(dir, "home");
  const supportedFile = path.join(dir, "supported_models.json");
  fs.writeFileSync(supportedFile, JSON.stringify({ models: Array.from({ length: SUPPORTED }, (_, i) => supportedModel(i)) }));
  await seedRegistrations(home);
  const node = await spawnNode({ HF_ENDPOINT: hf.url, LLMLB_SUPPORTED_MODELS: supportedFile, LLMLB_HOME: home });
  try {
    const grpc = (options: { acceptCompression?: [] } = {}) => createGrpcTransport({ baseUrl: node.grpcUrl, ...options });
    const first = await createClient(ModelCatalogService, grpc()).listModels({});
    if (first.totalSize !== SUPPORTED + REGISTERED) throw new Error(`expected ${SUPPORTED + REGISTERED} entries, the catalog has ${first.totalSize}`);
    // Mostly the default first page (100 models); some clients filter by tag or free text.
    const listCall = (options: { acceptCompression?: [] }) => () => {
      const client = createClient(ModelCatalogService, grpc(options));
      return (k: number) => client.listModels(k % 4 === 0 ? { tag: "chat" } : k % 4 === 1 ? { query: "number 1" } : {});
    };
    // Default clients accept gzip, so the server compresses every page (≥ 1 KiB); "identity" clients do not.
    const gzip = await measure(node.child, "catalog_list", listCall({}));
    const identity = await measure(node.child, "catalog_list_identity", listCall({ acceptCompression: [] }));
    // Baseline in the same run: the cheapest call the node serves, over the same gRPC stack.
    const health = await measure(node.child, "grpc_health_check", () => {
      const client = createClient(Health, grpc());
      return () => client.check({ service: "" });
    });
    console.log(gzip.headline);
    console.log(`${identity.headline} ${health.headline}`);
    console.log(`catalog_list_p99_over_health_p99=${(gzip.p99 / health.p99).toFixed(2)} catalog_entries=${first.totalSize} hub_requests_open=${hf.requests.filter((r) => !r.completed && !r.aborted).length}`);
    for (const m of [gzip, identity, health]) console.log(m.details);
  } finally {
    await stopNode(node.child);
    await hf.close();
    cleanup();
  }
}

interface Measurement {
  headline: string;
  details: string;
  p99: number;
}

/**
 * CALLS calls from CLIENTS concurrent clients, each with its own HTTP/2 connection (`makeClient`
 * returns one client's call function, given the client's index).
 */
async function measure(child: ChildProcess, label: string, makeClient: () => (k: number) => Promise<unknown>): Promise<Measurement> {
  const clients = Array.from({ length: CLIENTS }, makeClient);
  await Promise.all(
    clients.map(async (call, k) => {
      for (let i = 0; i < WARMUP_PER_CLIENT; i++) await call(k);
    }),
  );
  const cpuBefore = await nodeCpuMicros(child);
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (call, k) => {
      while (next < CALLS) {
        next++;
        const t0 = performance.now();
        await call(k);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const wall = performance.now() - started;
  const nodeCpu = (await nodeCpuMicros(child)) - cpuBefore;
  latencies.sort((a, b) => a - b);
  const p99 = percentile(latencies, 99);
  return {
    p99,
    headline: `${label}_p50_ms=${percentile(latencies, 50).toFixed(2)} ${label}_p99_ms=${p99.toFixed(2)}`,
    details:
      `${label}_calls=${latencies.length} ${label}_clients=${CLIENTS} ${label}_max_ms=${latencies[latencies.length - 1]!.toFixed(2)} ` +
      `${label}_per_s=${Math.round((latencies.length / wall) * 1000)} ${label}_node_cpu_us_per_call=${Math.round(nodeCpu / latencies.length)}`,
  };
}

await main();
