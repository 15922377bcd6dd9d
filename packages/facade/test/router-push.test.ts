import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { logSink, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { startRouterStandin, type RouterStandin } from "../../../testkit/standins/index.js";
import { describeBytes, tinyModelBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { startTinyWorld, tinyEmbed, tinyEntry, TINY_CHAT_FILE, TINY_CHAT_ID, TINY_EMBED_FILE, TINY_EMBED_ID, TINY_REPO, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const ROUTER_KEY = "rk_router_secret_77";
/** What an llmlb router names a model of TINY_REPO (generate_model_id: the repo, lower-cased). */
const ROUTER_NAME = "llmlb-test/tiny-gguf";

const push = (node: TestNode, model: string) =>
  fetch(`${node.httpUrl}/api/models/pull`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model }) });

const pushEnv = (world: TinyWorld, router: RouterStandin, extra: Record<string, string> = {}) => ({
  ...world.env,
  LLMLB_ROUTER_URL: router.url,
  LLMLB_ROUTER_API_KEY: ROUTER_KEY,
  LLMLB_ROUTER_MODE: "push",
  LLMLB_HEARTBEAT_INTERVAL: "1",
  LLMLB_LOG_LEVEL: "info",
  LLMLB_LOG_FORMAT: "json",
  ...extra,
});

describe("a push-era router without CPU nodes (the real router's rule)", () => {
  let world: TinyWorld;
  let router: RouterStandin;
  let node: TestNode;
  const logs = logSink();
  beforeAll(async () => {
    world = await startTinyWorld();
    router = await startRouterStandin({ apiKey: ROUTER_KEY });
    node = await startTestNode(pushEnv(world, router), {}, { logTo: logs.stream });
  });
  afterAll(async () => {
    await node?.stop();
    await router?.close();
    await world?.close();
  });

  it("registers with the reference payload, gets 403, logs the router's reason once and keeps serving", async () => {
    // A node registers once it has a model to offer.
    expect((await fetch(`${node.httpUrl}/v0/models/${TINY_CHAT_ID}/pull`, { method: "POST" })).status).toBeLessThan(300);
    await expect.poll(() => router.registrations.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    for (const r of router.registrations) {
      expect(r.problems).toEqual([]);
      expect(r.status).toBe(403);
    }
    const payload = router.registrations[0]!.payload;
    expect(payload).toMatchObject({
      ip_address: "127.0.0.1",
      runtime_port: node.http.port - 1,
      gpu_available: false,
      gpu_devices: [],
      gpu_count: 0,
      supported_runtimes: ["llama_cpp"],
    });
    const refusals = logs.lines.filter((l) => l.msg === "the router refused to register this node");
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.reason).toContain("GPU is required");
    expect(router.heartbeats).toHaveLength(0);
    expect((await fetch(`${node.httpUrl}/v1/models`)).status).toBe(200);
    expect(JSON.stringify(logs.lines)).not.toContain(ROUTER_KEY);
  });
});

describe("a push-era router that accepts this CPU node", () => {
  let world: TinyWorld;
  let router: RouterStandin;
  let node: TestNode;
  const logs = logSink();
  beforeAll(async () => {
    world = await startTinyWorld();
    router = await startRouterStandin({ apiKey: ROUTER_KEY, acceptCpuNodes: true, realRouter: true });
    expect((await router.addModel(TINY_EMBED_ID, new Uint8Array(8), { repo: TINY_REPO, filename: TINY_EMBED_FILE })).id).toBe(ROUTER_NAME);
    node = await startTestNode(pushEnv(world, router), {}, { logTo: logs.stream });
  });
  afterAll(async () => {
    await node?.stop();
    await router?.close();
    await world?.close();
  });
  afterEach(() => router.clearLog());

  const okBeats = () => router.heartbeats.filter((h) => h.status === 200);

  const waitingLines = () => logs.lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("not registering with the router yet"));

  it("with no model on disk, does not register (the router would answer 500), says why once, and registers as soon as a model is pulled", async () => {
    await expect.poll(() => waitingLines().length, { timeout: 10_000 }).toBe(1);
    // Several heartbeat intervals (1 s) pass without an attempt the router would refuse.
    await new Promise((r) => setTimeout(r, 3000));
    expect(router.registrations).toHaveLength(0);
    expect(waitingLines()).toHaveLength(1);
    expect(waitingLines()[0]).toMatchObject({ level: "warn", fix: expect.stringContaining("LLMLB_PREFETCH") });
    expect(waitingLines()[0]!.msg).toContain("no model on disk");

    expect((await fetch(`${node.httpUrl}/v0/models/${TINY_CHAT_ID}/pull`, { method: "POST" })).status).toBeLessThan(300);
    await expect.poll(() => router.registrations[0]?.status, { timeout: 15_000 }).toBe(201);
    expect(router.registrations).toHaveLength(1);
  });

  it("registers (201, the router read its /v1/models) and heartbeats every interval with every field", async () => {
    await expect.poll(() => okBeats().length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    expect(router.registrations[0]).toMatchObject({ status: 201, problems: [] });
    const [registered] = [...router.nodes.values()];
    expect(registered!.modelIds).toEqual([TINY_CHAT_ID]);
    expect(registered!.readyModels).toEqual([1, 1]);
    // ready >= total: the router puts the node online (routes to it) instead of leaving it "registering".
    expect(registered!.status).toBe("online");
    expect(router.heartbeats.every((h) => h.problems.length === 0)).toBe(true);
    const beat = okBeats().at(-1)!.payload;
    expect(beat).toMatchObject({
      node_id: registered!.nodeId,
      active_requests: 0,
      gpu_usage: null,
      gpu_memory_total_mb: null,
      loaded_models: [],
      loaded_embedding_models: [],
      supported_runtimes: ["llama_cpp"],
      initializing: false,
      ready_models: [1, 1],
      sync_state: "idle",
      sync_progress: null,
    });
    expect(beat.cpu_usage).toBeGreaterThanOrEqual(0);
    expect(beat.memory_usage).toBeGreaterThan(0);
  });

  it("registers again when the router forgets the node (404), and takes the new token after a 401", async () => {
    const first = [...router.nodes.values()][0]!;
    router.forgetNode(first.nodeId);
    await expect.poll(() => router.nodes.size, { timeout: 10_000 }).toBe(1);
    const second = [...router.nodes.values()][0]!;
    expect(second.nodeId).not.toBe(first.nodeId);
    expect(router.heartbeats.some((h) => h.status === 404)).toBe(true);
    expect(router.registrations.at(-1)!.status).toBe(201);

    // A router restarted with the same node but new tokens: the old token gets 401, the node re-registers (200 "updated").
    const registrationsBefore = router.registrations.length;
    (second as { token: string }).token = "nt_revoked";
    // A registration is recorded when it arrives and answered after the router has read the node's /v1/models.
    await expect.poll(() => router.registrations.slice(registrationsBefore).find((r) => r.status !== 0)?.status, { timeout: 10_000 }).toBe(200);
    expect(router.heartbeats.some((h) => h.status === 401)).toBe(true);
    // The real router's auth layer answers in plain text; the node logs that text, not just "HTTP 401".
    expect(logs.lines.find((l) => l.msg === "the router no longer knows this node; registering again" && l.status === 401)).toMatchObject({ reason: "Invalid node token" });
    expect(router.registrations.slice(registrationsBefore).find((r) => r.status !== 0)).toMatchObject({ body: { status: "updated", node_id: second.nodeId } });
    const beatsBefore = okBeats().length;
    await expect.poll(() => okBeats().length, { timeout: 10_000 }).toBeGreaterThan(beatsBefore);
  });

  it("keeps heartbeating every interval while the router fails them (it marks a node offline after 60 s without one), then carries on registered", async () => {
    const nodeId = [...router.nodes.values()][0]!.nodeId;
    const registrationsBefore = router.registrations.length;
    const failing = router.failStatus(503, "always", { host: "router", path: "/v0/health" });
    const failedBeats = () => router.requests.filter((r) => r.path === "/v0/health" && r.status === 503);
    try {
      // Backing off 1, 2, 4, 8, 16 s would take 31 s to fail six times; at the 1 s interval it takes about six.
      await expect.poll(() => failedBeats().length, { timeout: 15_000 }).toBeGreaterThanOrEqual(6);
    } finally {
      failing.remove();
    }
    const times = failedBeats().map((r) => r.time);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.max(...gaps)).toBeLessThan(3000);
    expect(logs.lines.some((l) => l.msg === "heartbeat failed" && l.status === 503)).toBe(true);
    const beatsBefore = okBeats().length;
    await expect.poll(() => okBeats().length, { timeout: 10_000 }).toBeGreaterThan(beatsBefore);
    expect(router.registrations).toHaveLength(registrationsBefore);
    expect(okBeats().at(-1)!.payload.node_id).toBe(nodeId);
  });

  it("takes a pushed pull under the router's name ({status: ok}; 404 for a model it does not know) and reports the model ready", async () => {
    expect((await push(node, "no-such-model")).status).toBe(404);
    // Two catalog models share the repo: the router's list (repo + filename) says which one it means.
    const pushed = await push(node, ROUTER_NAME);
    expect(pushed.status).toBe(200);
    expect(await pushed.json()).toEqual({ status: "ok" });
    await expect.poll(async () => ((await (await fetch(`${node.httpUrl}/v0/models/${TINY_EMBED_ID}`)).json()) as { state: string }).state, { timeout: 15_000 }).toBe("ready");
    await expect.poll(() => okBeats().at(-1)?.payload.ready_models, { timeout: 10_000 }).toEqual([2, 2]);
    const models = (await (await fetch(`${node.httpUrl}/v1/models`)).json()) as { data: Array<{ id: string }>; ready_models: number[]; initializing: boolean };
    expect(models.data.map((m) => m.id).sort()).toEqual([TINY_CHAT_ID, TINY_EMBED_ID]);
    expect(models).toMatchObject({ ready_models: [2, 2], initializing: false });
  });

  it("answers OpenAI requests the router passes through unchanged, streaming included", async () => {
    const body = { model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 6, temperature: 0 };
    const post = (base: string, b: unknown) => fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(b) });
    const direct = (await (await post(node.httpUrl, body)).json()) as { choices: Array<{ message: { content: string } }> };
    const routed = await post(router.url, body);
    expect(routed.status).toBe(200);
    const routedBody = (await routed.json()) as typeof direct;
    expect(routedBody.choices[0]!.message.content).toBe(direct.choices[0]!.message.content);

    const stream = await post(router.url, { ...body, stream: true });
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    const text = await stream.text();
    const events = text.split("\n\n").filter(Boolean);
    expect(events.at(-1)).toBe("data: [DONE]");
    const deltas = events.slice(0, -1).map((e) => (JSON.parse(e.replace(/^data: /, "")) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? "");
    expect(deltas.join("")).toBe(direct.choices[0]!.message.content);
    // The loaded model reaches the router in the next heartbeat.
    await expect.poll(() => okBeats().at(-1)?.payload.loaded_models, { timeout: 10_000 }).toEqual([TINY_CHAT_ID]);
  });

  it("serves its last log lines at /v0/logs and /api/logs, redacted", async () => {
    for (const path of ["/v0/logs?tail=3", "/api/logs?tail=3"]) {
      const res = await fetch(`${node.httpUrl}${path}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { entries: Array<Record<string, unknown>>; path: unknown };
      expect(body.entries).toHaveLength(3);
      for (const e of body.entries) {
        expect(Object.keys(e).sort()).toEqual(["fields", "level", "message", "target", "timestamp"]);
        expect(typeof e.message).toBe("string");
      }
    }
    const all = (await (await fetch(`${node.httpUrl}/v0/logs?tail=1000`)).json()) as { entries: Array<{ message: string; target: string }> };
    expect(all.entries.some((e) => e.message === "registered with the router" && e.target === "router-link")).toBe(true);
    expect(JSON.stringify(all)).not.toContain(ROUTER_KEY);
    expect((await fetch(`${node.httpUrl}/v0/logs?tail=lots`)).status).toBe(400);
  });
});

describe("start-up sync with the router (LLMLB_PREFETCH)", () => {
  let world: TinyWorld;
  let router: RouterStandin;
  let node: TestNode;
  beforeAll(async () => {
    world = await startTinyWorld();
    router = await startRouterStandin({ apiKey: ROUTER_KEY, acceptCpuNodes: true, realRouter: true });
    await router.addModel(TINY_CHAT_ID, new Uint8Array(8), { repo: TINY_REPO, filename: TINY_CHAT_FILE });
    await router.addModel("unknown", new Uint8Array(8), { repo: "nobody/Unknown-GGUF", filename: "unknown-Q4_K_M.gguf" });
    // A start-up download of a few seconds: registering during it would list nothing.
    world.hf.throttle(400_000);
    node = await startTestNode(pushEnv(world, router, { LLMLB_PREFETCH: "true" }));
  });
  afterAll(async () => {
    await node?.stop();
    await router?.close();
    await world?.close();
  });

  it("pulls what the router lists before registering, so the router learns those models and routes to the node at once", async () => {
    await expect.poll(() => router.registrations[0]?.status, { timeout: 20_000 }).toBe(201);
    expect(router.registrations).toHaveLength(1);
    const [registered] = [...router.nodes.values()];
    // The router takes a node's model list only when it registers: it is the synced one.
    expect(registered).toMatchObject({ modelIds: [TINY_CHAT_ID], readyModels: [1, 1], status: "online" });
    await expect.poll(() => router.heartbeats.at(-1)?.payload.sync_state, { timeout: 10_000 }).toBe("success");
    world.hf.throttle(null);
  });

  it("reports a later sync's state and progress in heartbeats, and never deletes what the router stops listing", async () => {
    // Slow enough (~7 s) for a heartbeat to see the download running even on a busy machine.
    world.hf.throttle(120_000);
    // A real router has one model per repo: it now lists the embedding file of the same repo instead.
    router.removeModel(ROUTER_NAME);
    await router.addModel(TINY_EMBED_ID, new Uint8Array(8), { repo: TINY_REPO, filename: TINY_EMBED_FILE });
    // The router pushes a model it lists; with LLMLB_PREFETCH the node syncs again.
    const pushed = await push(node, ROUTER_NAME);
    expect(pushed.status).toBe(200);
    const running = () => router.heartbeats.find((h) => h.payload.sync_state === "running" && h.payload.sync_progress !== null);
    await expect.poll(running, { timeout: 20_000 }).toBeTruthy();
    expect(running()!.problems).toEqual([]);
    // One download in flight next to one model on disk: [1, 2].
    expect(running()!.payload).toMatchObject({ initializing: true, ready_models: [1, 2], sync_progress: { model_id: TINY_EMBED_ID, file: TINY_EMBED_FILE, total_bytes: describeBytes(tinyEmbed).size } });
    await expect.poll(() => router.heartbeats.at(-1)?.payload.sync_state, { timeout: 30_000 }).toBe("success");
    expect(router.heartbeats.at(-1)!.payload).toMatchObject({ ready_models: [2, 2], initializing: false, sync_progress: null });
    world.hf.throttle(null);
    const chat = (await (await fetch(`${node.httpUrl}/v0/models/${TINY_CHAT_ID}`)).json()) as { state: string };
    expect(chat.state).toBe("ready");
  });
});

describe("start-up sync with a router that lists nothing this node's catalog knows", () => {
  let world: TinyWorld;
  let router: RouterStandin;
  let node: TestNode;
  const logs = logSink();
  beforeAll(async () => {
    world = await startTinyWorld();
    router = await startRouterStandin({ apiKey: ROUTER_KEY, acceptCpuNodes: true, realRouter: true });
    await router.addModel("unknown", new Uint8Array(8), { repo: "nobody/Unknown-GGUF", filename: "unknown-Q4_K_M.gguf" });
    node = await startTestNode(pushEnv(world, router, { LLMLB_PREFETCH: "true" }), {}, { logTo: logs.stream });
  });
  afterAll(async () => {
    await node?.stop();
    await router?.close();
    await world?.close();
  });

  it("says the sync found nothing (not success), names the router's models, and does not register", async () => {
    const nothing = () => logs.lines.find((l) => l.msg === "router sync found none of the router's models in this node's catalog; nothing synced");
    await expect.poll(nothing, { timeout: 10_000 }).toBeTruthy();
    expect(nothing()).toMatchObject({ level: "warn", router_models: ["nobody/unknown-gguf"], fix: expect.stringContaining("/v0/models/register") });
    expect(logs.lines.find((l) => l.msg === "router lists a model this node's catalog does not know; skipped")).toMatchObject({
      router_model: "nobody/unknown-gguf",
      repo: "nobody/Unknown-GGUF",
      filename: "unknown-Q4_K_M.gguf",
    });
    await expect.poll(() => logs.lines.some((l) => typeof l.msg === "string" && l.msg.startsWith("not registering with the router yet")), { timeout: 10_000 }).toBe(true);
    expect(router.registrations).toHaveLength(0);
  });
});

describe("LLMLB_ADVERTISE_HOST given as a host name (the router takes only an IP)", () => {
  let world: TinyWorld;
  let router: RouterStandin;
  let named: TestNode;
  let unresolvable: TestNode;
  const namedLogs = logSink();
  const badLogs = logSink();
  beforeAll(async () => {
    world = await startTinyWorld();
    router = await startRouterStandin({ apiKey: ROUTER_KEY, acceptCpuNodes: true, realRouter: true });
    named = await startTestNode(pushEnv(world, router, { LLMLB_ADVERTISE_HOST: "localhost" }), {}, { logTo: namedLogs.stream });
    unresolvable = await startTestNode(pushEnv(world, router, { LLMLB_ADVERTISE_HOST: "no-such-node.invalid" }), {}, { logTo: badLogs.stream });
  });
  afterAll(async () => {
    await named?.stop();
    await unresolvable?.stop();
    await router?.close();
    await world?.close();
  });

  it("registers with the IP a name resolves to, and says in one line, naming the setting, when a name does not resolve", async () => {
    for (const node of [named, unresolvable]) expect((await fetch(`${node.httpUrl}/v0/models/${TINY_CHAT_ID}/pull`, { method: "POST" })).status).toBeLessThan(300);
    await expect.poll(() => router.registrations.find((r) => r.payload.runtime_port === named.http.port - 1)?.status, { timeout: 15_000 }).toBe(201);
    expect(router.registrations.find((r) => r.payload.runtime_port === named.http.port - 1)).toMatchObject({ problems: [], payload: { ip_address: "127.0.0.1" } });

    const refused = () => badLogs.lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("LLMLB_ADVERTISE_HOST=no-such-node.invalid does not resolve"));
    await expect.poll(() => refused().length, { timeout: 10_000 }).toBe(1);
    expect(refused()[0]).toMatchObject({ level: "error" });
    await new Promise((r) => setTimeout(r, 2000));
    expect(refused()).toHaveLength(1);
    expect(router.registrations.filter((r) => r.payload.runtime_port === unresolvable.http.port - 1)).toHaveLength(0);
  });
});

describe("a push-era router's heartbeat with a reranker loaded", () => {
  const RERANK_ID = "tiny-rerank";
  const RERANK_FILE = "tiny-rerank-F32.gguf";
  const RERANK_REPO = "llmlb-test/tiny-rerank-GGUF";
  const reranker = tinyModelBytes({ reranker: true });
  let world: TinyWorld;
  let router: RouterStandin;
  let node: TestNode;
  beforeAll(async () => {
    world = await startTinyWorld({ extraModels: [tinyEntry(RERANK_ID, RERANK_FILE, reranker, ["rerank"], { repo: RERANK_REPO })] });
    await world.hf.addRepo(RERANK_REPO, { files: { [RERANK_FILE]: reranker } });
    router = await startRouterStandin({ apiKey: ROUTER_KEY, acceptCpuNodes: true, realRouter: true });
    node = await startTestNode(pushEnv(world, router));
  });
  afterAll(async () => {
    await node?.stop();
    await router?.close();
    await world?.close();
  });

  it("lists it neither as a chat model (the router would send it chats) nor as an embedding model", async () => {
    for (const id of [TINY_CHAT_ID, RERANK_ID]) {
      const load = await fetch(`${node.httpUrl}/v0/models/${id}/load`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(load.status, id).toBe(200);
    }
    const lastBeat = () => router.heartbeats.filter((h) => h.status === 200).at(-1)?.payload;
    await expect.poll(() => lastBeat()?.loaded_models, { timeout: 15_000 }).toEqual([TINY_CHAT_ID]);
    expect(lastBeat()?.loaded_embedding_models).toEqual([]);
  });
});
