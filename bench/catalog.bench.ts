/**
 * ListModels under load while Hugging Face hangs: 500 catalog entries (250 supported + 250
 * registered), every Hub request hanging, 2,000 ListModels calls over gRPC from 20 concurrent
 * clients (each its own HTTP/2 connection). The node runs in a child process
 * (catalog-bench-node.ts). Prints p50 and p99 latency.
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
import { RegistrationStore } from "../packages/runtime/src/catalog/registration-store.js";
import type { SupportedModelRecord } from "../packages/runtime/src/catalog/supported-models.js";
import { ModelCatalogService } from "../packages/runtime/src/gen/llmlb/node/v1/catalog_pb.js";
import { silentLogger } from "../packages/runtime/src/logging/index.js";
import { tempDir } from "../testkit/node/index.js";
import { startHfStandin } from "../testkit/standins/index.js";

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
  const db = openCatalogDb(home);
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
  await db.close();
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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
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
    // Default clients accept gzip, so the server compresses every page; "identity" clients do not.
    const gzip = await measure(node, "catalog_list", {});
    const identity = await measure(node, "catalog_list_identity", { acceptCompression: [] });
    console.log(gzip.headline);
    console.log(identity.headline);
    console.log(`${gzip.details} hub_requests_open=${hf.requests.filter((r) => !r.completed && !r.aborted).length}`);
    console.log(identity.details);
  } finally {
    await stopNode(node.child);
    await hf.close();
    cleanup();
  }
}

/** CALLS ListModels calls from CLIENTS concurrent clients, each on its own HTTP/2 connection. */
async function measure(
  node: { child: ChildProcess; grpcUrl: string },
  label: string,
  transportOptions: { acceptCompression?: [] },
): Promise<{ headline: string; details: string }> {
  const clients = Array.from({ length: CLIENTS }, () =>
    createClient(ModelCatalogService, createGrpcTransport({ baseUrl: node.grpcUrl, ...transportOptions })),
  );
  const first = await clients[0]!.listModels({});
  if (first.totalSize !== SUPPORTED + REGISTERED) throw new Error(`expected ${SUPPORTED + REGISTERED} entries, the catalog has ${first.totalSize}`);
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < WARMUP_PER_CLIENT; i++) await c.listModels({});
    }),
  );

  const cpuBefore = await nodeCpuMicros(node.child);
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (client, k) => {
      while (next < CALLS) {
        next++;
        // Mostly the default first page (100 models); some clients filter by tag or free text.
        const request = k % 4 === 0 ? { tag: "chat" } : k % 4 === 1 ? { query: "number 1" } : {};
        const t0 = performance.now();
        const res = await client.listModels(request);
        latencies.push(performance.now() - t0);
        if (res.models.length === 0) throw new Error("empty page");
      }
    }),
  );
  const wall = performance.now() - started;
  const nodeCpu = (await nodeCpuMicros(node.child)) - cpuBefore;
  latencies.sort((a, b) => a - b);
  return {
    headline: `${label}_p50_ms=${percentile(latencies, 50).toFixed(2)} ${label}_p99_ms=${percentile(latencies, 99).toFixed(2)}`,
    details:
      `${label}_calls=${latencies.length} ${label}_clients=${CLIENTS} catalog_entries=${first.totalSize} ` +
      `${label}_max_ms=${latencies[latencies.length - 1]!.toFixed(2)} ${label}_per_s=${Math.round((latencies.length / wall) * 1000)} ` +
      `${label}_node_cpu_us_per_call=${Math.round(nodeCpu / latencies.length)}`,
  };
}

await main();
