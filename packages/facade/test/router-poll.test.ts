import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnChildNode, startTestNode, tempDir, type ChildNode, type TestNode } from "../../../testkit/node/index.js";
import { pollNode } from "../../../testkit/standins/index.js";
import { describeBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { startTinyWorld, tinyChat, tinyEmbed, TINY_CHAT_FILE, TINY_CHAT_ID, TINY_EMBED_FILE, TINY_REPO, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const NODE_KEY = "nk_node_key_42";
/** A catalog id with a namespace, as llmlb's own ids often have: the router sends it as "llmlb-test%2Ftiny-embed". */
const EMBED_ID = "llmlb-test/tiny-embed";
const auth = { authorization: `Bearer ${NODE_KEY}` };

/** The tiny models and a safetensors model, written exactly as an llmlb router writes its supported_models.json. */
function routerCatalog(): unknown[] {
  const entry = (id: string, file: string, bytes: Uint8Array, capability: string, extra: Record<string, unknown> = {}) => ({
    id,
    name: `Tiny ${id}`,
    description: "tiny test model",
    repo: TINY_REPO,
    recommended_filename: file,
    size_bytes: describeBytes(bytes).size,
    required_memory_bytes: 64 * 1024 * 1024,
    tags: ["tiny"],
    capabilities: [capability],
    quantization: "F32",
    parameter_count: "0.2M",
    format: "gguf",
    engine: "llama_cpp",
    platforms: ["cpu", "linux-cuda"],
    ...extra,
  });
  return [
    entry(TINY_CHAT_ID, TINY_CHAT_FILE, tinyChat, "TextGeneration"),
    entry(EMBED_ID, TINY_EMBED_FILE, tinyEmbed, "Embedding", { context_length: 512 }),
    {
      id: "gpt-oss-20b", name: "GPT-OSS 20B", description: "OpenAI's GPT-OSS 20B (Metal optimized)", repo: "openai/gpt-oss-20b",
      recommended_filename: "model.safetensors.index.json", size_bytes: 13761316904, required_memory_bytes: 20641975356,
      tags: ["chat", "safetensors"], capabilities: ["TextGeneration"], quantization: null, parameter_count: "20B",
      format: "safetensors", engine: "gptoss_cpp", platforms: ["macos-metal"],
    },
  ];
}

describe("a pull-era router polling the node (router-format catalog, API key set)", () => {
  let world: TinyWorld;
  let node: TestNode;
  let cleanup: () => void;
  beforeAll(async () => {
    world = await startTinyWorld();
    const tmp = tempDir("llmlb-router-catalog-");
    cleanup = tmp.cleanup;
    const file = path.join(tmp.dir, "supported_models.json");
    fs.writeFileSync(file, JSON.stringify(routerCatalog(), null, 2));
    node = await startTestNode({ ...world.env, LLMLB_SUPPORTED_MODELS: file, LLMLB_API_KEY: NODE_KEY });
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
    cleanup?.();
  });

  it("lists the router's entries as given; the safetensors one is UNSUPPORTED with its reason and cannot be pulled", async () => {
    const list = (await (await fetch(`${node.httpUrl}/v0/models`, { headers: auth })).json()) as { models: Array<Record<string, unknown>> };
    const byId = Object.fromEntries(list.models.map((m) => [m.id, m]));
    expect(byId[TINY_CHAT_ID]).toMatchObject({ state: "available", parameter_count: "0.2M", quantization: "F32", capabilities: ["text-generation"] });
    expect(byId[EMBED_ID]).toMatchObject({ capabilities: ["embeddings"] });
    expect(byId["gpt-oss-20b"]).toMatchObject({ state: "unsupported", format: "safetensors", engine: "gptoss_cpp", quantization: null, parameter_count: "20B" });
    expect(byId["gpt-oss-20b"]!.unsupported_reason).toContain('format "safetensors" is not supported');
    const pull = await fetch(`${node.httpUrl}/v0/models/gpt-oss-20b/pull`, { method: "POST", headers: auth });
    const pushed = await fetch(`${node.httpUrl}/api/models/pull`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ model: "gpt-oss-20b" }) });
    expect(pushed.status).toBe(400);
    const chat = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-oss-20b", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(chat.status).toBe(400);
    expect(((await chat.json()) as { error: { message: string } }).error.message).toContain("cannot run it");
    expect(pull.status).toBe(400);
    expect(((await pull.json()) as { error: { message: string } }).error.message).toContain('cannot run it: format "safetensors"');
    // Popularity may be looked up; no file of it is ever fetched.
    expect(world.hf.requests.filter((r) => r.path.includes("gpt-oss") && r.path.includes("/resolve/"))).toHaveLength(0);
    const unsupported = (await (await fetch(`${node.httpUrl}/v0/models?state=unsupported`, { headers: auth })).json()) as { models: Array<{ id: string }> };
    expect(unsupported.models.map((m) => m.id)).toEqual(["gpt-oss-20b"]);
  });

  it("is detected by /api/system (xllm_version), health-checked and listed, behind the key", async () => {
    for (const p of ["/api/system", "/api/health", "/api/logs", "/api/models/x/info", "/v0/system"]) {
      expect((await fetch(`${node.httpUrl}${p}`)).status).toBe(401);
    }
    const before = await pollNode(node.httpUrl, NODE_KEY);
    expect(before.detected).toBe(true);
    expect(before.system).toMatchObject({ xllm_version: "0.1.0", device: { device_type: "cpu", gpu_devices: [] } });
    expect(before.health).toEqual({ status: 200, deviceCount: 0, totalMemoryBytes: 0, usedMemoryBytes: 0, capabilityScore: 0, activeRequests: 0 });
    expect(before.modelIds).toEqual([]);
    // An idle node reports [ready, ready]: llmlb reads it as "models synced", not as a node still loading.
    expect(before.models).toMatchObject({ ready_models: [0, 0], initializing: false });
    const v0 = (await (await fetch(`${node.httpUrl}/v0/system`, { headers: auth })).json()) as Record<string, unknown>;
    expect(v0).toMatchObject({ xllm_version: "0.1.0", device: { device_type: "cpu" } });
  });

  it("downloads what the router asks for (202 + task id), reports progress, then lists it with its info", async () => {
    const start = await fetch(`${node.httpUrl}/api/models/download`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ repo: TINY_REPO, filename: TINY_CHAT_FILE }),
    });
    expect(start.status).toBe(202);
    const task = (await start.json()) as { task_id: string; model: string; status: string };
    expect(task).toMatchObject({ model: TINY_CHAT_ID, status: "pending" });
    const progress = async () => (await (await fetch(`${node.httpUrl}/api/download/progress?task_id=${task.task_id}`, { headers: auth })).json()) as Record<string, unknown>;
    await expect.poll(async () => (await progress()).status, { timeout: 15_000 }).toBe("completed");
    // A percentage (0.0–100.0), as llmlb's client reads it.
    expect(await progress()).toMatchObject({ task_id: task.task_id, model: TINY_CHAT_ID, progress: 100, error: null });
    expect((await fetch(`${node.httpUrl}/api/download/progress?task_id=nope`, { headers: auth })).status).toBe(404);

    const after = await pollNode(node.httpUrl, NODE_KEY);
    expect(after.modelIds).toEqual([TINY_CHAT_ID]);
    expect(after.models).toMatchObject({ ready_models: [1, 1] });
    expect(after.info[TINY_CHAT_ID]).toMatchObject({ model: TINY_CHAT_ID, size_bytes: describeBytes(tinyChat).size, quantization: "F32", parameter_size: "0.2M", context_length: null });
    expect((await fetch(`${node.httpUrl}/api/models/${encodeURIComponent("gpt-oss-20b")}/info`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${node.httpUrl}/api/models/nope/info`, { headers: auth })).status).toBe(404);
  });

  it("answers /api/models/{id}/info for an id the router percent-encodes, with the context length as /v1/models/{id} reports it", async () => {
    const info = async (encodedId: string) => fetch(`${node.httpUrl}/api/models/${encodedId}/info`, { headers: auth });
    // Not on disk yet: the catalog's context length.
    const embed = await info("llmlb-test%2Ftiny-embed");
    expect(embed.status).toBe(200);
    expect(await embed.json()).toMatchObject({ model: EMBED_ID, context_length: 512 });
    expect((await info("llmlb-test%2ftiny-embed")).status).toBe(200);
    expect((await info("llmlb-test%2Fnope")).status).toBe(404);
    // Other routes keep refusing an encoded separator, and this one an encoded backslash.
    expect((await fetch(`${node.httpUrl}/v0/models/llmlb-test%2Ftiny-embed`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${node.httpUrl}/api/models/llmlb-test%2Ftiny-embed/info/x`, { headers: auth })).status).toBe(400);
    expect((await info("llmlb-test%5Ctiny-embed")).status).toBe(400);

    // Loaded: the context it was loaded with, the same number /v1/models/{id} gives.
    const chat = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
    });
    expect(chat.status).toBe(200);
    const v1 = (await (await fetch(`${node.httpUrl}/v1/models/${TINY_CHAT_ID}`, { headers: auth })).json()) as { context_length: number };
    expect(v1.context_length).toBeGreaterThan(0);
    const polled = await pollNode(node.httpUrl, NODE_KEY);
    expect(polled.info[TINY_CHAT_ID]).toMatchObject({ context_length: v1.context_length });
  });

  it("refuses a download of a repository the Hub does not have, and a body without repo", async () => {
    const missing = await fetch(`${node.httpUrl}/api/models/download`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ repo: "nobody/nothing-GGUF" }),
    });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toContain("repository nobody/nothing-GGUF was not found");
    const bad = await fetch(`${node.httpUrl}/api/models/download`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ filename: "x.gguf" }) });
    expect(bad.status).toBe(400);
  });

  it("answers 503 on /api/health and /v0/health while draining", async () => {
    node.runtime.health.setServing(false);
    try {
      expect((await fetch(`${node.httpUrl}/api/health`, { headers: auth })).status).toBe(503);
      const v0 = await fetch(`${node.httpUrl}/v0/health`, { headers: auth });
      expect(v0.status).toBe(503);
      expect(await v0.json()).toMatchObject({ status: "NOT_SERVING", gpu: { device_count: 0 }, load: { active_requests: 0 } });
    } finally {
      node.runtime.health.setServing(true);
    }
  });
});

describe("a node whose inference runner is slow to start (as llama.cpp's CUDA initialisation can be)", () => {
  let node: ChildNode | undefined;
  afterAll(async () => {
    await node?.stop();
  });

  it("is still detected by /api/system within llmlb's 5 s, with the GPU not probed yet; a later answer has it", async () => {
    // Every process of the node reads NODE_OPTIONS; only the inference runner sleeps 8 s before it starts.
    const slowRunner = `if (process.argv[1]?.includes("runner-main")) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 8000);`;
    node = await spawnChildNode({ NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(slowRunner)}` });
    const started = performance.now();
    const first = await pollNode(node.httpUrl);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(first.detected).toBe(true);
    expect(first.system).toMatchObject({ xllm_version: "0.1.0", device: { gpu_probed: false } });
    await expect.poll(async () => ((await pollNode(node!.httpUrl)).system.device as { gpu_probed: boolean }).gpu_probed, { timeout: 30_000, interval: 1_000 }).toBe(true);
  }, 60_000);
});
